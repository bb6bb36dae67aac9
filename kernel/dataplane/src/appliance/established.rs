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
    /// Whether it may carry IPv4 options is its state's rule's to say (asked only when it
    /// has some).
    pub(super) fn established(&self, pd: &PacketDesc, hit: Hit) -> Result<Plan, Dropped> {
        if let Err(refused) = hit.verdict {
            return Err(Dropped::detail(DropReason::InvalidState, refused.as_str()));
        }
        match self.routes.lookup(hit.translation.after.dst) {
            Route::Forward { nic, next_hop, mtu } => Ok(Plan {
                translation: Some(hit.translation),
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
