//! Running QEMU as a child process whose console a program reads.

use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::QemuCommandLine;
use crate::error::{Error, Result};

impl QemuCommandLine {
    /// Starts QEMU for a program that reads the serial console: stdin from /dev/null, stdout
    /// (the console, with [`super::Console::Stdout`]) and stderr piped.
    pub fn spawn_piped(&self) -> Result<Child> {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: self.program.display().to_string(),
                source,
            })
    }
}

/// Waits for `child` to exit until `deadline`: its status, or `None` if it is still running.
pub fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
}

/// Kills `child` (if it still runs) and reaps it.
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
