//! The appliance's own IP stack: one smoltcp `Interface` per NIC, for traffic addressed to
//! the appliance itself — ICMP echo and ARP for its own address, and the DHCP client on an
//! interface the ruleset configures with `dhcp`.
//!
//! The data plane decides what reaches it (the policy governs `to self`); smoltcp sees
//! whole Ethernet frames and writes its answers straight into the [`FrameSink`], with no
//! copy or allocation: [`SinkDevice`] lends it the inbound frame and the sink for one poll.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::dhcpv4;
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

/// A change of the NIC's addressing learned by DHCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhcpChange {
    /// A lease was obtained or its parameters changed.
    Configured {
        /// Address and network.
        address: Ipv4Cidr,
        /// Default gateway, if the server named one.
        router: Option<Ipv4Address>,
        /// DNS servers the server named.
        dns_servers: Vec<Ipv4Address>,
    },
    /// The lease was lost.
    Deconfigured,
}

/// The local stack of one NIC.
pub struct LocalStack {
    nic: u8,
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
}

impl LocalStack {
    /// A stack for NIC `nic` with MAC `mac`, static `address` (if any) and a default route
    /// via `gateway` (if any), or a DHCP client when `dhcp` is set.
    pub fn new(
        nic: u8,
        mac: EthernetAddress,
        address: Option<Ipv4Cidr>,
        gateway: Option<Ipv4Address>,
        dhcp: bool,
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
            dhcp: None,
        };
        stack.set_address(address, gateway);
        if dhcp {
            stack.dhcp = Some(stack.sockets.add(dhcpv4::Socket::new()));
        }
        stack
    }

    /// Replaces the stack's address and default route.
    pub fn set_address(&mut self, address: Option<Ipv4Cidr>, gateway: Option<Ipv4Address>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            if let Some(cidr) = address {
                let _ = addrs.push(IpCidr::Ipv4(cidr));
            }
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = gateway {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
    }

    /// Hands the stack one Ethernet frame addressed to the appliance and lets it answer.
    /// Returns a DHCP change if the frame completed one.
    pub fn deliver(
        &mut self,
        frame: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Option<DhcpChange> {
        let mut device = SinkDevice {
            nic: self.nic,
            inbound: Some(frame),
            sink,
        };
        self.iface.poll(now, &mut device, &mut self.sockets);
        self.dhcp_event()
    }

    /// Runs timers (ARP and DHCP retransmissions, lease renewal) without input.
    pub fn poll(&mut self, now: Instant, sink: &mut dyn FrameSink) -> Option<DhcpChange> {
        let mut device = SinkDevice {
            nic: self.nic,
            inbound: None,
            sink,
        };
        self.iface.poll(now, &mut device, &mut self.sockets);
        self.dhcp_event()
    }

    /// How long until the stack next needs [`LocalStack::poll`].
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        self.iface.poll_delay(now, &self.sockets)
    }

    /// Whether this stack runs a DHCP client.
    pub fn runs_dhcp(&self) -> bool {
        self.dhcp.is_some()
    }

    fn dhcp_event(&mut self) -> Option<DhcpChange> {
        let handle = self.dhcp?;
        let change = match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll()? {
            dhcpv4::Event::Configured(config) => DhcpChange::Configured {
                address: config.address,
                router: config.router,
                dns_servers: config.dns_servers.iter().copied().collect(),
            },
            dhcpv4::Event::Deconfigured => DhcpChange::Deconfigured,
        };
        match &change {
            DhcpChange::Configured {
                address, router, ..
            } => self.set_address(Some(*address), *router),
            DhcpChange::Deconfigured => self.set_address(None, None),
        }
        Some(change)
    }
}
