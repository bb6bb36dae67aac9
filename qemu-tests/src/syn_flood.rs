//! A bounded SYN flood, sent from inside a client's namespace through a raw socket: `count`
//! TCP SYNs from the client's own address (anti-spoofing would drop anything else before it
//! reached the state table) to one destination, each from another source port with another
//! initial sequence number, so that each opens a new flow in the appliance's state table.
//!
//! The flood is paced in bursts so a slow emulated appliance sees a sustained stream rather
//! than one burst that overflows the tap's queue, and it ends by itself: it only ever sends
//! `count` packets, to a test host's own address.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::netns::in_namespace;
use crate::Outcome;
use dataplane::testutil::datagram::{Ipv4Datagram, Ipv4Header, TcpSegment, Transport};

/// The first source port used; ports then count up, wrapping within the dynamic range.
const FIRST_PORT: u16 = 20_000;

/// A flood to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynFlood {
    /// The sending client's own address.
    pub source: Ipv4Addr,
    /// Where the SYNs go.
    pub target: SocketAddrV4,
    /// How many SYNs.
    pub count: u32,
    /// SYNs per burst.
    pub burst: u32,
    /// Pause between bursts.
    pub pause: Duration,
}

/// What was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodReport {
    /// SYNs the kernel accepted for sending.
    pub sent: u32,
    /// How long sending took.
    pub elapsed: Duration,
}

impl SynFlood {
    /// The `index`th SYN: its own source port and sequence number.
    pub fn syn(&self, index: u32) -> Ipv4Datagram {
        let port = FIRST_PORT + (index % u32::from(u16::MAX - FIRST_PORT)) as u16;
        // A multiplicative hash spreads the sequence numbers (Knuth's constant).
        let seq = index.wrapping_mul(2_654_435_761);
        Ipv4Datagram {
            header: Ipv4Header {
                src: self.source,
                dst: *self.target.ip(),
                ttl: 64,
                ident: index as u16,
                dont_fragment: true,
            },
            transport: Transport::Tcp(TcpSegment::syn(port, self.target.port(), seq)),
        }
    }

    /// Sends the flood from inside network namespace `namespace` (the client's).
    pub fn send_from(&self, namespace: &str) -> Outcome<FloodReport> {
        in_namespace(namespace, || self.send_here())
    }

    fn send_here(&self) -> io::Result<FloodReport> {
        let socket = raw_socket()?;
        let destination = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(*self.target.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let started = Instant::now();
        let mut sent = 0;
        for index in 0..self.count {
            if index > 0 && index % self.burst.max(1) == 0 {
                std::thread::sleep(self.pause);
            }
            let packet = self.syn(index).emit();
            // SAFETY: `socket` is an open raw socket; `packet` and `destination` are live for
            // the call and their lengths are passed with them; sendto(2) only reads them.
            let result = unsafe {
                libc::sendto(
                    socket.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    (&destination as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            if result < 0 {
                let error = io::Error::last_os_error();
                // The interface's queue is full: that SYN is lost, as on a real wire.
                if error.raw_os_error() == Some(libc::ENOBUFS) {
                    continue;
                }
                return Err(error);
            }
            sent += 1;
        }
        Ok(FloodReport {
            sent,
            elapsed: started.elapsed(),
        })
    }
}

/// A raw IPv4 socket for which the caller writes the IP header (`IPPROTO_RAW` implies
/// `IP_HDRINCL`).
fn raw_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; its result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flood() -> SynFlood {
        SynFlood {
            source: Ipv4Addr::new(10, 137, 2, 2),
            target: "198.51.100.80:9".parse().unwrap(),
            count: 100_000,
            burst: 100,
            pause: Duration::from_millis(1),
        }
    }

    #[test]
    fn each_syn_is_a_new_flow_from_the_clients_own_address() {
        let flood = flood();
        let mut tuples = std::collections::HashSet::new();
        for index in 0..40_000 {
            let syn = flood.syn(index);
            assert_eq!(syn.header.src, flood.source);
            let tcp = syn.tcp().unwrap();
            assert!(tcp.flags.syn && !tcp.flags.ack);
            assert_eq!(tcp.dst_port, 9);
            assert!(
                tuples.insert((tcp.src_port, tcp.seq)),
                "SYN {index} repeats a flow"
            );
        }
        // Every SYN is a well-formed packet with correct checksums.
        assert_eq!(Ipv4Datagram::parse(&flood.syn(7).emit()), Ok(flood.syn(7)));
    }
}
