//! The first packet of a flow: destination NAT, routing and the policy decide where it
//! goes ([`Appliance::first_packet`]); once its TTL is checked, masquerade and the state
//! table take it on ([`Appliance::open_state`]).

use smoltcp::wire::IpAddress;

use super::across;
use super::answer::Answer;
use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::trace::{Redirect, RedirectKind};
use super::transmit::{Plan, Rewrite};
use super::Appliance;
use crate::drops::DropReason;
use crate::icmp_error::IcmpError;
use crate::nat::{self, Redirected};
use crate::packet::is_never_forwarded;
use crate::policy::Verdict;
use crate::route::Route;
use crate::route6::is_link_local;
use crate::rule_counters::RuleId;
use crate::sink::FrameSink;
use crate::state::{FlowTuple, NewFlow, Refused, RuleRef, StateId};

/// Where a first packet goes.
pub(super) enum FirstPacket {
    /// To the appliance itself: its address on NIC `owner` (or a broadcast).
    ToSelf {
        /// The NIC that owns the destination address.
        owner: u8,
    },
    /// On, as the policy passed it.
    Onwards(Passed),
}

/// A first packet the policy passed, whose state is not created yet.
pub(super) struct Passed {
    /// Its flow as it arrived.
    original: FlowTuple,
    /// Its flow after destination NAT.
    redirected: FlowTuple,
    /// The verdict that passed it.
    pub verdict: Verdict,
    /// Where routing sends it.
    out_nic: u8,
    next_hop: IpAddress,
    mtu: u16,
}

/// The detail of a drop line for an IPv6 packet from a link-local source that would leave
/// its link (RFC 4291 §2.5.6).
pub(super) const LINK_LOCAL_SOURCE: &str = "link-local-source-off-link";

impl Appliance<'_> {
    /// Destination NAT, routing and the policy for the first packet of a flow.
    pub(super) fn first_packet(
        &mut self,
        pd: &mut PacketDesc,
        sink: &mut dyn FrameSink,
    ) -> Result<FirstPacket, Dropped> {
        let original = pd.flow();
        let redirected = original.and_then(|flow| self.redirect(pd, &flow));
        let destination = redirected.map_or(pd.ip.dst, |flow| flow.dst);
        let route = if destination.is_broadcast() {
            Route::Local { nic: pd.nic }
        } else {
            self.routes.lookup(destination)
        };
        match route {
            // Point-to-point links may share one address (Qubes' gateway address on every
            // client's link): the arrival NIC owns it if it has it.
            Route::Local { .. }
                if pd
                    .ingress
                    .is_some_and(|c| IpAddress::from(c.address()) == destination) =>
            {
                Ok(FirstPacket::ToSelf { owner: pd.nic })
            }
            Route::Local { nic: owner } => Ok(FirstPacket::ToSelf { owner }),
            // Loopback, multicast, reserved, "this network", link-local IPv6: never
            // forwarded, never answered.
            Route::Unreachable if is_never_forwarded(destination) => {
                Err(DropReason::MartianDestination.into())
            }
            Route::Unreachable => {
                if !pd.link_broadcast {
                    self.answer(pd, Answer::Error(IcmpError::NetUnreachable), sink);
                }
                Err(DropReason::NoRoute.into())
            }
            Route::Forward { .. } if matches!(pd.ip.src, IpAddress::Ipv6(src) if is_link_local(src)) => {
                Err(Dropped::detail(
                    DropReason::MartianSource,
                    LINK_LOCAL_SOURCE,
                ))
            }
            Route::Forward { nic, next_hop, mtu } => {
                // An ICMP error about no known flow, and the like, opens nothing.
                let original = original.ok_or(DropReason::InvalidState)?;
                let redirected = redirected.unwrap_or(original);
                let verdict = self.decide(pd, nic, &redirected, sink)?;
                Ok(FirstPacket::Onwards(Passed {
                    original,
                    redirected,
                    verdict,
                    out_nic: nic,
                    next_hop,
                    mtu,
                }))
            }
        }
    }

    /// The port forward or DNS redirect for a first packet's `flow`, recorded in the trace.
    fn redirect(&self, pd: &mut PacketDesc, flow: &FlowTuple) -> Option<FlowTuple> {
        // The appliance's address on the ingress NIC, of the flow's family. Never its
        // link-local one: a flow to that stays on the link, translated or not (RFC 4291
        // §2.5.6); forwards and the DNS redirect are for its `address6` (or SLAAC) address.
        let appliance: IpAddress = match flow.dst {
            IpAddress::Ipv4(_) => pd.ingress?.address().into(),
            IpAddress::Ipv6(dst) if is_link_local(dst) => return None,
            IpAddress::Ipv6(dst) => {
                (self.routes.ipv6().owner_of(dst) == Some(pd.nic)).then_some(flow.dst)?
            }
        };
        let forwards = self.policy.forwards;
        let (kind, Redirected { rule, flow }) =
            nat::port_forward(forwards, pd.nic, appliance, flow)
                .map(|r| (RedirectKind::PortForward, r))
                .or_else(|| {
                    nat::dns_redirect(&self.policy, pd.nic, appliance, flow, &self.upstream_dns)
                        .map(|r| (RedirectKind::Dns, r))
                })?;
        pd.trace.redirect = Some(Redirect {
            kind,
            rule,
            to: flow.dst,
            to_port: flow.dst_port,
        });
        Some(flow)
    }

    /// The policy's verdict on `flow` leaving through `out`, recorded in the trace and
    /// enforced: `Ok` if it passes.
    pub(super) fn decide(
        &mut self,
        pd: &mut PacketDesc,
        out: u8,
        flow: &FlowTuple,
        sink: &mut dyn FrameSink,
    ) -> Result<Verdict, Dropped> {
        let key = pd.flow_key(out, flow);
        let verdict = self.policy.decide(&key);
        self.enforce(pd, key, verdict, sink)
    }

    /// The address a flow towards `dst` is masqueraded behind when it leaves through
    /// `out_nic`: the appliance's address there of `dst`'s family (for IPv6, a global or
    /// unique local one: never link-local).
    fn nat_address(&self, out_nic: u8, dst: IpAddress) -> Option<IpAddress> {
        match dst {
            IpAddress::Ipv4(_) => Some(self.configs.get(out_nic as usize)?.ipv4?.address().into()),
            IpAddress::Ipv6(dst) => self
                .routes
                .ipv6()
                .source_for(out_nic, dst)
                .filter(|a| !is_link_local(*a))
                .map(IpAddress::Ipv6),
        }
    }

    /// Masquerade and the state for a first packet that goes on: how it leaves, and the
    /// state opened.
    pub(super) fn open_state(
        &mut self,
        pd: &mut PacketDesc,
        passed: Passed,
    ) -> Result<(Plan, StateId), Dropped> {
        let Passed {
            original,
            redirected,
            verdict,
            out_nic,
            next_hop,
            mtu,
        } = passed;
        let mut translated = redirected;
        let masquerade = nat::masquerade_rule(&self.policy, pd.nic, translated.src, out_nic);
        // A query the DNS redirect sends to a resolver of the other family leaves from the
        // appliance's own address of that family, `nat` rule or not: its client's address
        // has no place in the other family's header.
        let crosses_families = translated.src.version() != translated.dst.version();
        if crosses_families {
            nat::crossable(&pd.ip).map_err(across::untranslatable)?;
        }
        if masquerade.is_some() || crosses_families {
            pd.trace.masquerade = masquerade;
            let Some(nat_address) = self.nat_address(out_nic, translated.dst) else {
                return Err(DropReason::NoRoute.into());
            };
            translated = self
                .masquerader
                .masquerade(&self.states, translated, nat_address, pd.now)
                .map_err(|refused| Dropped::detail(DropReason::NatExhausted, refused.as_str()))?;
        }
        let flow = NewFlow {
            in_nic: pd.nic,
            out_nic,
            original,
            translated,
            rule: verdict.rule.and_then(|index| {
                let rule = self.policy.rules.get(index as usize)?;
                Some(RuleRef {
                    index,
                    limits: rule.limits,
                })
            }),
            client: self.client_of(pd),
            source: self.sender_of(pd),
        };
        let state = self
            .states
            .insert(&flow, &pd.ip, pd.now)
            .map_err(refused_state)?;
        if let Some(rule) = verdict.rule {
            self.rule_counts.state_created(RuleId::Rule(rule));
        }
        let plan = Plan {
            rewrite: Rewrite::Translate(flow.translation()),
            out_nic,
            next_hop,
            mtu,
            allow_opts: self.allows_options(verdict.rule),
        };
        Ok((plan, state))
    }

    /// Whether the rule at `index` of the policy (`None`: the default) allows IPv4 options.
    pub(super) fn allows_options(&self, index: Option<u32>) -> bool {
        index
            .and_then(|i| self.policy.rules.get(i as usize))
            .is_some_and(|rule| rule.allow_opts)
    }
}

/// Why the state table refused a flow, as a drop.
fn refused_state(refused: Refused) -> Dropped {
    let reason = match refused {
        Refused::TableFull => return DropReason::StateTableFull.into(),
        Refused::RuleLimit | Refused::SourceLimit | Refused::ClientLimit => DropReason::StateLimit,
        Refused::TupleInUse => DropReason::NatExhausted,
        Refused::Untrackable | Refused::TcpWithoutSyn => DropReason::InvalidState,
    };
    Dropped::detail(reason, refused.as_str())
}
