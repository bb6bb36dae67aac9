//! [`BlobError`]: why a policy blob could not be read, in words a user can act on.

use core::fmt;

use super::super::flat::{BadWord, List};
use super::{HEADER_LEN, VERSION};
use crate::policy::Span;

/// Why a blob could not be read. Its `Display` is one line naming the problem and where it
/// is (a byte offset, a list, a record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    /// The image holds the [`PLACEHOLDER`](super::PLACEHOLDER): no ruleset was embedded.
    Empty,
    /// Fewer bytes than a header.
    ShortHeader {
        /// Bytes given.
        len: usize,
    },
    /// The first bytes are not [`MAGIC`](super::MAGIC).
    BadMagic,
    /// A format version this build does not read.
    Version {
        /// The version in the header.
        found: u32,
    },
    /// The header declares fewer bytes than the header itself.
    LengthBelowHeader {
        /// The length in the header.
        declared: usize,
    },
    /// The header's length is not the number of bytes given.
    Length {
        /// The length in the header.
        declared: usize,
        /// Bytes given.
        given: usize,
    },
    /// The payload does not match the header's checksum: the image is damaged.
    Checksum,
    /// A section runs past the end of the blob.
    Truncated {
        /// The section being read.
        section: Section,
        /// Bytes it needs (its count, or its values as the count gives them).
        needed: usize,
        /// Offset of those bytes in the blob.
        at: usize,
        /// Bytes left from there.
        remaining: usize,
    },
    /// A padding byte that is not zero.
    Padding {
        /// The section the padding follows.
        section: Section,
        /// Offset of the padding in the blob.
        at: usize,
    },
    /// Text that is not UTF-8.
    NotUtf8 {
        /// The section holding the text.
        section: Section,
        /// Offset of the text in the blob.
        at: usize,
    },
    /// The default rule's list does not hold exactly one record.
    DefaultCount {
        /// Records it holds.
        count: usize,
    },
    /// A word of a record that the encoder never writes.
    Word {
        /// The record.
        record: Record,
        /// The word and the field it belongs to.
        bad: BadWord,
    },
    /// A span of a record that does not lie inside the pool it points into.
    Span {
        /// The record.
        record: Record,
        /// The record's field holding the span.
        field: &'static str,
        /// The span.
        span: Span,
        /// The pool it points into.
        pool: List,
        /// Items in the pool (bytes for `names`).
        pool_len: usize,
    },
    /// A span into `names` that starts or ends inside a character.
    SplitName {
        /// The record.
        record: Record,
        /// The record's field holding the span.
        field: &'static str,
        /// The span.
        span: Span,
    },
    /// The match index was built over another number of rules.
    IndexRuleCount {
        /// The index's rule count.
        index: u32,
        /// Rules in the blob.
        rules: usize,
    },
    /// Bytes after the last field.
    Trailing {
        /// Offset of the first of them.
        at: usize,
        /// How many.
        extra: usize,
    },
}

/// A part of the blob, as error messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// One of the policy's lists.
    List(List),
    /// The ruleset's file name.
    SourceName,
    /// The policy's digest.
    Digest,
    /// The number of rules the match index was built over.
    IndexRuleCount,
    /// The match index's roots.
    IndexRoots,
    /// The match index's class table.
    IndexClasses,
    /// The match index's trees.
    IndexTree,
}

/// One record of one of the policy's lists, as error messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The list.
    pub list: List,
    /// Its position in the list, from 0.
    pub index: usize,
}

/// What a list holds, in the plural.
fn plural(list: List) -> &'static str {
    match list {
        List::Interfaces => "interfaces",
        List::Clients => "clients",
        List::Rules => "rules",
        List::Default => "default rule",
        List::Masquerade => "nat rules",
        List::Forwards => "port forwards",
        List::Dns => "DNS redirects",
        List::DhcpServers => "DHCP servers",
        List::Names => "names",
        List::AddrRanges => "address ranges",
        List::PortRanges => "port ranges",
        List::ByteRanges => "byte ranges",
        List::Ipv4Addrs => "IPv4 addresses",
    }
}

/// One record of a list.
fn singular(list: List) -> &'static str {
    match list {
        List::Interfaces => "interface",
        List::Clients => "client",
        List::Rules => "rule",
        List::Default => "default rule",
        List::Masquerade => "nat rule",
        List::Forwards => "port forward",
        List::Dns => "DNS redirect",
        List::DhcpServers => "DHCP server",
        List::Names => "name",
        List::AddrRanges => "address range",
        List::PortRanges => "port range",
        List::ByteRanges => "byte range",
        List::Ipv4Addrs => "IPv4 address",
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Section::List(list) => write!(f, "{} list", plural(*list)),
            Section::SourceName => f.write_str("source name"),
            Section::Digest => f.write_str("digest"),
            Section::IndexRuleCount => f.write_str("match index's rule count"),
            Section::IndexRoots => f.write_str("match index's roots"),
            Section::IndexClasses => f.write_str("match index's classes"),
            Section::IndexTree => f.write_str("match index's tree"),
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.list {
            List::Default => f.write_str("the default rule"),
            list => write!(f, "{} {}", singular(list), self.index),
        }
    }
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            BlobError::Empty => f.write_str("no ruleset embedded in this image"),
            BlobError::ShortHeader { len } => write!(
                f,
                "policy blob truncated: {len} bytes, a header needs {HEADER_LEN}"
            ),
            BlobError::BadMagic => f.write_str("not a policy blob (bad magic)"),
            BlobError::Version { found } => write!(
                f,
                "policy format version {found}, this kernel reads version {VERSION}"
            ),
            BlobError::LengthBelowHeader { declared } => write!(
                f,
                "policy blob length {declared} in its header is shorter than the \
                 {HEADER_LEN}-byte header"
            ),
            BlobError::Length { declared, given } => write!(
                f,
                "policy blob length mismatch: its header says {declared} bytes, \
                 {given} were given"
            ),
            BlobError::Checksum => f.write_str("policy blob checksum mismatch"),
            BlobError::Truncated {
                section,
                needed,
                at,
                remaining,
            } => write!(
                f,
                "policy blob truncated: the {section} needs {needed} bytes at offset {at}, \
                 {remaining} remain"
            ),
            BlobError::Padding { section, at } => write!(
                f,
                "policy blob: nonzero padding after the {section} at offset {at}"
            ),
            BlobError::NotUtf8 { section, at } => {
                write!(f, "policy blob: the {section} at offset {at} is not UTF-8")
            }
            BlobError::DefaultCount { count } => write!(
                f,
                "policy blob: the default rule list holds {count} records, not 1"
            ),
            BlobError::Word { record, bad } => write!(f, "{record}: {bad}"),
            BlobError::Span {
                record,
                field,
                span,
                pool,
                pool_len,
            } => {
                let items = match pool {
                    List::Names => "bytes of names",
                    pool => plural(*pool),
                };
                write!(
                    f,
                    "{record}: its {field} span {}+{} runs past the {pool_len} {items}",
                    span.start, span.len
                )
            }
            BlobError::SplitName {
                record,
                field,
                span,
            } => write!(
                f,
                "{record}: its {field} span {}+{} splits a character of the names",
                span.start, span.len
            ),
            BlobError::IndexRuleCount { index, rules } => write!(
                f,
                "policy blob: the match index was built over {index} rules, the policy \
                 has {rules}"
            ),
            BlobError::Trailing { at, extra } => write!(
                f,
                "policy blob length mismatch: {extra} bytes after the last field, at \
                 offset {at}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn record_errors_name_the_record_and_the_problem() {
        let rule = |index| Record {
            list: List::Rules,
            index,
        };
        let word = BlobError::Word {
            record: rule(17),
            bad: BadWord {
                field: "action",
                word: 9,
            },
        };
        assert_eq!(word.to_string(), "rule 17: bad action word 9");
        let span = BlobError::Span {
            record: rule(3),
            field: "src",
            span: Span { start: 5, len: 2 },
            pool: List::AddrRanges,
            pool_len: 4,
        };
        assert_eq!(
            span.to_string(),
            "rule 3: its src span 5+2 runs past the 4 address ranges"
        );
        let default = BlobError::Word {
            record: Record {
                list: List::Default,
                index: 0,
            },
            bad: BadWord {
                field: "log flag",
                word: 2,
            },
        };
        assert_eq!(default.to_string(), "the default rule: bad log flag word 2");
    }

    #[test]
    fn a_truncation_says_what_ran_out_and_where() {
        let error = BlobError::Truncated {
            section: Section::List(List::Rules),
            needed: 260_000,
            at: 96,
            remaining: 1000,
        };
        assert_eq!(
            error.to_string(),
            "policy blob truncated: the rules list needs 260000 bytes at offset 96, 1000 remain"
        );
    }
}
