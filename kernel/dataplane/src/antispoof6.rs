//! IPv6 anti-spoofing: whether an IPv6 packet's source may arrive on the NIC it arrived on
//! — the IPv6 counterpart of [`SourceFilter`](crate::antispoof::SourceFilter), with the
//! same reasons ([`Spoofed`]).
//!
//! - **everywhere**: a source that is never a host's (unspecified, loopback, multicast,
//!   IPv4-mapped) and the appliance's own addresses are refused;
//! - **a client NIC**: the source must be a client declared on that NIC, an address in one of
//!   the NIC's prefixes (a client that chose its own address by SLAAC, or a privacy
//!   address), or a link-local address (which never leaves the link: routing refuses to
//!   forward it). A client declared on another NIC is refused, even inside the prefix;
//! - **the uplink**: a source in a client NIC's prefix, or a declared client's address, is
//!   refused (nobody outside may pose as a client); anything else is accepted.
//!
//! The rules read the IPv6 routes' view of each NIC's addresses
//! ([`Ipv6Routes`]), which follows SLAAC and static configuration as they change.

use smoltcp::wire::Ipv6Address;

use crate::antispoof::Spoofed;
use crate::route6::{is_link_local, Ipv6Routes};

/// Whether `src` can never be a host's address.
pub fn is_martian_source(src: Ipv6Address) -> bool {
    src.is_unspecified()
        || src.is_loopback()
        || src.is_multicast()
        || src.to_ipv4_mapped().is_some()
}

/// Whether a packet from `src` may arrive on NIC `nic`. See the module documentation.
pub fn check(routes: &Ipv6Routes, nic: u8, src: Ipv6Address) -> Result<(), Spoofed> {
    if is_martian_source(src) {
        return Err(Spoofed::MartianSource);
    }
    if routes.owner_of(src).is_some() {
        return Err(Spoofed::OwnAddress);
    }
    let declared_on = routes.client_nic(src);
    if routes.uplink() == Some(nic) {
        let in_client_prefix = routes
            .client_nics()
            .any(|client_nic| !is_link_local(src) && routes.on_link(client_nic, src));
        return match declared_on.is_some() || in_client_prefix {
            true => Err(Spoofed::ClientSourceOnUplink),
            false => Ok(()),
        };
    }
    match declared_on {
        Some(owner) if owner == nic => Ok(()),
        Some(_) => Err(Spoofed::NotADeclaredClient),
        None if is_link_local(src) || routes.on_link(nic, src) => Ok(()),
        None => Err(Spoofed::OutsideClientNetwork),
    }
}
