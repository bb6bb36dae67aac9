//! The forwarding suite's ruleset (`qemu-tests/rules/forwarding.rules`) as the tests know
//! it: the kernel built with it, the ports whose verdicts they check, and the rules whose
//! positions drop log lines must name.
//!
//! The appliance has an uplink (`nic0`) and two client networks, `nic1` with client `alpha`
//! and `nic2` with client `beta`, each client at [`crate::addressing::host_address`].

use crate::drop_log::{default_position, rule_position, RulePosition};
use crate::kernels::KernelVariant;
use crate::Outcome;

/// The ruleset, relative to the workspace root.
pub const RULESET: &str = "qemu-tests/rules/forwarding.rules";

/// The kernel built with [`RULESET`].
pub const FORWARDING: KernelVariant = KernelVariant {
    name: "forwarding",
    rules: Some(RULESET),
    features: &[],
};

/// `nic0`: the uplink.
pub const UPLINK_NIC: usize = 0;
/// `nic1`: client `alpha`'s network.
pub const ALPHA_NIC: usize = 1;
/// `nic2`: client `beta`'s network.
pub const BETA_NIC: usize = 2;
/// The MTU of `beta`'s network: smaller than the others', so that super-frames to it are
/// checked (and refused, until the sender learns the path MTU) on their segment size.
pub const BETA_MTU: u16 = 1400;
/// NICs of the appliance: the uplink and the two client networks.
pub const NICS: usize = 3;

/// The port of the web servers (on the internet server and on each client).
pub const WEB_PORT: u16 = 80;
/// The port of the internet server's iperf3.
pub const IPERF_PORT: u16 = 5201;
/// Clients' connections to this port on the internet are rejected (TCP RST).
pub const REJECTED_PORT: u16 = 81;
/// Clients' connections to this port on the internet are blocked (silence).
pub const BLOCKED_PORT: u16 = 82;
/// The uplink's port forwarded to `alpha`'s web server.
pub const ALPHA_FORWARD_PORT: u16 = 8080;
/// The uplink's port forwarded to `beta`'s web server.
pub const BETA_FORWARD_PORT: u16 = 8081;

/// The rule that rejects [`REJECTED_PORT`].
pub const REJECT_RULE: &str = "reject log from { lan1, lan2 } to uplink tcp port 81";
/// The rule that blocks [`BLOCKED_PORT`].
pub const BLOCK_RULE: &str = "block log from { lan1, lan2 } to uplink tcp port 82";

/// The ruleset's text.
pub fn ruleset_text() -> Outcome<String> {
    FORWARDING.ruleset_text()
}

/// Where `rule` (one of the constants above) sits in the ruleset.
pub fn position_of(rule: &str) -> Outcome<RulePosition> {
    rule_position(&ruleset_text()?, rule)
}

/// Where the ruleset's `default block log` sits.
pub fn default_rule_position() -> Outcome<RulePosition> {
    default_position(&ruleset_text()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_the_tests_pin_are_in_the_ruleset_once() {
        for rule in [REJECT_RULE, BLOCK_RULE] {
            position_of(rule).unwrap();
            assert!(rule.ends_with(&format!(
                "port {}",
                if rule == REJECT_RULE {
                    REJECTED_PORT
                } else {
                    BLOCKED_PORT
                }
            )));
        }
        default_rule_position().unwrap();
        let text = ruleset_text().unwrap();
        for forward in [
            format!("forward uplink tcp port {ALPHA_FORWARD_PORT} to alpha port {WEB_PORT}"),
            format!("forward uplink tcp port {BETA_FORWARD_PORT} to beta port {WEB_PORT}"),
        ] {
            rule_position(&text, &forward).unwrap();
        }
    }
}
