//! [`PacketDesc`]: one packet on its way through the appliance, parsed once and handed to
//! every stage — OpenBSD pf's `struct pf_pdesc`.
//!
//! The receive path fills it in once: where and when the frame arrived, how it was
//! addressed on the link, and the network layer parsed and validated
//! ([`IpSummary::parse`]). No stage parses the frame again or re-derives what an earlier
//! stage knew; the summary is kept in step with every rewrite, and the stages record their
//! decisions in the descriptor's [`Trace`].
//!
//! The frame's offload metadata ([`Offload`]: a partial checksum, a super-frame's GSO type
//! and segment size) travels next to it, checked once at the start of the path; the
//! transmit stage keeps it, keeps the partial checksum in step with NAT, and hands it to
//! the egress NIC or finishes the packet in software.
//!
//! Room to grow, without changing a stage's signature: IPv6 turns `ip` into a choice of
//! two summaries (the stages that need addresses and ports already go through
//! [`FlowTuple`] and [`FlowKey`]).

use core::fmt;

use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpProtocol, Ipv4Cidr, ETHERNET_HEADER_LEN};

use super::trace::RedirectKind;
use super::trace::Trace;
use crate::offload::Offload;
use crate::packet::{IpSummary, Transport};
use crate::policy::{ip_to_flow_addr, FlowKey, REDIRECT_DNS, REDIRECT_FORWARD, REDIRECT_NONE};
use crate::rewrite::TransportChecksum;
use crate::sctp;
use crate::state::{Endpoint, FlowTuple};

/// One received IP packet (IPv4 or IPv6) and what is known about it. See the module
/// documentation.
pub(super) struct PacketDesc<'f, 't> {
    /// The NIC it arrived on.
    pub nic: u8,
    /// When it arrived.
    pub now: Instant,
    /// Its Ethernet source: the sender, or the router that forwarded it.
    pub sender_mac: EthernetAddress,
    /// Whether its Ethernet destination was a broadcast or multicast address.
    pub link_broadcast: bool,
    /// The appliance's address and connected network on the ingress NIC as the packet
    /// arrived (`None` before DHCP has configured it).
    pub ingress: Option<Ipv4Cidr>,
    /// The IP packet, parsed and validated, kept in step with every rewrite.
    pub ip: IpSummary,
    /// The frame's offload metadata (plain for most frames).
    pub offload: Offload,
    /// The whole Ethernet frame; forwarding rewrites it in place.
    pub frame: &'f mut [u8],
    /// What the stages decided, for [`super::Appliance::receive_traced`].
    pub trace: &'t mut Trace,
}

impl PacketDesc<'_, '_> {
    /// The IP packet's bytes (from its header, without Ethernet padding).
    pub fn packet(&self) -> &[u8] {
        &self.frame[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + self.ip.total_len]
    }

    /// How the packet's TCP or UDP checksum stands (partial under checksum offload).
    pub fn transport_checksum(&self) -> TransportChecksum {
        match self.offload.partial_checksum {
            Some(_) => TransportChecksum::Partial,
            None => TransportChecksum::Complete,
        }
    }

    /// The flow the packet opens or belongs to, `None` for packets that cannot be tracked by
    /// themselves (later fragments, ICMP errors).
    pub fn flow(&self) -> Option<FlowTuple> {
        FlowTuple::of(&self.ip)
    }

    /// The policy's view of `flow` (this packet's flow, after destination NAT) leaving
    /// through `out` (a NIC, or [`OUT_SELF`](crate::policy::OUT_SELF)): ports only for
    /// TCP, UDP and SCTP, ICMP type and code only for ICMP, and which destination NAT
    /// rewrote it (the trace's redirect, recorded before the policy is asked).
    pub fn flow_key(&self, out: u8, flow: &FlowTuple) -> FlowKey {
        let (src_port, dst_port) = match flow.protocol {
            IpProtocol::Tcp | IpProtocol::Udp | sctp::PROTOCOL => (flow.src_port, flow.dst_port),
            _ => (0, 0),
        };
        let (icmp_type, icmp_code) = self.ip.icmp_type_code();
        FlowKey {
            in_nic: self.nic,
            out,
            protocol: flow.protocol.into(),
            src: ip_to_flow_addr(flow.src),
            dst: ip_to_flow_addr(flow.dst),
            src_port,
            dst_port,
            icmp_type,
            icmp_code,
            redirect: match self.trace.redirect.map(|r| r.kind) {
                None => REDIRECT_NONE,
                Some(RedirectKind::PortForward) => REDIRECT_FORWARD,
                Some(RedirectKind::Dns) => REDIRECT_DNS,
            },
        }
    }

    /// The packet as it arrived, for log lines.
    pub fn described(&self) -> Described<'_> {
        Described(&self.ip)
    }
}

/// A packet for log lines: protocol, addresses, ports or ICMP type.
pub(super) struct Described<'a>(pub &'a IpSummary);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let s = self.0;
        let protocol = u8::from(s.protocol);
        match s.transport {
            Transport::Tcp(t) => write!(
                f,
                "tcp {} -> {}",
                Endpoint(s.src, t.src_port),
                Endpoint(s.dst, t.dst_port)
            ),
            Transport::Udp { src_port, dst_port } => {
                let (src, dst) = (Endpoint(s.src, src_port), Endpoint(s.dst, dst_port));
                write!(f, "udp {src} -> {dst}")
            }
            Transport::Sctp { src_port, dst_port } => {
                let (src, dst) = (Endpoint(s.src, src_port), Endpoint(s.dst, dst_port));
                write!(f, "sctp {src} -> {dst}")
            }
            Transport::Icmp(_) => {
                let (ty, code) = s.icmp_type_code();
                let icmp = if s.is_ipv6() { "icmp6" } else { "icmp" };
                write!(f, "{icmp} {} -> {} type {ty} code {code}", s.src, s.dst)
            }
            Transport::NonFirstFragment => {
                write!(f, "proto {protocol} {} -> {} fragment", s.src, s.dst)
            }
            Transport::Other => write!(f, "proto {protocol} {} -> {}", s.src, s.dst),
        }
    }
}
