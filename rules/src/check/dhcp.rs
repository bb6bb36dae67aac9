//! `dhcp on IFACE [pool A-B] [lease DURATION] [max-states N]`: the DHCP server of a client
//! interface.

use std::net::Ipv4Addr;

use crate::ast::DhcpDecl;
use crate::checked::{Addressing, DhcpDef};
use crate::diag::Diagnostic;

use super::Checker;

/// The lease time when the statement gives none (one hour).
pub const DEFAULT_LEASE_SECS: u32 = 3600;
/// The shortest lease granted: clients renew at half of it.
pub const MIN_LEASE_SECS: u32 = 60;
/// The longest lease granted (a week).
pub const MAX_LEASE_SECS: u32 = 7 * 86_400;
/// The most addresses a pool may have (the lease table's bound per interface).
pub const MAX_POOL: u32 = 4096;

impl Checker<'_> {
    /// Checks a `dhcp` statement (after every `dns` redirect is known).
    pub(super) fn dhcp(&mut self, decl: &DhcpDecl) {
        match self.try_dhcp(decl) {
            Ok(def) => self.out.dhcp.push(def),
            Err(d) => self.error(d),
        }
    }

    fn try_dhcp(&mut self, decl: &DhcpDecl) -> Result<DhcpDef, Diagnostic> {
        let iface = self.interface_named(&decl.on.value, decl.on.loc)?.clone();
        let on = &decl.on;
        if iface.uplink {
            return Err(Diagnostic::error(
                on.loc,
                format!(
                    "'{}' is the uplink; the DHCP server serves client interfaces",
                    on.value
                ),
            ));
        }
        let Addressing::Static {
            address,
            prefix_len,
            ..
        } = iface.addressing
        else {
            return Err(Diagnostic::error(
                on.loc,
                format!("'{}' has no static address to serve DHCP from", on.value),
            )
            .with_hint("give the interface an address: interface NAME nicN address A/P")
            .with_note(iface.name_loc, "the interface is declared here"));
        };
        if let Some(earlier) = self.out.dhcp.iter().find(|d| d.nic == iface.nic) {
            return Err(
                Diagnostic::error(on.loc, format!("'{}' is served twice", on.value))
                    .with_note(earlier.loc, "the first dhcp statement for it"),
            );
        }
        let pool = match &decl.pool {
            Some(pool) => {
                Some(self.check_pool(pool.value, pool.loc, &iface.name, address, prefix_len)?)
            }
            None => None,
        };
        let lease_secs = match &decl.lease {
            Some(lease) if !(MIN_LEASE_SECS..=MAX_LEASE_SECS).contains(&lease.value) => {
                return Err(Diagnostic::error(
                    lease.loc,
                    format!("a lease of {} s is outside 60 s ..= 7 d", lease.value),
                ))
            }
            Some(lease) => lease.value,
            None => DEFAULT_LEASE_SECS,
        };
        let redirects_dns = self
            .out
            .dns
            .iter()
            .any(|d| d.in_nics.contains(u128::from(iface.nic)));
        if !redirects_dns {
            self.diags.push(
                Diagnostic::warning(
                    on.loc,
                    format!(
                        "clients on '{}' get no DNS server: DNS from it is not redirected",
                        on.value
                    ),
                )
                .with_hint(format!("add: dns from {} to upstream", on.value)),
            );
        }
        if pool.is_none()
            && !self
                .out
                .clients
                .iter()
                .any(|c| c.nic == iface.nic && c.ipv4.is_some())
        {
            return Err(Diagnostic::error(
                decl.loc,
                format!(
                    "the server on '{}' has no address to give: no pool and no declared client",
                    on.value
                ),
            )
            .with_hint("add a pool: dhcp on IFACE pool A-B"));
        }
        Ok(DhcpDef {
            loc: decl.loc,
            nic: iface.nic,
            pool,
            lease_secs,
            max_states: decl.max_states.as_ref().map_or(0, |m| m.value),
        })
    }

    /// A pool must be hosts of the interface's network, not the appliance, no declared
    /// client, and at most [`MAX_POOL`] addresses.
    fn check_pool(
        &self,
        (first, last): (Ipv4Addr, Ipv4Addr),
        loc: crate::source::Loc,
        iface: &str,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(Ipv4Addr, Ipv4Addr), Diagnostic> {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(prefix_len))
            .unwrap_or(0);
        let network = u32::from(address) & mask;
        let broadcast = network | !mask;
        let (a, b) = (u32::from(first), u32::from(last));
        let inside =
            |x: u32| x & mask == network && (prefix_len >= 31 || (x != network && x != broadcast));
        if !inside(a) || !inside(b) {
            return Err(Diagnostic::error(
                loc,
                format!(
                    "the pool {first}-{last} is not made of hosts of '{iface}' ({}/{prefix_len})",
                    Ipv4Addr::from(network)
                ),
            ));
        }
        if b - a + 1 > MAX_POOL {
            return Err(Diagnostic::error(
                loc,
                format!(
                    "the pool has {} addresses; at most {MAX_POOL} are served per interface",
                    b - a + 1
                ),
            ));
        }
        if (a..=b).contains(&u32::from(address)) {
            return Err(Diagnostic::error(
                loc,
                format!("the pool contains the appliance's own address {address}"),
            ));
        }
        if let Some(client) = self
            .out
            .clients
            .iter()
            .find(|c| c.ipv4.is_some_and(|ip| (a..=b).contains(&u32::from(ip))))
        {
            return Err(Diagnostic::error(
                loc,
                format!(
                    "the pool contains {}, the address of client '{}'",
                    client.ipv4.unwrap_or(first),
                    client.name
                ),
            )
            .with_note(client.name_loc, "the client is declared here")
            .with_hint("declared clients get their own address; keep the pool clear of them"));
        }
        Ok((first, last))
    }
}
