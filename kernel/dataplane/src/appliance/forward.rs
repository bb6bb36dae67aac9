//! The paths of an IP packet, one stage per line: [`Appliance::forward_ipv4`] and
//! [`Appliance::forward_ipv6`] differ only in what comes before the shared stages
//! ([`Appliance::forward_ip`]): the IPv4 path serves the DHCP client of a NIC still without
//! an address; the IPv6 path hands neighbour discovery to its module and carries nothing
//! on a NIC without IPv6.

use smoltcp::wire::IpProtocol;

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::new_flow::{FirstPacket, Passed};
use super::trace::Fate;
use super::transmit::Plan;
use super::Appliance;
use crate::drops::DropReason;
use crate::fragment::FragmentKind;
use crate::ndp::NdOutcome;
use crate::packet::{IcmpSummary, Transport};
use crate::sink::FrameSink;
use crate::state::Lookup;

/// How a packet that goes on was placed.
enum Way {
    /// Like the rest of its flow (a state, or its first fragment): its plan is known.
    Known(Plan),
    /// The first packet of a flow the policy passed: its state is still to be created.
    New(Passed),
}

/// ICMPv6 types of neighbour discovery (RFC 4861): router solicitation and advertisement,
/// neighbour solicitation and advertisement, redirect.
const ND_TYPES: core::ops::RangeInclusive<u8> = 133..=137;
/// ICMPv6 types of multicast listener discovery (MLDv1 query/report/done, MLDv2 report).
const MLD_TYPES: [u8; 4] = [130, 131, 132, 143];

impl Appliance<'_> {
    /// The path of an IPv4 packet: a NIC without an address serves only its DHCP client.
    pub(super) fn forward_ipv4(
        &mut self,
        pd: &mut PacketDesc,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        self.check_offload(pd)?;
        if pd.ingress.is_none() {
            return self.before_lease(pd, sink);
        }
        if self.is_for_dhcp_server(pd) {
            return self.serve_dhcp(pd, sink);
        }
        self.forward_ip(pd, sink)
    }

    /// The path of an IPv6 packet: link-scoped control messages (neighbour discovery,
    /// multicast listener discovery) stay on the link; everything else takes the shared
    /// stages.
    pub(super) fn forward_ipv6(
        &mut self,
        pd: &mut PacketDesc,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        self.check_offload(pd)?;
        if !self.routes.ipv6().has_ipv6(pd.nic) {
            return Err(DropReason::NicUnconfigured.into());
        }
        if let Transport::Icmp(IcmpSummary::Other { icmp_type, .. }) = pd.ip.transport {
            if pd.ip.protocol == IpProtocol::Icmpv6 && ND_TYPES.contains(&icmp_type) {
                return self.neighbor_discovery(pd, sink);
            }
            if MLD_TYPES.contains(&icmp_type) {
                return Err(Dropped::detail(DropReason::NotForUs, "mld"));
            }
        }
        self.forward_ip(pd, sink)
    }

    /// A neighbour discovery message: the addressing module's business ([`crate::ndp`]),
    /// which answers, learns, guards and follows router advertisements; what it changed
    /// (addresses, router, resolvers) the forward path follows at once.
    fn neighbor_discovery(
        &mut self,
        pd: &mut PacketDesc,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        let outcome = self.ndp.receive(pd.nic, pd.frame, pd.now, sink);
        self.follow_ndp(pd.now);
        match outcome {
            NdOutcome::Handled => {
                pd.trace.fate = Fate::Local;
                Ok(())
            }
            NdOutcome::NotNd => Err(Dropped::detail(DropReason::Malformed, "icmpv6-nd")),
            NdOutcome::Dropped(refused) => Err(Dropped::detail(
                DropReason::NeighborDiscovery,
                refused.as_str(),
            )),
        }
    }

    /// The stages every IP packet takes, top to bottom. Every stage takes the one
    /// descriptor; an `Err` drops the packet (see [`super::drop`]).
    fn forward_ip(&mut self, pd: &mut PacketDesc, sink: &mut dyn FrameSink) -> Result<(), Dropped> {
        self.check_source(pd)?;
        self.check_options(pd)?;
        let way = if FragmentKind::of(&pd.ip) == FragmentKind::Later {
            Way::Known(self.follow_first_fragment(pd)?)
        } else {
            match self.states.lookup(pd.nic, &pd.ip, pd.now) {
                Lookup::Hit(hit) => Way::Known(self.state_packet(pd, hit)?),
                Lookup::Related(hit) => Way::Known(self.related_error(pd, hit)?),
                Lookup::Miss => match self.first_packet(pd, sink)? {
                    FirstPacket::ToSelf { owner } => return self.for_appliance(pd, owner, sink),
                    FirstPacket::Onwards(passed) => Way::New(passed),
                },
            }
        };
        // RFC 1812 §5.3.4: a packet that came as a link-layer broadcast or multicast is
        // never forwarded (its IP destination is unicast: broadcasts and multicasts are
        // the appliance's own or never routed).
        if pd.link_broadcast {
            return Err(DropReason::LinkBroadcast.into());
        }
        let options_allowed = match &way {
            Way::Known(plan) => plan.allow_opts,
            Way::New(passed) => self.allows_options(passed.verdict.rule),
        };
        self.check_options_allowed(pd, options_allowed)?;
        self.check_ttl(pd, sink)?;
        let (plan, opened) = match way {
            Way::Known(plan) => (plan, None),
            Way::New(passed) => {
                let (plan, state) = self.open_state(pd, passed)?;
                (plan, Some(state))
            }
        };
        let sent = self.transmit(pd, plan, sink);
        // A first packet that did not leave (too big for the egress, or unable to cross
        // families) leaves no state behind, as a connection tracker confirms a flow only
        // when its first packet leaves: the one its sender sends instead is a first packet
        // again, decided on its own. (A super-frame may have left in part: its state stays.)
        if let (Err(_), Some(state)) = (&sent, opened) {
            if pd.offload.segmentation.is_none() {
                self.states.remove(state);
            }
        }
        sent
    }
}
