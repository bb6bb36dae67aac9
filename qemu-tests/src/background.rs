//! A program running in the background while a test does something else (an `iperf3`
//! transfer during a SYN flood, a server): its output is collected as it comes, it is waited
//! for with a deadline, and it is killed if it is dropped still running.

use std::io::Read;
use std::process::{Child, ExitStatus, Output};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::qemu::{stop, wait_until};

use crate::{Failure, Outcome};

/// A running child process and the threads draining its stdout and stderr.
pub struct Background {
    what: String,
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Background {
    /// Takes over `child` (started with piped stdout and stderr); `what` names it in errors.
    pub fn new(what: impl Into<String>, mut child: Child) -> Background {
        let drain = |stream: Option<Box<dyn Read + Send>>| {
            stream.map(|mut stream| {
                std::thread::spawn(move || {
                    let mut bytes = Vec::new();
                    let _ = stream.read_to_end(&mut bytes);
                    bytes
                })
            })
        };
        let stdout = drain(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let stderr = drain(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        Background {
            what: what.into(),
            child,
            stdout,
            stderr,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits up to `timeout` for it to exit and returns its status and output; kills it and
    /// fails if it is still running then.
    pub fn finish(mut self, timeout: Duration) -> Outcome<Output> {
        let status = self.wait(timeout)?;
        let collect = |handle: Option<JoinHandle<Vec<u8>>>| {
            handle
                .map(|handle| handle.join().unwrap_or_default())
                .unwrap_or_default()
        };
        Ok(Output {
            status,
            stdout: collect(self.stdout.take()),
            stderr: collect(self.stderr.take()),
        })
    }

    fn wait(&mut self, timeout: Duration) -> Outcome<ExitStatus> {
        match wait_until(&mut self.child, Instant::now() + timeout) {
            Ok(Some(status)) => Ok(status),
            Ok(None) => {
                stop(&mut self.child);
                Err(Failure::new(format!(
                    "{} still running after {:.0} s: killed",
                    self.what,
                    timeout.as_secs_f64()
                )))
            }
            Err(error) => Err(Failure::new(format!("waiting for {}: {error}", self.what))),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn spawn(script: &str) -> Background {
        let child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Background::new(format!("sh -c {script:?}"), child)
    }

    #[test]
    fn output_is_collected_when_the_program_ends_in_time() {
        let output = spawn("echo out; echo err >&2")
            .finish(Duration::from_secs(10))
            .unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
    }

    #[test]
    fn a_program_that_overruns_its_deadline_is_killed_and_reported() {
        let started = Instant::now();
        let error = spawn("sleep 30")
            .finish(Duration::from_millis(100))
            .unwrap_err();
        assert!(error.message().contains("still running"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
