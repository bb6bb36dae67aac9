//! Flow keys and range sets in the language's own words, for explanations and warnings.

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane::policy::{
    flow_addr_to_ipv4, FlowKey, OUT_SELF, REDIRECT_DNS, REDIRECT_FORWARD, REDIRECT_NONE,
};

use crate::checked::Checked;
use crate::concrete::ConcretePacket;
use crate::names::{self, has_ports, is_icmp};
use crate::outcome::addr_text;
use crate::ranges::RangeSet;
use crate::space::Field;

/// `tcp 10.137.0.10:40000 -> 1.1.1.1:443 on lan (out uplink)`
pub fn packet_text(checked: &Checked, key: &FlowKey) -> String {
    packet_words(checked, key, true)
}

/// `tcp 10.137.0.10:40000 -> 1.1.1.1:443 on lan`, the egress left out (a packet as it was
/// sent, before any routing decided one).
pub fn sent_packet_text(checked: &Checked, key: &FlowKey) -> String {
    packet_words(checked, key, false)
}

fn packet_words(checked: &Checked, key: &FlowKey, with_egress: bool) -> String {
    let protocol = names::protocol_name(key.protocol)
        .map_or_else(|| format!("proto {}", key.protocol), str::to_string);
    let endpoint = |addr: u128, port: u16| {
        let host = addr_text(addr);
        let host = if flow_addr_to_ipv4(addr).is_none() && has_ports(key.protocol) {
            format!("[{host}]")
        } else {
            host
        };
        if has_ports(key.protocol) {
            format!("{host}:{port}")
        } else {
            host
        }
    };
    let mut text = format!(
        "{protocol} {} -> {} on {}",
        endpoint(key.src, key.src_port),
        endpoint(key.dst, key.dst_port),
        nic_text(checked, key.in_nic),
    );
    if with_egress {
        text.push_str(&format!(" (out {})", nic_text(checked, key.out)));
    }
    if is_icmp(key.protocol) {
        text.push_str(&format!(" type {} code {}", key.icmp_type, key.icmp_code));
    }
    text
}

/// What a described packet says beyond its flow key, as it says it: `" options { lsrr }"`,
/// `" mac 02:00:00:00:00:01"`, `" broadcast"` (empty for a plain packet).
pub fn packet_extras(packet: &ConcretePacket) -> String {
    let mut text = String::new();
    let options: Vec<&str> = packet
        .options
        .kinds()
        .filter_map(names::ip_option_name)
        .collect();
    match options[..] {
        [] => {}
        [one] => text.push_str(&format!(" options {one}")),
        _ => text.push_str(&format!(" options {{ {} }}", options.join(", "))),
    }
    if let Some(mac) = packet.mac {
        text.push_str(&format!(" mac {}", mac_text(mac)));
    }
    if packet.broadcast {
        text.push_str(" broadcast");
    }
    text
}

/// A MAC as the language writes it: `00:16:3e:5e:6c:00`.
pub fn mac_text(mac: [u8; 6]) -> String {
    let bytes: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    bytes.join(":")
}

/// The interface on NIC `nic` by name, `self`, or `nicN`.
pub fn nic_text(checked: &Checked, nic: u8) -> String {
    if nic == OUT_SELF {
        return "self".to_string();
    }
    checked
        .interface_on(nic)
        .map_or_else(|| format!("nic{nic}"), |i| i.name.clone())
}

/// A field's range set as the language would write it (`{ lan, uplink }`, `10.0.0.0/8`,
/// `1024-65535`, `any`).
pub fn set_text(checked: &Checked, field: Field, set: &RangeSet) -> String {
    if set.is_full(field.max()) {
        return "any".to_string();
    }
    let mut items: Vec<String> = Vec::new();
    for &(first, last) in set.ranges() {
        match field {
            Field::InNic | Field::Out => {
                items.extend((first..=last).map(|n| nic_text(checked, n as u8)))
            }
            Field::Protocol => items.extend((first..=last).map(|p| {
                names::protocol_name(p as u8).map_or_else(|| p.to_string(), str::to_string)
            })),
            Field::Src | Field::Dst => return addr_set_text(set),
            Field::Redirect => items.extend((first..=last).map(|r| redirect_text(r as u8))),
            _ if first == last => items.push(first.to_string()),
            _ => items.push(format!("{first}-{last}")),
        }
        if items.len() > 8 {
            items.truncate(8);
            items.push("...".to_string());
            break;
        }
    }
    match items.len() {
        1 => items.remove(0),
        _ => format!("{{ {} }}", items.join(", ")),
    }
}

/// A destination NAT value as explanations say it.
fn redirect_text(redirect: u8) -> String {
    match redirect {
        REDIRECT_NONE => "none",
        REDIRECT_FORWARD => "a port forward",
        REDIRECT_DNS => "the DNS redirect",
        _ => "another",
    }
    .to_string()
}

/// An address set as CIDRs, or as `not ...` when its complement is shorter to write.
fn addr_set_text(set: &RangeSet) -> String {
    let complement = set.complement(u128::MAX);
    let (negated, shown) = if complement.ranges().len() < set.ranges().len() {
        ("not ", &complement)
    } else {
        ("", set)
    };
    let mut items: Vec<String> = Vec::new();
    for &(first, last) in shown.ranges() {
        items.extend(cidrs(first, last));
        if items.len() > 8 {
            items.truncate(8);
            items.push("...".to_string());
            break;
        }
    }
    match items.len() {
        0 => "nothing".to_string(),
        1 => format!("{negated}{}", items[0]),
        _ => format!("{negated}{{ {} }}", items.join(", ")),
    }
}

/// The fewest CIDR blocks covering `first..=last` (IPv4-mapped ones written as IPv4).
fn cidrs(first: u128, last: u128) -> Vec<String> {
    // The last address of the aligned block of 2^bits addresses starting at `start`.
    let block_last = |start: u128, bits: u32| {
        if bits >= 128 {
            u128::MAX
        } else {
            start + ((1u128 << bits) - 1)
        }
    };
    let mut out = Vec::new();
    let mut start = first;
    loop {
        let mut bits = start.trailing_zeros();
        while block_last(start, bits) > last {
            bits -= 1;
        }
        let end = block_last(start, bits);
        out.push(cidr_text(start, 128 - bits));
        if end >= last || out.len() > 8 {
            break;
        }
        start = end + 1;
    }
    out
}

fn cidr_text(start: u128, prefix: u32) -> String {
    match flow_addr_to_ipv4(start) {
        Some(v4) if prefix >= 96 => {
            let len = prefix - 96;
            if len == 32 {
                Ipv4Addr::from(v4).to_string()
            } else {
                format!("{}/{len}", Ipv4Addr::from(v4))
            }
        }
        _ if prefix == 128 => Ipv6Addr::from(start).to_string(),
        _ => format!("{}/{prefix}", Ipv6Addr::from(start)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::policy::ipv4_to_flow_addr;

    #[test]
    fn address_ranges_read_back_as_cidrs() {
        let v4 = |a: [u8; 4]| ipv4_to_flow_addr(u32::from(Ipv4Addr::from(a)));
        assert_eq!(
            cidrs(v4([10, 0, 0, 0]), v4([10, 255, 255, 255])),
            vec!["10.0.0.0/8"]
        );
        assert_eq!(
            cidrs(v4([10, 0, 0, 1]), v4([10, 0, 0, 1])),
            vec!["10.0.0.1"]
        );
        assert_eq!(
            cidrs(v4([10, 0, 0, 0]), v4([10, 0, 0, 2])),
            vec!["10.0.0.0/31", "10.0.0.2"]
        );
        assert_eq!(cidrs(0, u128::MAX), vec!["::/0"]);
    }
}
