//! Anti-spoofing, as Moat's data plane does it (`dataplane::antispoof`), as drop rules in a
//! prerouting chain that runs before connection tracking, so that it sees every packet:
//!
//! - everywhere: martian sources (0/8, 127/8, 224/3) and the appliance's own addresses;
//! - on the uplink: sources in a client network or equal to a declared client;
//! - on a client interface with declared clients: anything but those clients;
//! - on a client interface without: anything outside its network, and its network and
//!   broadcast addresses (prefixes up to /30);
//! - on an interface with neither: everything.

use std::net::Ipv4Addr;

use dataplane::policy::ipv4_to_flow_addr;
use rules::checked::{network_of, Checked};
use rules::ranges::RangeSet;

use super::syntax::{interfaces, ipv4_addresses, ipv4_space};

/// Sources refused on an interface (or on all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoofRule {
    /// The interface, or `None` for every interface.
    pub nic: Option<u8>,
    /// Refused sources.
    pub refused: RangeSet,
    /// Why, as the drop log says it.
    pub reason: &'static str,
}

impl SpoofRule {
    /// Whether a packet from `src` arriving on `nic` is refused by this rule.
    pub fn refuses(&self, nic: u8, src: Ipv4Addr) -> bool {
        self.nic.is_none_or(|own| own == nic)
            && self.refused.contains(ipv4_to_flow_addr(src.to_bits()))
    }

    /// The rule's match in nftables syntax (a complement is written as `!=` the accepted
    /// set when that is shorter).
    pub fn render_matches(&self) -> String {
        let interface = self
            .nic
            .map(|nic| format!("iifname {} ", interfaces(&RangeSet::single(nic.into()))))
            .unwrap_or_default();
        let accepted = ipv4_space().subtract(&self.refused);
        if accepted.ranges().len() < self.refused.ranges().len() {
            if accepted.is_empty() {
                return interface.trim_end().to_string();
            }
            format!("{interface}ip saddr != {}", ipv4_addresses(&accepted))
        } else {
            format!("{interface}ip saddr {}", ipv4_addresses(&self.refused))
        }
    }
}

fn v4(addr: Ipv4Addr) -> u128 {
    ipv4_to_flow_addr(addr.to_bits())
}

fn network(first: Ipv4Addr, prefix_len: u8) -> (u128, u128) {
    let size = 1u128 << (32 - u32::from(prefix_len));
    let first = v4(network_of(first, prefix_len));
    (first, first + size - 1)
}

/// The anti-spoofing rules of `checked`'s interfaces and clients, on NICs `0..nics`.
pub fn spoof_rules(checked: &Checked, nics: u8) -> Vec<SpoofRule> {
    let martian = RangeSet::from_ranges([
        network(Ipv4Addr::new(0, 0, 0, 0), 8),
        network(Ipv4Addr::new(127, 0, 0, 0), 8),
        network(Ipv4Addr::new(224, 0, 0, 0), 3),
    ]);
    let own = RangeSet::from_ranges(
        checked
            .interfaces
            .iter()
            .filter_map(|i| i.address())
            .map(|a| (v4(a), v4(a))),
    );
    let mut rules = vec![
        SpoofRule {
            nic: None,
            refused: martian,
            reason: "martian-source",
        },
        SpoofRule {
            nic: None,
            refused: own,
            reason: "spoofed-own-address",
        },
    ];
    let uplink = checked.uplink().map(|i| i.nic);
    let clients_on = |nic: u8| {
        RangeSet::from_ranges(
            checked
                .clients
                .iter()
                .filter(|c| c.nic == nic)
                .filter_map(|c| c.ipv4)
                .map(|a| (v4(a), v4(a))),
        )
    };
    let network_on = |nic: u8| {
        checked
            .interface_on(nic)
            .and_then(|i| i.network())
            .map(|(address, len)| (network(address, len), len))
    };
    let mut posing = RangeSet::empty();
    for nic in (0..nics).filter(|&nic| Some(nic) != uplink) {
        let clients = clients_on(nic);
        posing = posing.union(&clients);
        let network = network_on(nic);
        if let Some((range, _)) = network {
            posing = posing.union(&RangeSet::from_ranges([range]));
        }
        let (accepted, reason) = if !clients.is_empty() {
            (clients, "spoofed-not-a-client")
        } else if let Some(((first, last), len)) = network {
            let hosts = if len <= 30 {
                RangeSet::range(first + 1, last - 1)
            } else {
                RangeSet::range(first, last)
            };
            (hosts, "spoofed-outside-network")
        } else {
            (RangeSet::empty(), "spoofed-outside-network")
        };
        rules.push(SpoofRule {
            nic: Some(nic),
            refused: ipv4_space().subtract(&accepted),
            reason,
        });
    }
    if let Some(nic) = uplink {
        rules.push(SpoofRule {
            nic: Some(nic),
            refused: posing,
            reason: "spoofed-client-on-uplink",
        });
    }
    rules.retain(|rule| !rule.refused.is_empty());
    rules
}
