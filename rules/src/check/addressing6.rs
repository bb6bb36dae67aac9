//! An interface's IPv6 addressing (`address6`, `gateway6`, `slaac`) and router
//! advertisements (`ra`), and a client's IPv6 address on its interface.

use std::net::Ipv6Addr;

use super::decls::client_on_subnet;
use super::Checker;
use crate::ast::{self, InterfaceDecl};
use crate::checked::{is_link_local6, prefix_of, Addressing6, InterfaceDef};
use crate::diag::Diagnostic;
use crate::source::Loc;

/// The prefix length router advertisements need for SLAAC (RFC 4862 with EUI-64
/// interface identifiers).
const SLAAC_PREFIX_LEN: u8 = 64;

/// Why `addr` cannot be an interface's or a client's unicast address, if it cannot.
fn not_unicast(addr: Ipv6Addr) -> Option<&'static str> {
    if addr.is_unspecified() {
        Some("the unspecified address")
    } else if addr.is_loopback() {
        Some("the loopback address")
    } else if addr.is_multicast() {
        Some("a multicast address")
    } else if is_link_local6(addr) {
        Some("link-local (every interface has its own link-local address, made from its MAC)")
    } else if addr.to_ipv4_mapped().is_some() {
        Some("an IPv4-mapped address")
    } else {
        None
    }
}

impl Checker<'_> {
    /// The checked IPv6 addressing of `decl`, checked against itself and the interfaces
    /// declared before it.
    pub(super) fn addressing6(&self, decl: &InterfaceDecl) -> Result<Addressing6, Diagnostic> {
        let (address, prefix_len, gateway) = match &decl.addressing6 {
            ast::Addressing6::None => return Ok(Addressing6::None),
            ast::Addressing6::Slaac(_) => return Ok(Addressing6::Slaac),
            ast::Addressing6::Static {
                address,
                prefix_len,
                gateway,
            } => (address, *prefix_len, gateway.as_ref()),
        };
        if prefix_len == 0 {
            return Err(Diagnostic::error(
                address.loc,
                "an on-link prefix cannot be /0",
            ));
        }
        if let Some(what) = not_unicast(address.value) {
            return Err(
                Diagnostic::error(address.loc, format!("{} is {what}", address.value))
                    .with_hint("give the appliance a global or unique-local (fd00::/8) address"),
            );
        }
        let prefix = prefix_of(address.value, prefix_len);
        if prefix_len < 127 && address.value == prefix {
            return Err(Diagnostic::error(
                address.loc,
                format!(
                    "{} is the subnet-router anycast address of {prefix}/{prefix_len}",
                    address.value
                ),
            )
            .with_hint("give the appliance a host address inside the prefix, e.g. ...::1"));
        }
        if let Some(g) = gateway {
            self.gateway6(g, address.value, prefix, prefix_len)?;
        }
        for other in &self.out.interfaces {
            if let Some((theirs, len)) = other.prefix6() {
                let shorter = len.min(prefix_len);
                if prefix_of(theirs, shorter) == prefix_of(prefix, shorter) {
                    return Err(Diagnostic::error(
                        address.loc,
                        format!(
                            "prefix {prefix}/{prefix_len} overlaps interface '{}''s {theirs}/{len}",
                            other.name
                        ),
                    )
                    .with_note(other.name_loc, "declared here"));
                }
            }
        }
        Ok(Addressing6::Static {
            address: address.value,
            prefix_len,
            gateway: gateway.map(|g| g.value),
        })
    }

    /// Checks `gateway6 G` for an interface at `address` in `prefix/prefix_len`.
    fn gateway6(
        &self,
        gateway: &ast::Located<Ipv6Addr>,
        address: Ipv6Addr,
        prefix: Ipv6Addr,
        prefix_len: u8,
    ) -> Result<(), Diagnostic> {
        let g = gateway.value;
        if g == address {
            return Err(Diagnostic::error(
                gateway.loc,
                "the IPv6 gateway is the interface's own address",
            ));
        }
        if g.is_multicast() || g.is_unspecified() || g.is_loopback() {
            return Err(Diagnostic::error(
                gateway.loc,
                format!("{g} cannot be a router's address"),
            ));
        }
        if !is_link_local6(g) && prefix_of(g, prefix_len) != prefix {
            return Err(Diagnostic::error(
                gateway.loc,
                format!("IPv6 gateway {g} is outside the prefix {prefix}/{prefix_len}"),
            )
            .with_hint("a router is on-link: inside the prefix, or link-local (fe80::/10)"));
        }
        Ok(())
    }

    /// Checks `ra` on an interface addressed `addressing6` (`uplink`: whether it is the
    /// uplink).
    pub(super) fn router_adverts(
        &self,
        decl: &InterfaceDecl,
        addressing6: Addressing6,
        uplink: bool,
    ) -> Result<bool, Diagnostic> {
        let Some(loc) = decl.ra else {
            return Ok(false);
        };
        if uplink {
            return Err(Diagnostic::error(
                loc,
                "router advertisements on the uplink would announce the appliance as a router to its own upstream",
            )
            .with_hint("put 'ra' on client interfaces"));
        }
        match addressing6 {
            Addressing6::Static { prefix_len, .. } if prefix_len == SLAAC_PREFIX_LEN => Ok(true),
            Addressing6::Static {
                address,
                prefix_len,
                ..
            } => Err(Diagnostic::error(
                loc,
                format!(
                    "'ra' advertises the prefix of address6 {address}/{prefix_len} for SLAAC, which needs a /64"
                ),
            )
            .with_hint(format!("write: address6 {address}/64 ra"))),
            Addressing6::None | Addressing6::Slaac => Err(Diagnostic::error(
                loc,
                "'ra' needs a static IPv6 prefix to advertise",
            )
            .with_hint("write: address6 A/64 ra")),
        }
    }

    /// Checks that a client's IPv6 address is a host in its interface's prefix (warns
    /// when the interface has no IPv6 at all: the address is then never used).
    pub(super) fn client_address6_on(
        &mut self,
        addr: Ipv6Addr,
        iface: &InterfaceDef,
        loc: Loc,
    ) -> Result<(), Diagnostic> {
        if let Some(what) = not_unicast(addr) {
            return Err(Diagnostic::error(
                loc,
                format!("{addr} is {what}; a client's declared address is global or unique-local"),
            ));
        }
        match iface.addressing6 {
            Addressing6::None => {
                self.diags.push(
                    Diagnostic::warning(
                        loc,
                        format!(
                            "interface '{}' has no IPv6: the client's IPv6 address is never used",
                            iface.name
                        ),
                    )
                    .with_hint("add 'address6 A/P' (and 'ra') to the interface"),
                );
                Ok(())
            }
            Addressing6::Slaac => Ok(()),
            Addressing6::Static {
                address,
                prefix_len,
                ..
            } => client_on_subnet(
                iface,
                loc,
                addr,
                iface.contains6(addr),
                addr == address,
                ("prefix", prefix_of(address, prefix_len), prefix_len),
            ),
        }
    }
}
