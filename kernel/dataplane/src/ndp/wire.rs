//! Neighbour-discovery messages on the wire: parsing a received frame once into an
//! [`NdFrame`], and building the frames the appliance sends — all with `smoltcp::wire`.
//!
//! smoltcp's `NdiscRepr` keeps one prefix option of a router advertisement and no RDNSS
//! option (RFC 8106), so [`RaOptions::parse`] walks a router advertisement's options itself
//! with `NdiscOption`/`NdiscOptionRepr` (each option length-checked by smoltcp); only the
//! RDNSS body (a lifetime and addresses), which smoltcp hands over as an unknown option's
//! bytes, is read here.

use alloc::vec::Vec;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Duration;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, Ipv6Address, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscOption,
    NdiscOptionRepr, NdiscPrefixInformation, NdiscRepr, RawHardwareAddress, ETHERNET_HEADER_LEN,
    IPV6_HEADER_LEN,
};

use crate::arp::is_station;
use crate::sink::FrameSink;

/// The hop limit every ND message is sent with and must arrive with (RFC 4861 §6.1: a
/// message with a smaller one has crossed a router and is not from the link).
pub const ND_HOP_LIMIT: u8 = 255;

/// The RDNSS option's type (RFC 8106).
pub const RDNSS_OPTION: u8 = 25;

/// At most this many prefixes of one router advertisement are used.
pub const MAX_PREFIXES: usize = 4;

/// At most this many resolvers of one RDNSS option are used.
pub const MAX_RESOLVERS: usize = 3;

/// Why a frame is not a usable ND message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdError {
    /// Not an ICMPv6 neighbour-discovery message (the caller handles it).
    NotNd,
    /// An ND message that RFC 4861's validity checks refuse; the text names the check.
    Invalid(&'static str),
}

/// A received ND message with the addresses around it.
#[derive(Debug)]
pub struct NdFrame<'a> {
    /// Link-layer source.
    pub eth_src: EthernetAddress,
    /// Link-layer destination.
    pub eth_dst: EthernetAddress,
    /// IPv6 source.
    pub src: Ipv6Address,
    /// IPv6 destination.
    pub dst: Ipv6Address,
    /// The message.
    pub message: NdiscRepr<'a>,
    /// The message's options, as they came (a router advertisement's are walked by
    /// [`RaOptions::parse`]).
    pub options: &'a [u8],
}

impl<'a> NdFrame<'a> {
    /// Parses an Ethernet frame. [`NdError::NotNd`] for anything that is not an ICMPv6
    /// RS/RA/NS/NA/redirect; [`NdError::Invalid`] for an ND message that fails RFC 4861's
    /// checks (hop limit 255, code 0, checksum, length).
    pub fn parse(frame: &'a [u8]) -> Result<NdFrame<'a>, NdError> {
        let eth = EthernetFrame::new_checked(frame).map_err(|_| NdError::NotNd)?;
        if eth.ethertype() != EthernetProtocol::Ipv6 {
            return Err(NdError::NotNd);
        }
        let eth_payload: &'a [u8] = &frame[ETHERNET_HEADER_LEN..];
        let ip = Ipv6Packet::new_checked(eth_payload).map_err(|_| NdError::NotNd)?;
        let ip_repr = Ipv6Repr::parse(&ip).map_err(|_| NdError::NotNd)?;
        if ip_repr.next_header != IpProtocol::Icmpv6 {
            return Err(NdError::NotNd);
        }
        let end = IPV6_HEADER_LEN + ip_repr.payload_len;
        let body: &'a [u8] = eth_payload
            .get(IPV6_HEADER_LEN..end)
            .ok_or(NdError::NotNd)?;
        let icmp = Icmpv6Packet::new_checked(body).map_err(|_| NdError::NotNd)?;
        if !(133..=137).contains(&u8::from(icmp.msg_type())) {
            return Err(NdError::NotNd);
        }
        if ip_repr.hop_limit != ND_HOP_LIMIT {
            return Err(NdError::Invalid("nd-hop-limit-not-255"));
        }
        if icmp.msg_code() != 0 {
            return Err(NdError::Invalid("nd-code-not-0"));
        }
        let repr = Icmpv6Repr::parse(
            &ip_repr.src_addr,
            &ip_repr.dst_addr,
            &icmp,
            &ChecksumCapabilities::default(),
        )
        .map_err(|_| NdError::Invalid("nd-malformed"))?;
        let Icmpv6Repr::Ndisc(message) = repr else {
            return Err(NdError::Invalid("nd-malformed"));
        };
        if ip_repr.src_addr.is_multicast() {
            return Err(NdError::Invalid("nd-source-multicast"));
        }
        let from_unspecified = ip_repr.src_addr.is_unspecified();
        match message {
            // Only DAD probes (solicitations) and solicitations of a host without an
            // address yet (RFC 4861 §6.1.1) come from `::`.
            NdiscRepr::NeighborAdvert { .. }
            | NdiscRepr::RouterAdvert { .. }
            | NdiscRepr::Redirect { .. }
                if from_unspecified =>
            {
                return Err(NdError::Invalid("nd-source-unspecified"));
            }
            NdiscRepr::RouterSolicit { lladdr: Some(_) } if from_unspecified => {
                return Err(NdError::Invalid("nd-dad-malformed"));
            }
            _ => {}
        }
        Ok(NdFrame {
            eth_src: eth.src_addr(),
            eth_dst: eth.dst_addr(),
            src: ip_repr.src_addr,
            dst: ip_repr.dst_addr,
            message,
            options: icmp.payload(),
        })
    }
}

/// The DNS servers of an RDNSS option and how long they may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rdnss {
    /// Lifetime (0: stop using them).
    pub lifetime: Duration,
    /// The resolvers, at most [`MAX_RESOLVERS`].
    pub servers: Vec<Ipv6Address>,
}

/// What a router advertisement's options say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaOptions {
    /// The router's link-layer address.
    pub source_mac: Option<EthernetAddress>,
    /// The link MTU.
    pub mtu: Option<u32>,
    /// Prefix information options, at most [`MAX_PREFIXES`].
    pub prefixes: Vec<NdiscPrefixInformation>,
    /// The RDNSS option, if any (the first one).
    pub rdnss: Option<Rdnss>,
}

impl RaOptions {
    /// Walks a router advertisement's options (`options`: what follows its fixed part).
    /// An option with a length of zero or past the end makes the whole message invalid
    /// (RFC 4861 §6.1.2); options the appliance does not use are skipped.
    pub fn parse(options: &[u8]) -> Result<RaOptions, NdError> {
        let mut out = RaOptions::default();
        let mut offset = 0;
        while offset < options.len() {
            let option = NdiscOption::new_checked(&options[offset..])
                .map_err(|_| NdError::Invalid("nd-option-length"))?;
            let len = usize::from(option.data_len()) * 8;
            if len == 0 {
                return Err(NdError::Invalid("nd-option-length"));
            }
            match NdiscOptionRepr::parse(&option) {
                Ok(NdiscOptionRepr::SourceLinkLayerAddr(mac)) => {
                    out.source_mac = ethernet(mac);
                }
                Ok(NdiscOptionRepr::Mtu(mtu)) => out.mtu = Some(mtu),
                Ok(NdiscOptionRepr::PrefixInformation(prefix)) => {
                    if out.prefixes.len() < MAX_PREFIXES {
                        out.prefixes.push(prefix);
                    }
                }
                Ok(NdiscOptionRepr::Unknown {
                    type_: RDNSS_OPTION,
                    data,
                    ..
                }) if out.rdnss.is_none() => out.rdnss = Some(parse_rdnss(data)?),
                _ => {}
            }
            offset += len;
        }
        Ok(out)
    }
}

/// An RDNSS option's body after its type and length bytes: 2 reserved bytes, a 32-bit
/// lifetime in seconds, then 16-byte addresses (RFC 8106 §5.1).
fn parse_rdnss(data: &[u8]) -> Result<Rdnss, NdError> {
    let invalid = NdError::Invalid("nd-rdnss-malformed");
    let lifetime = data.get(2..6).ok_or(invalid)?;
    let addresses = data.get(6..).ok_or(invalid)?;
    if addresses.is_empty() || addresses.len() % 16 != 0 {
        return Err(invalid);
    }
    let seconds = u32::from_be_bytes([lifetime[0], lifetime[1], lifetime[2], lifetime[3]]);
    let servers = addresses
        .chunks_exact(16)
        .filter_map(|chunk| <[u8; 16]>::try_from(chunk).ok())
        .map(Ipv6Address::from)
        .filter(|a| !a.is_multicast() && !a.is_unspecified())
        .take(MAX_RESOLVERS)
        .collect();
    Ok(Rdnss {
        lifetime: Duration::from_secs(u64::from(seconds)),
        servers,
    })
}

/// The body of an RDNSS option for `servers` (what follows its type and length bytes).
fn rdnss_body(lifetime: Duration, servers: &[Ipv6Address]) -> Vec<u8> {
    let seconds = u32::try_from(lifetime.secs()).unwrap_or(u32::MAX);
    let mut body = Vec::with_capacity(6 + 16 * servers.len());
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&seconds.to_be_bytes());
    for server in servers {
        body.extend_from_slice(&server.octets());
    }
    body
}

/// An Ethernet address from an option's link-layer address (none if it is not six bytes,
/// or is multicast, broadcast or zero: never learned).
pub fn ethernet(raw: RawHardwareAddress) -> Option<EthernetAddress> {
    let bytes: [u8; 6] = raw.as_bytes().try_into().ok()?;
    let mac = EthernetAddress(bytes);
    is_station(mac).then_some(mac)
}

/// An ND message to send, with the addresses around it.
#[derive(Clone, Debug)]
pub struct Outgoing<'a> {
    /// Link-layer source (the NIC's MAC).
    pub eth_src: EthernetAddress,
    /// Link-layer destination.
    pub eth_dst: EthernetAddress,
    /// IPv6 source.
    pub src: Ipv6Address,
    /// IPv6 destination.
    pub dst: Ipv6Address,
    /// The message.
    pub message: NdiscRepr<'a>,
    /// An RDNSS option appended to a router advertisement: lifetime and resolvers.
    pub rdnss: Option<(Duration, &'a [Ipv6Address])>,
}

impl Outgoing<'_> {
    /// The frame's length.
    pub fn len(&self) -> usize {
        ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + self.icmp_len()
    }

    /// Whether the frame is empty (never).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn icmp_len(&self) -> usize {
        let rdnss = self.rdnss.map_or(0, |(_, servers)| 8 + 16 * servers.len());
        Icmpv6Repr::Ndisc(self.message).buffer_len() + rdnss
    }

    /// Writes the frame into `out` ([`Outgoing::len`] bytes).
    pub fn emit(&self, out: &mut [u8]) {
        let mut frame = EthernetFrame::new_unchecked(&mut *out);
        EthernetRepr {
            src_addr: self.eth_src,
            dst_addr: self.eth_dst,
            ethertype: EthernetProtocol::Ipv6,
        }
        .emit(&mut frame);
        let icmp_len = self.icmp_len();
        let ip_repr = Ipv6Repr {
            src_addr: self.src,
            dst_addr: self.dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp_len,
            hop_limit: ND_HOP_LIMIT,
        };
        let mut ip = Ipv6Packet::new_unchecked(frame.payload_mut());
        ip_repr.emit(&mut ip);
        let body = ip.payload_mut();
        let mut icmp = Icmpv6Packet::new_unchecked(&mut *body);
        let repr = Icmpv6Repr::Ndisc(self.message);
        repr.emit(
            &self.src,
            &self.dst,
            &mut icmp,
            &ChecksumCapabilities::default(),
        );
        if let Some((lifetime, servers)) = self.rdnss {
            let data = rdnss_body(lifetime, servers);
            let option = NdiscOptionRepr::Unknown {
                type_: RDNSS_OPTION,
                length: (1 + 2 * servers.len()) as u8,
                data: &data,
            };
            let at = repr.buffer_len();
            option.emit(&mut NdiscOption::new_unchecked(&mut body[at..]));
            Icmpv6Packet::new_unchecked(&mut *body).fill_checksum(&self.src, &self.dst);
        }
    }

    /// Sends the frame on `nic`; `false` if the sink dropped it.
    pub fn send(&self, nic: u8, sink: &mut dyn FrameSink) -> bool {
        sink.transmit(nic, self.len(), &mut |out| self.emit(out))
    }
}

/// A neighbour advertisement for `target` at `mac` (`solicited`: in answer to a
/// solicitation; always with the router and override flags: the appliance is a router and
/// owns its addresses).
pub fn advert(target: Ipv6Address, mac: EthernetAddress, solicited: bool) -> NdiscRepr<'static> {
    let mut flags = NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE;
    if solicited {
        flags |= NdiscNeighborFlags::SOLICITED;
    }
    NdiscRepr::NeighborAdvert {
        flags,
        target_addr: target,
        lladdr: Some(mac.into()),
    }
}

/// A neighbour solicitation for `target`, with our link-layer address unless the source is
/// `::` (duplicate address detection, RFC 4861 §4.3).
pub fn solicit(target: Ipv6Address, mac: Option<EthernetAddress>) -> NdiscRepr<'static> {
    NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: mac.map(Into::into),
    }
}
