//! Packets that belong to something already decided: a state (or an ICMP error about
//! one's packets, from the flow's peer or a router on its path), or the first fragment of
//! their datagram. The policy is not asked again.

use smoltcp::wire::IpAddress;

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::new_flow::LINK_LOCAL_SOURCE;
use super::transmit::{Plan, Rewrite};
use super::Appliance;
use crate::drops::DropReason;
use crate::fragment::Refused;
use crate::packet::{IcmpSummary, Malformed, Transport};
use crate::route::Route;
use crate::route6::is_link_local;
use crate::rule_counters::RuleId;
use crate::state::Hit;

/// The detail of a drop line for an ICMP error from neither the flow's peer nor a router
/// on the flow's path.
const ERROR_NOT_FROM_PEER: &str = "icmp-error-not-from-peer";

impl Appliance<'_> {
    /// A fragment after the first goes the way its first fragment went, or nowhere; one
    /// that would overlap its first fragment is malformed.
    pub(super) fn follow_first_fragment(&mut self, pd: &PacketDesc) -> Result<Plan, Dropped> {
        self.fragments
            .follow(pd.nic, &pd.ip, pd.now)
            .map_err(|refused| match refused {
                Refused::Orphan => DropReason::OrphanFragment.into(),
                Refused::Overlap => Dropped::detail(
                    DropReason::Malformed,
                    Malformed::FragmentOverlapsTransport.as_str(),
                ),
            })
    }

    /// An ICMP error about a packet of a state (the state table has checked that it arrived
    /// where that packet left, and quotes a packet the flow can have carried). It is related
    /// only if it comes from the flow's peer — the quoted packet's destination — or from a
    /// router on the way to it: then that destination lies beyond a gateway of the NIC the
    /// error arrived on. So a host on a client segment (another client, above all) never
    /// passes an error off as one about someone else's flow, and a router's error leaves
    /// with the router's address, never a client's: the only NIC with a gateway is the
    /// uplink, where anti-spoofing has refused every address of the appliance's side.
    /// An error from a link-local address (a router's, typically) never leaves its link
    /// (RFC 4291 §2.5.6), related or not.
    pub(super) fn related_error(&self, pd: &PacketDesc, hit: Hit) -> Result<Plan, Dropped> {
        let plan = self.established(pd, hit)?;
        if plan.out_nic != pd.nic && matches!(pd.ip.src, IpAddress::Ipv6(src) if is_link_local(src))
        {
            return Err(Dropped::detail(
                DropReason::MartianSource,
                LINK_LOCAL_SOURCE,
            ));
        }
        let Transport::Icmp(IcmpSummary::Error { quoted, .. }) = pd.ip.transport else {
            return Err(DropReason::InvalidState.into());
        };
        let from_peer = pd.ip.src == quoted.dst;
        let from_router = || {
            matches!(self.routes.toward(pd.nic, quoted.dst),
                Route::Forward { next_hop, .. } if next_hop != quoted.dst)
        };
        if from_peer || from_router() {
            Ok(plan)
        } else {
            Err(Dropped::detail(DropReason::Spoofed, ERROR_NOT_FROM_PEER))
        }
    }

    /// A packet of a state, counted for the rule that created the state if it goes on.
    pub(super) fn state_packet(&mut self, pd: &PacketDesc, hit: Hit) -> Result<Plan, Dropped> {
        let plan = self.established(pd, hit)?;
        if let Some(rule) = hit.rule {
            self.rule_counts
                .decided(RuleId::Rule(rule), pd.ip.total_len);
        }
        Ok(plan)
    }

    /// A packet of a state: the state's translation, out of the NIC the state records for
    /// its direction (never where address routing alone would send it), to its translated
    /// destination on that NIC or that NIC's gateway. Whether it may carry IPv4 options is
    /// its state's rule's to say (asked only when it has some).
    pub(super) fn established(&self, pd: &PacketDesc, hit: Hit) -> Result<Plan, Dropped> {
        if let Err(refused) = hit.verdict {
            return Err(Dropped::detail(DropReason::InvalidState, refused.as_str()));
        }
        match self
            .routes
            .toward(hit.egress_nic, hit.translation.after.dst)
        {
            Route::Forward { nic, next_hop, mtu } => Ok(Plan {
                rewrite: Rewrite::Translate(hit.translation),
                out_nic: nic,
                next_hop,
                mtu,
                allow_opts: pd.ip.options.present()
                    && self.allows_options(self.states.get(hit.id).and_then(|s| s.rule)),
            }),
            Route::Local { .. } | Route::Unreachable => Err(DropReason::NoRoute.into()),
        }
    }
}
