//! Offload metadata: what a NIC that offloads checksums and segmentation says about a frame,
//! and what the appliance tells the egress NIC.
//!
//! A virtio-net device with checksum and segmentation offloads (and a Linux host behind a
//! tap) hands over frames that are not yet finished: a TCP or UDP checksum that is only the
//! pseudo-header's sum (*partial*: whoever takes the frame last completes it), and whole
//! *super-frames* — an IPv4 or IPv6 packet of up to 65,535 bytes carrying many segments'
//! worth of TCP payload, to be cut into segments of `size` bytes on the last link. [`Offload`] is
//! that metadata (virtio 1.2 5.1.6, `struct virtio_net_hdr`, which is also Linux's GSO
//! metadata on taps and packet sockets); [`Offload::from_virtio_net_hdr`] and
//! [`Offload::to_virtio_net_hdr`] are its wire format.
//!
//! The data plane trusts none of it: [`Offload::check`] validates it against the parsed
//! packet (a partial checksum where the packet's TCP or UDP checksum is, a segmentation of
//! the protocol and IP version the packet carries, a non-zero segment size, never on a
//! fragment), and a
//! frame whose metadata does not hold is dropped as malformed with the reason, like any
//! other bad frame. The egress NIC says what it can take ([`NicOffloads`]); what it cannot
//! is done in software ([`crate::segmenter`]).
//!
//! IPv6: a partial TCP or UDP checksum is handled as for IPv4 (the transport header starts
//! after the extension headers; NAT66 moves the pseudo-header's sum with the addresses,
//! [`crate::rewrite`]), and so is a TCP super-frame ([`GsoKind::TcpV6`], TSO6: its
//! checksum starts after the extension headers, its segments are checked against the MTU,
//! and an egress without `HOST_TSO6` gets them cut in software). A UDP super-frame (UFO)
//! of IPv6 would have to be fragmented, which the appliance never does to IPv6: it is
//! refused as malformed ([`OffloadError::SegmentationOfIpv6`]), as is a TSO4 super-frame
//! carrying IPv6 or a TSO6 one carrying IPv4 ([`OffloadError::SegmentationMismatch`]) —
//! never forwarded with metadata that does not hold.
//!
//! Room to grow: UDP segmentation (virtio's USO) is a kind of its own; [`NicOffloads`]
//! then gains the matching capability.

use smoltcp::wire::{IpProtocol, TcpPacket, ETHERNET_HEADER_LEN, UDP_HEADER_LEN};

use crate::packet::{IpSummary, Transport};

/// Bytes of a `virtio_net_hdr` with `num_buffers` (virtio 1.0 and later): flags, GSO type,
/// header length, GSO size, checksum start and offset, buffers merged.
pub const VIRTIO_NET_HDR_LEN: usize = 12;

/// `flags`: the checksum at `csum_start + csum_offset` is partial.
const HDR_F_NEEDS_CSUM: u8 = 1;
/// `gso_type` values, and the ECN bit that may be or-ed into them.
const HDR_GSO_NONE: u8 = 0;
const HDR_GSO_TCPV4: u8 = 1;
const HDR_GSO_UDP: u8 = 3;
const HDR_GSO_TCPV6: u8 = 4;
const HDR_GSO_ECN: u8 = 0x80;

/// Where the TCP checksum sits in its header, and the UDP checksum in its.
const TCP_CHECKSUM_OFFSET: u16 = 16;
const UDP_CHECKSUM_OFFSET: u16 = 6;

/// A transport checksum left partial: the 16-bit field at `start + offset` (offsets from
/// the start of the Ethernet frame) holds the one's-complement sum of the pseudo-header,
/// not complemented, and the checksum is to be computed over `start..` the end of the
/// packet and stored there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialChecksum {
    /// Where the checksummed bytes start (the transport header).
    pub start: u16,
    /// Where the checksum field is, from `start`.
    pub offset: u16,
}

/// What a super-frame is cut into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoKind {
    /// TCP over IPv4 (TSO): segments of `size` bytes of payload, each with its own TCP and
    /// IP header.
    TcpV4,
    /// TCP over IPv6 (TSO6): as [`GsoKind::TcpV4`], each segment with its own IPv6
    /// header (extension headers included) and TCP header.
    TcpV6,
    /// UDP over IPv4 (UFO): one datagram, cut into IP fragments of `size` bytes of payload.
    Udp,
    /// A GSO type the appliance does not handle (never negotiated; the value as received).
    Unsupported(u8),
}

/// A super-frame: cut into segments on the last link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segmentation {
    /// What it is cut into.
    pub kind: GsoKind,
    /// Bytes of payload per segment (TCP: the MSS; UDP: per fragment).
    pub size: u16,
    /// The sender uses ECN: CWR may be set on the super-frame (it stays on the first
    /// segment only).
    pub ecn: bool,
}

/// A frame's offload metadata. The default is a plain frame: checksums complete, one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    /// The TCP or UDP checksum is partial.
    pub partial_checksum: Option<PartialChecksum>,
    /// The frame is a super-frame.
    pub segmentation: Option<Segmentation>,
}

/// Why a frame's offload metadata cannot be right for its packet (the frame is dropped as
/// malformed, with this as its detail).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OffloadError {
    /// A partial checksum on something other than a TCP or UDP checksum.
    ChecksumNotTransport,
    /// A partial checksum whose start or field is not the packet's TCP or UDP checksum.
    ChecksumMisplaced,
    /// A partial checksum on a fragment (the checksum covers the whole datagram).
    ChecksumOnFragment,
    /// A super-frame without a partial checksum.
    SegmentationWithoutChecksum,
    /// A segment size of 0.
    SegmentSizeZero,
    /// A GSO type that is not the packet's protocol, or one the appliance does not handle.
    SegmentationMismatch,
    /// A super-frame that is a fragment.
    SegmentationOfFragment,
    /// A UDP super-frame (UFO) of IPv6: it stands for IPv6 fragments, which the appliance
    /// never makes.
    SegmentationOfIpv6,
}

impl OffloadError {
    /// A short name for logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            OffloadError::ChecksumNotTransport => "offload-checksum-not-tcp-udp",
            OffloadError::ChecksumMisplaced => "offload-checksum-misplaced",
            OffloadError::ChecksumOnFragment => "offload-checksum-on-fragment",
            OffloadError::SegmentationWithoutChecksum => "offload-gso-without-checksum",
            OffloadError::SegmentSizeZero => "offload-gso-size-zero",
            OffloadError::SegmentationMismatch => "offload-gso-type-mismatch",
            OffloadError::SegmentationOfFragment => "offload-gso-on-fragment",
            OffloadError::SegmentationOfIpv6 => "offload-ufo-ipv6",
        }
    }
}

impl Offload {
    /// A plain frame.
    pub const PLAIN: Offload = Offload {
        partial_checksum: None,
        segmentation: None,
    };

    /// Whether the frame is plain (complete checksums, one packet).
    pub fn is_plain(&self) -> bool {
        self.partial_checksum.is_none() && self.segmentation.is_none()
    }

    /// Reads a received `virtio_net_hdr`. `DATA_VALID` (the device checked the checksum) is
    /// not kept: the appliance never verifies transport checksums, and a frame with it set
    /// is a plain frame. Nothing is validated here: see [`Offload::check`].
    pub fn from_virtio_net_hdr(header: &[u8; VIRTIO_NET_HDR_LEN]) -> Offload {
        let field = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let (flags, gso_type) = (header[0], header[1]);
        let partial_checksum = (flags & HDR_F_NEEDS_CSUM != 0).then(|| PartialChecksum {
            start: field(6),
            offset: field(8),
        });
        let kind = match gso_type & !HDR_GSO_ECN {
            HDR_GSO_NONE if gso_type == HDR_GSO_NONE => None,
            HDR_GSO_TCPV4 => Some(GsoKind::TcpV4),
            HDR_GSO_TCPV6 => Some(GsoKind::TcpV6),
            HDR_GSO_UDP => Some(GsoKind::Udp),
            _ => Some(GsoKind::Unsupported(gso_type)),
        };
        Offload {
            partial_checksum,
            segmentation: kind.map(|kind| Segmentation {
                kind,
                size: field(4),
                ecn: gso_type & HDR_GSO_ECN != 0,
            }),
        }
    }

    /// The `virtio_net_hdr` to transmit `frame` (the Ethernet frame this metadata is
    /// about) with. `hdr_len` is the length of its headers, Ethernet to transport, which
    /// Linux uses to size an skb's linear part. [`GsoKind::Unsupported`] is never
    /// transmitted: it never passes [`Offload::check`].
    pub fn to_virtio_net_hdr(&self, frame: &[u8]) -> [u8; VIRTIO_NET_HDR_LEN] {
        let mut header = [0u8; VIRTIO_NET_HDR_LEN];
        let Some(partial) = self.partial_checksum else {
            return header;
        };
        header[0] = HDR_F_NEEDS_CSUM;
        let start = partial.start as usize;
        let transport_len = match partial.offset {
            TCP_CHECKSUM_OFFSET => frame
                .get(start..)
                .and_then(|tcp| TcpPacket::new_checked(tcp).ok())
                .map_or(0, |tcp| tcp.header_len() as usize),
            _ => UDP_HEADER_LEN,
        };
        let header_len = (start + transport_len).min(frame.len()) as u16;
        header[2..4].copy_from_slice(&header_len.to_le_bytes());
        header[6..8].copy_from_slice(&partial.start.to_le_bytes());
        header[8..10].copy_from_slice(&partial.offset.to_le_bytes());
        if let Some(segmentation) = self.segmentation {
            let gso_type = match segmentation.kind {
                GsoKind::TcpV4 => HDR_GSO_TCPV4,
                GsoKind::TcpV6 => HDR_GSO_TCPV6,
                GsoKind::Udp => HDR_GSO_UDP,
                GsoKind::Unsupported(value) => value & !HDR_GSO_ECN,
            };
            header[1] = gso_type | if segmentation.ecn { HDR_GSO_ECN } else { 0 };
            header[4..6].copy_from_slice(&segmentation.size.to_le_bytes());
        }
        header
    }

    /// Checks the metadata against the packet it came with (`ip`, parsed from the frame's
    /// IPv4 or IPv6 payload). See the module documentation.
    pub fn check(&self, ip: &IpSummary) -> Result<(), OffloadError> {
        if let Some(partial) = self.partial_checksum {
            let offset = match ip.protocol {
                IpProtocol::Tcp => TCP_CHECKSUM_OFFSET,
                IpProtocol::Udp => UDP_CHECKSUM_OFFSET,
                _ => return Err(OffloadError::ChecksumNotTransport),
            };
            if ip.is_fragment() {
                return Err(OffloadError::ChecksumOnFragment);
            }
            let transport_start = ETHERNET_HEADER_LEN + ip.header_len;
            if partial.start as usize != transport_start || partial.offset != offset {
                return Err(OffloadError::ChecksumMisplaced);
            }
        }
        if let Some(segmentation) = self.segmentation {
            if self.partial_checksum.is_none() {
                return Err(OffloadError::SegmentationWithoutChecksum);
            }
            if segmentation.size == 0 {
                return Err(OffloadError::SegmentSizeZero);
            }
            let matches = match (segmentation.kind, ip.transport) {
                (GsoKind::TcpV4, Transport::Tcp(_)) => !ip.is_ipv6(),
                (GsoKind::TcpV6, Transport::Tcp(_)) => ip.is_ipv6(),
                (GsoKind::Udp, Transport::Udp { .. }) => true,
                _ => false,
            };
            if !matches {
                return Err(OffloadError::SegmentationMismatch);
            }
            if ip.is_ipv6() && segmentation.kind == GsoKind::Udp {
                return Err(OffloadError::SegmentationOfIpv6);
            }
            if ip.is_fragment() {
                return Err(OffloadError::SegmentationOfFragment);
            }
        }
        Ok(())
    }

    /// The length of the largest IP packet the frame becomes on the wire: one segment
    /// (IP and transport headers and `size` bytes of payload) for a super-frame, the whole
    /// packet otherwise. This is what the egress MTU is checked against, as Linux does
    /// (`skb_gso_validate_network_len`). UDP with DF set is the whole datagram: it may not
    /// be cut into fragments.
    pub fn wire_packet_len(&self, ip: &IpSummary) -> usize {
        let Some(segmentation) = self.segmentation else {
            return ip.total_len;
        };
        let size = segmentation.size as usize;
        let segment = match (segmentation.kind, ip.transport) {
            (GsoKind::TcpV4 | GsoKind::TcpV6, Transport::Tcp(tcp)) => {
                let tcp_header_len = ip.total_len - ip.header_len - tcp.payload_len as usize;
                ip.header_len + tcp_header_len + size
            }
            (GsoKind::Udp, _) if !ip.dont_fragment => ip.header_len + size,
            _ => ip.total_len,
        };
        segment.min(ip.total_len)
    }
}

/// The offloads a NIC takes on transmission (negotiated with its device).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicOffloads {
    /// It completes partial TCP/UDP checksums (virtio `CSUM`).
    pub checksum: bool,
    /// It cuts TCP/IPv4 super-frames into segments (`HOST_TSO4`).
    pub tcp4_segmentation: bool,
    /// It cuts TCP/IPv6 super-frames into segments (`HOST_TSO6`).
    pub tcp6_segmentation: bool,
    /// ... including those with CWR set (`HOST_ECN`).
    pub ecn: bool,
    /// It cuts UDP super-frames into fragments (`HOST_UFO`).
    pub udp_fragmentation: bool,
}

/// What becomes of an offloaded frame on an egress NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Egress {
    /// The NIC takes the frame as it is, metadata and all.
    AsIs,
    /// The checksum is completed in software; the frame then leaves plain.
    CompleteChecksum,
    /// The super-frame is cut into plain packets in software.
    Segment,
}

impl NicOffloads {
    /// What becomes of a frame with `offload` leaving through this NIC, when each of its
    /// segments is `fits` within the NIC's MTU.
    pub fn egress(&self, offload: &Offload, fits: bool) -> Egress {
        match (offload.segmentation, offload.partial_checksum) {
            (None, None) => Egress::AsIs,
            (None, Some(_)) if self.checksum => Egress::AsIs,
            (None, Some(_)) => Egress::CompleteChecksum,
            (Some(segmentation), _) => {
                let kind = match segmentation.kind {
                    GsoKind::TcpV4 => self.tcp4_segmentation && (self.ecn || !segmentation.ecn),
                    GsoKind::TcpV6 => self.tcp6_segmentation && (self.ecn || !segmentation.ecn),
                    GsoKind::Udp => self.udp_fragmentation,
                    GsoKind::Unsupported(_) => false,
                };
                if kind && self.checksum && fits {
                    Egress::AsIs
                } else {
                    Egress::Segment
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::packets;

    fn header(flags: u8, gso_type: u8, gso_size: u16, start: u16, offset: u16) -> [u8; 12] {
        let mut h = [0u8; 12];
        h[0] = flags;
        h[1] = gso_type;
        h[2..4].copy_from_slice(&54u16.to_le_bytes());
        h[4..6].copy_from_slice(&gso_size.to_le_bytes());
        h[6..8].copy_from_slice(&start.to_le_bytes());
        h[8..10].copy_from_slice(&offset.to_le_bytes());
        h
    }

    fn tcp_packet(payload: usize) -> IpSummary {
        let bytes = packets::tcp(
            ([10, 137, 1, 10], 40000),
            ([198, 51, 100, 80], 5201),
            (1, 1, 0x18),
            &alloc::vec![7u8; payload],
        );
        IpSummary::parse(&bytes).unwrap()
    }

    fn tso(size: u16) -> Offload {
        Offload {
            partial_checksum: Some(PartialChecksum {
                start: 34,
                offset: 16,
            }),
            segmentation: Some(Segmentation {
                kind: GsoKind::TcpV4,
                size,
                ecn: false,
            }),
        }
    }

    #[test]
    fn a_tso_header_as_linux_writes_it_is_read() {
        let offload = Offload::from_virtio_net_hdr(&header(1, 1, 1448, 34, 16));
        assert_eq!(offload, tso(1448));
    }

    #[test]
    fn data_valid_alone_is_a_plain_frame() {
        assert!(Offload::from_virtio_net_hdr(&header(2, 0, 0, 0, 0)).is_plain());
    }

    #[test]
    fn the_ecn_bit_and_unknown_gso_types_are_kept_apart() {
        let ecn = Offload::from_virtio_net_hdr(&header(1, 0x81, 1448, 34, 16));
        assert_eq!(
            ecn.segmentation.map(|s| (s.kind, s.ecn)),
            Some((GsoKind::TcpV4, true))
        );
        let tcp6 = Offload::from_virtio_net_hdr(&header(1, 0x84, 1428, 54, 16));
        assert_eq!(
            tcp6.segmentation.map(|s| (s.kind, s.ecn)),
            Some((GsoKind::TcpV6, true))
        );
        let uso = Offload::from_virtio_net_hdr(&header(1, 5, 1428, 54, 6));
        assert_eq!(
            uso.segmentation.map(|s| s.kind),
            Some(GsoKind::Unsupported(5))
        );
        let ecn_alone = Offload::from_virtio_net_hdr(&header(0, 0x80, 0, 0, 0));
        assert_eq!(
            ecn_alone.segmentation.map(|s| s.kind),
            Some(GsoKind::Unsupported(0x80))
        );
    }

    #[test]
    fn a_header_written_reads_back_the_same() {
        let frame = packets::ethernet(
            smoltcp::wire::EthernetAddress([2, 0, 0, 0, 0, 1]),
            smoltcp::wire::EthernetAddress([2, 0, 0, 0, 0, 2]),
            &packets::tcp(
                ([10, 137, 1, 10], 40000),
                ([198, 51, 100, 80], 5201),
                (1, 1, 0x18),
                &[7; 3000],
            ),
        );
        for offload in [
            Offload::PLAIN,
            tso(1448),
            Offload {
                segmentation: None,
                ..tso(0)
            },
            Offload {
                segmentation: Some(Segmentation {
                    kind: GsoKind::Udp,
                    size: 1472,
                    ecn: false,
                }),
                partial_checksum: Some(PartialChecksum {
                    start: 34,
                    offset: 6,
                }),
            },
        ] {
            assert_eq!(
                Offload::from_virtio_net_hdr(&offload.to_virtio_net_hdr(&frame)),
                offload
            );
        }
        // Ethernet, IPv4 and TCP headers: 14 + 20 + 20.
        assert_eq!(
            &tso(1448).to_virtio_net_hdr(&frame)[2..4],
            &54u16.to_le_bytes()
        );
        assert_eq!(Offload::PLAIN.to_virtio_net_hdr(&frame), [0; 12]);
    }

    #[test]
    fn a_tso_frame_of_a_tcp_packet_checks() {
        assert_eq!(tso(1448).check(&tcp_packet(20_000)), Ok(()));
    }

    #[test]
    fn malformed_metadata_is_refused_with_its_reason() {
        let ip = tcp_packet(20_000);
        let misplaced = Offload {
            partial_checksum: Some(PartialChecksum {
                start: 60_000,
                offset: 16,
            }),
            ..tso(1448)
        };
        assert_eq!(misplaced.check(&ip), Err(OffloadError::ChecksumMisplaced));
        let wrong_field = Offload {
            partial_checksum: Some(PartialChecksum {
                start: 34,
                offset: 6,
            }),
            ..tso(1448)
        };
        assert_eq!(wrong_field.check(&ip), Err(OffloadError::ChecksumMisplaced));
        assert_eq!(tso(0).check(&ip), Err(OffloadError::SegmentSizeZero));
        let without_checksum = Offload {
            partial_checksum: None,
            ..tso(1448)
        };
        assert_eq!(
            without_checksum.check(&ip),
            Err(OffloadError::SegmentationWithoutChecksum)
        );
        let udp_gso = Offload {
            segmentation: Some(Segmentation {
                kind: GsoKind::Udp,
                size: 1448,
                ecn: false,
            }),
            ..tso(1448)
        };
        assert_eq!(udp_gso.check(&ip), Err(OffloadError::SegmentationMismatch));
        let mut fragment = packets::tcp(
            ([10, 137, 1, 10], 40000),
            ([198, 51, 100, 80], 5201),
            (1, 1, 0x18),
            // 20 bytes of TCP header and 3004 of data: a fragment payload a multiple of 8.
            &[7; 3004],
        );
        packets::set_fragment(&mut fragment, true, 0);
        let fragment = IpSummary::parse(&fragment).unwrap();
        assert_eq!(
            tso(1448).check(&fragment),
            Err(OffloadError::ChecksumOnFragment)
        );
        let icmp = packets::icmp_echo([10, 137, 1, 10], [1, 1, 1, 1], true, 1, 1, b"x");
        let icmp = IpSummary::parse(&icmp).unwrap();
        let partial_only = Offload {
            segmentation: None,
            ..tso(0)
        };
        assert_eq!(
            partial_only.check(&icmp),
            Err(OffloadError::ChecksumNotTransport)
        );
    }

    #[test]
    fn a_tso6_header_reads_back_the_same_and_names_the_ipv6_headers() {
        use crate::testutil::offload::{super_packet6, tso6};
        let frame = packets::ethernet_of(
            smoltcp::wire::EthernetProtocol::Ipv6,
            smoltcp::wire::EthernetAddress([2, 0, 0, 0, 0, 1]),
            smoltcp::wire::EthernetAddress([2, 0, 0, 0, 0, 2]),
            &super_packet6(3000, 1, 0x10),
        );
        let header = tso6(40, 1428).to_virtio_net_hdr(&frame);
        assert_eq!(header[1], HDR_GSO_TCPV6);
        // Ethernet, IPv6 and TCP headers: 14 + 40 + 20.
        assert_eq!(&header[2..4], &74u16.to_le_bytes());
        assert_eq!(Offload::from_virtio_net_hdr(&header), tso6(40, 1428));
    }

    #[test]
    fn a_tso6_frame_checks_after_the_extension_headers_and_only_on_ipv6() {
        use crate::testutil::offload::{completed, partial, super_packet6, tso6};
        use crate::testutil::packets6::{self, Extension};
        let plain = super_packet6(20_000, 1, 0x10);
        let ip = IpSummary::parse_ipv6(&plain).unwrap();
        assert_eq!(tso6(40, 1428).check(&ip), Ok(()));
        // 40 bytes of IPv6, 20 of TCP, 1428 of payload.
        assert_eq!(tso6(40, 1428).wire_packet_len(&ip), 1488);
        let options = partial(&packets6::with_extensions(
            &completed(&plain),
            &[Extension::DestinationOptions],
        ));
        let options = IpSummary::parse_ipv6(&options).unwrap();
        assert_eq!(tso6(48, 1428).check(&options), Ok(()));
        assert_eq!(tso6(48, 1428).wire_packet_len(&options), 1496);
        assert_eq!(
            tso6(40, 1428).check(&options),
            Err(OffloadError::ChecksumMisplaced),
            "the checksum before the extension headers"
        );
        assert_eq!(tso6(40, 0).check(&ip), Err(OffloadError::SegmentSizeZero));
        let udp_field = Offload {
            partial_checksum: Some(PartialChecksum {
                start: 54,
                offset: UDP_CHECKSUM_OFFSET,
            }),
            ..tso6(40, 1428)
        };
        assert_eq!(udp_field.check(&ip), Err(OffloadError::ChecksumMisplaced));
        let tso4_on_ipv6 = Offload {
            segmentation: tso(1428).segmentation,
            ..tso6(40, 1428)
        };
        assert_eq!(
            tso4_on_ipv6.check(&ip),
            Err(OffloadError::SegmentationMismatch)
        );
        let tso6_on_ipv4 = Offload {
            segmentation: tso6(40, 1448).segmentation,
            ..tso(1448)
        };
        assert_eq!(
            tso6_on_ipv4.check(&tcp_packet(20_000)),
            Err(OffloadError::SegmentationMismatch)
        );
        let udp = packets6::udp(
            packets6::addr("fd00::10"),
            53,
            packets6::addr("fd00::1"),
            53,
            &[1; 3000],
        );
        let udp = IpSummary::parse_ipv6(&udp).unwrap();
        let tso6_on_udp = Offload {
            partial_checksum: Some(PartialChecksum {
                start: 54,
                offset: UDP_CHECKSUM_OFFSET,
            }),
            ..tso6(40, 1428)
        };
        assert_eq!(
            tso6_on_udp.check(&udp),
            Err(OffloadError::SegmentationMismatch)
        );
    }

    #[test]
    fn an_ipv6_partial_checksum_checks_after_the_extension_headers_and_a_udp_super_frame_does_not()
    {
        use crate::testutil::packets6::{self, addr, Extension};
        let udp = packets6::udp(addr("fd00::10"), 5353, addr("2001:db8::80"), 53, &[1; 3000]);
        let udp = packets6::with_extensions(&udp, &[Extension::HopByHop]);
        let ip = IpSummary::parse_ipv6(&udp).unwrap();
        let at = |start: usize| PartialChecksum {
            start: start as u16,
            offset: UDP_CHECKSUM_OFFSET,
        };
        let partial = Offload {
            partial_checksum: Some(at(ETHERNET_HEADER_LEN + 48)),
            segmentation: None,
        };
        assert_eq!(partial.check(&ip), Ok(()));
        let before_the_options = Offload {
            partial_checksum: Some(at(ETHERNET_HEADER_LEN + 40)),
            segmentation: None,
        };
        assert_eq!(
            before_the_options.check(&ip),
            Err(OffloadError::ChecksumMisplaced)
        );
        let ufo = Offload {
            segmentation: Some(Segmentation {
                kind: GsoKind::Udp,
                size: 1232,
                ecn: false,
            }),
            ..partial
        };
        assert_eq!(ufo.check(&ip), Err(OffloadError::SegmentationOfIpv6));
    }

    #[test]
    fn the_mtu_is_checked_against_one_segment_not_the_super_frame() {
        let ip = tcp_packet(20_000);
        // 20 bytes of IP, 20 of TCP, 1448 of payload.
        assert_eq!(tso(1448).wire_packet_len(&ip), 1488);
        assert_eq!(Offload::PLAIN.wire_packet_len(&ip), 20_040);
        // A super-frame with less than one segment of payload is just that packet.
        assert_eq!(tso(1448).wire_packet_len(&tcp_packet(100)), 140);
    }

    #[test]
    fn an_egress_takes_what_it_negotiated_and_software_does_the_rest() {
        let full = NicOffloads {
            checksum: true,
            tcp4_segmentation: true,
            tcp6_segmentation: false,
            ecn: false,
            udp_fragmentation: false,
        };
        let partial = Offload {
            segmentation: None,
            ..tso(0)
        };
        assert_eq!(full.egress(&tso(1448), true), Egress::AsIs);
        assert_eq!(full.egress(&tso(1448), false), Egress::Segment);
        assert_eq!(full.egress(&partial, true), Egress::AsIs);
        let mut with_ecn = tso(1448);
        with_ecn.segmentation = with_ecn
            .segmentation
            .map(|s| Segmentation { ecn: true, ..s });
        assert_eq!(full.egress(&with_ecn, true), Egress::Segment);
        let none = NicOffloads::default();
        assert_eq!(none.egress(&tso(1448), true), Egress::Segment);
        assert_eq!(none.egress(&partial, true), Egress::CompleteChecksum);
        assert_eq!(none.egress(&Offload::PLAIN, true), Egress::AsIs);
        let tso6 = crate::testutil::offload::tso6(40, 1428);
        assert_eq!(full.egress(&tso6, true), Egress::Segment, "no HOST_TSO6");
        let with_tso6 = NicOffloads {
            tcp6_segmentation: true,
            ..full
        };
        assert_eq!(with_tso6.egress(&tso6, true), Egress::AsIs);
        assert_eq!(with_tso6.egress(&tso6, false), Egress::Segment);
    }
}
