//! The rulesets of the side-by-side comparison: the forwarding suite's Qubes-like policy
//! (`qemu-tests/rules/forwarding.rules`) padded to an exact number of filter rules with
//! generated ones, inserted just before the rule that passes the clients' traffic to the
//! uplink. Every flow the benchmark opens (a client to the internet server) is therefore
//! decided by the last rules of the ruleset — the late-key case — at 10 rules as at 10,000.
//!
//! A generated rule names a destination /28 of its own in 45.0.0.0/8 (so no two overlap,
//! none shadows another, and none touches the benchmark's flows), a source among the
//! clients and client networks, and varied actions, protocols, ports and ICMP types.
//! Both VMs get the same file: Moat compiles it, the Linux VM gets its nftables translation.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::forwarding_ruleset::ruleset_text;
use crate::kernels::workspace;
use crate::{Failure, Outcome};

/// The rule the generated rules are inserted before.
pub const CLIENTS_TO_UPLINK: &str = "pass from { lan1, lan2 } to uplink\n";

/// The `index`th generated rule.
pub fn generated_rule(index: usize) -> String {
    let destination = format!(
        "45.{}.{}.{}/28",
        (index >> 12) & 0xff,
        (index >> 4) & 0xff,
        (index & 0xf) << 4
    );
    let source = ["lan1", "lan2", "alpha", "beta", "{ lan1, lan2 }"][index % 5];
    let action = match index % 10 {
        0..=6 => "pass",
        7 | 8 => "block",
        _ => "reject",
    };
    let traffic = match index % 4 {
        0 => format!("tcp port {}", 1024 + index % 60_000),
        1 => "udp port { 53, 123, 5000-5100 }".to_string(),
        2 => "{ tcp, udp } port 8000-8999".to_string(),
        _ => "icmp type echo-request".to_string(),
    };
    format!("{action} from {source} to {destination} {traffic}")
}

/// The forwarding ruleset's text padded to `rules` filter rules.
pub fn padded_text(rules: usize) -> Outcome<String> {
    let base = ruleset_text()?;
    let existing = base
        .lines()
        .filter(|line| {
            let word = line.split_whitespace().next().unwrap_or_default();
            matches!(word, "pass" | "block" | "reject")
        })
        .count();
    let fill = rules.checked_sub(existing).ok_or_else(|| {
        Failure::new(format!(
            "the forwarding ruleset already has {existing} rules, more than {rules}"
        ))
    })?;
    let at = base.find(CLIENTS_TO_UPLINK).ok_or_else(|| {
        Failure::new(format!(
            "the forwarding ruleset has no `{}`",
            CLIENTS_TO_UPLINK.trim()
        ))
    })?;
    let mut text = String::with_capacity(base.len() + fill * 64);
    text.push_str(&base[..at]);
    let _ = writeln!(
        text,
        "# {fill} generated rules (qemu-tests compare::rulesets), none matching the benchmark's flows"
    );
    for index in 0..fill {
        text.push_str(&generated_rule(index));
        text.push('\n');
    }
    text.push_str(&base[at..]);
    Ok(text)
}

/// Writes the padded ruleset under `<target>/moat/compare/` (only when it changed, so the
/// kernel build that embeds it is not redone) and returns its path.
pub fn padded_ruleset(rules: usize) -> Outcome<PathBuf> {
    let dir = workspace()?.artifact_dir().join("compare");
    std::fs::create_dir_all(&dir)
        .map_err(|error| Failure::new(format!("creating {}: {error}", dir.display())))?;
    let path = dir.join(format!("forwarding-{rules}.rules"));
    let text = padded_text(rules)?;
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, text)
            .map_err(|error| Failure::new(format!("writing {}: {error}", path.display())))?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use dataplane::policy::{ipv4_to_flow_addr, Action, FlowKey};

    use super::*;
    use crate::addressing::{host_address, INTERNET_SERVER};
    use crate::forwarding_ruleset::{ALPHA_NIC, BETA_NIC, UPLINK_NIC};
    use crate::path_measures::CONNECTION_PORT;

    #[test]
    fn padded_rulesets_have_exactly_the_rules_asked_for_and_compile() {
        for rules in [10, 300] {
            let text = padded_text(rules).unwrap();
            let compiled = rules::compile("padded.rules", &text)
                .map_err(|error| error.render())
                .unwrap();
            assert_eq!(compiled.checked.rules.len(), rules);
        }
        assert!(padded_text(2).is_err());
    }

    #[test]
    fn the_benchmark_flows_are_decided_by_the_last_pass_rule() {
        let text = padded_text(300).unwrap();
        let compiled = rules::compile("padded.rules", &text).unwrap();
        let policy = compiled.policy.as_policy();
        let last_pass = compiled
            .checked
            .rules
            .iter()
            .position(|rule| {
                let line = text.lines().nth(rule.pos.line as usize - 1).unwrap_or("");
                format!("{line}\n") == CLIENTS_TO_UPLINK
            })
            .unwrap();
        assert!(last_pass >= 290, "{last_pass}");
        for nic in [ALPHA_NIC, BETA_NIC] {
            for (protocol, port) in [(6, 5201), (6, CONNECTION_PORT), (17, 5201)] {
                let key = FlowKey {
                    in_nic: nic as u8,
                    out: UPLINK_NIC as u8,
                    protocol,
                    src: ipv4_to_flow_addr(host_address(nic).to_bits()),
                    dst: ipv4_to_flow_addr(INTERNET_SERVER.to_bits()),
                    src_port: 40000,
                    dst_port: port,
                    icmp_type: 0,
                    icmp_code: 0,
                    redirect: 0,
                };
                let verdict = policy.decide(&key);
                assert_eq!(verdict.action, Action::Pass);
                let decided_by = verdict.rule.map(|index| policy.rules[index as usize].pos);
                assert_eq!(
                    decided_by,
                    Some(compiled.checked.rules[last_pass].pos),
                    "{key:?}"
                );
            }
        }
    }
}
