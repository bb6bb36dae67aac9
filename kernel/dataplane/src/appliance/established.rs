//! Packets that belong to something already decided: a state (or an ICMP error about
//! one's packets), or the first fragment of their datagram. The policy is not asked again.

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::transmit::Plan;
use super::Appliance;
use crate::drops::DropReason;
use crate::route::Route;
use crate::state::Hit;

impl Appliance<'_> {
    /// A fragment after the first goes the way its first fragment went, or nowhere.
    pub(super) fn follow_first_fragment(&mut self, pd: &PacketDesc) -> Result<Plan, Dropped> {
        self.fragments
            .follow(&pd.ip, pd.now)
            .ok_or(DropReason::OrphanFragment.into())
    }

    /// A packet of a state: the state's translation, towards its translated destination.
    pub(super) fn established(&self, hit: Hit) -> Result<Plan, Dropped> {
        if let Err(refused) = hit.verdict {
            return Err(Dropped::detail(DropReason::InvalidState, refused.as_str()));
        }
        match self.routes.lookup(hit.translation.after.dst) {
            Route::Forward { nic, next_hop, mtu } => Ok(Plan {
                translation: Some(hit.translation),
                out_nic: nic,
                next_hop,
                mtu,
            }),
            Route::Local { .. } | Route::Unreachable => Err(DropReason::NoRoute.into()),
        }
    }
}
