//! [`PolicyBuf`]: the owned form of a [`Policy`], built by the host compiler or decoded from
//! a policy blob at boot.

use alloc::string::String;
use alloc::vec::Vec;

use super::index::MatchIndexBuf;
use super::model::*;

/// A policy under construction, built on the host, or decoded from a policy blob
/// ([`codegen::blob::decode`](super::codegen::blob::decode)): the same pools as [`Policy`],
/// in `Vec`s, plus the matcher's index once `PolicyBuf::build_index` (feature `codegen`)
/// has run or the blob's index was read. [`PolicyBuf::as_policy`] borrows it as the
/// `Policy` the matcher runs on.
#[derive(Clone, Debug)]
pub struct PolicyBuf {
    /// See [`Policy::source_name`].
    pub source_name: String,
    /// See [`Policy::digest`].
    pub digest: String,
    /// See [`Policy::interfaces`].
    pub interfaces: Vec<Interface>,
    /// See [`Policy::clients`].
    pub clients: Vec<Client>,
    /// See [`Policy::rules`].
    pub rules: Vec<Rule>,
    /// See [`Policy::default`].
    pub default: DefaultRule,
    /// See [`Policy::masquerade`].
    pub masquerade: Vec<Masquerade>,
    /// See [`Policy::forwards`].
    pub forwards: Vec<PortForward>,
    /// See [`Policy::dns`].
    pub dns: Vec<DnsRedirect>,
    /// See [`Policy::dhcp_servers`].
    pub dhcp_servers: Vec<DhcpServer>,
    /// See [`Policy::names`].
    pub names: String,
    /// See [`Policy::addr_ranges`].
    pub addr_ranges: Vec<AddrRange>,
    /// See [`Policy::port_ranges`].
    pub port_ranges: Vec<PortRange>,
    /// See [`Policy::byte_ranges`].
    pub byte_ranges: Vec<ByteRange>,
    /// See [`Policy::ipv4_addrs`].
    pub ipv4_addrs: Vec<u32>,
    /// The index over `rules`, as of the last `PolicyBuf::build_index` (or as decoded).
    index: MatchIndexBuf,
}

impl Default for PolicyBuf {
    fn default() -> Self {
        PolicyBuf {
            source_name: String::new(),
            digest: String::new(),
            interfaces: Vec::new(),
            clients: Vec::new(),
            rules: Vec::new(),
            default: DefaultRule {
                pos: SourcePos::default(),
                reject: false,
                log: false,
            },
            masquerade: Vec::new(),
            forwards: Vec::new(),
            dns: Vec::new(),
            dhcp_servers: Vec::new(),
            names: String::new(),
            addr_ranges: Vec::new(),
            port_ranges: Vec::new(),
            byte_ranges: Vec::new(),
            ipv4_addrs: Vec::new(),
            index: MatchIndexBuf::default(),
        }
    }
}

fn push_all<T: Copy>(pool: &mut Vec<T>, items: &[T]) -> Span {
    let start = pool.len() as u32;
    pool.extend_from_slice(items);
    Span {
        start,
        len: items.len() as u32,
    }
}

impl PolicyBuf {
    /// Adds a name to the name pool.
    pub fn add_name(&mut self, name: &str) -> Span {
        let start = self.names.len() as u32;
        self.names.push_str(name);
        Span {
            start,
            len: name.len() as u32,
        }
    }

    /// Adds address ranges to their pool.
    pub fn add_addr_ranges(&mut self, ranges: &[AddrRange]) -> Span {
        push_all(&mut self.addr_ranges, ranges)
    }

    /// Adds port ranges to their pool.
    pub fn add_port_ranges(&mut self, ranges: &[PortRange]) -> Span {
        push_all(&mut self.port_ranges, ranges)
    }

    /// Adds one-byte ranges to their pool.
    pub fn add_byte_ranges(&mut self, ranges: &[ByteRange]) -> Span {
        push_all(&mut self.byte_ranges, ranges)
    }

    /// Adds IPv4 addresses to their pool.
    pub fn add_ipv4_addrs(&mut self, addrs: &[u32]) -> Span {
        push_all(&mut self.ipv4_addrs, addrs)
    }

    /// Builds the fast matcher's index over `rules`. Call after the rules and pools are
    /// final and before [`PolicyBuf::as_policy`]; the compiler calls it once per ruleset.
    ///
    /// Until it is called, or if rules are added or removed afterwards, the policy still
    /// decides correctly but by a linear scan. Editing a rule's ranges afterwards without
    /// calling it again gives wrong answers.
    #[cfg(any(test, feature = "codegen"))]
    pub fn build_index(&mut self) {
        self.index = MatchIndexBuf::default();
        self.index = MatchIndexBuf::build(&self.as_policy());
    }

    /// Replaces the index (the blob decoder's way to restore the one it read).
    pub(crate) fn set_index(&mut self, index: MatchIndexBuf) {
        self.index = index;
    }

    /// Borrows this buffer as a [`Policy`].
    pub fn as_policy(&self) -> Policy<'_> {
        Policy {
            source_name: &self.source_name,
            digest: &self.digest,
            interfaces: &self.interfaces,
            clients: &self.clients,
            rules: &self.rules,
            default: self.default,
            masquerade: &self.masquerade,
            forwards: &self.forwards,
            dns: &self.dns,
            dhcp_servers: &self.dhcp_servers,
            names: &self.names,
            addr_ranges: &self.addr_ranges,
            port_ranges: &self.port_ranges,
            byte_ranges: &self.byte_ranges,
            ipv4_addrs: &self.ipv4_addrs,
            index: self.index.as_index(),
        }
    }
}
