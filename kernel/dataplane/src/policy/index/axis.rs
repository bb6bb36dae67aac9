//! The axes the cut tree cuts along: the four wide dimensions as they are, and the six
//! one-byte dimensions packed together into one [`Axis::Flow`] coordinate.
//!
//! Cutting ingress NIC, egress, protocol, ICMP type and code and destination NAT one after
//! the other would cost a level of the tree each. Instead each one-byte value is mapped to
//! its *class* (the values no rule tells apart share a class) and the six class codes are
//! packed into the
//! bit fields of one coordinate, ingress NIC most significant, so that a single cut can
//! resolve them all. The index stores the class of every value and where each field starts
//! (see [`CLASS_TABLE_LEN`]): the `Flow` coordinate of a key is six table lookups, shifted
//! and or'ed together.

use super::super::FlowKey;
use super::dim::Dim;

/// One axis of the cut tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Axis {
    /// The six one-byte dimensions, as packed class codes.
    Flow,
    /// Source address.
    Src,
    /// Destination address.
    Dst,
    /// Source port.
    SrcPort,
    /// Destination port.
    DstPort,
}

/// How many axes there are.
pub const AXES: usize = 5;

/// The one-byte dimensions packed into [`Axis::Flow`], most significant first.
pub const FLOW_DIMS: [Dim; 6] = [
    Dim::InNic,
    Dim::Out,
    Dim::Protocol,
    Dim::IcmpType,
    Dim::IcmpCode,
    Dim::Redirect,
];

/// Bytes of the class table: the class of each of the 256 values of every packed dimension,
/// in [`FLOW_DIMS`] order, then the bit offset of each dimension's field.
pub const CLASS_TABLE_LEN: usize = 256 * FLOW_DIMS.len() + FLOW_DIMS.len();

impl Axis {
    /// Every axis, in the order of their indices.
    pub const ALL: [Axis; AXES] = [
        Axis::Flow,
        Axis::Src,
        Axis::Dst,
        Axis::SrcPort,
        Axis::DstPort,
    ];

    /// The axis's index (`0..AXES`), as stored in a node's shape word.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The axis with index `i`, if `i < AXES`.
    pub const fn from_index(i: usize) -> Option<Axis> {
        if i < AXES {
            Some(Axis::ALL[i])
        } else {
            None
        }
    }

    /// The largest coordinate on this axis.
    pub const fn max(self) -> u128 {
        match self {
            Axis::Flow => u64::MAX as u128,
            Axis::Src | Axis::Dst => u128::MAX,
            Axis::SrcPort | Axis::DstPort => u16::MAX as u128,
        }
    }

    /// The dimensions (bit [`Dim::index`]) whose fields this axis stands for.
    pub const fn dims(self) -> u32 {
        match self {
            Axis::Flow => {
                1 << Dim::InNic.index()
                    | 1 << Dim::Out.index()
                    | 1 << Dim::Protocol.index()
                    | 1 << Dim::IcmpType.index()
                    | 1 << Dim::IcmpCode.index()
                    | 1 << Dim::Redirect.index()
            }
            Axis::Src => 1 << Dim::Src.index(),
            Axis::Dst => 1 << Dim::Dst.index(),
            Axis::SrcPort => 1 << Dim::SrcPort.index(),
            Axis::DstPort => 1 << Dim::DstPort.index(),
        }
    }

    /// The dimension of a wide axis (`None` for [`Axis::Flow`]).
    pub const fn wide_dim(self) -> Option<Dim> {
        match self {
            Axis::Flow => None,
            Axis::Src => Some(Dim::Src),
            Axis::Dst => Some(Dim::Dst),
            Axis::SrcPort => Some(Dim::SrcPort),
            Axis::DstPort => Some(Dim::DstPort),
        }
    }
}

/// The key's coordinates on every axis, `None` if the class table is not a well-formed one.
#[inline]
pub fn coordinates(key: &FlowKey, classes: &[u8]) -> Option<[u128; AXES]> {
    let (classes, offsets) = classes.split_at_checked(256 * FLOW_DIMS.len())?;
    if offsets.len() != FLOW_DIMS.len() {
        return None;
    }
    let values = [
        key.in_nic,
        key.out,
        key.protocol,
        key.icmp_type,
        key.icmp_code,
        key.redirect,
    ];
    let mut flow = 0u128;
    for (d, value) in values.into_iter().enumerate() {
        flow |= (classes[d * 256 + value as usize] as u128).checked_shl(offsets[d] as u32)?;
    }
    Some([
        flow,
        key.src,
        key.dst,
        key.src_port as u128,
        key.dst_port as u128,
    ])
}

/// The class of every one-byte value and the bit field of each packed dimension in the
/// `Flow` coordinate (see the module doc). Built from the boundaries of the rules' fields
/// (by the host's index builder: feature `codegen`).
#[cfg(any(test, feature = "codegen"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowClasses {
    /// `classes[d][v]`: the class of value `v` of `FLOW_DIMS[d]`.
    pub classes: [[u8; 256]; FLOW_DIMS.len()],
    /// Bit width of each dimension's field.
    pub bits: [u32; FLOW_DIMS.len()],
    /// Where each dimension's field starts in the coordinate.
    pub offsets: [u32; FLOW_DIMS.len()],
}

#[cfg(any(test, feature = "codegen"))]
impl FlowClasses {
    /// Classes that tell apart every value at which one of `fields` (each a `(dimension
    /// position in FLOW_DIMS, first, last)` range) starts or ends.
    pub fn new(fields: impl Iterator<Item = (usize, u8, u8)>) -> FlowClasses {
        // starts[d][v]: a class starts at value v.
        let mut starts = [[false; 256]; FLOW_DIMS.len()];
        for (d, first, last) in fields {
            starts[d][first as usize] = true;
            if last < u8::MAX {
                starts[d][last as usize + 1] = true;
            }
        }
        let mut classes = [[0u8; 256]; FLOW_DIMS.len()];
        let mut bits = [0u32; FLOW_DIMS.len()];
        for d in 0..FLOW_DIMS.len() {
            let mut class = 0u8;
            for v in 0..256 {
                // At most 255 starts after value 0: the class always fits a byte.
                if v > 0 && starts[d][v] {
                    class += 1;
                }
                classes[d][v] = class;
            }
            bits[d] = u8::BITS - class.leading_zeros();
        }
        let mut offsets = [0u32; FLOW_DIMS.len()];
        let mut offset = 0;
        for d in (0..FLOW_DIMS.len()).rev() {
            offsets[d] = offset;
            offset += bits[d];
        }
        FlowClasses {
            classes,
            bits,
            offsets,
        }
    }

    /// The class table as stored in the index (see [`CLASS_TABLE_LEN`]).
    pub fn table(&self) -> impl Iterator<Item = u8> + '_ {
        self.classes
            .iter()
            .flatten()
            .copied()
            .chain(self.offsets.iter().map(|&offset| offset as u8))
    }

    /// The class of `value` in dimension `d` of [`FLOW_DIMS`].
    pub fn class(&self, d: usize, value: u8) -> u128 {
        self.classes[d][value as usize] as u128
    }

    /// The class of the largest value in dimension `d` of [`FLOW_DIMS`] (the last class).
    pub fn last_class(&self, d: usize) -> u128 {
        self.class(d, u8::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_no_rule_tells_apart_share_a_class() {
        // in_nic ranges [1, 1] and [1, 3]: classes {0}, {1}, {2, 3}, {4..}.
        let classes = FlowClasses::new([(0, 1, 1), (0, 1, 3)].into_iter());
        let class = |v| classes.class(0, v);
        assert_eq!(
            [class(0), class(1), class(2), class(3), class(4), class(255)],
            [0, 1, 2, 2, 3, 3]
        );
        assert_eq!(classes.bits[0], 2);
    }

    #[test]
    fn the_ingress_nic_is_the_most_significant_field() {
        let classes = FlowClasses::new([(0, 1, 1), (4, 0, 0)].into_iter());
        assert_eq!(classes.offsets, [1, 1, 1, 1, 0, 0]);
        let table: Vec<u8> = classes.table().collect();
        let key = FlowKey {
            in_nic: 1,
            icmp_code: 9,
            ..FlowKey::default()
        };
        assert_eq!(coordinates(&key, &table).map(|c| c[0]), Some(1 << 1 | 1));
    }
}
