//! The policy's `block` and `reject` applied, and what the sender of a dropped packet is
//! told: a TCP reset or an ICMP error, built by [`ErrorReplies`](crate::icmp_error) within
//! its rate limit and routed like any packet the appliance originates.

use alloc::vec::Vec;
use smoltcp::wire::{IpAddress, IpVersion};

use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::trace::{PolicyDecision, Reply};
use super::Appliance;
use crate::icmp_error::{IcmpError, Offending};
use crate::offload::GsoKind;
use crate::packet::{IpSummary, Transport};
use crate::policy::{Action, FlowKey, Verdict};
use crate::rule_counters::RuleId;
use crate::segmenter::{complete_checksum, Segmenter};
use crate::sink::FrameSink;

/// What the sender of a dropped packet is told.
#[derive(Clone, Copy, Debug)]
pub(super) enum Answer {
    /// An ICMP error.
    Error(IcmpError),
    /// What `reject` sends: a TCP reset, or ICMP administratively prohibited.
    Reject,
}

impl Appliance<'_> {
    /// Applies the policy's `verdict` on `key` (recorded in the trace): `Ok` to go on;
    /// otherwise the packet is dropped and, for `reject`, its sender told.
    pub(super) fn enforce(
        &mut self,
        pd: &mut PacketDesc,
        key: FlowKey,
        verdict: Verdict,
        sink: &mut dyn FrameSink,
    ) -> Result<Verdict, Dropped> {
        pd.trace.decision = Some(PolicyDecision { key, verdict });
        self.rule_counts
            .decided(RuleId::of_verdict(verdict.rule), pd.ip.total_len);
        match verdict.action {
            Action::Pass => Ok(verdict),
            Action::Block => Err(Dropped::rule(verdict)),
            Action::Reject => {
                self.answer(pd, Answer::Reject, sink);
                Err(Dropped::rule(verdict))
            }
        }
    }

    /// Tells the sender of `pd`'s packet why it went no further (within the sender's share
    /// of the reply budgets; never about errors, broadcasts, later fragments or martians:
    /// see [`Offending`]).
    ///
    /// An ICMP error about an offloaded packet quotes the packet as it would have been on
    /// the wire: the first segment of a super-frame, with its own lengths and complete
    /// checksums (a reset answers the whole super-segment, as its sender sent it).
    pub(super) fn answer(&mut self, pd: &mut PacketDesc, answer: Answer, sink: &mut dyn FrameSink) {
        let source6 = match pd.ip.src {
            IpAddress::Ipv6(src) => self.routes.ipv6().source_for(pd.nic, src),
            IpAddress::Ipv4(_) => None,
        };
        let sender = self.sender_of(pd);
        let resets =
            matches!(answer, Answer::Reject) && matches!(pd.ip.transport, Transport::Tcp(_));
        let on_the_wire = match pd.offload.is_plain() || resets {
            true => None,
            false => first_on_the_wire(pd),
        };
        let (bytes, summary) = match &on_the_wire {
            Some((bytes, summary)) => (&bytes[..], summary),
            None => (pd.packet(), &pd.ip),
        };
        let offending = Offending {
            bytes,
            summary,
            ingress: pd.ingress,
            source6,
            link_broadcast: pd.link_broadcast,
        };
        let version = pd.ip.version();
        let (reply, sent) = match answer {
            Answer::Error(error) => {
                let (icmp_type, code) = error.type_code_for(version);
                let reply = self.errors.icmp_error(error, &offending, sender, pd.now);
                (reply, Reply::Icmp { icmp_type, code })
            }
            Answer::Reject => {
                let reply = self.errors.reject(&offending, sender, pd.now);
                let sent = match pd.ip.transport {
                    Transport::Tcp(_) => Reply::TcpReset,
                    _ => {
                        let (icmp_type, code) = IcmpError::AdminProhibited.type_code_for(version);
                        Reply::Icmp { icmp_type, code }
                    }
                };
                (reply, sent)
            }
        };
        if let Ok(reply) = reply {
            pd.trace.reply = Some(sent);
            self.send_originated(&reply, Some(pd.nic), pd.now, sink);
        }
    }
}

/// The first packet an offloaded packet stands for on the wire, and its summary: the
/// first segment of a TCP super-frame, the packet with its checksum completed otherwise.
fn first_on_the_wire(pd: &PacketDesc) -> Option<(Vec<u8>, IpSummary)> {
    let bytes = match pd.offload.segmentation {
        Some(segmentation) if matches!(segmentation.kind, GsoKind::TcpV4 | GsoKind::TcpV6) => {
            Segmenter::new(pd.packet(), segmentation.size).ok()?.first()
        }
        _ => {
            let mut bytes = pd.packet().to_vec();
            complete_checksum(&mut bytes).ok()?;
            bytes
        }
    };
    let summary = match pd.ip.version() {
        IpVersion::Ipv6 => IpSummary::parse_ipv6(&bytes),
        IpVersion::Ipv4 => IpSummary::parse(&bytes),
    };
    Some((bytes, summary.ok()?))
}
