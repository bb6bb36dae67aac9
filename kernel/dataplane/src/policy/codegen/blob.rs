//! The policy blob: a compiled [`Policy`](crate::policy::Policy) as bytes, which the image
//! tool writes into the kernel image and the kernel reads back at boot with [`decode`].
//!
//! # Guarantees
//!
//! - [`decode`] never panics, whatever the bytes: every read is bounds-checked, every count
//!   is checked against the bytes that remain before anything is allocated, and a problem
//!   is a [`BlobError`] whose message names it and where it is (an offset, a list, a
//!   record).
//! - A blob that decodes is a policy the data plane can run: its text is UTF-8, every word
//!   is one the encoder writes (known kinds, flags 0 or 1, NICs below
//!   [`MAX_NICS`](crate::policy::MAX_NICS), MTUs and prefix lengths in range), every
//!   [`Span`](crate::policy::Span) lies inside the pool it points into, and the match index
//!   was built over as many rules as the policy has.
//! - `encode` (feature `codegen`) is deterministic: the same policy gives the same bytes.
//!
//! The checksum guards against a damaged image, not against an attacker: whoever can write
//! the image can write a matching checksum.
//!
//! ```
//! use dataplane::policy::codegen::blob::{decode, total_len, BlobError, PLACEHOLDER};
//!
//! // A kernel that never went through the image tool carries only the placeholder.
//! assert_eq!(total_len(&PLACEHOLDER), Err(BlobError::Empty));
//! let error = decode(&PLACEHOLDER).unwrap_err();
//! assert_eq!(error.to_string(), "no ruleset embedded in this image");
//! ```
//!
//! # Layout
//!
//! All integers are little-endian; every section starts at a multiple of 4 bytes (padding
//! bytes are zero).
//!
//! | bytes | content |
//! |-------|---------|
//! | 8     | [`MAGIC`] |
//! | 4     | format version ([`VERSION`]) |
//! | 4     | total length, header included (`0` in [`PLACEHOLDER`]: no ruleset) |
//! | 8     | checksum: SipHash-1-3 with a zero key over every byte after the header |
//!
//! Then the source name and the digest (each a `u32` byte count and UTF-8: first, so that
//! [`identity`] reads them without decoding the rest), and the policy's lists, in
//! [`walk`](super::flat::walk) order ([`List`](super::flat::List)), each a `u32` count
//! followed by its values:
//!
//! - the records (interfaces, clients, rules, the default — always one —, `nat` rules,
//!   port forwards, DNS redirects, DHCP servers): `count` records of the `*_WORDS` words
//!   of [`flat`](super::flat) (`u32` each), as the `*_words` functions pack them;
//! - `names`: `count` bytes of UTF-8;
//! - `addr_ranges`: `count` pairs of `u128` bounds (first, last);
//! - `port_ranges`: `count` pairs of `u16` bounds;
//! - `byte_ranges`: `count` pairs of `u8` bounds;
//! - `ipv4_addrs`: `count` `u32`s.
//!
//! Then the match index: its rule count (`u32`), then `roots` (`u32` count, `u32`s),
//! `classes` (`u32` count, bytes) and `tree` (`u32` count, `u32`s). The blob ends there: a
//! byte after it is an error.

use core::hash::Hasher;

use siphasher::sip::SipHasher13;

mod check;
mod error;
mod read;
#[cfg(feature = "codegen")]
mod write;

pub use error::{BlobError, Record, Section};
pub use read::{decode, identity};
#[cfg(feature = "codegen")]
pub use write::encode;

/// First 8 bytes of every policy blob.
pub const MAGIC: [u8; 8] = *b"MOATPLCY";

/// Format version this build reads and writes.
pub const VERSION: u32 = 1;

/// Bytes of the header: magic (8), version (u32 LE), total length including the header
/// (u32 LE), checksum (u64 LE).
pub const HEADER_LEN: usize = 24;

/// The header of a kernel with no ruleset embedded: [`MAGIC`], [`VERSION`], length 0,
/// checksum 0. The image tool finds it in the kernel and puts a blob in its place.
pub const PLACEHOLDER: [u8; HEADER_LEN] = Header {
    magic: MAGIC,
    version: VERSION,
    total_len: 0,
    checksum: 0,
}
.to_bytes();

/// The fields of a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    magic: [u8; 8],
    version: u32,
    total_len: u32,
    checksum: u64,
}

impl Header {
    /// Reads the first [`HEADER_LEN`] bytes of `bytes`, unchecked.
    fn read(bytes: &[u8]) -> Result<Header, BlobError> {
        let short = || BlobError::ShortHeader { len: bytes.len() };
        Ok(Header {
            magic: bytes_at(bytes, 0).ok_or_else(short)?,
            version: u32::from_le_bytes(bytes_at(bytes, 8).ok_or_else(short)?),
            total_len: u32::from_le_bytes(bytes_at(bytes, 12).ok_or_else(short)?),
            checksum: u64::from_le_bytes(bytes_at(bytes, 16).ok_or_else(short)?),
        })
    }

    /// The header as bytes.
    const fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        let at = put(&mut out, 0, &self.magic);
        let at = put(&mut out, at, &self.version.to_le_bytes());
        let at = put(&mut out, at, &self.total_len.to_le_bytes());
        put(&mut out, at, &self.checksum.to_le_bytes());
        out
    }
}

/// Copies `part` into `out` at `at`; returns the position after it.
const fn put(out: &mut [u8; HEADER_LEN], at: usize, part: &[u8]) -> usize {
    let mut i = 0;
    while i < part.len() {
        out[at + i] = part[i];
        i += 1;
    }
    at + part.len()
}

/// `N` bytes of `bytes` from `at`, or `None` if they run past its end.
fn bytes_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..)?.first_chunk().copied()
}

/// The checksum of a blob's payload (every byte after the header).
fn checksum(payload: &[u8]) -> u64 {
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(payload);
    hasher.finish()
}

/// Reads and checks the header at the start of `header` (bytes after the first
/// [`HEADER_LEN`] are ignored); returns the blob's total length, header included.
///
/// # Errors
///
/// [`BlobError::Empty`] for the [`PLACEHOLDER`] (length 0); otherwise a short header, bad
/// magic, another version, or a length shorter than the header.
pub fn total_len(header: &[u8]) -> Result<usize, BlobError> {
    let header = Header::read(header)?;
    if header.magic != MAGIC {
        return Err(BlobError::BadMagic);
    }
    if header.version != VERSION {
        return Err(BlobError::Version {
            found: header.version,
        });
    }
    match header.total_len as usize {
        0 => Err(BlobError::Empty),
        len if len < HEADER_LEN => Err(BlobError::LengthBelowHeader { declared: len }),
        len => Ok(len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with these fields.
    fn header(magic: [u8; 8], version: u32, total_len: u32) -> [u8; HEADER_LEN] {
        Header {
            magic,
            version,
            total_len,
            checksum: 0x0123_4567_89ab_cdef,
        }
        .to_bytes()
    }

    #[test]
    fn the_placeholder_is_a_header_with_no_ruleset() {
        assert_eq!(&PLACEHOLDER[..8], b"MOATPLCY");
        assert_eq!(&PLACEHOLDER[8..12], &[1, 0, 0, 0]);
        assert_eq!(&PLACEHOLDER[12..], &[0; 12]);
        assert_eq!(total_len(&PLACEHOLDER), Err(BlobError::Empty));
    }

    #[test]
    fn the_header_fields_are_little_endian_at_their_offsets() {
        let bytes = header(MAGIC, VERSION, 0x0403_0201);
        assert_eq!(&bytes[12..16], &[1, 2, 3, 4]);
        assert_eq!(&bytes[16..], &0x0123_4567_89ab_cdef_u64.to_le_bytes());
        assert_eq!(
            Header::read(&bytes),
            Ok(Header {
                magic: MAGIC,
                version: VERSION,
                total_len: 0x0403_0201,
                checksum: 0x0123_4567_89ab_cdef,
            })
        );
    }

    #[test]
    fn total_len_gives_the_length_of_a_good_header() {
        assert_eq!(total_len(&header(MAGIC, VERSION, 24)), Ok(24));
        assert_eq!(total_len(&header(MAGIC, VERSION, 5000)), Ok(5000));
        let mut longer = header(MAGIC, VERSION, 96).to_vec();
        longer.extend_from_slice(&[0xff; 72]);
        assert_eq!(
            total_len(&longer),
            Ok(96),
            "bytes after the header are ignored"
        );
    }

    #[test]
    fn total_len_refuses_a_bad_header() {
        assert_eq!(
            total_len(&header(*b"MOATPLCX", VERSION, 100)),
            Err(BlobError::BadMagic)
        );
        assert_eq!(
            total_len(&header(MAGIC, 7, 100)),
            Err(BlobError::Version { found: 7 })
        );
        assert_eq!(
            total_len(&header(MAGIC, VERSION, 23)),
            Err(BlobError::LengthBelowHeader { declared: 23 })
        );
        for len in 0..HEADER_LEN {
            assert_eq!(
                total_len(&PLACEHOLDER[..len]),
                Err(BlobError::ShortHeader { len })
            );
        }
    }

    #[test]
    fn header_errors_say_what_is_wrong() {
        let message = |bytes: &[u8]| alloc::format!("{}", total_len(bytes).unwrap_err());
        assert_eq!(message(&PLACEHOLDER), "no ruleset embedded in this image");
        assert_eq!(
            message(&header(*b"ELF\0\0\0\0\0", VERSION, 100)),
            "not a policy blob (bad magic)"
        );
        assert_eq!(
            message(&header(MAGIC, 7, 100)),
            "policy format version 7, this kernel reads version 1"
        );
        assert_eq!(
            message(&PLACEHOLDER[..10]),
            "policy blob truncated: 10 bytes, a header needs 24"
        );
    }

    #[test]
    fn the_checksum_is_siphash_1_3_with_a_zero_key() {
        assert_eq!(checksum(b""), SipHasher13::new_with_keys(0, 0).finish());
        assert_ne!(checksum(b"a"), checksum(b"b"));
    }
}
