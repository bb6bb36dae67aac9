//! An established download through the appliance, watched while it runs: `curl` in a
//! client's namespace fetches a [`StreamServer`]'s endless stream, writing the body to its
//! stdout, which the test process reads as it comes. Every byte is checked against the
//! stream's [`Pattern`], and the running byte count tells the transfer rate over any window
//! ([`Download::progress`]) and when data last moved.
//!
//! The download ends when the server is told to finish: curl then sees the body's last chunk
//! and exits 0. [`Download::finish`] says whether it arrived intact and complete. curl itself
//! never gives up on a slow transfer: a flood that saturates the link the download shares
//! can stall TCP for a minute or more (retransmissions backing off), and whether the flow
//! then resumes is what the caller wants to know; its own deadlines decide.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::qemu::{stop, wait_until};

use crate::stream_server::{Pattern, StreamRecord, StreamServer};
use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// How long the server may take to record a body curl has seen end.
const RECORD_TIMEOUT: Duration = Duration::from_secs(5);

/// The body bytes received so far, and when the last ones came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes received.
    pub bytes: u64,
    /// When the count was read.
    pub at: Instant,
    /// How long ago bytes last arrived.
    pub idle: Duration,
}

impl Progress {
    /// Bytes per second between `earlier` and this reading.
    pub fn rate_since(&self, earlier: &Progress) -> f64 {
        let seconds = self.at.duration_since(earlier.at).as_secs_f64();
        if seconds > 0.0 {
            self.bytes.saturating_sub(earlier.bytes) as f64 / seconds
        } else {
            0.0
        }
    }
}

/// What the reader saw.
#[derive(Debug, Default)]
struct Received {
    /// The first byte that differed from the stream's pattern.
    first_wrong: Option<u64>,
    /// When bytes last arrived.
    last: Option<Instant>,
}

/// A download in progress; curl is killed if it is dropped unfinished.
pub struct Download {
    stream: u64,
    child: Child,
    started: Instant,
    bytes: Arc<AtomicU64>,
    received: Arc<Mutex<Received>>,
    reader: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

/// How a download ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadReport {
    /// Body bytes curl delivered.
    pub received: u64,
    /// What the server says it sent (one record per request it served).
    pub served: Vec<StreamRecord>,
    /// The first byte that differed from the stream's content, if any did.
    pub first_wrong: Option<u64>,
    /// curl's exit status, and what it printed on stderr.
    pub curl: (ExitStatus, String),
    /// How long the download ran.
    pub elapsed: Duration,
}

impl DownloadReport {
    /// Fails unless curl saw a complete body (exit 0), the server ended exactly one body
    /// properly, every byte sent arrived, and every byte was the stream's.
    pub fn check_intact(&self) -> Outcome {
        let (status, stderr) = &self.curl;
        let problem = if !status.success() {
            Some(format!("curl failed ({status}): {}", stderr.trim()))
        } else if let Some(offset) = self.first_wrong {
            Some(format!("byte {offset} differs from what the server sent"))
        } else {
            match self.served.as_slice() {
                [served] if served.completed && served.sent == self.received => None,
                [served] => Some(format!(
                    "the server sent {} bytes ({}), curl delivered {}",
                    served.sent,
                    match (&served.error, served.completed) {
                        (_, true) => "body complete".to_string(),
                        (Some(error), false) => format!("stopped: {error}"),
                        (None, false) => "body not ended".to_string(),
                    },
                    self.received
                )),
                served => Some(format!(
                    "the server served {} requests instead of one: {served:?}",
                    served.len()
                )),
            }
        };
        match problem {
            None => Ok(()),
            Some(problem) => Err(Failure::new(format!(
                "the download ({} bytes in {:.1} s) is not intact: {problem}",
                self.received,
                self.elapsed.as_secs_f64()
            ))),
        }
    }
}

impl Download {
    /// Starts curl in `client`'s namespace on `server`'s stream.
    pub fn start(client: &TestHost, server: &StreamServer) -> Outcome<Download> {
        let stream = server.open();
        let url = server.url(stream);
        let mut child = client.spawn(
            "curl",
            &[
                "--silent",
                "--show-error",
                "--fail",
                "--no-buffer",
                "--connect-timeout",
                "20",
                "--output",
                "-",
                &url,
            ],
        )?;
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take())
        else {
            stop(&mut child);
            return Err(Failure::new("curl's stdout and stderr are not piped"));
        };
        let bytes = Arc::new(AtomicU64::new(0));
        let received = Arc::new(Mutex::new(Received::default()));
        let (counting, recording) = (Arc::clone(&bytes), Arc::clone(&received));
        let reader = std::thread::spawn(move || {
            let mut pattern = Pattern::default();
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let read = match stdout.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                let checked = pattern.check(&buffer[..read]);
                let mut state = recording
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let (Err(offset), None) = (checked, state.first_wrong) {
                    state.first_wrong = Some(offset);
                }
                state.last = Some(Instant::now());
                counting.fetch_add(read as u64, Ordering::Release);
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Ok(Download {
            stream,
            child,
            started: Instant::now(),
            bytes,
            received,
            reader: Some(reader),
            stderr: Some(stderr),
        })
    }

    /// Bytes received so far.
    pub fn progress(&self) -> Progress {
        let at = Instant::now();
        let bytes = self.bytes.load(Ordering::Acquire);
        let last = self
            .received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .last;
        Progress {
            bytes,
            at,
            idle: at.duration_since(last.unwrap_or(self.started)),
        }
    }

    /// Waits until the first `bytes` have arrived, or fails after `timeout` (or if curl
    /// exits first).
    pub fn wait_for(&mut self, bytes: u64, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        loop {
            if self.progress().bytes >= bytes {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Failure::new(format!(
                    "curl exited ({status}) after {} bytes of the download",
                    self.progress().bytes
                )));
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "the download had {} of {bytes} bytes after {:.0} s",
                    self.progress().bytes,
                    timeout.as_secs_f64()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Tells `server` to end the body, waits up to `timeout` for curl to exit, and reports.
    pub fn finish(self, server: &StreamServer, timeout: Duration) -> Outcome<DownloadReport> {
        self.finish_or_diagnose(server, timeout, String::new)
    }

    /// As [`Download::finish`]; if curl is still running at the deadline, `diagnose` is
    /// asked (before curl is killed, so the connection still exists) what the ends of the
    /// connection look like, and its answer is part of the failure.
    pub fn finish_or_diagnose(
        mut self,
        server: &StreamServer,
        timeout: Duration,
        diagnose: impl FnOnce() -> String,
    ) -> Outcome<DownloadReport> {
        server.finish(self.stream);
        let waited = wait_until(&mut self.child, Instant::now() + timeout);
        let status = match waited {
            Ok(Some(status)) => status,
            Ok(None) => {
                let progress = self.progress();
                let diagnosis = diagnose();
                stop(&mut self.child);
                return Err(Failure::new(format!(
                    "curl still running {:.0} s after the server ended the body ({} bytes received, the last {:.1} s ago): killed{}{}",
                    timeout.as_secs_f64(),
                    progress.bytes,
                    progress.idle.as_secs_f64(),
                    if diagnosis.is_empty() { "" } else { "\n" },
                    diagnosis
                )));
            }
            Err(error) => return Err(Failure::new(format!("waiting for curl: {error}"))),
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let stderr = self
            .stderr
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        let first_wrong = self
            .received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .first_wrong;
        Ok(DownloadReport {
            received: self.bytes.load(Ordering::Acquire),
            served: server.take_records(self.stream, RECORD_TIMEOUT),
            first_wrong,
            curl: (status, stderr),
            elapsed: self.started.elapsed(),
        })
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    fn report(received: u64, sent: u64, completed: bool) -> DownloadReport {
        DownloadReport {
            received,
            served: vec![StreamRecord {
                sent,
                completed,
                error: None,
            }],
            first_wrong: None,
            curl: (ExitStatus::from_raw(0), String::new()),
            elapsed: Duration::from_secs(3),
        }
    }

    #[test]
    fn a_download_is_intact_only_if_complete_and_every_byte_is_right() {
        assert!(report(1000, 1000, true).check_intact().is_ok());
        let short = report(900, 1000, true).check_intact().unwrap_err();
        assert!(short.message().contains("sent 1000"), "{short}");
        assert!(report(1000, 1000, false).check_intact().is_err());
        let mut wrong = report(1000, 1000, true);
        wrong.first_wrong = Some(517);
        let message = wrong.check_intact().unwrap_err();
        assert!(message.message().contains("byte 517"), "{message}");
        let mut failed = report(1000, 1000, true);
        // Exit status 18 (curl: partial file), as wait(2) encodes it.
        failed.curl = (ExitStatus::from_raw(18 << 8), "transfer closed".into());
        let message = failed.check_intact().unwrap_err();
        assert!(message.message().contains("curl failed"), "{message}");
        let mut twice = report(1000, 1000, true);
        twice.served.push(twice.served[0].clone());
        assert!(twice.check_intact().is_err());
    }
}
