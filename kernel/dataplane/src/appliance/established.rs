//! Packets that belong to something already decided: a state (or an ICMP error about
//! one's packets), or the first fragment of their datagram. The policy is not asked again.

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::transmit::{Plan, Rewrite};
use super::Appliance;
use crate::drops::DropReason;
use crate::fragment::Refused;
use crate::packet::Malformed;
use crate::route::Route;
use crate::state::Hit;

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

    /// A packet of a state: the state's translation, out of the NIC the state records for
    /// its direction (never where address routing alone would send it), to its translated
    /// destination on that NIC or that NIC's gateway.
    pub(super) fn established(&self, hit: Hit) -> Result<Plan, Dropped> {
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
            }),
            Route::Local { .. } | Route::Unreachable => Err(DropReason::NoRoute.into()),
        }
    }
}
