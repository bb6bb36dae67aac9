//! State limits from the ruleset: per rule, per rule and source, per client.
//!
//! The source `max-src-states` counts is a [`LimitSource`]: a client the appliance knows
//! (declared, or a DHCP pool client) is one source whatever address and family it sends
//! from; any other IPv4 sender is its address (pf's count); any other IPv6 sender is its
//! /64, because a host forms addresses in a whole /64 by SLAAC and may pick any of them.
//!
//! Counts are kept incrementally — taken when a state is created, released when it dies —
//! and only for keys that have a limit, so an unlimited rule costs nothing. The maps are
//! B-trees: they cannot be flooded into slow paths, and they grow only on state creation
//! (bounded by the number of live states), never on the per-packet lookup path.

use alloc::collections::BTreeMap;

use smoltcp::wire::{IpAddress, Ipv4Address};

use super::Refused;
use crate::policy::StateLimits;

/// The rule that let a flow through, with its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleRef {
    /// Index of the rule in the policy (`Verdict::rule`).
    pub index: u32,
    /// Its state limits.
    pub limits: StateLimits,
}

/// The client a flow comes from, with its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientRef {
    /// Index of the client in the policy (`Policy::clients`).
    pub index: u32,
    /// `Client::max_states` (0 = no limit).
    pub max_states: u32,
}

/// Whom `max-src-states` counts a state against (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LimitSource {
    /// A client the appliance knows, by its index ([`ClientRef::index`]).
    Client(u32),
    /// Another IPv4 sender, by its address.
    Ipv4(Ipv4Address),
    /// Another IPv6 sender, by the first 64 bits of its address.
    Ipv6Prefix([u8; 8]),
}

impl LimitSource {
    /// The source of a flow from `src`, of `client` if it is a known client's.
    pub fn of(src: IpAddress, client: Option<u32>) -> LimitSource {
        match (client, src) {
            (Some(index), _) => LimitSource::Client(index),
            (None, IpAddress::Ipv4(addr)) => LimitSource::Ipv4(addr),
            (None, IpAddress::Ipv6(addr)) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&addr.octets()[..8]);
                LimitSource::Ipv6Prefix(prefix)
            }
        }
    }
}

/// Which counts a state holds, so that exactly those are released when it dies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Held {
    rule: bool,
    source: bool,
    client: bool,
}

/// Whose counts a state holds: its rule, its source, its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub rule: Option<u32>,
    pub source: LimitSource,
    pub client: Option<u32>,
}

/// The live counts. See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct LimitCounts {
    per_rule: BTreeMap<u32, u32>,
    per_source: BTreeMap<(u32, LimitSource), u32>,
    per_client: BTreeMap<u32, u32>,
}

fn count<K: Ord>(map: &BTreeMap<K, u32>, key: &K) -> u32 {
    map.get(key).copied().unwrap_or(0)
}

fn take<K: Ord>(map: &mut BTreeMap<K, u32>, key: K) {
    *map.entry(key).or_insert(0) += 1;
}

fn release<K: Ord>(map: &mut BTreeMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl LimitCounts {
    /// Checks whether one more state from `source`, let through by `rule`, for `client`,
    /// stays within every limit; if so, returns which counts it will hold.
    pub fn admit(
        &self,
        rule: Option<RuleRef>,
        client: Option<ClientRef>,
        source: LimitSource,
    ) -> Result<Held, Refused> {
        let mut held = Held::default();
        if let Some(rule) = rule {
            let max = rule.limits.max_states;
            if max != 0 {
                if count(&self.per_rule, &rule.index) >= max {
                    return Err(Refused::RuleLimit);
                }
                held.rule = true;
            }
            let max = rule.limits.max_states_per_source;
            if max != 0 {
                if count(&self.per_source, &(rule.index, source)) >= max {
                    return Err(Refused::SourceLimit);
                }
                held.source = true;
            }
        }
        if let Some(client) = client.filter(|c| c.max_states != 0) {
            if count(&self.per_client, &client.index) >= client.max_states {
                return Err(Refused::ClientLimit);
            }
            held.client = true;
        }
        Ok(held)
    }

    /// Takes the counts `held` for `owner` (after [`LimitCounts::admit`]).
    pub fn take(&mut self, held: Held, owner: &Owner) {
        if let (true, Some(rule)) = (held.rule, owner.rule) {
            take(&mut self.per_rule, rule);
        }
        if let (true, Some(rule)) = (held.source, owner.rule) {
            take(&mut self.per_source, (rule, owner.source));
        }
        if let (true, Some(client)) = (held.client, owner.client) {
            take(&mut self.per_client, client);
        }
    }

    /// Releases the counts `held` for `owner` (a state died).
    pub fn release(&mut self, held: Held, owner: &Owner) {
        if let (true, Some(rule)) = (held.rule, owner.rule) {
            release(&mut self.per_rule, &rule);
        }
        if let (true, Some(rule)) = (held.source, owner.rule) {
            release(&mut self.per_source, &(rule, owner.source));
        }
        if let (true, Some(client)) = (held.client, owner.client) {
            release(&mut self.per_client, &client);
        }
    }

    /// Whether no count is held (every state released what it took).
    pub fn is_empty(&self) -> bool {
        self.per_rule.is_empty() && self.per_source.is_empty() && self.per_client.is_empty()
    }
}
