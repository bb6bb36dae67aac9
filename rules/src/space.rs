//! [`KeySet`]: a set of flow keys written as one [`RangeSet`] per [`FlowKey`] field — the
//! shape of one normalised rule, and the unit of the shadowing analysis.

use dataplane::policy::{ipv4_to_flow_addr, FlowKey};

use crate::ranges::RangeSet;

/// One dimension of a [`FlowKey`]: the data plane's own [`Dim`](dataplane::policy::index::Dim),
/// so the compiler and the matcher agree on what the dimensions are and their domains.
pub use dataplane::policy::index::Dim as Field;

/// Number of fields in a flow key.
pub const FIELDS: usize = dataplane::policy::index::dim::DIMS;

/// Every field, in the order rules are explained (and analysed).
pub const EXPLAIN_ORDER: [Field; FIELDS] = [
    Field::InNic,
    Field::Src,
    Field::Out,
    Field::Dst,
    Field::Protocol,
    Field::SrcPort,
    Field::DstPort,
    Field::IcmpType,
    Field::IcmpCode,
    Field::Redirect,
];

/// How a field is called in explanations.
pub fn describe(field: Field) -> &'static str {
    match field {
        Field::InNic => "arrival interface",
        Field::Out => "egress",
        Field::Protocol => "protocol",
        Field::Src => "source address",
        Field::Dst => "destination address",
        Field::SrcPort => "source port",
        Field::DstPort => "destination port",
        Field::IcmpType => "ICMP type",
        Field::IcmpCode => "ICMP code",
        Field::Redirect => "destination NAT",
    }
}

/// A product set of flow keys: a key is in it when each field's value is in that field's
/// range set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeySet {
    fields: [RangeSet; FIELDS],
}

impl KeySet {
    /// Every flow key.
    pub fn everything() -> KeySet {
        KeySet {
            fields: Field::ALL.map(|f| RangeSet::range(0, f.max())),
        }
    }

    /// The set of `field`.
    pub fn get(&self, field: Field) -> &RangeSet {
        &self.fields[field.index()]
    }

    /// The same set with `field` restricted to `values` (intersected).
    pub fn restrict(mut self, field: Field, values: &RangeSet) -> KeySet {
        let i = field.index();
        self.fields[i] = self.fields[i].intersect(values);
        self
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.fields.iter().any(RangeSet::is_empty)
    }

    /// Whether `key` is in the set.
    pub fn contains(&self, key: &FlowKey) -> bool {
        Field::ALL
            .iter()
            .all(|&f| self.get(f).contains(f.of_key(key)))
    }

    /// Whether the two sets share a key.
    pub fn intersects(&self, other: &KeySet) -> bool {
        self.fields
            .iter()
            .zip(&other.fields)
            .all(|(a, b)| a.intersects(b))
    }

    /// The keys in both sets.
    pub fn intersect(&self, other: &KeySet) -> Option<KeySet> {
        let mut out = self.clone();
        for (mine, theirs) in out.fields.iter_mut().zip(&other.fields) {
            *mine = mine.intersect(theirs);
            if mine.is_empty() {
                return None;
            }
        }
        Some(out)
    }

    /// Whether every key of `self` is in `other`.
    pub fn is_subset(&self, other: &KeySet) -> bool {
        self.is_empty()
            || self
                .fields
                .iter()
                .zip(&other.fields)
                .all(|(a, b)| a.is_subset(b))
    }

    /// `self \ other` as disjoint pieces (none when `other` covers `self`).
    ///
    /// Piece *i* keeps the first *i* fields inside `other` and takes field *i* outside it,
    /// so the pieces are disjoint and at most one is made per field.
    pub fn subtract(&self, other: &KeySet) -> Vec<KeySet> {
        if !self.intersects(other) {
            return vec![self.clone()];
        }
        let mut pieces = Vec::new();
        let mut inside = self.clone();
        for i in 0..FIELDS {
            let outside = inside.fields[i].subtract(&other.fields[i]);
            if !outside.is_empty() {
                let mut piece = inside.clone();
                piece.fields[i] = outside;
                pieces.push(piece);
            }
            inside.fields[i] = inside.fields[i].intersect(&other.fields[i]);
        }
        pieces
    }

    /// Every field's set but field `k`'s, for comparing sets that may differ in `k` only.
    fn fields_except(&self, k: usize) -> [&RangeSet; FIELDS - 1] {
        let mut rest = [&self.fields[0]; FIELDS - 1];
        for (slot, i) in rest.iter_mut().zip((0..FIELDS).filter(|&i| i != k)) {
            *slot = &self.fields[i];
        }
        rest
    }

    /// Merges pieces of a union that differ in one field only (their union is then a
    /// product set too), so that repeated subtraction does not fragment a set without need.
    /// The pieces must be disjoint; they stay disjoint and cover the same keys.
    pub fn coalesce(pieces: &mut Vec<KeySet>) {
        for k in 0..FIELDS {
            if pieces.len() < 2 {
                return;
            }
            pieces.sort_unstable_by(|a, b| a.fields_except(k).cmp(&b.fields_except(k)));
            let mut merged: Vec<KeySet> = Vec::with_capacity(pieces.len());
            for piece in pieces.drain(..) {
                match merged.last_mut() {
                    Some(last) if last.fields_except(k) == piece.fields_except(k) => {
                        last.fields[k] = last.fields[k].union(&piece.fields[k])
                    }
                    _ => merged.push(piece),
                }
            }
            *pieces = merged;
        }
    }

    /// One key of the set, if it is not empty: each field at its smallest value, except
    /// that a source port prefers the usual ephemeral port `49152`, and addresses prefer
    /// ordinary IPv4 ones (from `1.0.0.0` on), when the set allows it.
    pub fn sample(&self) -> Option<FlowKey> {
        let ordinary_v4 =
            RangeSet::range(ipv4_to_flow_addr(0x0100_0000), ipv4_to_flow_addr(u32::MAX));
        let v = |f: Field| {
            let set = self.get(f);
            if f == Field::SrcPort && set.contains(49152) {
                return Some(49152);
            }
            if matches!(f, Field::Src | Field::Dst) {
                if let Some((first, _)) = set.intersect(&ordinary_v4).bounds() {
                    return Some(first);
                }
            }
            set.bounds().map(|(first, _)| first)
        };
        Some(FlowKey {
            in_nic: v(Field::InNic)? as u8,
            out: v(Field::Out)? as u8,
            protocol: v(Field::Protocol)? as u8,
            src: v(Field::Src)?,
            dst: v(Field::Dst)?,
            src_port: v(Field::SrcPort)? as u16,
            dst_port: v(Field::DstPort)? as u16,
            icmp_type: v(Field::IcmpType)? as u8,
            icmp_code: v(Field::IcmpCode)? as u8,
            redirect: v(Field::Redirect)? as u8,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small_set(field: Field) -> impl Strategy<Value = RangeSet> {
        let max = field.max().min(6);
        prop::collection::vec((0..=max, 0..=max), 1..3).prop_map(RangeSet::from_ranges)
    }

    fn arb_keyset() -> impl Strategy<Value = KeySet> {
        (
            small_set(Field::InNic),
            small_set(Field::Protocol),
            small_set(Field::Dst),
            small_set(Field::DstPort),
        )
            .prop_map(|(nic, proto, dst, port)| {
                KeySet::everything()
                    .restrict(Field::InNic, &nic)
                    .restrict(Field::Protocol, &proto)
                    .restrict(Field::Dst, &dst)
                    .restrict(Field::DstPort, &port)
            })
    }

    fn key(nic: u8, proto: u8, dst: u128, port: u16) -> FlowKey {
        FlowKey {
            in_nic: nic,
            protocol: proto,
            dst,
            dst_port: port,
            ..FlowKey::default()
        }
    }

    proptest! {
        #[test]
        fn subtraction_pieces_are_disjoint_and_exact(a in arb_keyset(), b in arb_keyset(),
                nic in 0u8..7, proto in 0u8..7, dst in 0u128..7, port in 0u16..7) {
            let k = key(nic, proto, dst, port);
            let pieces = a.subtract(&b);
            let holders = pieces.iter().filter(|p| p.contains(&k)).count();
            prop_assert_eq!(holders == 1, a.contains(&k) && !b.contains(&k));
            prop_assert!(holders <= 1);
            prop_assert_eq!(a.intersect(&b).is_some_and(|i| i.contains(&k)), a.contains(&k) && b.contains(&k));
        }
    }

    proptest! {
        #[test]
        fn coalescing_keeps_the_same_keys(a in arb_keyset(), b in arb_keyset(), c in arb_keyset(),
                nic in 0u8..7, proto in 0u8..7, dst in 0u128..7, port in 0u16..7) {
            let k = key(nic, proto, dst, port);
            let mut pieces: Vec<KeySet> = a.subtract(&b).iter().flat_map(|p| p.subtract(&c)).collect();
            let before = pieces.iter().filter(|p| p.contains(&k)).count();
            KeySet::coalesce(&mut pieces);
            prop_assert_eq!(pieces.iter().filter(|p| p.contains(&k)).count(), before);
            prop_assert!(before <= 1);
        }
    }

    #[test]
    fn a_set_minus_a_superset_is_empty() {
        let all = KeySet::everything();
        let tcp = KeySet::everything().restrict(Field::Protocol, &RangeSet::single(6));
        assert!(tcp.subtract(&all).is_empty());
        assert!(tcp.is_subset(&all));
        assert_eq!(all.subtract(&tcp).len(), 1);
    }
}
