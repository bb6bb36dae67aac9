//! `rules import-qubes`: Qubes OS firewall rules (what `qvm-firewall VMNAME list --raw`
//! prints, one rule per line) turned into Moat rules with Qubes' semantics, appended to a
//! *layout* ruleset that declares the interfaces, the qubes as clients, NAT and DNS.
//!
//! # Semantics kept
//! - Each qube's rules apply to what it sends, first match wins, and what no rule matches is
//!   dropped: the import ends each qube's rules with `reject from QUBE` unless a rule of its
//!   own already matches everything.
//! - `action=drop` becomes `reject`: the sender is told at once (ICMP administratively
//!   prohibited, as Qubes 4.2's firewall answers; for TCP Moat's `reject` answers with a
//!   reset, which a client also sees at once, as a refused connection).
//! - `specialtarget=dns` passes DNS (UDP and TCP port 53, or the rule's `proto`) to the
//!   resolver the layout's `dns` redirect sends the qube's queries to — the virtual DNS
//!   servers 10.139.1.1 and 10.139.1.2 when the layout says `dns from ... at 10.139.1.1,
//!   10.139.1.2 to ...`. Rules see redirected packets with their new destination, so that is
//!   the address the rule names; the resolver must be known at build time.
//! - A rule without a destination is about the network beyond the firewall: `to` the
//!   uplink. Qubes never lets one qube reach another through the firewall: the import
//!   starts with `block log from QUBES to CLIENTS`.
//! - `dsthost=NAME` is resolved when importing; a name that does not resolve is an error,
//!   never a rule left out (which would block the qube's traffic) or widened.
//! - `expire=T` in the past: the rule is left out (Qubes has dropped it). In the future: an
//!   error (a temporary rule would become permanent in an image).
//!
//! Every error names the file, the line and what to do; the result is compiled, its tests
//! run, before it is written.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::checked::{Checked, DnsTarget};
use crate::compile::{compile, compile_untested};
use crate::source::SourceFile;

/// One qube's `--raw` rules.
#[derive(Clone, Debug)]
pub struct QubeRules {
    /// The qube's name: a client the layout declares.
    pub qube: String,
    /// Where the rules came from (for messages and the generated comment).
    pub path: String,
    /// What `qvm-firewall QUBE list --raw` printed.
    pub text: String,
}

/// What the import needs from outside: name resolution and the time.
pub struct Environment<'a> {
    /// Resolves a host name to its addresses.
    pub resolve: &'a dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
    /// Now, in seconds since the Unix epoch (for `expire=`).
    pub now: u64,
}

/// Resolves `name` with the system's resolver.
pub fn system_resolve(name: &str) -> Result<Vec<IpAddr>, String> {
    use std::net::ToSocketAddrs;
    let addrs = (name, 0)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .map(|a| a.ip())
        .collect::<Vec<_>>();
    if addrs.is_empty() {
        return Err("no addresses".into());
    }
    Ok(addrs)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Icmp,
}

/// One parsed `--raw` line.
#[derive(Clone, Debug, Default)]
struct RawRule {
    line: usize,
    text: String,
    accept: bool,
    dst: Option<String>,
    proto: Option<Proto>,
    ports: Option<(u16, u16)>,
    icmp_type: Option<u8>,
    dns: bool,
    expire: Option<u64>,
    comment: Option<String>,
}

impl RawRule {
    /// Whether the rule matches everything the qube sends.
    fn catch_all(&self) -> bool {
        self.dst.is_none() && self.proto.is_none() && !self.dns
    }
}

fn parse_raw(path: &str, text: &str) -> Result<Vec<RawRule>, String> {
    let mut rules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = |message: String| format!("{path}:{line_no}: error: {message}\n    {trimmed}");
        let mut rule = RawRule {
            line: line_no,
            text: trimmed.to_string(),
            ..RawRule::default()
        };
        let (fields, comment) = match trimmed.split_once("comment=") {
            Some((fields, comment)) => (fields, Some(comment.trim().to_string())),
            None => (trimmed, None),
        };
        rule.comment = comment;
        let mut action = None;
        for field in fields.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                return Err(at(format!("'{field}' is not KEY=VALUE")));
            };
            match key {
                "action" => {
                    action = Some(match value {
                        "accept" => true,
                        "drop" => false,
                        other => {
                            return Err(at(format!("unknown action '{other}' (accept or drop)")))
                        }
                    })
                }
                "dsthost" | "dst4" | "dst6" => rule.dst = Some(value.to_string()),
                "proto" => {
                    rule.proto = Some(match value {
                        "tcp" => Proto::Tcp,
                        "udp" => Proto::Udp,
                        "icmp" => Proto::Icmp,
                        other => {
                            return Err(at(format!("unknown proto '{other}' (tcp, udp or icmp)")))
                        }
                    })
                }
                "dstports" => {
                    let (first, last) = value.split_once('-').unwrap_or((value, value));
                    match (first.parse::<u16>(), last.parse::<u16>()) {
                        (Ok(a), Ok(b)) if a <= b => rule.ports = Some((a, b)),
                        _ => return Err(at(format!("'{value}' is not a port range"))),
                    }
                }
                "icmptype" => {
                    rule.icmp_type = Some(
                        value
                            .parse()
                            .map_err(|_| at(format!("'{value}' is not an ICMP type")))?,
                    )
                }
                "specialtarget" if value == "dns" => rule.dns = true,
                "specialtarget" => {
                    return Err(at(format!("unknown specialtarget '{value}' (only dns)")))
                }
                "expire" => {
                    rule.expire = Some(
                        value
                            .parse()
                            .map_err(|_| at(format!("'{value}' is not a time")))?,
                    )
                }
                other => return Err(at(format!("unknown key '{other}'"))),
            }
        }
        let Some(accept) = action else {
            return Err(at("the rule has no action=".into()));
        };
        rule.accept = accept;
        if rule.ports.is_some() && !matches!(rule.proto, Some(Proto::Tcp | Proto::Udp)) {
            return Err(at("dstports= needs proto=tcp or proto=udp".into()));
        }
        if rule.icmp_type.is_some() && rule.proto != Some(Proto::Icmp) {
            return Err(at("icmptype= needs proto=icmp".into()));
        }
        rules.push(rule);
    }
    if rules.is_empty() {
        return Err(format!(
            "{path}: error: no rules: Qubes always prints at least one; refusing to guess the qube's policy"
        ));
    }
    Ok(rules)
}

/// The resolver the layout redirects `qube`'s DNS to.
fn resolver_of(checked: &Checked, qube: &str) -> Result<IpAddr, String> {
    let client = checked
        .client(qube)
        .ok_or_else(|| format!("the layout declares no client '{qube}'"))?;
    let redirect = checked
        .dns
        .iter()
        .find(|d| d.in_nics.contains(u128::from(client.nic)))
        .ok_or_else(|| {
            format!(
                "specialtarget=dns, but the layout does not redirect DNS from {qube}'s interface (add: dns from IFACE at 10.139.1.1, 10.139.1.2 to upstream)"
            )
        })?;
    let first = match &redirect.target {
        DnsTarget::Static(list) | DnsTarget::Learned(Some(list)) => list.first().copied(),
        DnsTarget::Learned(None) => None,
    };
    first.map(IpAddr::V4).ok_or_else(|| {
        "specialtarget=dns: the uplink learns its resolvers by DHCP, so no rule can name them at build time; give the uplink 'dns A' or the redirect its resolver ('dns from ... to A')"
            .to_string()
    })
}

/// The Moat rule for one raw rule of `qube`.
fn moat_rule(
    rule: &RawRule,
    qube: &str,
    uplink: &str,
    path: &str,
    checked: &Checked,
    env: &Environment,
) -> Result<String, String> {
    let at = |message: String| format!("{path}:{}: error: {message}\n    {}", rule.line, rule.text);
    let mut out = String::from(if rule.accept { "pass  " } else { "reject" });
    write!(out, " from {qube}").ok();
    if rule.dns {
        let resolver = resolver_of(checked, qube).map_err(at)?;
        write!(out, " to {resolver}").ok();
    } else if let Some(dst) = &rule.dst {
        let nets: Vec<String> = match dst.parse::<IpNetwork>() {
            Ok(net) if net.prefix() == IpNetwork::from(net.ip()).prefix() => {
                vec![net.ip().to_string()]
            }
            Ok(net) => vec![net.to_string()],
            Err(_) => (env.resolve)(dst)
                .map_err(|e| at(format!("dsthost={dst} does not resolve ({e}): write its addresses, or import where the name resolves")))?
                .into_iter()
                .map(|a| a.to_string())
                .collect(),
        };
        match nets.as_slice() {
            [one] => write!(out, " to {one}").ok(),
            many => write!(out, " to {{ {} }}", many.join(", ")).ok(),
        };
    } else if rule.accept {
        write!(out, " to {uplink}").ok();
    }
    match (rule.proto, rule.dns) {
        (Some(Proto::Tcp), _) => out.push_str(" tcp"),
        (Some(Proto::Udp), _) => out.push_str(" udp"),
        (Some(Proto::Icmp), _) => out.push_str(" icmp"),
        (None, true) => out.push_str(" { tcp, udp }"),
        (None, false) => {}
    }
    match (rule.ports, rule.dns) {
        (Some((a, b)), _) if a == b => write!(out, " port {a}").ok(),
        (Some((a, b)), _) => write!(out, " port {a}-{b}").ok(),
        (None, true) => write!(out, " port 53").ok(),
        (None, false) => None,
    };
    if let Some(t) = rule.icmp_type {
        write!(out, " type {t}").ok();
    }
    Ok(out)
}

/// An imported ruleset.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The ruleset: the layout and the imported rules.
    pub text: String,
    /// What the user should know (clients without imported rules).
    pub warnings: Vec<String>,
}

/// The layout at `layout_path` (`layout`) with the rules of every qube in `qubes` appended;
/// compiled (and its tests run) before it is returned.
pub fn import(
    layout_path: &str,
    layout: &str,
    qubes: &[QubeRules],
    env: &Environment,
) -> Result<Imported, String> {
    let compiled = compile_untested(SourceFile::new(layout_path, layout))
        .map_err(|e| format!("the layout does not compile:\n{}", e.render()))?;
    let checked = &compiled.checked;
    let uplink = checked
        .uplink()
        .map(|u| u.name.clone())
        .ok_or_else(|| format!("{layout_path}: error: the layout has no uplink"))?;
    let mut out = String::from(layout.trim_end());
    out.push_str(
        "\n\n# --- Imported by `rules import-qubes` from `qvm-firewall QUBE list --raw`: re-import,\n\
         # do not edit. Each qube: its rules in Qubes' order, first match wins, then reject. ---\n",
    );
    let names: Vec<&str> = qubes.iter().map(|q| q.qube.as_str()).collect();
    for q in qubes {
        if checked.client(&q.qube).is_none() {
            return Err(format!(
                "{}: error: the layout declares no client '{}' (declare it: client {} ADDR on IFACE)",
                q.path, q.qube, q.qube
            ));
        }
    }
    let clients: Vec<&str> = checked.clients.iter().map(|c| c.name.as_str()).collect();
    if clients.len() > 1 {
        writeln!(
            out,
            "block log from {{ {} }} to {{ {} }}",
            names.join(", "),
            clients.join(", ")
        )
        .ok();
    }
    for q in qubes {
        let rules = parse_raw(&q.path, &q.text)?;
        writeln!(out, "\n# {} ({})", q.qube, q.path).ok();
        let mut closed = false;
        for rule in &rules {
            if closed {
                writeln!(
                    out,
                    "# line {}: never reached after a rule matching everything: {}",
                    rule.line, rule.text
                )
                .ok();
                continue;
            }
            if let Some(expire) = rule.expire {
                if expire <= env.now {
                    writeln!(
                        out,
                        "# line {}: expired, left out: {}",
                        rule.line, rule.text
                    )
                    .ok();
                    continue;
                }
                return Err(format!(
                    "{}:{}: error: the rule expires at {expire} (Unix time): a temporary rule would become permanent in an image; import after it expired, or without expire=\n    {}",
                    q.path, rule.line, rule.text
                ));
            }
            let moat = moat_rule(rule, &q.qube, &uplink, &q.path, checked, env)?;
            let comment = rule
                .comment
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            writeln!(out, "{moat:<56} # {}:{}{comment}", q.path, rule.line).ok();
            closed = rule.catch_all();
        }
        if !closed {
            writeln!(
                out,
                "{:<56} # Qubes' default: drop",
                format!("reject from {}", q.qube)
            )
            .ok();
        }
    }
    let warnings = clients
        .iter()
        .filter(|client| !names.contains(client))
        .map(|client| format!("{layout_path}: warning: client '{client}' has no imported rules: the layout's rules and default decide its traffic"))
        .collect();
    compile(layout_path, &out).map_err(|e| {
        format!(
            "the imported ruleset does not compile:\n{}\n--- the ruleset ---\n{out}",
            e.render()
        )
    })?;
    Ok(Imported {
        text: out,
        warnings,
    })
}
