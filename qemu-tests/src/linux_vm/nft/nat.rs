//! Address translation: port forwards and DNS redirects (destination NAT, before the filter
//! rules, which then see the translated packet, as Moat's rules do; each marks its
//! connection with the value Moat's flow key gives it, for `forwarded` rules), and
//! masquerade (source NAT after them). nftables consults NAT chains for the first packet of a connection only;
//! its replies are translated back by connection tracking, as by Moat's state table.

use dataplane::policy::{REDIRECT_DNS, REDIRECT_FORWARD};
use rules::checked::{Checked, DnsTarget};
use rules::ranges::RangeSet;

use super::syntax::{field_match, interfaces, numbers};
use rules::space::Field;

/// The rules of the `dstnat` chain, in Moat's order: port forwards first, then DNS
/// redirects. Fails for what has no static translation (DNS resolvers learned by DHCP).
pub fn destination_nat(checked: &Checked) -> Result<Vec<String>, String> {
    let mut rules = Vec::new();
    // The comparator's tables are IPv4 (`table ip`): so are the forwards it translates.
    for forward in checked.forwards.iter().filter(|f| f.target.is_ipv4()) {
        let interface = checked.interface_on(forward.in_nic);
        let Some(address) = interface.and_then(|i| i.address()) else {
            return Err(format!(
                "the port forward on nic{} needs the interface's static address",
                forward.in_nic
            ));
        };
        let protocol = match forward.protocol {
            6 => "tcp",
            17 => "udp",
            other => return Err(format!("a port forward of protocol {other}")),
        };
        let (first, last) = forward.ports;
        let head = format!(
            "iifname {} ip daddr {address} {protocol} dport {}",
            interfaces(&RangeSet::single(forward.in_nic.into())),
            numbers(&RangeSet::range(first.into(), last.into()))
        );
        let target = forward.target;
        let to = if first == last {
            format!("dnat to {target}:{}", forward.target_port)
        } else if forward.target_port == first {
            format!("dnat to {target}")
        } else {
            let map: Vec<String> = (first..=last)
                .map(|port| format!("{port} : {}", forward.translate_port(port)))
                .collect();
            format!(
                "dnat to {target} : {protocol} dport map {{ {} }}",
                map.join(", ")
            )
        };
        rules.push(format!("{head} ct mark set {REDIRECT_FORWARD} {to}"));
    }
    for dns in &checked.dns {
        let resolver = match &dns.target {
            DnsTarget::Static(list) | DnsTarget::Learned(Some(list)) => list.first(),
            DnsTarget::Learned(None) => None,
        }
        .ok_or_else(|| {
            "a DNS redirect to resolvers learned by DHCP (only static resolvers translate)"
                .to_string()
        })?;
        for &(first, last) in dns.in_nics.ranges() {
            for nic in first..=last {
                let Some(address) = checked.interface_on(nic as u8).and_then(|i| i.address())
                else {
                    continue; // no address: no DNS addressed to it
                };
                rules.push(format!(
                    "iifname {} ip daddr {address} meta l4proto {{ 6, 17 }} th dport 53 ct mark set {REDIRECT_DNS} dnat to {resolver}",
                    interfaces(&RangeSet::single(nic))
                ));
            }
        }
    }
    Ok(rules)
}

/// The rules of the `srcnat` chain: each `nat` part as a masquerade.
pub fn source_nat(checked: &Checked, nics: &RangeSet) -> Vec<String> {
    checked
        .masquerades
        .iter()
        .filter_map(|masquerade| {
            let in_nics = masquerade.in_nic.intersect(nics);
            let sources = masquerade.src.intersect(&super::syntax::ipv4_space());
            if in_nics.is_empty() || sources.is_empty() {
                return None;
            }
            let mut matches = Vec::new();
            if in_nics != *nics {
                matches.push(field_match(Field::InNic, &in_nics));
            }
            if sources != super::syntax::ipv4_space() {
                matches.push(field_match(Field::Src, &sources));
            }
            matches.push(field_match(
                Field::Out,
                &RangeSet::single(masquerade.out_nic.into()),
            ));
            Some(format!("{} masquerade", matches.join(" ")))
        })
        .collect()
}
