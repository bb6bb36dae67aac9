//! IPv6 packets for the appliance itself, once the policy has let them in (`to self`):
//! an ICMPv6 echo request to its address on the NIC it arrived on is answered here; the
//! local smoltcp stack has no IPv6 (neighbour discovery is handled before the forward path,
//! DNS to the appliance is redirected before routing). Anything else is refused with the
//! ICMPv6 port unreachable a host would send (a TCP reset for TCP), within the reply rate
//! limit.

use alloc::vec;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, Ipv6Packet, Ipv6Repr};

use super::answer::Answer;
use super::descriptor::PacketDesc;
use super::drop::Dropped;
use super::Appliance;
use crate::drops::DropReason;
use crate::icmp_error::{IcmpError, REPLY_TTL};
use crate::packet::{IcmpSummary, Transport};
use crate::sink::FrameSink;

impl Appliance<'_> {
    /// An IPv6 packet for the appliance's address on NIC `owner`: the policy decides, then
    /// an echo request is answered. See the module documentation.
    pub(super) fn for_appliance_ipv6(
        &mut self,
        pd: &mut PacketDesc,
        owner: u8,
        sink: &mut dyn FrameSink,
    ) -> Result<(), Dropped> {
        self.decide_to_self(pd, false, sink)?;
        if owner != pd.nic {
            // The appliance's address on another NIC is not served from here.
            return Err(DropReason::NoRoute.into());
        }
        match pd.ip.transport {
            Transport::Icmp(IcmpSummary::Echo { request: true, .. }) => {
                self.answer_echo6(pd, sink);
                Ok(())
            }
            Transport::Icmp(_) => Err(DropReason::NoRoute.into()),
            Transport::Tcp(_) => {
                self.answer(pd, Answer::Reject, sink);
                Err(DropReason::NoRoute.into())
            }
            _ => {
                self.answer(pd, Answer::Error(IcmpError::PortUnreachable), sink);
                Err(DropReason::NoRoute.into())
            }
        }
    }

    /// Answers the ICMPv6 echo request in `pd` with an echo reply carrying the same
    /// identifier, sequence number and data, from the address it was sent to.
    fn answer_echo6(&mut self, pd: &mut PacketDesc, sink: &mut dyn FrameSink) {
        let (IpAddress::Ipv6(src), IpAddress::Ipv6(dst)) = (pd.ip.src, pd.ip.dst) else {
            return;
        };
        let Some(l4) = pd.packet().get(pd.ip.header_len..) else {
            return;
        };
        let Ok(request) = Icmpv6Packet::new_checked(l4) else {
            return;
        };
        let caps = ChecksumCapabilities::default();
        let Ok(Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        }) = Icmpv6Repr::parse(&dst, &src, &request, &caps)
        else {
            return;
        };
        let echo = Icmpv6Repr::EchoReply {
            ident,
            seq_no,
            data,
        };
        let ip = Ipv6Repr {
            src_addr: dst,
            dst_addr: src,
            next_header: IpProtocol::Icmpv6,
            payload_len: echo.buffer_len(),
            hop_limit: REPLY_TTL,
        };
        let mut reply = vec![0u8; ip.buffer_len() + echo.buffer_len()];
        let mut ip_view = Ipv6Packet::new_unchecked(&mut reply[..]);
        ip.emit(&mut ip_view);
        let mut icmp = Icmpv6Packet::new_unchecked(ip_view.payload_mut());
        echo.emit(&dst, &src, &mut icmp, &caps);
        self.send_originated(&reply, Some(pd.nic), pd.now, sink);
    }
}
