//! The language's fixed vocabulary: protocol, service and ICMP names, reserved words, and
//! "did you mean" suggestions.

/// IP protocols known by name (`proto NAME` or a bare `NAME` in a rule).
pub const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("ipencap", 4),
    ("tcp", 6),
    ("udp", 17),
    ("ipv6", 41),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmp6", 58),
    ("ipv6-icmp", 58),
    ("ospf", 89),
    ("pim", 103),
    ("vrrp", 112),
    ("l2tp", 115),
    ("sctp", 132),
];

/// IP protocol number of ICMP.
pub const ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const TCP: u8 = 6;
/// IP protocol number of UDP.
pub const UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const ICMP6: u8 = 58;
/// IP protocol number of SCTP.
pub const SCTP: u8 = 132;

/// Whether packets of `protocol` carry ports the matcher sees.
pub fn has_ports(protocol: u8) -> bool {
    matches!(protocol, TCP | UDP | SCTP)
}

/// The IPv4 options a packet description may carry (`options { ... }`), by name, with
/// their option numbers (RFC 791, RFC 2113).
pub const IP_OPTIONS: &[(&str, u8)] = &[
    ("router-alert", dataplane::ip_options::ROUTER_ALERT),
    ("lsrr", dataplane::ip_options::LOOSE_SOURCE_ROUTE),
    ("ssrr", dataplane::ip_options::STRICT_SOURCE_ROUTE),
    ("record-route", dataplane::ip_options::RECORD_ROUTE),
    ("timestamp", dataplane::ip_options::TIMESTAMP),
];

/// The option number of the IP option called `name`.
pub fn ip_option_by_name(name: &str) -> Option<u8> {
    IP_OPTIONS.iter().find(|(n, _)| *n == name).map(|&(_, k)| k)
}

/// The name of IP option number `kind`.
pub fn ip_option_name(kind: u8) -> Option<&'static str> {
    IP_OPTIONS.iter().find(|(_, k)| *k == kind).map(|&(n, _)| n)
}

/// Whether `protocol` is ICMP or ICMPv6 (has types and codes).
pub fn is_icmp(protocol: u8) -> bool {
    matches!(protocol, ICMP | ICMP6)
}

/// The protocol called `name`.
pub fn protocol_by_name(name: &str) -> Option<u8> {
    PROTOCOLS.iter().find(|(n, _)| *n == name).map(|&(_, p)| p)
}

/// The usual name of protocol `number`, if it has one.
pub fn protocol_name(number: u8) -> Option<&'static str> {
    PROTOCOLS
        .iter()
        .find(|(_, p)| *p == number)
        .map(|&(n, _)| n)
}

/// Well-known services usable in place of a port number.
pub const SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("dns", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("http", 80),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("https", 443),
    ("submission", 587),
    ("imaps", 993),
    ("openvpn", 1194),
    ("wireguard", 51820),
];

/// The port of service `name`.
pub fn service_port(name: &str) -> Option<u16> {
    SERVICES.iter().find(|(n, _)| *n == name).map(|&(_, p)| p)
}

/// An ICMP or ICMPv6 message type by name, with its named codes.
pub struct IcmpType {
    /// The name used in rules.
    pub name: &'static str,
    /// The type number.
    pub number: u8,
    /// Named codes.
    pub codes: &'static [(&'static str, u8)],
}

const UNREACH4_CODES: &[(&str, u8)] = &[
    ("net-unreachable", 0),
    ("host-unreachable", 1),
    ("protocol-unreachable", 2),
    ("port-unreachable", 3),
    ("fragmentation-needed", 4),
    ("source-route-failed", 5),
    ("net-unknown", 6),
    ("host-unknown", 7),
    ("net-prohibited", 9),
    ("host-prohibited", 10),
    ("admin-prohibited", 13),
];

const REDIRECT4_CODES: &[(&str, u8)] = &[
    ("redirect-net", 0),
    ("redirect-host", 1),
    ("redirect-tos-net", 2),
    ("redirect-tos-host", 3),
];

const TIMEX_CODES: &[(&str, u8)] = &[("ttl-exceeded", 0), ("reassembly-timeout", 1)];

/// ICMP (IPv4) message types.
pub const ICMP4_TYPES: &[IcmpType] = &[
    IcmpType {
        name: "echo-reply",
        number: 0,
        codes: &[],
    },
    IcmpType {
        name: "unreachable",
        number: 3,
        codes: UNREACH4_CODES,
    },
    IcmpType {
        name: "source-quench",
        number: 4,
        codes: &[],
    },
    IcmpType {
        name: "redirect",
        number: 5,
        codes: REDIRECT4_CODES,
    },
    IcmpType {
        name: "echo-request",
        number: 8,
        codes: &[],
    },
    IcmpType {
        name: "router-advertisement",
        number: 9,
        codes: &[],
    },
    IcmpType {
        name: "router-solicitation",
        number: 10,
        codes: &[],
    },
    IcmpType {
        name: "time-exceeded",
        number: 11,
        codes: TIMEX_CODES,
    },
    IcmpType {
        name: "parameter-problem",
        number: 12,
        codes: &[],
    },
    IcmpType {
        name: "timestamp",
        number: 13,
        codes: &[],
    },
    IcmpType {
        name: "timestamp-reply",
        number: 14,
        codes: &[],
    },
];

const UNREACH6_CODES: &[(&str, u8)] = &[
    ("no-route", 0),
    ("admin-prohibited", 1),
    ("beyond-scope", 2),
    ("address-unreachable", 3),
    ("port-unreachable", 4),
];

/// ICMPv6 message types.
pub const ICMP6_TYPES: &[IcmpType] = &[
    IcmpType {
        name: "unreachable",
        number: 1,
        codes: UNREACH6_CODES,
    },
    IcmpType {
        name: "packet-too-big",
        number: 2,
        codes: &[],
    },
    IcmpType {
        name: "time-exceeded",
        number: 3,
        codes: TIMEX_CODES,
    },
    IcmpType {
        name: "parameter-problem",
        number: 4,
        codes: &[],
    },
    IcmpType {
        name: "echo-request",
        number: 128,
        codes: &[],
    },
    IcmpType {
        name: "echo-reply",
        number: 129,
        codes: &[],
    },
    IcmpType {
        name: "router-solicitation",
        number: 133,
        codes: &[],
    },
    IcmpType {
        name: "router-advertisement",
        number: 134,
        codes: &[],
    },
    IcmpType {
        name: "neighbor-solicitation",
        number: 135,
        codes: &[],
    },
    IcmpType {
        name: "neighbor-advertisement",
        number: 136,
        codes: &[],
    },
    IcmpType {
        name: "redirect",
        number: 137,
        codes: &[],
    },
];

/// The ICMP type table of `protocol` (ICMP or ICMPv6).
pub fn icmp_types(protocol: u8) -> &'static [IcmpType] {
    if protocol == ICMP6 {
        ICMP6_TYPES
    } else {
        ICMP4_TYPES
    }
}

/// Words that cannot name an interface, client or table.
pub const RESERVED: &[&str] = &["any", "self", "upstream", "all"];

/// Statement keywords (for suggestions).
pub const STATEMENTS: &[&str] = &[
    "interface",
    "client",
    "table",
    "nat",
    "forward",
    "dns",
    "pass",
    "block",
    "reject",
    "default",
    "test",
];

/// Keywords that may follow the action of a filter rule (for suggestions).
pub const RULE_CLAUSES: &[&str] = &[
    "log",
    "forwarded",
    "allow-opts",
    "from",
    "to",
    "port",
    "proto",
    "type",
    "code",
    "max-states",
    "max-src-states",
];

/// Edit distance between `a` and `b` (insertions, deletions, substitutions, transpositions).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, c)| (d, c))
        .map(|(_, c)| c)
}

/// `did you mean 'X'?` for the candidate closest to `word`.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean '{c}'?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_within_a_third_of_the_length_are_suggested() {
        assert_eq!(closest("wrok", ["work", "personal"]), Some("work"));
        assert_eq!(closest("pas", STATEMENTS.iter().copied()), Some("pass"));
        assert_eq!(closest("zzzz", ["work"]), None);
    }

    #[test]
    fn icmp_names_resolve_per_family() {
        let find = |p: u8, n: &str| icmp_types(p).iter().find(|t| t.name == n).map(|t| t.number);
        assert_eq!(find(ICMP, "echo-request"), Some(8));
        assert_eq!(find(ICMP6, "echo-request"), Some(128));
        assert_eq!(find(ICMP, "packet-too-big"), None);
    }
}
