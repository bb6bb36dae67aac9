//! [`apply`]: making a packet match a [`Translation`], with `rewrite`'s incremental
//! checksum updates.

use smoltcp::wire::IpAddress;

use super::Translation;
use crate::packet::{IcmpSummary, IpSummary, QuotedPacket, Transport};
use crate::rewrite::{self, TransportChecksum};
use crate::state::FlowTuple;

/// Rewrites the packet in `bytes` (summarised by `summary`, which is kept in step) so that
/// it leaves as `translation.after`:
///
/// - an ordinary packet gets the addresses and ports (or ICMP echo identifier) of `after`
///   (SCTP packets keep their ports: NAT never changes them); a fragment after the first
///   gets the addresses only (it has no transport header; the forward path gives it the
///   addresses its first fragment left with, [`set_addresses`]);
/// - an ICMP error related to a state gets its quoted packet rewritten to the reverse of
///   `after` (what the error's receiver sent), its destination set to `after`'s, and its
///   source too when the error came from the translated endpoint itself (a port-forwarded
///   host must not show through its internal address).
///
/// Every checksum covering a changed field (IPv4 header, TCP/UDP pseudo-header, ICMP,
/// and inside the quote) is updated incrementally, so a packet with good checksums leaves
/// with good checksums.
pub fn apply(bytes: &mut [u8], summary: &mut IpSummary, translation: &Translation) {
    apply_offloaded(bytes, summary, translation, TransportChecksum::Complete);
}

/// [`apply`] to a packet whose TCP or UDP checksum stands as `checksum` says: a partial
/// one (left for the NIC to complete, see [`crate::offload`]) follows the addresses but
/// not the ports.
pub fn apply_offloaded(
    bytes: &mut [u8],
    summary: &mut IpSummary,
    translation: &Translation,
    checksum: TransportChecksum,
) {
    if translation.is_identity() {
        return;
    }
    match summary.transport {
        Transport::Icmp(IcmpSummary::Error { .. }) => apply_to_error(bytes, summary, translation),
        _ => apply_to_packet(bytes, summary, &translation.after, checksum),
    }
}

/// Sets the packet's source and destination addresses (the checksums that cover them
/// follow); for a fragment after the first, that is all of its translation.
pub fn set_addresses(bytes: &mut [u8], summary: &mut IpSummary, src: IpAddress, dst: IpAddress) {
    set_addresses_of(bytes, summary, src, dst, TransportChecksum::Complete);
}

/// [`set_addresses`] of a packet whose transport checksum stands as `checksum` says.
fn set_addresses_of(
    bytes: &mut [u8],
    summary: &mut IpSummary,
    src: IpAddress,
    dst: IpAddress,
    checksum: TransportChecksum,
) {
    if summary.src != src {
        rewrite::set_src_addr_of(bytes, summary, src, checksum);
    }
    if summary.dst != dst {
        rewrite::set_dst_addr_of(bytes, summary, dst, checksum);
    }
}

fn apply_to_packet(
    bytes: &mut [u8],
    summary: &mut IpSummary,
    after: &FlowTuple,
    checksum: TransportChecksum,
) {
    set_addresses_of(bytes, summary, after.src, after.dst, checksum);
    match summary.transport {
        Transport::Tcp(_) | Transport::Udp { .. } => {
            let (src_port, dst_port) = summary.ports();
            if src_port != after.src_port {
                rewrite::set_src_port_of(bytes, summary, after.src_port, checksum);
            }
            if dst_port != after.dst_port {
                rewrite::set_dst_port_of(bytes, summary, after.dst_port, checksum);
            }
        }
        // SCTP keeps its ports (masquerade never changes them, forwards are TCP and UDP
        // only); its CRC32c has no pseudo-header, so new addresses leave it valid.
        Transport::Sctp { .. } => {}
        Transport::Icmp(IcmpSummary::Echo { ident, .. })
            if after.echo.is_some() && ident != after.src_port =>
        {
            rewrite::set_icmp_echo_ident(bytes, summary, after.src_port);
        }
        _ => {}
    }
}

fn quoted_of(summary: &IpSummary) -> Option<QuotedPacket> {
    match summary.transport {
        Transport::Icmp(IcmpSummary::Error { quoted, .. }) => Some(quoted),
        _ => None,
    }
}

fn apply_to_error(bytes: &mut [u8], summary: &mut IpSummary, translation: &Translation) {
    let (before, after) = (&translation.before, &translation.after);
    let src = if summary.src == before.src {
        after.src
    } else {
        summary.src
    };
    // An ICMP error's checksum is never offloaded.
    set_addresses(bytes, summary, src, after.dst);

    // The quote is a packet of the opposite direction, as the error's receiver knows it.
    let target = after.reversed();
    let Some(quoted) = quoted_of(summary) else {
        return;
    };
    if quoted.src != target.src {
        rewrite::set_quoted_src_addr(bytes, summary, target.src);
    }
    if quoted.dst != target.dst {
        rewrite::set_quoted_dst_addr(bytes, summary, target.dst);
    }
    // An echo's identifier is both "ports": setting one sets the other.
    if quoted_of(summary).is_some_and(|q| q.src_port.is_some_and(|p| p != target.src_port)) {
        rewrite::set_quoted_src_port(bytes, summary, target.src_port);
    }
    if quoted_of(summary).is_some_and(|q| q.dst_port.is_some_and(|p| p != target.dst_port)) {
        rewrite::set_quoted_dst_port(bytes, summary, target.dst_port);
    }
}
