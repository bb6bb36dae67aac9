//! The compiled policy and the matcher that decides the first packet of each flow.
//!
//! - [`model`]: the policy's data types (the contract with the `rules` compiler).
//! - [`key`]: [`FlowKey`], what the matcher decides on.
//! - [`buf`]: [`PolicyBuf`], the owned (heap) form the host compiler builds and the kernel
//!   decodes its policy blob into, both borrowing it as a [`Policy`]; the index builder
//!   (`PolicyBuf::build_index`) is behind the `codegen` feature.
//! - [`index`]: [`MatchIndex`], the precomputed lookup structure of the fast matcher.
//! - [`codegen`]: the compiled policy as a binary blob embedded in the kernel image
//!   (decoding always built, encoding behind the `codegen` feature), and the flat word form
//!   of its records.
//! - `reference` (feature `reference`, and unit tests): the plain linear interpreter the
//!   fast matcher is tested and benchmarked against.
//!
//! [`Policy::decide`] is the one entry point the data plane and the compiler's self-tests
//! both use.

pub mod buf;
pub mod codegen;
pub mod index;
pub mod key;
pub mod model;
#[cfg(any(test, feature = "reference"))]
pub mod reference;

pub use buf::PolicyBuf;
pub use index::MatchIndex;
pub use key::{FlowKey, REDIRECT_DNS, REDIRECT_FORWARD, REDIRECT_NONE};
pub use model::*;

/// The outcome of matching a flow key against a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// What to do with the packet.
    pub action: Action,
    /// Whether to log it.
    pub log: bool,
    /// Index into [`Policy::rules`] of the deciding rule, or `None` for the default.
    pub rule: Option<u32>,
}

impl Policy<'_> {
    /// Decides a flow key: the first matching rule, or the default.
    pub fn decide(&self, key: &FlowKey) -> Verdict {
        match self.index.first_match(self, key) {
            Some(i) => {
                let rule = &self.rules[i as usize];
                Verdict {
                    action: rule.action,
                    log: rule.log,
                    rule: Some(i),
                }
            }
            None => self.default_verdict(),
        }
    }

    /// The verdict of the default rule.
    pub fn default_verdict(&self) -> Verdict {
        Verdict {
            action: if self.default.reject {
                Action::Reject
            } else {
                Action::Block
            },
            log: self.default.log,
            rule: None,
        }
    }

    /// Whether `rule` matches `key`, checked field by field (the reference semantics).
    pub fn rule_matches(&self, rule: &Rule, key: &FlowKey) -> bool {
        let bytes = |span: Span, v: u8| {
            span.of(self.byte_ranges)
                .iter()
                .any(|r| r.first <= v && v <= r.last)
        };
        let ports = |span: Span, v: u16| {
            span.of(self.port_ranges)
                .iter()
                .any(|r| r.first <= v && v <= r.last)
        };
        let addrs = |span: Span, v: u128| {
            span.of(self.addr_ranges)
                .iter()
                .any(|r| r.first <= v && v <= r.last)
        };
        bytes(rule.in_nic, key.in_nic)
            && bytes(rule.out, key.out)
            && bytes(rule.protocol, key.protocol)
            && addrs(rule.src, key.src)
            && addrs(rule.dst, key.dst)
            && ports(rule.src_port, key.src_port)
            && ports(rule.dst_port, key.dst_port)
            && bytes(rule.icmp_type, key.icmp_type)
            && bytes(rule.icmp_code, key.icmp_code)
            && bytes(rule.redirect, key.redirect)
    }

    /// The name of an interface or client record (a [`Span`] into `names`).
    pub fn name(&self, span: Span) -> &str {
        span.str_of(self.names)
    }

    /// The interface declared on NIC `nic`, if any.
    pub fn interface_on(&self, nic: u8) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.nic == nic)
    }
}
