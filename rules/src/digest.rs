//! The digest of a compiled policy: SHA-256 over a canonical byte encoding of everything
//! the data plane acts on — every list the data plane's own [`walk`] visits (records as
//! flat words, pools as their values, source positions included), little-endian; the file
//! name and the derived match index are not part of it. The same ruleset always gives the
//! same digest.

use dataplane::policy::codegen::flat::{walk, List, PolicyWalker};
use dataplane::policy::PolicyBuf;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the canonical encoding of `buf`.
pub fn policy_digest(buf: &PolicyBuf) -> String {
    let mut encoder = Encoder(Sha256::new());
    encoder.0.update(b"moat-policy-v2");
    walk(&buf.as_policy(), &mut encoder);
    encoder
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Feeds fixed-width little-endian values to the hash.
struct Encoder(Sha256);

impl PolicyWalker for Encoder {
    fn begin(&mut self, list: List, count: usize) {
        self.0.update([list as u8]);
        self.0.update((count as u64).to_le_bytes());
    }
    fn word(&mut self, word: u32) {
        self.0.update(word.to_le_bytes());
    }
    fn addr(&mut self, bound: u128) {
        self.0.update(bound.to_le_bytes());
    }
    fn port(&mut self, bound: u16) {
        self.0.update(bound.to_le_bytes());
    }
    fn byte(&mut self, bound: u8) {
        self.0.update([bound]);
    }
    fn text(&mut self, text: &str) {
        self.0.update(text.as_bytes());
    }
}
