//! [`encode`]: a policy as a blob (host side, feature `codegen`).

use alloc::vec::Vec;

use super::super::flat::{walk, List, PolicyWalker};
use super::{checksum, Header, HEADER_LEN, MAGIC, VERSION};
use crate::policy::index::MatchIndexBuf;
use crate::policy::{MatchIndex, Policy};

/// The blob of `policy`: deterministic (the same policy gives the same bytes).
///
/// The policy's own index is written if it was built over these rules; otherwise one is
/// built here, so that the kernel never scans the rules linearly.
///
/// # Panics
///
/// If the blob would exceed 4 GiB, which no ruleset the compiler accepts comes near.
pub fn encode(policy: &Policy) -> Vec<u8> {
    let built;
    let index = if policy.index.rule_count as usize == policy.rules.len() {
        policy.index
    } else {
        built = MatchIndexBuf::build(policy);
        built.as_index()
    };
    let mut writer = Writer {
        bytes: Vec::from(super::PLACEHOLDER),
    };
    writer.string(policy.source_name);
    writer.string(policy.digest);
    walk(policy, &mut writer);
    writer.pad();
    writer.index(&index);
    writer.seal()
}

/// Builds a blob: the header's place, then the payload.
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// Zero bytes up to a multiple of 4.
    fn pad(&mut self) {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
    }

    fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A count (of items, or of bytes).
    fn count(&mut self, count: usize) {
        self.u32(u32::try_from(count).expect("a policy list of fewer than 2^32 items"));
    }

    /// A byte count, the UTF-8 bytes and padding.
    fn string(&mut self, text: &str) {
        self.count(text.len());
        self.bytes.extend_from_slice(text.as_bytes());
        self.pad();
    }

    /// The match index.
    fn index(&mut self, index: &MatchIndex) {
        self.u32(index.rule_count);
        self.count(index.roots.len());
        index.roots.iter().for_each(|&w| self.u32(w));
        self.count(index.classes.len());
        self.bytes.extend_from_slice(index.classes);
        self.pad();
        self.count(index.tree.len());
        index.tree.iter().for_each(|&w| self.u32(w));
    }

    /// The blob, with its header written over the placeholder.
    fn seal(mut self) -> Vec<u8> {
        let header = Header {
            magic: MAGIC,
            version: VERSION,
            total_len: u32::try_from(self.bytes.len()).expect("a policy blob under 4 GiB"),
            checksum: checksum(&self.bytes[HEADER_LEN..]),
        };
        self.bytes[..HEADER_LEN].copy_from_slice(&header.to_bytes());
        self.bytes
    }
}

impl PolicyWalker for Writer {
    fn begin(&mut self, _list: List, count: usize) {
        self.pad();
        self.count(count);
    }
    fn word(&mut self, word: u32) {
        self.u32(word);
    }
    fn addr(&mut self, bound: u128) {
        self.bytes.extend_from_slice(&bound.to_le_bytes());
    }
    fn port(&mut self, bound: u16) {
        self.bytes.extend_from_slice(&bound.to_le_bytes());
    }
    fn byte(&mut self, bound: u8) {
        self.bytes.push(bound);
    }
    fn text(&mut self, text: &str) {
        self.bytes.extend_from_slice(text.as_bytes());
    }
}
