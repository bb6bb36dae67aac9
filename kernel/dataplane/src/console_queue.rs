//! The console's output queue: lines waiting for the serial port, so that printing never
//! waits on whoever reads the console.
//!
//! A UART takes a FIFO's worth of bytes at a time, and a hypervisor's serial port only as
//! fast as its back end takes them: a `virsh console` that stopped reading, a socket whose
//! reader hangs, a pipe nobody drains. Writing lines straight to the port would stall the
//! main loop — and every packet — until the reader came back (and the watchdog would reset
//! the appliance first). So lines go into this fixed ring and the main loop hands them to
//! the port a bounded number of bytes at a time, as fast as the port takes them.
//!
//! Lines are kept or lost whole. When the ring has no room for a line, the line is counted
//! and dropped; [`lost_line`]'s warning goes in where they are missing, as soon as it fits
//! ([`ConsoleQueue::report_lost`]) or ahead of the next line that fits, so that a reader
//! sees where lines are missing and how many. Newlines go out as CR LF. While the port
//! takes nothing, [`RetryDelay`] spaces the tries out.

use core::fmt::{self, Write};

use smoltcp::time::Duration;

/// Lines waiting for the console, in a ring of `N` bytes. See the module documentation.
pub struct ConsoleQueue<const N: usize> {
    bytes: [u8; N],
    /// Index of the oldest waiting byte.
    head: usize,
    /// Bytes waiting (committed lines only).
    len: usize,
    /// Lines dropped since the last warning went in, and their bytes.
    lost: Lost,
}

/// Lines dropped for want of room, and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lost {
    /// Lines dropped.
    pub lines: u64,
    /// Bytes they held (before the CR LF conversion).
    pub bytes: u64,
}

/// Writes the warning that stands where lines were lost: `moat: warning: console: N
/// lines (M bytes) not printed: the console was not read fast enough`.
pub fn lost_line(out: &mut impl Write, lost: Lost) -> fmt::Result {
    writeln!(
        out,
        "moat: warning: console: {} lines ({} bytes) not printed: the console was not read fast enough",
        lost.lines, lost.bytes
    )
}

impl<const N: usize> ConsoleQueue<N> {
    /// An empty queue (usable in a `static`).
    pub const fn new() -> ConsoleQueue<N> {
        ConsoleQueue {
            bytes: [0; N],
            head: 0,
            len: 0,
            lost: Lost { lines: 0, bytes: 0 },
        }
    }

    /// Queues the text `args` formats to (normally one line ending in `\n`), whole or not
    /// at all; returns whether it went in. Lost text is counted, and the warning about it
    /// goes in ahead of the next text that fits along with it.
    pub fn push(&mut self, args: fmt::Arguments) -> bool {
        self.push_making_room(args, |_| 0)
    }

    /// [`ConsoleQueue::push`], but while the text does not fit, `make_room` may drain some
    /// of the queue (as far as its port takes bytes without waiting) and return how many
    /// bytes it freed; the text is lost only once it frees none. (Draining a little at a
    /// time frees about as much as the text needs, not the whole queue.)
    pub fn push_making_room(
        &mut self,
        args: fmt::Arguments,
        mut make_room: impl FnMut(&mut Self) -> usize,
    ) -> bool {
        while !self.try_push(args) {
            if make_room(self) == 0 {
                let mut counter = ByteCounter(0);
                let _ = counter.write_fmt(args);
                self.lost.lines += 1;
                self.lost.bytes += counter.0 as u64;
                return false;
            }
        }
        true
    }

    /// Queues the warning about lost lines on its own, if lines were lost and it fits now
    /// (so that a reader who comes back learns of them without waiting for the next
    /// line); returns whether it went in.
    pub fn report_lost(&mut self) -> bool {
        let lost = self.lost;
        if lost.lines == 0 || !self.append(|w| lost_line(w, lost)) {
            return false;
        }
        self.lost = Lost::default();
        true
    }

    /// Queues the warning about lost lines (if any) and the text, both or neither.
    fn try_push(&mut self, args: fmt::Arguments) -> bool {
        let before = self.len;
        let lost = self.lost;
        let fits = (lost.lines == 0 || self.append(|w| lost_line(w, lost)))
            && self.append(|w| w.write_fmt(args));
        if !fits {
            self.len = before;
            return false;
        }
        self.lost = Lost::default();
        true
    }

    /// Hands at most `max` waiting bytes, oldest first, to `write`, which returns how many
    /// it took (fewer when its port is busy); returns the bytes taken.
    pub fn drain(&mut self, max: usize, mut write: impl FnMut(&[u8]) -> usize) -> usize {
        let mut taken = 0;
        while taken < max && self.len > 0 {
            let contiguous = self.len.min(N - self.head);
            let offered = contiguous.min(max - taken);
            let written = write(&self.bytes[self.head..self.head + offered]).min(offered);
            self.head = (self.head + written) % N;
            self.len -= written;
            taken += written;
            if written < offered {
                break;
            }
        }
        if self.len == 0 {
            self.head = 0;
        }
        taken
    }

    /// Bytes waiting.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Lines dropped and not yet reported by a warning in the queue.
    pub fn lost(&self) -> Lost {
        self.lost
    }

    /// Formats with `format` after the waiting bytes and keeps the result if all of it
    /// fit; returns whether it did.
    fn append(&mut self, format: impl FnOnce(&mut Appender<N>) -> fmt::Result) -> bool {
        let mut appender = Appender {
            end: self.len,
            queue: self,
        };
        if format(&mut appender).is_err() {
            return false;
        }
        self.len = appender.end;
        true
    }
}

/// Writes after a queue's waiting bytes without committing them; fails when the ring is
/// full. `\n` goes in as CR LF.
struct Appender<'a, const N: usize> {
    queue: &'a mut ConsoleQueue<N>,
    /// Bytes waiting plus those appended so far.
    end: usize,
}

impl<const N: usize> Appender<'_, N> {
    fn put(&mut self, byte: u8) -> fmt::Result {
        if self.end >= N {
            return Err(fmt::Error);
        }
        let at = (self.queue.head + self.end) % N;
        self.queue.bytes[at] = byte;
        self.end += 1;
        Ok(())
    }
}

impl<const N: usize> Write for Appender<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &byte in s.as_bytes() {
            if byte == b'\n' {
                self.put(b'\r')?;
            }
            self.put(byte)?;
        }
        Ok(())
    }
}

/// Counts the bytes a text formats to.
struct ByteCounter(usize);

impl Write for ByteCounter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// How long to wait before offering a console that takes nothing its lines again: from a
/// first delay, doubling up to a longest one while it still takes nothing, and from the
/// first again once it takes bytes — so that a console nobody reads for hours costs a
/// wake-up a second, not a hundred, and one that comes back is served within a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryDelay {
    first: Duration,
    longest: Duration,
    next: Duration,
}

impl RetryDelay {
    /// Delays from `first`, doubling up to `longest`.
    pub const fn new(first: Duration, longest: Duration) -> RetryDelay {
        RetryDelay {
            first,
            longest,
            next: first,
        }
    }

    /// The console took nothing again: how long to wait before the next try.
    pub fn blocked(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.longest);
        delay
    }

    /// The console took bytes (or had none to take): the next wait is the first again.
    pub fn moved(&mut self) {
        self.next = self.first;
    }
}

impl<const N: usize> Default for ConsoleQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    /// Everything waiting, as text, taken by a port that takes all it is offered.
    fn drained<const N: usize>(queue: &mut ConsoleQueue<N>) -> String {
        let mut out = Vec::new();
        queue.drain(usize::MAX, |bytes| {
            out.extend_from_slice(bytes);
            bytes.len()
        });
        String::from_utf8(out).unwrap()
    }

    fn warning(lines: u64, bytes: u64) -> String {
        let mut text = String::new();
        lost_line(&mut text, Lost { lines, bytes }).unwrap();
        text.replace('\n', "\r\n")
    }

    #[test]
    fn lines_come_out_in_order_with_cr_lf() {
        let mut queue = ConsoleQueue::<256>::new();
        assert!(queue.push(format_args!("moat: ready\n")));
        assert!(queue.push(format_args!("moat: stats nic{} rx {}\n", 0, 12)));
        assert_eq!(queue.pending(), 13 + 24);
        assert_eq!(
            drained(&mut queue),
            "moat: ready\r\nmoat: stats nic0 rx 12\r\n"
        );
        assert_eq!(queue.pending(), 0);
    }

    #[test]
    fn a_busy_port_takes_a_prefix_and_the_rest_waits_for_the_next_drain() {
        let mut queue = ConsoleQueue::<64>::new();
        queue.push(format_args!("0123456789abcdefghij\n"));
        let mut out = Vec::new();
        // A 16-byte FIFO, then a port that takes nothing.
        let taken = queue.drain(usize::MAX, |bytes| {
            let n = bytes.len().min(16);
            out.extend_from_slice(&bytes[..n]);
            n
        });
        assert_eq!(taken, 16);
        assert_eq!(queue.drain(usize::MAX, |_| 0), 0);
        assert_eq!(queue.pending(), 6);
        // The budget bounds a drain.
        assert_eq!(
            queue.drain(3, |bytes| {
                out.extend_from_slice(bytes);
                bytes.len()
            }),
            3
        );
        out.extend_from_slice(drained(&mut queue).as_bytes());
        assert_eq!(out, b"0123456789abcdefghij\r\n");
    }

    #[test]
    fn lines_wrap_around_the_ring_and_keep_their_bytes() {
        let mut queue = ConsoleQueue::<32>::new();
        let mut expected = String::new();
        let mut out = String::new();
        for i in 0..40 {
            let line = alloc::format!("line {i} {}\n", "x".repeat(i % 7));
            assert!(queue.push(format_args!("{line}")), "line {i}");
            expected.push_str(&line.replace('\n', "\r\n"));
            // Drain all but a few bytes, so the next line wraps.
            let keep = 3.min(queue.pending());
            let mut taken = Vec::new();
            queue.drain(queue.pending() - keep, |bytes| {
                taken.extend_from_slice(bytes);
                bytes.len()
            });
            out.push_str(core::str::from_utf8(&taken).unwrap());
        }
        out.push_str(&drained(&mut queue));
        assert_eq!(out, expected);
    }

    #[test]
    fn a_line_without_room_is_lost_whole_and_a_warning_stands_in_its_place() {
        let mut queue = ConsoleQueue::<64>::new();
        assert!(queue.push(format_args!("{}\n", "a".repeat(40))));
        // 40 + 2 bytes wait; this line needs 31 + 2.
        assert!(!queue.push(format_args!("{}\n", "b".repeat(31))));
        assert!(!queue.push(format_args!("{}\n", "c".repeat(29))));
        assert_eq!(
            queue.lost(),
            Lost {
                lines: 2,
                bytes: 62
            }
        );
        // Nothing of the lost lines went in.
        assert_eq!(queue.pending(), 42);
        let first = drained(&mut queue);
        assert_eq!(first, alloc::format!("{}\r\n", "a".repeat(40)));

        // The next line goes in behind the warning... once both fit.
        let mut roomy = ConsoleQueue::<256>::new();
        roomy.push(format_args!("{}\n", "a".repeat(200)));
        assert!(!roomy.push(format_args!("{}\n", "b".repeat(60))));
        roomy.drain(usize::MAX, |bytes| bytes.len());
        assert!(roomy.push(format_args!("moat: ready\n")));
        assert_eq!(roomy.lost(), Lost::default());
        assert_eq!(
            drained(&mut roomy),
            alloc::format!("{}moat: ready\r\n", warning(1, 61))
        );
    }

    #[test]
    fn a_warning_that_fits_without_its_line_waits_and_keeps_counting() {
        let warning_len = warning(1, 61).len();
        let mut queue = ConsoleQueue::<128>::new();
        assert!(warning_len < 128);
        queue.push(format_args!("{}\n", "a".repeat(100)));
        assert!(!queue.push(format_args!("{}\n", "b".repeat(60))));
        queue.drain(usize::MAX, |bytes| bytes.len());
        // The warning fits alone, not with a line this long: neither goes in.
        let long = "c".repeat(128 - warning_len);
        assert!(!queue.push(format_args!("{long}\n")));
        assert_eq!(queue.pending(), 0);
        assert_eq!(
            queue.lost(),
            Lost {
                lines: 2,
                bytes: 61 + long.len() as u64 + 1
            }
        );
        assert!(queue.push(format_args!("ok\n")));
        assert_eq!(
            drained(&mut queue),
            alloc::format!("{}ok\r\n", warning(2, 61 + long.len() as u64 + 1))
        );
    }

    #[test]
    fn a_port_that_takes_bytes_makes_room_and_nothing_is_lost() {
        let mut queue = ConsoleQueue::<64>::new();
        let mut out = String::new();
        for i in 0..20 {
            // A port with a 16-byte FIFO.
            let mut freed = 0;
            let went_in = queue.push_making_room(
                format_args!("stats rule {i} {}\n", "x".repeat(20)),
                |queue| {
                    let taken = queue.drain(16, |bytes| {
                        out.push_str(core::str::from_utf8(bytes).unwrap());
                        bytes.len()
                    });
                    freed += taken;
                    taken
                },
            );
            assert!(went_in, "line {i}");
            // About the line's room was made (36 bytes at most), not the whole queue's.
            assert!(
                freed < 36 + 16,
                "line {i}: {freed} bytes drained to make room"
            );
        }
        out.push_str(&drained(&mut queue));
        let expected: String = (0..20)
            .map(|i| alloc::format!("stats rule {i} {}\r\n", "x".repeat(20)))
            .collect();
        assert_eq!(out, expected);
        assert_eq!(queue.lost(), Lost::default());
    }

    #[test]
    fn a_port_that_takes_nothing_makes_no_room() {
        let mut queue = ConsoleQueue::<64>::new();
        assert!(queue.push(format_args!("{}\n", "a".repeat(50))));
        let mut asked = 0;
        assert!(
            !queue.push_making_room(format_args!("{}\n", "b".repeat(20)), |queue| {
                asked += 1;
                queue.drain(usize::MAX, |_| 0)
            })
        );
        assert_eq!(asked, 1);
        assert_eq!(
            queue.lost(),
            Lost {
                lines: 1,
                bytes: 21
            }
        );
    }

    #[test]
    fn the_warning_goes_in_on_its_own_once_it_fits() {
        let mut queue = ConsoleQueue::<160>::new();
        queue.push(format_args!("{}\n", "a".repeat(100)));
        assert!(!queue.push(format_args!("{}\n", "b".repeat(60))));
        // No room yet: nothing changes.
        assert!(!queue.report_lost());
        assert_eq!(
            queue.lost(),
            Lost {
                lines: 1,
                bytes: 61
            }
        );
        queue.drain(usize::MAX, |bytes| bytes.len());
        assert!(queue.report_lost());
        assert_eq!(queue.lost(), Lost::default());
        // Reported once.
        assert!(!queue.report_lost());
        assert!(queue.push(format_args!("next\n")));
        assert_eq!(
            drained(&mut queue),
            alloc::format!("{}next\r\n", warning(1, 61))
        );
    }

    #[test]
    fn retries_back_off_while_blocked_and_start_over_once_the_console_moves() {
        let mut delay = RetryDelay::new(Duration::from_millis(10), Duration::from_millis(1000));
        let waits: Vec<u64> = (0..9).map(|_| delay.blocked().total_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        delay.moved();
        assert_eq!(delay.blocked(), Duration::from_millis(10));
        assert_eq!(delay.blocked(), Duration::from_millis(20));
    }

    #[test]
    fn a_line_longer_than_the_ring_is_lost_never_cut() {
        let mut queue = ConsoleQueue::<16>::new();
        assert!(!queue.push(format_args!("{}\n", "z".repeat(40))));
        assert_eq!(queue.pending(), 0);
        assert_eq!(
            queue.lost(),
            Lost {
                lines: 1,
                bytes: 41
            }
        );
    }
}
