//! [`decode`]: a blob back into a [`PolicyBuf`], every byte checked on the way.

use alloc::string::String;
use alloc::vec::Vec;

use super::super::flat::{self, List, Unpacked};
use super::error::{BlobError, Record, Section};
use super::{bytes_at, check, checksum, total_len, Header, HEADER_LEN};
use crate::policy::index::MatchIndexBuf;
use crate::policy::{AddrRange, ByteRange, DefaultRule, PolicyBuf, PortRange};

/// Decodes a whole blob (header included) into an owned policy, index included.
///
/// # Errors
///
/// Whatever is wrong first, in the order: the header (see [`total_len`]), the blob's
/// length against the header's, the checksum, the payload in layout order (truncated
/// sections, unknown words, text that is not UTF-8, nonzero padding, bytes after the last
/// field), then spans outside their pools and an index built over another number of rules.
pub fn decode(blob: &[u8]) -> Result<PolicyBuf, BlobError> {
    let mut reader = Reader::open(blob)?;
    let (mut policy, index) = reader.policy()?;
    reader.finish()?;
    check::spans(&policy)?;
    let rule_count = index.as_index().rule_count;
    if rule_count as usize != policy.rules.len() {
        return Err(BlobError::IndexRuleCount {
            index: rule_count,
            rules: policy.rules.len(),
        });
    }
    policy.set_index(index);
    Ok(policy)
}

/// The source name and the digest of a whole blob (header included), read in place without
/// the heap: for a boot banner printed before memory is set up. The header, the length and
/// the checksum are checked as [`decode`] checks them; the rest of the blob is not read.
///
/// # Errors
///
/// As [`decode`], for the header, the length, the checksum and the two texts.
pub fn identity(blob: &[u8]) -> Result<(&str, &str), BlobError> {
    let mut reader = Reader::open(blob)?;
    let source_name = reader.str(Section::SourceName)?;
    let digest = reader.str(Section::Digest)?;
    Ok((source_name, digest))
}

/// Reads a blob's payload front to back.
struct Reader<'a> {
    blob: &'a [u8],
    /// Offset of the next byte to read.
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `blob`'s payload, once its header, length and checksum are checked.
    fn open(blob: &'a [u8]) -> Result<Reader<'a>, BlobError> {
        let declared = total_len(blob)?;
        if declared != blob.len() {
            return Err(BlobError::Length {
                declared,
                given: blob.len(),
            });
        }
        let payload = blob.get(HEADER_LEN..).unwrap_or_default();
        if checksum(payload) != Header::read(blob)?.checksum {
            return Err(BlobError::Checksum);
        }
        Ok(Reader {
            blob,
            at: HEADER_LEN,
        })
    }

    /// The policy's text, lists and index, in layout order.
    fn policy(&mut self) -> Result<(PolicyBuf, MatchIndexBuf), BlobError> {
        let mut policy = PolicyBuf::default();
        policy.source_name = self.text(Section::SourceName)?;
        policy.digest = self.text(Section::Digest)?;
        policy.interfaces = self.records(List::Interfaces, flat::interface_at)?;
        policy.clients = self.records(List::Clients, flat::client_at)?;
        policy.rules = self.records(List::Rules, flat::rule_at)?;
        policy.default = self.default()?;
        policy.masquerade = self.records(List::Masquerade, flat::masquerade_at)?;
        policy.forwards = self.records(List::Forwards, flat::forward_at)?;
        policy.dns = self.records(List::Dns, flat::dns_at)?;
        policy.dhcp_servers = self.records(List::DhcpServers, flat::dhcp_server_at)?;
        policy.names = self.text(Section::List(List::Names))?;
        policy.addr_ranges = self.addr_ranges()?;
        policy.port_ranges = self.port_ranges()?;
        policy.byte_ranges = self.byte_ranges()?;
        policy.ipv4_addrs = self.words(Section::List(List::Ipv4Addrs))?;
        let index = MatchIndexBuf::from_parts(
            self.u32(Section::IndexRuleCount)?,
            self.words(Section::IndexRoots)?,
            self.bytes(Section::IndexClasses)?,
            self.words(Section::IndexTree)?,
        );
        Ok((policy, index))
    }

    /// The bytes from the reading position on.
    fn rest(&self) -> &'a [u8] {
        self.blob.get(self.at..).unwrap_or_default()
    }

    /// The error for `section` needing `needed` bytes from here.
    fn truncated(&self, section: Section, needed: usize) -> BlobError {
        BlobError::Truncated {
            section,
            needed,
            at: self.at,
            remaining: self.rest().len(),
        }
    }

    /// The next `len` bytes.
    fn take(&mut self, section: Section, len: usize) -> Result<&'a [u8], BlobError> {
        let bytes = self
            .rest()
            .get(..len)
            .ok_or_else(|| self.truncated(section, len))?;
        self.at += len;
        Ok(bytes)
    }

    /// The next `N` bytes.
    fn array<const N: usize>(&mut self, section: Section) -> Result<[u8; N], BlobError> {
        let bytes = bytes_at(self.rest(), 0).ok_or_else(|| self.truncated(section, N))?;
        self.at += N;
        Ok(bytes)
    }

    /// The next `u32`.
    fn u32(&mut self, section: Section) -> Result<u32, BlobError> {
        self.array(section).map(u32::from_le_bytes)
    }

    /// A count of items of `item_len` bytes each, checked against the bytes that remain
    /// (so that what it sizes can be allocated).
    fn count(&mut self, section: Section, item_len: usize) -> Result<usize, BlobError> {
        let count = self.u32(section)? as usize;
        let needed = count.saturating_mul(item_len);
        if needed > self.rest().len() {
            return Err(self.truncated(section, needed));
        }
        Ok(count)
    }

    /// Skips the zero bytes that bring the position to a multiple of 4.
    fn pad(&mut self, section: Section) -> Result<(), BlobError> {
        let at = self.at;
        let padding = self.take(section, at.wrapping_neg() % 4)?;
        if padding.iter().any(|&b| b != 0) {
            return Err(BlobError::Padding { section, at });
        }
        Ok(())
    }

    /// A list of records of `W` words each, unpacked by `unpack`.
    fn records<T, const W: usize>(
        &mut self,
        list: List,
        unpack: fn(&[u32; W]) -> Unpacked<T>,
    ) -> Result<Vec<T>, BlobError> {
        let section = Section::List(list);
        let count = self.count(section, 4 * W)?;
        let mut records = Vec::with_capacity(count);
        for index in 0..count {
            let mut words = [0; W];
            for word in &mut words {
                *word = self.u32(section)?;
            }
            let record = unpack(&words).map_err(|bad| BlobError::Word {
                record: Record { list, index },
                bad,
            })?;
            records.push(record);
        }
        Ok(records)
    }

    /// The default rule: a list of exactly one record.
    fn default(&mut self) -> Result<DefaultRule, BlobError> {
        let defaults = self.records(List::Default, flat::default_at)?;
        match defaults[..] {
            [default] => Ok(default),
            _ => Err(BlobError::DefaultCount {
                count: defaults.len(),
            }),
        }
    }

    /// A list of `u32`s.
    fn words(&mut self, section: Section) -> Result<Vec<u32>, BlobError> {
        let count = self.count(section, 4)?;
        (0..count).map(|_| self.u32(section)).collect()
    }

    /// A list of bytes.
    fn bytes(&mut self, section: Section) -> Result<Vec<u8>, BlobError> {
        let count = self.count(section, 1)?;
        let bytes = self.take(section, count)?.to_vec();
        self.pad(section)?;
        Ok(bytes)
    }

    /// Text in place: a list of bytes that is UTF-8.
    fn str(&mut self, section: Section) -> Result<&'a str, BlobError> {
        let count = self.count(section, 1)?;
        let at = self.at;
        let text = self.take(section, count)?;
        let text = core::str::from_utf8(text).map_err(|_| BlobError::NotUtf8 { section, at })?;
        self.pad(section)?;
        Ok(text)
    }

    /// Text, copied.
    fn text(&mut self, section: Section) -> Result<String, BlobError> {
        self.str(section).map(String::from)
    }

    /// A list of pairs of bounds of `N` bytes each, made into ranges by `range`.
    fn ranges<const N: usize, T>(
        &mut self,
        list: List,
        range: impl Fn([u8; N], [u8; N]) -> T,
    ) -> Result<Vec<T>, BlobError> {
        let section = Section::List(list);
        let count = self.count(section, 2 * N)?;
        let mut ranges = Vec::with_capacity(count);
        for _ in 0..count {
            ranges.push(range(self.array(section)?, self.array(section)?));
        }
        self.pad(section)?;
        Ok(ranges)
    }

    /// The address ranges.
    fn addr_ranges(&mut self) -> Result<Vec<AddrRange>, BlobError> {
        self.ranges(List::AddrRanges, |first, last| AddrRange {
            first: u128::from_le_bytes(first),
            last: u128::from_le_bytes(last),
        })
    }

    /// The port ranges.
    fn port_ranges(&mut self) -> Result<Vec<PortRange>, BlobError> {
        self.ranges(List::PortRanges, |first, last| PortRange {
            first: u16::from_le_bytes(first),
            last: u16::from_le_bytes(last),
        })
    }

    /// The one-byte ranges.
    fn byte_ranges(&mut self) -> Result<Vec<ByteRange>, BlobError> {
        self.ranges(List::ByteRanges, |[first], [last]| ByteRange {
            first,
            last,
        })
    }

    /// Checks that nothing follows the last field.
    fn finish(self) -> Result<(), BlobError> {
        match self.rest().len() {
            0 => Ok(()),
            extra => Err(BlobError::Trailing { at: self.at, extra }),
        }
    }
}
