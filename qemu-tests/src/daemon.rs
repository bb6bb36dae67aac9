//! Host daemons the tests run in a test host's namespace ([`crate::dnsmasq`],
//! [`crate::radvd`]): found on the PATH or in /usr/sbin (not on every user's PATH),
//! started with a check that they did not exit at once on a bad option, stopped with
//! SIGTERM (so they can say goodbye on the wire) and killed if still running when dropped.

use std::time::Duration;

use crate::background::Background;
use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// How long a daemon is watched after starting: a bad option or configuration makes it
/// exit within this.
const STARTUP_CHECK: Duration = Duration::from_millis(200);

/// A running daemon.
pub struct Daemon {
    name: &'static str,
    process: Option<Background>,
}

/// Where `name` is: on the PATH, or in /usr/sbin.
fn program(name: &str) -> String {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
    if on_path {
        name.to_string()
    } else {
        format!("/usr/sbin/{name}")
    }
}

impl Daemon {
    /// Starts `name` with `args` in `host`'s namespace; fails, with its error output, if it
    /// exits at once.
    pub fn start(host: &TestHost, name: &'static str, args: &[&str]) -> Outcome<Daemon> {
        let child = host.spawn(&program(name), args).map_err(|failure| {
            Failure::new(format!("{failure} (scripts/setup installs {name})"))
        })?;
        let mut process = Background::new(format!("{name} in {}", host.namespace()), child);
        std::thread::sleep(STARTUP_CHECK);
        if process.has_exited() {
            let output = process.finish(Duration::from_secs(1))?;
            return Err(Failure::new(format!(
                "{name} exited at once ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(Daemon {
            name,
            process: Some(process),
        })
    }

    /// Stops the daemon (SIGTERM); returns its log (stderr).
    pub fn stop(mut self) -> Outcome<String> {
        let Some(process) = self.process.take() else {
            return Ok(String::new());
        };
        // SAFETY: kill(2) with a pid this test started and still owns (it has not been
        // waited for, so the pid cannot have been reused) and a plain termination signal.
        unsafe { libc::kill(process.pid() as libc::pid_t, libc::SIGTERM) };
        let output = process
            .finish(Duration::from_secs(5))
            .map_err(|f| Failure::new(format!("stopping {}: {f}", self.name)))?;
        Ok(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
