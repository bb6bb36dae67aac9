//! The IPv4 path, one stage per line: [`Appliance::forward_ipv4`] is the whole of it.

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::new_flow::{FirstPacket, Passed};
use super::transmit::Plan;
use super::Appliance;
use crate::drops::DropReason;
use crate::fragment::FragmentKind;
use crate::sink::FrameSink;
use crate::state::Lookup;

/// How a packet that goes on was placed.
enum Way {
    /// Like the rest of its flow (a state, or its first fragment): its plan is known.
    Known(Plan),
    /// The first packet of a flow the policy passed: its state is still to be created.
    New(Passed),
}

impl Appliance<'_> {
    /// The path of an IPv4 packet, top to bottom. Every stage takes the one descriptor;
    /// an `Err` drops the packet (see [`super::drop`]).
    pub(super) fn forward_ipv4(
        &mut self,
        pd: &mut PacketDesc,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        pd.offload
            .check(&pd.ip)
            .map_err(|e| Dropped::detail(DropReason::Malformed, e.as_str()))?;
        if pd.ingress.is_none() {
            return self.before_lease(pd, sink);
        }
        if self.is_for_dhcp_server(pd) {
            return self.serve_dhcp(pd, sink);
        }
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
        let plan = match way {
            Way::Known(plan) => plan,
            Way::New(passed) => self.open_state(pd, passed)?,
        };
        self.transmit(pd, plan, sink)
    }
}
