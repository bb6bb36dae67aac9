//! The appliance's own IP stack: one smoltcp `Interface` per NIC (medium IP), for traffic
//! addressed to the appliance itself — ICMP echo today; the DHCP client and other services
//! plug in here as sockets.
//!
//! The data plane owns Ethernet and ARP (one neighbour table for forwarded and local
//! traffic), so smoltcp only sees and produces bare IP packets through [`PacketQueue`].

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr};

/// Most packets smoltcp may emit per poll before the data plane collects them.
const MAX_QUEUED_OUTPUT: usize = 32;

/// The "device" smoltcp talks to: one inbound packet at a time, a queue of outbound ones.
#[derive(Default)]
pub struct PacketQueue {
    inbound: Option<Vec<u8>>,
    outbound: VecDeque<Vec<u8>>,
}

/// Receive token handing smoltcp one packet.
pub struct PacketRx(Vec<u8>);
/// Transmit token collecting one packet from smoltcp.
pub struct PacketTx<'a>(&'a mut VecDeque<Vec<u8>>);

impl RxToken for PacketRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for PacketTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = alloc::vec![0u8; len];
        let result = f(&mut packet);
        if self.0.len() < MAX_QUEUED_OUTPUT {
            self.0.push_back(packet);
        }
        result
    }
}

impl Device for PacketQueue {
    type RxToken<'a> = PacketRx;
    type TxToken<'a> = PacketTx<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(PacketRx, PacketTx<'_>)> {
        let packet = self.inbound.take()?;
        Some((PacketRx(packet), PacketTx(&mut self.outbound)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<PacketTx<'_>> {
        Some(PacketTx(&mut self.outbound))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = 1500;
        caps
    }
}

/// The local stack of one NIC.
pub struct LocalStack {
    iface: Interface,
    sockets: SocketSet<'static>,
    queue: PacketQueue,
}

impl LocalStack {
    /// A stack with `address` (if any) and a default route via `gateway` (if any).
    pub fn new(address: Option<Ipv4Cidr>, gateway: Option<Ipv4Address>, seed: u64, now: Instant) -> LocalStack {
        let mut queue = PacketQueue::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let iface = Interface::new(config, &mut queue, now);
        let mut stack = LocalStack { iface, sockets: SocketSet::new(Vec::new()), queue };
        stack.set_address(address, gateway);
        stack
    }

    /// Replaces the stack's address and default route (e.g. after DHCP).
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

    /// Hands an inbound IP packet to the stack and runs it; the packets it answers with are
    /// collected with [`LocalStack::take_output`].
    pub fn deliver(&mut self, packet: &[u8], now: Instant) {
        self.queue.inbound = Some(packet.to_vec());
        self.iface.poll(now, &mut self.queue, &mut self.sockets);
        self.queue.inbound = None;
    }

    /// Runs timers (retransmissions, DHCP) without input.
    pub fn poll(&mut self, now: Instant) {
        self.iface.poll(now, &mut self.queue, &mut self.sockets);
    }

    /// How long until the stack next needs [`LocalStack::poll`].
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        self.iface.poll_delay(now, &self.sockets)
    }

    /// Takes the next IP packet the stack wants sent.
    pub fn take_output(&mut self) -> Option<Vec<u8>> {
        self.queue.outbound.pop_front()
    }
}
