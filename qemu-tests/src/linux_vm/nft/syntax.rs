//! How values are written in nftables' language: interface names, numbers and IPv4
//! addresses as single values, ranges, prefixes and anonymous sets.

use std::net::Ipv4Addr;

use dataplane::policy::ipv4_to_flow_addr;
use rules::ranges::RangeSet;
use rules::space::Field;

/// The Linux VM's name for `nic<nic>` (its setup renames the device with that MAC to it).
pub fn nic_name(nic: u8) -> String {
    format!("nic{nic}")
}

/// The whole IPv4 address space as flow addresses (`::ffff:0.0.0.0/96`).
pub fn ipv4_space() -> RangeSet {
    RangeSet::range(ipv4_to_flow_addr(0), ipv4_to_flow_addr(u32::MAX))
}

/// `items` as one value, or as an anonymous set `{ a, b }`.
pub fn set_of(items: Vec<String>) -> String {
    if items.len() == 1 {
        items.into_iter().next().unwrap_or_default()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

/// A set of numbers: `80`, `1024-65535`, `{ 22, 80-81 }`.
pub fn numbers(set: &RangeSet) -> String {
    set_of(
        set.ranges()
            .iter()
            .map(|&(first, last)| {
                if first == last {
                    first.to_string()
                } else {
                    format!("{first}-{last}")
                }
            })
            .collect(),
    )
}

/// A set of interfaces by name: `"nic0"`, `{ "nic1", "nic2" }`.
pub fn interfaces(set: &RangeSet) -> String {
    set_of(
        set.ranges()
            .iter()
            .flat_map(|&(first, last)| first..=last)
            .map(|nic| format!("\"{}\"", nic_name(nic as u8)))
            .collect(),
    )
}

/// A set of IPv4 addresses (flow addresses inside [`ipv4_space`]): each range as an
/// address, a prefix when it is one, or `first-last`.
pub fn ipv4_addresses(set: &RangeSet) -> String {
    set_of(
        set.ranges()
            .iter()
            .map(|&(first, last)| ipv4_range(first as u32, last as u32))
            .collect(),
    )
}

fn ipv4_range(first: u32, last: u32) -> String {
    let size = u64::from(last - first) + 1;
    if first == last {
        Ipv4Addr::from(first).to_string()
    } else if size.is_power_of_two() && u64::from(first) % size == 0 {
        format!("{}/{}", Ipv4Addr::from(first), 32 - size.trailing_zeros())
    } else {
        format!("{}-{}", Ipv4Addr::from(first), Ipv4Addr::from(last))
    }
}

/// The match of `field` against `set`, e.g. `ip saddr 10.137.1.0/24`.
pub fn field_match(field: Field, set: &RangeSet) -> String {
    match field {
        Field::InNic => format!("iifname {}", interfaces(set)),
        Field::Out => format!("oifname {}", interfaces(set)),
        Field::Protocol => format!("meta l4proto {}", numbers(set)),
        Field::Src => format!("ip saddr {}", ipv4_addresses(set)),
        Field::Dst => format!("ip daddr {}", ipv4_addresses(set)),
        Field::SrcPort => format!("th sport {}", numbers(set)),
        Field::DstPort => format!("th dport {}", numbers(set)),
        Field::IcmpType => format!("icmp type {}", numbers(set)),
        Field::IcmpCode => format!("icmp code {}", numbers(set)),
        // The destination NAT, as the mark the `dstnat` chain gives the connection.
        Field::Redirect => format!("ct mark {}", numbers(set)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> u128 {
        ipv4_to_flow_addr(u32::from_be_bytes(a))
    }

    #[test]
    fn address_ranges_are_written_as_addresses_prefixes_or_ranges() {
        let set = RangeSet::from_ranges([
            (v4([10, 137, 1, 0]), v4([10, 137, 1, 255])),
            (v4([10, 137, 2, 2]), v4([10, 137, 2, 2])),
            (v4([10, 137, 3, 1]), v4([10, 137, 3, 6])),
        ]);
        assert_eq!(
            field_match(Field::Src, &set),
            "ip saddr { 10.137.1.0/24, 10.137.2.2, 10.137.3.1-10.137.3.6 }"
        );
        let everything = ipv4_space();
        assert_eq!(ipv4_addresses(&everything), "0.0.0.0/0");
    }

    #[test]
    fn ports_interfaces_and_protocols_are_single_values_or_sets() {
        assert_eq!(
            field_match(Field::DstPort, &RangeSet::single(443)),
            "th dport 443"
        );
        assert_eq!(
            field_match(Field::DstPort, &RangeSet::from_ranges([(22, 22), (80, 81)])),
            "th dport { 22, 80-81 }"
        );
        assert_eq!(
            field_match(Field::InNic, &RangeSet::range(1, 2)),
            "iifname { \"nic1\", \"nic2\" }"
        );
        assert_eq!(
            field_match(Field::Protocol, &RangeSet::from_ranges([(6, 6), (17, 17)])),
            "meta l4proto { 6, 17 }"
        );
    }
}
