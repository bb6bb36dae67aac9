//! Puts frames on a test host's link as fast as this machine can: an `AF_PACKET` socket
//! bound to the host's tap inside its namespace, past the queueing discipline
//! (`PACKET_QDISC_BYPASS`), frames handed to the kernel in batches of [`BATCH`] with one
//! sendmmsg(2) each. The tap queues what QEMU has not read yet and drops what does not fit,
//! as a real wire would (see [`crate::link_stats`] for what got through).
//!
//! It sends for a set time, as fast as it can or paced to a rate (a
//! moderate flood gives the appliance time to go idle between frames, which exercises
//! other paths than saturation does), and says how many frames it put on the link: the
//! offered rate.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::flood::MAX_FLOOD_FRAME;
use crate::netns::in_namespace;
use crate::Outcome;

/// Frames per sendmmsg(2) call.
pub const BATCH: usize = 64;

/// How long a paced sender sleeps when no frame is due yet.
const PACING_SLEEP: Duration = Duration::from_micros(50);

/// What a sender did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendReport {
    /// Frames the link took.
    pub sent: u64,
    /// Frames the link refused because its queue was full (lost, as on a wire).
    pub refused: u64,
    /// How long it sent.
    pub elapsed: Duration,
    /// The index after the last frame it wrote: where the next flood should start for its
    /// frames to be new.
    pub next: u64,
}

impl SendReport {
    /// Frames put on the link (accepted or refused) per second: the offered rate.
    pub fn packets_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            (self.sent + self.refused) as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Where and for how long to send.
#[derive(Debug, Clone, Copy)]
pub struct Blast<'a> {
    /// The sending host's namespace.
    pub namespace: &'a str,
    /// Its link device (the tap), by name.
    pub interface: &'a str,
    /// The index of the first frame; frame `first + n` is the `n`th sent.
    pub first: u64,
    /// How long it sends.
    pub duration: Duration,
    /// Frames per second to offer; `None` for as many as this host can.
    pub rate: Option<u64>,
}

impl Blast<'_> {
    /// Sends the frames `frame(index, buffer) -> length` writes until the time is up.
    pub fn send(
        &self,
        frame: impl Fn(u64, &mut [u8; MAX_FLOOD_FRAME]) -> usize + Send + Sync,
    ) -> Outcome<SendReport> {
        in_namespace(self.namespace, || self.send_here(&frame))
    }

    fn send_here(
        &self,
        frame: &(impl Fn(u64, &mut [u8; MAX_FLOOD_FRAME]) -> usize + Sync),
    ) -> io::Result<SendReport> {
        let socket = packet_socket(self.interface)?;
        let mut buffers = vec![[0u8; MAX_FLOOD_FRAME]; BATCH];
        let mut iovecs: Vec<libc::iovec> = buffers
            .iter_mut()
            .map(|buffer| libc::iovec {
                iov_base: buffer.as_mut_ptr().cast(),
                iov_len: 0,
            })
            .collect();
        let mut messages: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .map(|iovec| {
                // SAFETY: mmsghdr is plain data (pointers and integers); all-zero is a valid
                // value: no name, no control data.
                let mut message: libc::mmsghdr = unsafe { std::mem::zeroed() };
                message.msg_hdr.msg_iov = iovec;
                message.msg_hdr.msg_iovlen = 1;
                message
            })
            .collect();
        let started = Instant::now();
        let (mut sent, mut refused, mut index) = (0u64, 0u64, self.first);
        while started.elapsed() < self.duration {
            let count = match self.rate {
                None => BATCH,
                Some(rate) => {
                    let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
                    let count = due.saturating_sub(index - self.first).min(BATCH as u64) as usize;
                    if count == 0 {
                        std::thread::sleep(PACING_SLEEP);
                        continue;
                    }
                    count
                }
            };
            for (slot, message) in messages.iter_mut().enumerate().take(count) {
                let length = frame(index + slot as u64, &mut buffers[slot]);
                // SAFETY: msg_iov points at iovecs[slot], which lives (unmoved) as long as
                // `messages`; only its length is updated, to the frame just written.
                unsafe { (*message.msg_hdr.msg_iov).iov_len = length };
            }
            index += count as u64;
            // sendmmsg(2) stops at the first frame the link refuses (the tap's queue is full:
            // that frame is lost, as on a wire) and returns how many went before it; the rest
            // of the batch is then sent on.
            let mut position = 0;
            while position < count {
                // SAFETY: `messages[position..]` are initialised headers, each pointing at
                // one iovec that points into `buffers`; all outlive the call, and
                // sendmmsg(2) only reads the frames and writes each header's msg_len.
                let result = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        messages[position..].as_mut_ptr(),
                        (count - position) as libc::c_uint,
                        0,
                    )
                };
                if result < 0 {
                    let error = io::Error::last_os_error();
                    if !matches!(
                        error.raw_os_error(),
                        Some(libc::ENOBUFS) | Some(libc::EAGAIN)
                    ) {
                        return Err(error);
                    }
                    refused += 1;
                    position += 1;
                } else {
                    sent += result as u64;
                    position += result as usize;
                    if position < count {
                        refused += 1;
                        position += 1;
                    }
                }
            }
        }
        Ok(SendReport {
            sent,
            refused,
            elapsed: started.elapsed(),
            next: index,
        })
    }
}

/// An `AF_PACKET` socket that sends on `interface` (in this thread's namespace) without a
/// queueing discipline and receives nothing (protocol 0).
fn packet_socket(interface: &str) -> io::Result<OwnedFd> {
    let name = CString::new(interface)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // SAFETY: `name` is a NUL-terminated string that lives for the call.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {interface} in this namespace"),
        ));
    }
    // SAFETY: socket(2) takes no pointers; its result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is open, and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all-zero is valid before the fields are set.
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_ifindex = ifindex as i32;
    // SAFETY: `address` is a sockaddr_ll whose size is passed with it; bind(2) only reads it.
    let bound = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&address as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if bound != 0 {
        return Err(io::Error::last_os_error());
    }
    let bypass: libc::c_int = 1;
    // SAFETY: the option value is a c_int whose size is passed with it; setsockopt(2) only
    // reads it.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            (&bypass as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}
