//! The ten dimensions of a rule, seen uniformly as ranges over `u128`.
//!
//! A [`Rule`] keeps each field in the pool of its width (`byte_ranges`, `port_ranges`,
//! `addr_ranges`). The index builder reads every field as `u128` ranges, and a leaf checks
//! a rule one dimension at a time (exactly as [`Policy::rule_matches`] does for all ten):
//! this module is the one place that knows which field lives in which pool.

use super::super::model::{Policy, Rule, Span};
use super::super::FlowKey;

/// One dimension of the rule space (one field of a [`Rule`], one coordinate of a
/// [`FlowKey`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    /// Ingress NIC index.
    InNic,
    /// Egress NIC index or `OUT_SELF`.
    Out,
    /// IP protocol number.
    Protocol,
    /// Source address (unified 128-bit flow address).
    Src,
    /// Destination address (unified 128-bit flow address).
    Dst,
    /// Transport source port.
    SrcPort,
    /// Transport destination port.
    DstPort,
    /// ICMP / ICMPv6 type.
    IcmpType,
    /// ICMP / ICMPv6 code.
    IcmpCode,
    /// Destination NAT (none, port forward, DNS redirect).
    Redirect,
}

/// How many dimensions a rule has.
pub const DIMS: usize = 10;

impl Dim {
    /// Every dimension, in the order of their indices (see [`Dim::index`]).
    pub const ALL: [Dim; DIMS] = [
        Dim::InNic,
        Dim::Out,
        Dim::Protocol,
        Dim::Src,
        Dim::Dst,
        Dim::SrcPort,
        Dim::DstPort,
        Dim::IcmpType,
        Dim::IcmpCode,
        Dim::Redirect,
    ];

    /// The dimension's index (`0..DIMS`), as stored in the index's node and entry words.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The dimension with index `i`, if `i < DIMS`.
    pub const fn from_index(i: usize) -> Option<Dim> {
        if i < DIMS {
            Some(Dim::ALL[i])
        } else {
            None
        }
    }

    /// The largest value of the dimension's domain (its smallest is 0).
    pub const fn max(self) -> u128 {
        match self {
            Dim::Src | Dim::Dst => u128::MAX,
            Dim::SrcPort | Dim::DstPort => u16::MAX as u128,
            Dim::InNic
            | Dim::Out
            | Dim::Protocol
            | Dim::IcmpType
            | Dim::IcmpCode
            | Dim::Redirect => u8::MAX as u128,
        }
    }

    /// The key's coordinate in this dimension.
    pub fn of_key(self, key: &FlowKey) -> u128 {
        match self {
            Dim::InNic => key.in_nic.into(),
            Dim::Out => key.out.into(),
            Dim::Protocol => key.protocol.into(),
            Dim::Src => key.src,
            Dim::Dst => key.dst,
            Dim::SrcPort => key.src_port.into(),
            Dim::DstPort => key.dst_port.into(),
            Dim::IcmpType => key.icmp_type.into(),
            Dim::IcmpCode => key.icmp_code.into(),
            Dim::Redirect => key.redirect.into(),
        }
    }

    /// The rule's field in this dimension (a span of the pool [`Dim::ranges`] reads).
    pub fn field(self, rule: &Rule) -> Span {
        match self {
            Dim::InNic => rule.in_nic,
            Dim::Out => rule.out,
            Dim::Protocol => rule.protocol,
            Dim::Src => rule.src,
            Dim::Dst => rule.dst,
            Dim::SrcPort => rule.src_port,
            Dim::DstPort => rule.dst_port,
            Dim::IcmpType => rule.icmp_type,
            Dim::IcmpCode => rule.icmp_code,
            Dim::Redirect => rule.redirect,
        }
    }

    /// Whether the rule's field in this dimension contains the key's coordinate: one
    /// dimension of [`Policy::rule_matches`], with exactly its semantics.
    #[inline]
    pub fn field_contains(self, policy: &Policy, rule: &Rule, key: &FlowKey) -> bool {
        let span = self.field(rule);
        match self {
            Dim::Src => span
                .of(policy.addr_ranges)
                .iter()
                .any(|r| r.first <= key.src && key.src <= r.last),
            Dim::Dst => span
                .of(policy.addr_ranges)
                .iter()
                .any(|r| r.first <= key.dst && key.dst <= r.last),
            Dim::SrcPort => contains_port(policy, span, key.src_port),
            Dim::DstPort => contains_port(policy, span, key.dst_port),
            Dim::InNic => contains_byte(policy, span, key.in_nic),
            Dim::Out => contains_byte(policy, span, key.out),
            Dim::Protocol => contains_byte(policy, span, key.protocol),
            Dim::IcmpType => contains_byte(policy, span, key.icmp_type),
            Dim::IcmpCode => contains_byte(policy, span, key.icmp_code),
            Dim::Redirect => contains_byte(policy, span, key.redirect),
        }
    }

    /// The rule's field in this dimension as inclusive `(first, last)` pairs, in pool order.
    /// Pairs with `first > last` are kept: they match nothing, and callers drop them.
    pub fn ranges<'p>(self, policy: &Policy<'p>, rule: &Rule) -> FieldRanges<'p> {
        let span = self.field(rule);
        match self {
            Dim::Src | Dim::Dst => FieldRanges::Addr(span.of(policy.addr_ranges).iter()),
            Dim::SrcPort | Dim::DstPort => FieldRanges::Port(span.of(policy.port_ranges).iter()),
            Dim::InNic
            | Dim::Out
            | Dim::Protocol
            | Dim::IcmpType
            | Dim::IcmpCode
            | Dim::Redirect => FieldRanges::Byte(span.of(policy.byte_ranges).iter()),
        }
    }
}

#[inline]
fn contains_port(policy: &Policy, span: Span, port: u16) -> bool {
    span.of(policy.port_ranges)
        .iter()
        .any(|r| r.first <= port && port <= r.last)
}

#[inline]
fn contains_byte(policy: &Policy, span: Span, value: u8) -> bool {
    span.of(policy.byte_ranges)
        .iter()
        .any(|r| r.first <= value && value <= r.last)
}

/// The ranges of one rule field, widened to `u128` (see [`Dim::ranges`]).
pub enum FieldRanges<'p> {
    /// Ranges from `addr_ranges`.
    Addr(core::slice::Iter<'p, super::super::model::AddrRange>),
    /// Ranges from `port_ranges`.
    Port(core::slice::Iter<'p, super::super::model::PortRange>),
    /// Ranges from `byte_ranges`.
    Byte(core::slice::Iter<'p, super::super::model::ByteRange>),
}

impl Iterator for FieldRanges<'_> {
    type Item = (u128, u128);

    fn next(&mut self) -> Option<(u128, u128)> {
        match self {
            FieldRanges::Addr(it) => it.next().map(|r| (r.first, r.last)),
            FieldRanges::Port(it) => it.next().map(|r| (r.first as u128, r.last as u128)),
            FieldRanges::Byte(it) => it.next().map(|r| (r.first as u128, r.last as u128)),
        }
    }
}
