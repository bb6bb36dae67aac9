//! Sending a packet of a flow that crosses families — a DNS query the redirect sends to a
//! resolver of the other family, its replies, and ICMP errors about them — rebuilt in the
//! other family ([`nat::across_families`], [`nat::error_across_families`]) and sent as a
//! new packet. An offloaded super-frame is finished in software first (segments, checksum).

use smoltcp::wire::IpAddress;

use super::answer::Answer;
use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::trace::Fate;
use super::transmit::{finish_checksum, malformed_offload, Plan};
use super::Appliance;
use crate::drops::DropReason;
use crate::icmp_error::IcmpError;
use crate::nat::{self, Translation, Untranslatable};
use crate::offload::GsoKind;
use crate::packet::{IcmpSummary, IpSummary, Transport};
use crate::segmenter::Segmenter;
use crate::sink::FrameSink;

/// The smallest MTU an IPv6 packet too big reports (RFC 8200).
const IPV6_MIN_MTU: u16 = 1280;

/// A packet that cannot cross, as a drop.
pub(super) fn untranslatable(why: Untranslatable) -> Dropped {
    let reason = match why {
        Untranslatable::Malformed => DropReason::Malformed,
        Untranslatable::Protocol | Untranslatable::Fragment => DropReason::InvalidState,
    };
    Dropped::detail(reason, why.as_str())
}

impl Appliance<'_> {
    /// Sends `pd`, a packet (or an ICMP error about one) of a flow whose `translation`
    /// crosses families, as `plan` says: rebuilt in the other family; too big for the
    /// egress once rebuilt, it is dropped and its sender told the MTU that would fit.
    pub(super) fn transmit_across_families(
        &mut self,
        pd: &mut PacketDesc,
        plan: Plan,
        translation: Translation,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        if let Transport::Icmp(IcmpSummary::Error { .. }) = pd.ip.transport {
            let rebuilt = nat::error_across_families(pd.packet(), &pd.ip, &translation)
                .map_err(untranslatable)?;
            let arrived = pd.ip.total_len;
            return self.send_across(pd, &rebuilt, arrived, plan, translation, sink);
        }
        let (v4, v6) = match translation.after.dst {
            IpAddress::Ipv4(_) => (plan.out_nic, pd.nic),
            IpAddress::Ipv6(_) => (pd.nic, plan.out_nic),
        };
        let ceiling = nat::mss_ceiling(self.routes.mtu(v4), self.routes.ipv6_mtu(v6));
        match pd.offload.segmentation.map(|s| (s.kind, s.size)) {
            Some((GsoKind::TcpV4 | GsoKind::TcpV6, size)) => {
                let segmenter = Segmenter::new(pd.packet(), size).map_err(malformed_offload)?;
                let mut segments = alloc::vec::Vec::new();
                segmenter.each(|segment| segments.push(segment.to_vec()));
                for segment in segments {
                    let parsed = match pd.ip.is_ipv6() {
                        true => IpSummary::parse_ipv6(&segment),
                        false => IpSummary::parse(&segment),
                    };
                    let summary =
                        parsed.map_err(|e| Dropped::detail(DropReason::Malformed, e.as_str()))?;
                    let rebuilt =
                        nat::across_families(&segment, &summary, &translation.after, ceiling)
                            .map_err(untranslatable)?;
                    let arrived = summary.total_len;
                    self.send_across(pd, &rebuilt, arrived, plan, translation, sink)?;
                }
                Ok(())
            }
            _ => {
                if !pd.offload.is_plain() {
                    finish_checksum(pd)?;
                }
                let rebuilt =
                    nat::across_families(pd.packet(), &pd.ip, &translation.after, ceiling)
                        .map_err(untranslatable)?;
                let arrived = pd.ip.total_len;
                self.send_across(pd, &rebuilt, arrived, plan, translation, sink)
            }
        }
    }

    /// Sends `rebuilt` — `pd`, or one of its segments, `arrived` bytes long as it came — in
    /// the other family, to `plan`'s next hop, or tells `pd`'s sender it is too big.
    fn send_across(
        &mut self,
        pd: &mut PacketDesc,
        rebuilt: &[u8],
        arrived: usize,
        plan: Plan,
        translation: Translation,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        if rebuilt.len() > usize::from(plan.mtu) {
            if !pd.ip.dont_fragment {
                // An IPv4 sender that lets routers fragment is not told (the appliance
                // fragments no IPv6): the datagram is dropped, counted.
                return Err(DropReason::TooBig.into());
            }
            // What the sender may send so that it fits once rebuilt.
            let fits = (usize::from(plan.mtu) + arrived).saturating_sub(rebuilt.len());
            let mut mtu = fits.min(usize::from(u16::MAX)) as u16;
            if pd.ip.is_ipv6() {
                mtu = mtu.max(IPV6_MIN_MTU);
            }
            self.answer(
                pd,
                Answer::Error(IcmpError::FragmentationNeeded { mtu }),
                sink,
            );
            return Err(DropReason::TooBig.into());
        }
        pd.trace.fate = Fate::Forwarded {
            nic: plan.out_nic,
            next_hop: plan.next_hop,
            translation: Some(translation),
        };
        let source = self.source_of(pd.nic, pd.ip.src);
        self.send_to_neighbor(plan.out_nic, plan.next_hop, rebuilt, source, pd.now, sink);
        Ok(())
    }
}
