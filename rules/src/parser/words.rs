//! Reading single words: names, numbers, addresses, CIDRs, ports.
//!
//! Each function takes the word's text and location and returns the value or a diagnostic
//! that says what is wrong with it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

use crate::diag::Diagnostic;
use crate::names::{self, RESERVED, SERVICES};
use crate::source::Loc;

/// A declared name: a letter or `_`, then letters, digits, `_` and `-`; not reserved.
pub fn name(text: &str, loc: Loc, what: &str) -> Result<String, Diagnostic> {
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(
            Diagnostic::error(loc, format!("'{text}' is not a valid {what} name"))
                .with_hint("names start with a letter and contain letters, digits, '_' and '-'"),
        );
    }
    if RESERVED.contains(&text) {
        return Err(Diagnostic::error(
            loc,
            format!("'{text}' is a reserved word and cannot name a {what}"),
        ));
    }
    Ok(text.to_string())
}

/// A decimal number in `0..=max`.
pub fn number(text: &str, loc: Loc, what: &str, max: u64) -> Result<u64, Diagnostic> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Diagnostic::error(
            loc,
            format!("expected {what} (a number), found '{text}'"),
        ));
    }
    match text.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(Diagnostic::error(
            loc,
            format!("{what} {text} is out of range (0-{max})"),
        )),
    }
}

/// A MAC address: six bytes in hex, separated by `:` (or `-`), e.g. `00:16:3e:5e:6c:00`.
pub fn mac(text: &str, loc: Loc) -> Result<[u8; 6], Diagnostic> {
    let bytes: Vec<Option<u8>> = text
        .split([':', '-'])
        .map(|b| {
            (b.len() == 2)
                .then(|| u8::from_str_radix(b, 16).ok())
                .flatten()
        })
        .collect();
    match bytes[..] {
        [Some(a), Some(b), Some(c), Some(d), Some(e), Some(f)] => Ok([a, b, c, d, e, f]),
        _ => Err(
            Diagnostic::error(loc, format!("'{text}' is not a MAC address"))
                .with_hint("write six bytes in hex: 00:16:3e:5e:6c:00"),
        ),
    }
}

/// A positive count (state limits).
pub fn count(text: &str, loc: Loc, what: &str) -> Result<u32, Diagnostic> {
    let n = number(text, loc, what, u64::from(u32::MAX))? as u32;
    if n == 0 {
        return Err(Diagnostic::error(loc, format!("{what} must be at least 1"))
            .with_hint("leave the option out for no limit"));
    }
    Ok(n)
}

/// An IPv4 or IPv6 address.
pub fn ip(text: &str, loc: Loc) -> Result<IpAddr, Diagnostic> {
    text.parse::<IpAddr>().map_err(|_| {
        let hint = if text.contains('/') {
            Some("a single address is expected here, not a network".to_string())
        } else {
            None
        };
        Diagnostic::error(loc, format!("'{text}' is not an IP address")).with_hint_opt(hint)
    })
}

/// An IPv4 address.
pub fn ipv4(text: &str, loc: Loc) -> Result<Ipv4Addr, Diagnostic> {
    match ip(text, loc)? {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(Diagnostic::error(
            loc,
            format!("'{text}' is an IPv6 address; an IPv4 address is needed here"),
        )),
    }
}

/// An IPv6 address.
pub fn ipv6(text: &str, loc: Loc) -> Result<Ipv6Addr, Diagnostic> {
    match ip(text, loc)? {
        IpAddr::V6(a) => Ok(a),
        IpAddr::V4(_) => Err(Diagnostic::error(
            loc,
            format!("'{text}' is an IPv4 address; an IPv6 address is needed here"),
        )),
    }
}

/// An IPv4 address with a prefix length, `A/P` (host bits allowed: this is an interface
/// address).
pub fn ipv4_with_prefix(text: &str, loc: Loc) -> Result<(Ipv4Addr, u8), Diagnostic> {
    let (addr, prefix) = split_prefix(text, loc, "24")?;
    Ok((
        ipv4(addr, loc)?,
        number(prefix, loc, "prefix length", 32)? as u8,
    ))
}

/// An IPv6 address with a prefix length, `A/P` (host bits allowed: this is an interface
/// address).
pub fn ipv6_with_prefix(text: &str, loc: Loc) -> Result<(Ipv6Addr, u8), Diagnostic> {
    let (addr, prefix) = split_prefix(text, loc, "64")?;
    Ok((
        ipv6(addr, loc)?,
        number(prefix, loc, "prefix length", 128)? as u8,
    ))
}

/// `A/P` split at the slash; `example` is the prefix length the hint suggests.
fn split_prefix<'t>(
    text: &'t str,
    loc: Loc,
    example: &str,
) -> Result<(&'t str, &'t str), Diagnostic> {
    text.split_once('/').ok_or_else(|| {
        Diagnostic::error(loc, format!("'{text}' has no prefix length")).with_hint(format!(
            "write the interface's address with its network's prefix, e.g. {text}/{example}"
        ))
    })
}

/// A network `A/P` or a single address (`/32` or `/128`). Host bits must be clear.
pub fn network(text: &str, loc: Loc) -> Result<IpNetwork, Diagnostic> {
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr = ip(addr_text, loc)
        .map_err(|_| Diagnostic::error(loc, format!("bad address or CIDR '{text}'")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        Some(p) => number(p, loc, "prefix length", max)
            .map_err(|d| Diagnostic::error(loc, format!("bad CIDR '{text}': {}", d.message)))?
            as u8,
        None => max as u8,
    };
    let net = IpNetwork::new(addr, prefix)
        .map_err(|e| Diagnostic::error(loc, format!("bad CIDR '{text}': {e}")))?;
    if net.network() != addr {
        return Err(
            Diagnostic::error(loc, format!("CIDR '{text}' has host bits set"))
                .with_hint(format!("did you mean {}/{prefix}?", net.network())),
        );
    }
    Ok(net)
}

/// Whether a word in an address position is written as an address (rather than a name).
pub fn looks_like_address(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit()) || text.contains(':')
}

/// One port: a number or a service name.
pub fn port(text: &str, loc: Loc) -> Result<u16, Diagnostic> {
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return number(text, loc, "port", 65535).map(|n| n as u16);
    }
    names::service_port(text).ok_or_else(|| {
        Diagnostic::error(
            loc,
            format!("'{text}' is not a port number or a known service"),
        )
        .with_hint_opt(names::did_you_mean(text, SERVICES.iter().map(|(n, _)| *n)))
    })
}

/// A port or an inclusive range `P-Q` (also written `P:Q`).
pub fn port_range(text: &str, loc: Loc) -> Result<(u16, u16), Diagnostic> {
    let Some((first, last)) = text.split_once(['-', ':']) else {
        let p = port(text, loc)?;
        return Ok((p, p));
    };
    let (first, last) = (port(first, loc)?, port(last, loc)?);
    if first > last {
        return Err(Diagnostic::error(
            loc,
            format!("bad port range '{text}': {first} is greater than {last}"),
        )
        .with_hint(format!("write the range low to high: {last}-{first}")));
    }
    Ok((first, last))
}
