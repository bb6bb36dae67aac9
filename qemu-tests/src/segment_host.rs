//! A simulated host on one NIC's segment, rootless: it owns the test end of the NIC's unix
//! datagram socket pair and sends and receives raw Ethernet frames. Like a real host it
//! answers the appliance's ARP requests for its own address while it waits for a reply.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use smoltcp::wire::{ArpOperation, ArpRepr, EthernetAddress, EthernetRepr, Ipv4Address, Ipv4Repr};

use crate::{Failure, Outcome};
use dataplane::testutil::datagram::describe_frame;
use dataplane::testutil::link::{
    arp_reply, arp_request, echo_request, inspect, is_neighbour_discovery, Echo, Inbound, Station,
};

/// Largest frame QEMU delivers on a dgram netdev (jumbo frames are not used).
const MAX_FRAME: usize = 65_536;

/// The test's end of one NIC.
pub struct SegmentHost {
    socket: UnixDatagram,
    vm_socket: PathBuf,
    /// `i` of `nic<i>`.
    pub nic: usize,
    /// This host's MAC and IPv4 address.
    pub station: Station,
}

/// The appliance's answer to an ARP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpAnswer {
    /// Ethernet header of the reply.
    pub ethernet: EthernetRepr,
    /// The ARP reply.
    pub arp: ArpRepr,
}

/// The appliance's answer to an echo request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoAnswer {
    /// Ethernet header of the reply.
    pub ethernet: EthernetRepr,
    /// IPv4 header of the reply.
    pub ip: Ipv4Repr,
    /// The echo reply.
    pub echo: Echo,
}

impl SegmentHost {
    /// Binds the test end (`host_socket`) of the pair whose other end QEMU binds (`vm_socket`).
    pub fn bind(
        nic: usize,
        station: Station,
        host_socket: &Path,
        vm_socket: &Path,
    ) -> Outcome<SegmentHost> {
        let socket = UnixDatagram::bind(host_socket).map_err(|error| {
            Failure::new(format!(
                "nic{nic}: binding {}: {error}",
                host_socket.display()
            ))
        })?;
        Ok(SegmentHost {
            socket,
            vm_socket: vm_socket.to_path_buf(),
            nic,
            station,
        })
    }

    /// Sends one frame to the appliance.
    pub fn send(&self, frame: &[u8]) -> Outcome {
        self.socket
            .send_to(frame, &self.vm_socket)
            .map(|_| ())
            .map_err(|error| {
                Failure::new(format!("nic{}: sending a frame to QEMU: {error}", self.nic))
            })
    }

    /// Sends one frame, waiting at most `timeout` for QEMU to make room for it (QEMU stops
    /// reading while the appliance's receive ring is full). `false` if it did not.
    pub fn send_within(&self, frame: &[u8], timeout: Duration) -> Outcome<bool> {
        self.socket
            .set_write_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(|error| Failure::new(format!("nic{}: {error}", self.nic)))?;
        match self.socket.send_to(frame, &self.vm_socket) {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(Failure::new(format!(
                    "nic{}: QEMU is gone (the VM ended: a watchdog reset under -no-reboot, or a crash)",
                    self.nic
                )))
            }
            Err(error) => Err(Failure::new(format!(
                "nic{}: sending a frame to QEMU: {error}",
                self.nic
            ))),
        }
    }

    /// Receives one frame, or `None` once `deadline` has passed.
    pub fn receive(&self, deadline: Instant) -> Outcome<Option<Vec<u8>>> {
        let mut buffer = vec![0u8; MAX_FRAME];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.socket
                .set_read_timeout(Some(wait))
                .map_err(|error| Failure::new(format!("nic{}: {error}", self.nic)))?;
            match self.socket.recv(&mut buffer) {
                Ok(length) => return Ok(Some(buffer[..length].to_vec())),
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(Failure::new(format!("nic{}: receiving: {error}", self.nic)))
                }
            }
        }
    }

    /// Asks who has `target` and waits for the answer.
    pub fn resolve(&self, target: Ipv4Address, timeout: Duration) -> Outcome<ArpAnswer> {
        let what = format!("an ARP reply for {target}");
        self.send(&arp_request(self.station, target))?;
        let awaited =
            self.await_frame(&what, timeout, |_, inbound| arp_reply_from(inbound, target))?;
        awaited.map_err(|instead| self.nothing_within(&what, timeout, &instead))
    }

    /// Asks who has `target`; `None` if nothing answers within `timeout`.
    pub fn try_resolve(
        &self,
        target: Ipv4Address,
        timeout: Duration,
    ) -> Outcome<Option<ArpAnswer>> {
        self.send(&arp_request(self.station, target))?;
        let awaited = self.await_frame(
            &format!("an ARP reply for {target}"),
            timeout,
            |_, inbound| arp_reply_from(inbound, target),
        )?;
        Ok(awaited.ok())
    }

    /// Sends an echo request to `appliance` and waits for the reply with the same identifier.
    pub fn ping(&self, appliance: Station, echo: &Echo, timeout: Duration) -> Outcome<EchoAnswer> {
        self.send(&echo_request(self.station, appliance, echo))?;
        let what = format!(
            "an echo reply from {} (ident {}, seq {})",
            appliance.ip, echo.ident, echo.seq_no
        );
        let awaited = self.await_frame(&what, timeout, |_, inbound| match inbound {
            Inbound::EchoReply {
                ethernet,
                ip,
                echo: reply,
            } if reply.ident == echo.ident && reply.seq_no == echo.seq_no => Some(EchoAnswer {
                ethernet: *ethernet,
                ip: *ip,
                echo: reply.clone(),
            }),
            _ => None,
        })?;
        awaited.map_err(|instead| self.nothing_within(&what, timeout, &instead))
    }

    /// Waits for a frame that `wanted` picks from its bytes (answering the appliance's ARP
    /// requests for this host meanwhile); fails after `timeout` naming `what` was awaited and
    /// listing the frames that came instead.
    pub fn await_frame_where<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut wanted: impl FnMut(&[u8]) -> Option<T>,
    ) -> Outcome<T> {
        let awaited = self.await_frame(what, timeout, |bytes, _| wanted(bytes))?;
        awaited.map_err(|instead| self.nothing_within(what, timeout, &instead))
    }

    /// Every frame but ARP and IPv6 neighbour discovery that arrives within `window` (the
    /// appliance's ARP requests for this host are answered meanwhile, as a real host would;
    /// its neighbour discovery is its own, unasked: see [`is_neighbour_discovery`]).
    pub fn frames_within(&self, window: Duration) -> Outcome<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        // Nothing is awaited: the wait always runs to the end of the window.
        let _ = self.await_frame("the end of the window", window, |bytes, inbound| {
            if !matches!(inbound, Inbound::Arp { .. }) && !is_neighbour_discovery(bytes) {
                frames.push(bytes.to_vec());
            }
            None::<()>
        })?;
        Ok(frames)
    }

    fn nothing_within(&self, what: &str, timeout: Duration, instead: &[String]) -> Failure {
        Failure::new(format!(
            "nic{}: {what} did not arrive within {:.0} s; received instead: {}",
            self.nic,
            timeout.as_secs_f64(),
            if instead.is_empty() {
                "nothing".to_string()
            } else {
                instead.join("; ")
            }
        ))
    }

    /// Reads frames until `wanted` picks one (it sees the bytes and their classification),
    /// answering the appliance's ARP requests for this host meanwhile. On timeout:
    /// `Ok(Err(frames that arrived instead))`. A malformed frame fails at once.
    fn await_frame<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut wanted: impl FnMut(&[u8], &Inbound) -> Option<T>,
    ) -> Outcome<Result<T, Vec<String>>> {
        let deadline = Instant::now() + timeout;
        let mut unexpected = Vec::new();
        while let Some(bytes) = self.receive(deadline)? {
            let inbound = inspect(&bytes);
            if let Some(found) = wanted(&bytes, &inbound) {
                return Ok(Ok(found));
            }
            match &inbound {
                Inbound::Arp { arp, .. } if self.is_asked_for(arp) => {
                    let ArpRepr::EthernetIpv4 {
                        source_hardware_addr,
                        source_protocol_addr,
                        ..
                    } = *arp
                    else {
                        continue;
                    };
                    let asker = Station {
                        mac: source_hardware_addr,
                        ip: source_protocol_addr,
                    };
                    self.send(&arp_reply(self.station, asker))?;
                }
                Inbound::Malformed(reason) => {
                    return Err(Failure::new(format!(
                        "nic{}: while waiting for {what}, received a bad frame: {reason}",
                        self.nic
                    )))
                }
                Inbound::Other(_) => unexpected.push(describe_frame(&bytes)),
                other => unexpected.push(format!("{other:?}")),
            }
        }
        Ok(Err(unexpected))
    }

    fn is_asked_for(&self, arp: &ArpRepr) -> bool {
        let ArpRepr::EthernetIpv4 {
            operation,
            target_protocol_addr,
            ..
        } = *arp
        else {
            return false;
        };
        operation == ArpOperation::Request && target_protocol_addr == self.station.ip
    }
}

fn arp_reply_from(inbound: &Inbound, target: Ipv4Address) -> Option<ArpAnswer> {
    let Inbound::Arp { ethernet, arp } = inbound else {
        return None;
    };
    let ArpRepr::EthernetIpv4 {
        operation,
        source_protocol_addr,
        ..
    } = *arp
    else {
        return None;
    };
    (operation == ArpOperation::Reply && source_protocol_addr == target).then_some(ArpAnswer {
        ethernet: *ethernet,
        arp: *arp,
    })
}

/// The appliance's station on a NIC: its MAC and address.
pub fn appliance_station(mac: image::qemu::MacAddress, ip: Ipv4Address) -> Station {
    Station {
        mac: EthernetAddress(mac.0),
        ip,
    }
}
