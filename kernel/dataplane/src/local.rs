//! The appliance's own IP stack: one smoltcp `Interface` per NIC, for traffic addressed to
//! the appliance itself — ICMP echo and ARP for its own address. (The DHCP client of an
//! interface the ruleset configures with `dhcp` is [`crate::dhcp`], run by the appliance.)
//!
//! The data plane decides what reaches it (the policy governs `to self`); smoltcp sees
//! whole Ethernet frames and writes its answers straight into the [`FrameSink`], with no
//! copy or allocation: [`SinkDevice`] lends it the inbound frame and the sink for one poll.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use crate::sink::FrameSink;

/// The device smoltcp polls: at most one inbound frame, and the sink for its output.
struct SinkDevice<'a> {
    nic: u8,
    inbound: Option<&'a [u8]>,
    sink: &'a mut dyn FrameSink,
}

/// Receive token lending smoltcp one frame.
struct FrameRx<'a>(&'a [u8]);
/// Transmit token writing one frame into the sink.
struct FrameTx<'a> {
    nic: u8,
    sink: &'a mut dyn FrameSink,
}

impl RxToken for FrameRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl TxToken for FrameTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut result = None;
        let mut f = Some(f);
        let sent = self.sink.transmit(self.nic, len, &mut |out| {
            if let Some(f) = f.take() {
                result = Some(f(out));
            }
        });
        match result {
            Some(r) => r,
            // The sink dropped the frame without building it: let smoltcp build it into a
            // scratch buffer so it still gets its result (the frame is lost, as on a full ring).
            None => {
                debug_assert!(!sent);
                let mut scratch = vec![0u8; len];
                match f.take() {
                    Some(f) => f(&mut scratch),
                    None => unreachable_result(),
                }
            }
        }
    }
}

#[cold]
fn unreachable_result<R>() -> R {
    // `f` is taken exactly once above: either inside the sink's fill or in the fallback.
    panic!("smoltcp transmit closure consumed twice")
}

impl<'a> Device for SinkDevice<'a> {
    type RxToken<'b>
        = FrameRx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = FrameTx<'b>
    where
        Self: 'b;

    fn receive(&mut self, _timestamp: Instant) -> Option<(FrameRx<'_>, FrameTx<'_>)> {
        let frame = self.inbound.take()?;
        Some((
            FrameRx(frame),
            FrameTx {
                nic: self.nic,
                sink: &mut *self.sink,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<FrameTx<'_>> {
        Some(FrameTx {
            nic: self.nic,
            sink: &mut *self.sink,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// The local stack of one NIC.
pub struct LocalStack {
    nic: u8,
    iface: Interface,
    sockets: SocketSet<'static>,
}

impl LocalStack {
    /// A stack for NIC `nic` with MAC `mac`, `address` (if any) and a default route via
    /// `gateway` (if any).
    pub fn new(
        nic: u8,
        mac: EthernetAddress,
        address: Option<Ipv4Cidr>,
        gateway: Option<Ipv4Address>,
        seed: u64,
        now: Instant,
    ) -> LocalStack {
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = seed;
        let mut null = crate::sink::NullSink;
        let mut device = SinkDevice {
            nic,
            inbound: None,
            sink: &mut null,
        };
        let iface = Interface::new(config, &mut device, now);
        let mut stack = LocalStack {
            nic,
            iface,
            sockets: SocketSet::new(Vec::new()),
        };
        stack.set_address(address, gateway);
        stack
    }

    /// Replaces the stack's address and default route (this also empties its ARP cache).
    /// On a point-to-point link (a /32, as Qubes wires a qube) the stack takes every
    /// address as on-link: the client at the other end has an address of its own, which
    /// the stack must answer (ARP and ping) without a route to it. Only packets the data
    /// plane delivers reach the stack, from sources anti-spoofing admitted on the link.
    pub fn set_address(&mut self, address: Option<Ipv4Cidr>, gateway: Option<Ipv4Address>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            if let Some(cidr) = address {
                let on_link = match cidr.prefix_len() {
                    32 => Ipv4Cidr::new(cidr.address(), 0),
                    _ => cidr,
                };
                let _ = addrs.push(IpCidr::Ipv4(on_link));
            }
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = gateway {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
    }

    /// Hands the stack one Ethernet frame addressed to the appliance and lets it answer.
    pub fn deliver(&mut self, frame: &[u8], now: Instant, sink: &mut dyn FrameSink) {
        let mut device = SinkDevice {
            nic: self.nic,
            inbound: Some(frame),
            sink,
        };
        self.iface.poll(now, &mut device, &mut self.sockets);
    }

    /// Runs timers (ARP retransmissions) without input.
    pub fn poll(&mut self, now: Instant, sink: &mut dyn FrameSink) {
        let mut device = SinkDevice {
            nic: self.nic,
            inbound: None,
            sink,
        };
        self.iface.poll(now, &mut device, &mut self.sockets);
    }

    /// How long until the stack next needs [`LocalStack::poll`].
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        self.iface.poll_delay(now, &self.sockets)
    }
}
