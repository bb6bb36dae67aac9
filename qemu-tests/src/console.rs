//! The appliance's serial console, read line by line from QEMU's stdout on a thread of its
//! own, with waits that time out.
//!
//! Lines are cleaned before anyone looks at them: `\r`, terminal escape sequences (GRUB and
//! OVMF draw on the serial console) and other control characters are removed, so a line reads
//! as the kernel wrote it whichever firmware came before.

use std::io::Read;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{Failure, Outcome};

/// A serial console being read.
#[derive(Clone)]
pub struct Console {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    lines: Vec<String>,
    partial: Vec<u8>,
    closed: bool,
    /// Whether the reader stops reading (a console nobody reads: [`Console::pause`]).
    paused: bool,
}

/// What a wait sees each time the console changes.
pub struct Snapshot<'a> {
    /// Complete lines so far, cleaned.
    pub lines: &'a [String],
    /// Whether the console has closed (QEMU exited).
    pub closed: bool,
}

impl Console {
    /// Starts reading `stream` (QEMU's stdout) on a new thread.
    pub fn attach(stream: impl Read + Send + 'static) -> Console {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let reader = Arc::clone(&shared);
        std::thread::spawn(move || read_console(stream, &reader));
        Console { shared }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops reading QEMU's output, as a console reader that hung would: what QEMU writes
    /// fills the pipe and then waits (QEMU's serial port stops taking bytes). At most one
    /// read already under way still completes.
    pub fn pause(&self) {
        self.state().paused = true;
    }

    /// Reads again after [`Console::pause`].
    pub fn resume(&self) {
        self.state().paused = false;
        self.shared.changed.notify_all();
    }

    /// Complete lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.state().lines.clone()
    }

    /// Everything received so far, including an unterminated last line, for failure reports.
    pub fn transcript(&self) -> String {
        let state = self.state();
        let mut text = state.lines.join("\n");
        if !state.partial.is_empty() {
            text.push('\n');
            text.push_str(&clean_line(&state.partial));
        }
        text
    }

    /// Waits until `check` returns `Some` (its value is returned), or fails after `timeout`
    /// with a message naming `what` was awaited.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(Snapshot<'_>) -> Option<Outcome<T>>,
    ) -> Outcome<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        loop {
            if let Some(outcome) = check(Snapshot {
                lines: &state.lines,
                closed: state.closed,
            }) {
                return outcome;
            }
            if state.closed {
                return Err(Failure::new(format!("QEMU exited before {what}")));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Failure::new(format!(
                    "timed out after {:.0} s waiting for {what}",
                    timeout.as_secs_f64()
                )));
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Waits for the first line equal to `line`.
    pub fn wait_for_line(&self, line: &str, timeout: Duration) -> Outcome {
        self.wait_until(&format!("`{line}` on the console"), timeout, |snapshot| {
            snapshot
                .lines
                .iter()
                .any(|seen| seen == line)
                .then_some(Ok(()))
        })
    }

    /// Waits for the first line equal to `ready` (`what` names the guest), failing as soon as a line satisfies `fatal`: the guest reported that it
    /// will never get there.
    pub fn wait_for_ready(
        &self,
        what: &str,
        ready: &str,
        timeout: Duration,
        fatal: impl Fn(&str) -> bool,
    ) -> Outcome {
        self.wait_until(&format!("`{ready}` ({what})"), timeout, |snapshot| {
            if let Some(line) = snapshot.lines.iter().find(|line| fatal(line)) {
                return Some(Err(Failure::new(format!(
                    "{what} failed before `{ready}`: {line}"
                ))));
            }
            snapshot
                .lines
                .iter()
                .any(|line| line == ready)
                .then_some(Ok(()))
        })
    }

    /// How many complete lines satisfy `predicate`.
    pub fn count(&self, predicate: impl Fn(&str) -> bool) -> usize {
        self.state()
            .lines
            .iter()
            .filter(|line| predicate(line))
            .count()
    }
}

fn read_console(mut stream: impl Read, shared: &Shared) {
    let mut buffer = [0u8; 4096];
    loop {
        {
            let mut state = shared
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            while state.paused {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
        let read = match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let mut state = shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for &byte in &buffer[..read] {
            if byte == b'\n' {
                let line = clean_line(&state.partial);
                state.lines.push(line);
                state.partial.clear();
            } else {
                state.partial.push(byte);
            }
        }
        shared.changed.notify_all();
    }
    let mut state = shared
        .state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    state.closed = true;
    shared.changed.notify_all();
}

/// Removes terminal escape sequences, `\r` and other control characters from a raw line.
pub fn clean_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameter and intermediate bytes, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            clean.push(c);
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_escape_sequences_and_carriage_returns_are_removed() {
        assert_eq!(
            clean_line(b"\x1b[H\x1b[J\x1b[1;1Hmoat: ready\r"),
            "moat: ready"
        );
        assert_eq!(
            clean_line(b"\x1b[=3h\x1b[0m\x1b[30m\x1b[47mWelcome"),
            "Welcome"
        );
        assert_eq!(clean_line(b"a\x1b7b\x00c"), "abc");
    }

    #[test]
    fn lines_arrive_in_order_and_the_console_closes_at_end_of_stream() {
        let console = Console::attach(&b"one\r\ntwo\nthree"[..]);
        console
            .wait_for_line("two", Duration::from_secs(5))
            .unwrap();
        let closed = console.wait_until(
            "the end of the stream",
            Duration::from_secs(5),
            |snapshot| snapshot.closed.then_some(Ok(snapshot.lines.to_vec())),
        );
        assert_eq!(closed.unwrap(), ["one", "two"]);
        assert_eq!(console.transcript(), "one\ntwo\nthree");
    }

    #[test]
    fn waiting_for_a_line_that_never_comes_fails_with_what_was_awaited() {
        let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
        let console = Console::attach(reader);
        let error = console
            .wait_for_line("moat: ready", Duration::from_millis(50))
            .unwrap_err();
        assert!(
            error.message().contains("timed out") && error.message().contains("moat: ready"),
            "{error}"
        );
        drop(writer);
        let error = console
            .wait_for_line("moat: ready", Duration::from_secs(5))
            .unwrap_err();
        assert!(error.message().contains("QEMU exited before"), "{error}");
    }
}
