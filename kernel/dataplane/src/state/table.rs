//! [`StateTable`]: lookup, creation, expiry and early drop of states.

use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;

use super::entry::{State, StateInfo};
use super::index::{FlowIndex, IndexKey};
use super::limits::{ClientRef, LimitCounts, LimitSource, RuleRef};
use super::shares::Shares;
use super::slab::{QueueLinks, Slab};
use super::stats::{Refused, StateStats};
use super::timeouts::Timeouts;
use super::tracking::{Progress, Quote, Tracking};
use super::tuple::{Direction, Echo, FlowTuple};
use crate::nat::Translation;
use crate::packet::{IcmpSummary, IpSummary, QuotedPacket, Transport};
use crate::share::Source;

/// How to build a [`StateTable`].
#[derive(Clone, Copy, Debug)]
pub struct StateConfig {
    /// Most states alive at once (fixed; see [`StateTable::memory_bytes`] to size it from
    /// RAM). At most [`MAX_CAPACITY`].
    pub capacity: usize,
    /// Key of the index's hash. Must be secret and random (the kernel seeds it at boot):
    /// whoever knows it can craft tuples that collide.
    pub hash_key: [u8; 16],
    /// How long states live.
    pub timeouts: Timeouts,
}

/// Largest capacity a table can have.
pub const MAX_CAPACITY: usize = super::index::MAX_STATES;

/// A handle on a live state, valid until the state dies (then it finds nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateId {
    slot: u32,
    generation: u32,
}

/// What the pipeline knows when it asks for a state: the first packet of a flow that the
/// policy passed, where it came from and goes to, and how NAT translates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewFlow {
    /// NIC the packet arrived on.
    pub in_nic: u8,
    /// NIC it leaves through.
    pub out_nic: u8,
    /// Its tuple as it arrived (before NAT).
    pub original: FlowTuple,
    /// Its tuple as it leaves (after destination and source NAT; `original` if none).
    pub translated: FlowTuple,
    /// The rule that passed it, with that rule's state limits.
    pub rule: Option<RuleRef>,
    /// The client it comes from, with that client's state limit.
    pub client: Option<ClientRef>,
    /// Whose share of the table it takes (the source of its first packet on `in_nic`):
    /// early drop takes from the biggest consumer ([`super::shares`]).
    pub source: Source,
}

impl NewFlow {
    /// A flow from `in_nic` to `out_nic`, untranslated, not bound to a rule or client, its
    /// source a neighbour on `in_nic`.
    pub fn new(in_nic: u8, out_nic: u8, original: FlowTuple) -> NewFlow {
        NewFlow {
            in_nic,
            out_nic,
            original,
            translated: original,
            rule: None,
            client: None,
            source: match original.src {
                IpAddress::Ipv4(src) => Source::neighbour(in_nic, src),
                IpAddress::Ipv6(_) => Source::ipv6_sender(in_nic),
            },
        }
    }

    /// How the first packet is translated.
    pub fn translation(&self) -> Translation {
        Translation {
            before: self.original,
            after: self.translated,
        }
    }
}

/// Why a packet of a known state must not be forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateDrop {
    /// A TCP segment outside the window (or a RST with the wrong sequence number).
    OutOfWindow,
    /// It arrived on a NIC the state's flow does not cross in that direction.
    WrongInterface,
    /// An ICMP error quoting a packet whose sender has sent nothing in the flow.
    QuoteNeverSent,
    /// An ICMP error quoting a TCP segment outside its sender's window.
    QuoteOutOfWindow,
}

impl StateDrop {
    /// A short name for logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            StateDrop::OutOfWindow => "tcp-out-of-window",
            StateDrop::WrongInterface => "state-wrong-interface",
            StateDrop::QuoteNeverSent => "icmp-quote-never-sent",
            StateDrop::QuoteOutOfWindow => "icmp-quote-out-of-window",
        }
    }
}

/// A packet recognised as part of a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The state.
    pub id: StateId,
    /// Which way the packet travels.
    pub direction: Direction,
    /// How to translate the packet (see [`nat::apply`](crate::nat::apply)).
    pub translation: Translation,
    /// The NIC the state's flow leaves through in this direction.
    pub egress_nic: u8,
    /// `Ok`: forward it (translated). `Err`: drop it, counted under the reason.
    pub verdict: Result<(), StateDrop>,
    /// Index of the rule that created the state, if any (for its counters).
    pub rule: Option<u32>,
}

/// What [`StateTable::lookup`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No live state: the first packet of a new flow (or one that cannot be tracked: a
    /// fragment after the first, an ICMP error about no known flow).
    Miss,
    /// A packet of a state.
    Hit(Hit),
    /// An ICMP error about a packet of a state, to be translated back through it. It does
    /// not refresh the state.
    Related(Hit),
}

/// Why a state died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Death {
    Expired,
    EarlyDrop,
    Removed,
}

/// The state table. See the [module documentation](super).
pub struct StateTable {
    slab: Slab<State>,
    index: FlowIndex,
    shares: Shares,
    limits: LimitCounts,
    timeouts: Timeouts,
    stats: StateStats,
    sweep_cursor: u32,
}

impl StateTable {
    /// An empty table; all of its memory is allocated now.
    pub fn new(config: StateConfig) -> StateTable {
        let capacity = config.capacity.min(MAX_CAPACITY);
        let stats = StateStats {
            capacity: capacity as u32,
            ..StateStats::default()
        };
        StateTable {
            slab: Slab::new(capacity),
            index: FlowIndex::new(capacity, config.hash_key),
            shares: Shares::new(capacity, config.hash_key),
            limits: LimitCounts::default(),
            timeouts: config.timeouts,
            stats,
            sweep_cursor: 0,
        }
    }

    /// Bytes a table of `capacity` states occupies, allocated at construction. The limit
    /// counters come on top, only for rules and clients that have limits: at most about
    /// 40 bytes per state counted against a per-source limit.
    pub const fn memory_bytes(capacity: usize) -> usize {
        let capacity = if capacity > MAX_CAPACITY {
            MAX_CAPACITY
        } else {
            capacity
        };
        Slab::<State>::bytes_for(capacity)
            + FlowIndex::bytes_for(capacity)
            + Shares::bytes_for(capacity)
    }

    /// The largest capacity whose table fits in `bytes` (see [`StateTable::memory_bytes`]).
    pub const fn capacity_for(bytes: usize) -> usize {
        // memory_bytes is monotonic in capacity: binary search.
        let (mut lo, mut hi) = (0usize, MAX_CAPACITY);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if Self::memory_bytes(mid) <= bytes {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    /// The counters.
    pub fn stats(&self) -> StateStats {
        StateStats {
            live: self.slab.len() as u32,
            ..self.stats
        }
    }

    /// Number of live states (some may have expired without being swept yet).
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether no state is live.
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.slab.capacity()
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// What the table knows about state `id`, if it is still live.
    pub fn get(&self, id: StateId) -> Option<StateInfo> {
        self.state(id).map(State::info)
    }

    /// The live state whose original or reply tuple is `tuple`, if any.
    pub fn find(&self, tuple: &FlowTuple, now: Instant) -> Option<(StateId, Direction)> {
        let key = self.find_filed(tuple, self.index.hash(tuple))?;
        let state = self.slab.get(key.slot)?;
        if state.expired(now) {
            return None;
        }
        Some((self.id_of(key.slot)?, key.direction))
    }

    /// Whether a live state owns `tuple` (NAT uses this to find a free port).
    pub fn is_taken(&self, tuple: &FlowTuple, now: Instant) -> bool {
        self.find(tuple, now).is_some()
    }

    /// Finds the state of a packet that arrived on `in_nic`, tracks the packet through it
    /// (TCP window, pseudo-state, timeout) and says how to translate and whether to forward
    /// it. Expired states found on the way are removed. Never allocates.
    pub fn lookup(&mut self, in_nic: u8, summary: &IpSummary, now: Instant) -> Lookup {
        if let Transport::Icmp(IcmpSummary::Error { quoted, .. }) = summary.transport {
            return self.lookup_related(in_nic, summary, &quoted, now);
        }
        let Some(tuple) = FlowTuple::of(summary) else {
            return Lookup::Miss;
        };
        let Some(key) = self.find_live(&tuple, self.index.hash(&tuple), now) else {
            return Lookup::Miss;
        };
        let Some(state) = self.slab.get_mut(key.slot) else {
            return Lookup::Miss;
        };
        let from_initiator = key.direction == Direction::Original;
        if state.ingress(key.direction) != in_nic {
            self.stats.wrong_interface += 1;
            return self
                .hit(key, Err(StateDrop::WrongInterface))
                .map_or(Lookup::Miss, Lookup::Hit);
        }
        if state.tracking.tcp_reusable_by(summary) {
            // A new connection on the tuple of one that is over, from either end (pf's
            // state reuse, Linux conntrack's SYN in TIME_WAIT or CLOSE): the policy decides
            // it as the new flow it is. Never a packet of the old connection — which would
            // let a SYN from the far end through to a client without the policy's say.
            self.kill(key.slot, Death::Removed);
            return Lookup::Miss;
        }
        let verdict = match state
            .tracking
            .advance(summary, from_initiator, &self.timeouts)
        {
            Progress::Forward(refresh) => {
                if let Some(timeout) = refresh {
                    state.expires = now + timeout;
                }
                Ok(())
            }
            Progress::OutOfWindow => {
                self.stats.out_of_window += 1;
                Err(StateDrop::OutOfWindow)
            }
        };
        if state.tracking.established() && state.queue.queued() {
            let account = state.account;
            self.shares.settle(account, key.slot, &mut self.slab);
        }
        self.hit(key, verdict).map_or(Lookup::Miss, Lookup::Hit)
    }

    /// An ICMP error whose quoted packet belongs to a state: it travels in the direction
    /// opposite to the quoted packet, back to that packet's sender, and must arrive where
    /// that packet left. The quoted packet must be one the flow can have carried: its
    /// sender has sent something, and a TCP quote lies in its sender's window (pf's
    /// check). Who may send the error (the peer, or a router on the way) is the caller's
    /// to check: it knows the routes.
    fn lookup_related(
        &mut self,
        in_nic: u8,
        summary: &IpSummary,
        quoted: &QuotedPacket,
        now: Instant,
    ) -> Lookup {
        let Some(quoted_flow) = FlowTuple::quoted_flow(quoted) else {
            return Lookup::Miss;
        };
        if summary.dst != quoted.src {
            // An error goes to the sender of the packet it quotes; anything else is forged.
            return Lookup::Miss;
        }
        let candidates = [
            Some(quoted_flow),
            quoted_flow.echo.map(|_| FlowTuple {
                echo: Some(Echo::Reply),
                ..quoted_flow
            }),
        ];
        for quoted_flow in candidates.into_iter().flatten() {
            let key_tuple = quoted_flow.reversed();
            let Some(key) = self.find_live(&key_tuple, self.index.hash(&key_tuple), now) else {
                continue;
            };
            let Some(state) = self.slab.get(key.slot) else {
                continue;
            };
            // The quoted packet travelled the other way: its sender is the initiator when
            // the error travels as replies do.
            let quote = state
                .tracking
                .judge_quote(quoted, key.direction == Direction::Reply);
            let verdict = if state.ingress(key.direction) != in_nic {
                self.stats.wrong_interface += 1;
                Err(StateDrop::WrongInterface)
            } else if quote == Quote::NeverSent {
                Err(StateDrop::QuoteNeverSent)
            } else if quote == Quote::OutOfWindow {
                self.stats.out_of_window += 1;
                Err(StateDrop::QuoteOutOfWindow)
            } else {
                self.stats.related_icmp += 1;
                Ok(())
            };
            return self.hit(key, verdict).map_or(Lookup::Miss, Lookup::Related);
        }
        Lookup::Miss
    }

    fn hit(&self, key: IndexKey, verdict: Result<(), StateDrop>) -> Option<Hit> {
        let state = self.slab.get(key.slot)?;
        Some(Hit {
            id: self.id_of(key.slot)?,
            direction: key.direction,
            translation: state.translation(key.direction),
            egress_nic: state.egress(key.direction),
            verdict,
            rule: state.rule,
        })
    }

    /// Creates the state of a new flow whose first packet is `summary` (as it arrived),
    /// unless a limit forbids it. When the table is full, the oldest flow that is not yet
    /// established is dropped to make room (early drop); if every flow is established, the
    /// new one is refused. Refusals are counted by reason.
    pub fn insert(
        &mut self,
        flow: &NewFlow,
        summary: &IpSummary,
        now: Instant,
    ) -> Result<StateId, Refused> {
        let created = self.create(flow, summary, now);
        if let Err(reason) = created {
            self.stats.refused.count(reason);
        }
        created
    }

    fn create(
        &mut self,
        flow: &NewFlow,
        summary: &IpSummary,
        now: Instant,
    ) -> Result<StateId, Refused> {
        if FlowTuple::of(summary).is_none() {
            return Err(Refused::Untrackable);
        }
        let (tracking, first_timeout) =
            Tracking::open(summary, &self.timeouts).ok_or(Refused::TcpWithoutSyn)?;
        let reply = flow.translated.reversed();
        if reply == flow.original {
            // A flow to itself would be its own reply.
            return Err(Refused::Untrackable);
        }
        let hashes = [self.index.hash(&flow.original), self.index.hash(&reply)];
        if self.find_live(&flow.original, hashes[0], now).is_some()
            || self.find_live(&reply, hashes[1], now).is_some()
        {
            return Err(Refused::TupleInUse);
        }
        let held = self.limits.admit(
            flow.rule,
            flow.client,
            LimitSource::of(flow.original.src, flow.client.map(|c| c.index)),
        )?;
        if self.slab.is_full() {
            let victim = self.shares.victim(flow.source).ok_or(Refused::TableFull)?;
            self.kill(victim, Death::EarlyDrop);
        }
        let account = self.shares.account_for(flow.source);
        let state = State {
            original: flow.original,
            reply,
            in_nic: flow.in_nic,
            out_nic: flow.out_nic,
            rule: flow.rule.map(|r| r.index),
            client: flow.client.map(|c| c.index),
            held,
            tracking,
            expires: now + first_timeout,
            queue: QueueLinks::NONE,
            account,
        };
        let Some((slot, generation)) = self.slab.insert(state) else {
            return Err(Refused::TableFull);
        };
        for (direction, hash) in [Direction::Original, Direction::Reply]
            .into_iter()
            .zip(hashes)
        {
            self.index.insert(IndexKey { slot, direction }, hash);
        }
        let candidate = !state.tracking.established();
        self.shares.charge(account, slot, candidate, &mut self.slab);
        self.limits.take(held, &state.owner());
        self.count_live(&state, true);
        self.stats.inserts += 1;
        Ok(StateId { slot, generation })
    }

    /// Removes state `id`; returns whether it was live.
    pub fn remove(&mut self, id: StateId) -> bool {
        if self.state(id).is_none() {
            return false;
        }
        self.kill(id.slot, Death::Removed);
        true
    }

    /// Removes every state of a flow that crosses `nic` and has `address` at either end of
    /// either tuple — the flows bound to an address the appliance no longer has there (its
    /// uplink's lease changed or was lost): masqueraded flows translated to it, port
    /// forwards addressed to it. Their NAT ports are free again. Examines every slot once;
    /// returns how many states it removed.
    pub fn remove_bound_to(&mut self, nic: u8, address: IpAddress) -> usize {
        let touches = |t: &FlowTuple| t.src == address || t.dst == address;
        let mut removed = 0;
        for slot in 0..self.slab.used_slots() as u32 {
            let bound = self.slab.get(slot).is_some_and(|s| {
                (s.in_nic == nic || s.out_nic == nic) && (touches(&s.original) || touches(&s.reply))
            });
            if bound {
                self.kill(slot, Death::Removed);
                removed += 1;
            }
        }
        removed
    }

    /// Removes states that have expired at `now`, examining at most `budget` slots, resuming
    /// where the previous sweep stopped. Returns how many it removed. Called periodically, so
    /// that states of flows that went silent free their slots (and NAT ports) even when no
    /// packet looks them up; a full pass takes `capacity / budget` calls.
    pub fn sweep(&mut self, now: Instant, budget: usize) -> usize {
        // Slots never used hold nothing to expire.
        let slots = self.slab.used_slots() as u32;
        if slots == 0 {
            return 0;
        }
        if self.sweep_cursor >= slots {
            self.sweep_cursor = 0;
        }
        let mut removed = 0;
        for _ in 0..budget.min(slots as usize) {
            let slot = self.sweep_cursor;
            self.sweep_cursor = (self.sweep_cursor + 1) % slots;
            if self.slab.get(slot).is_some_and(|s| s.expired(now)) {
                self.kill(slot, Death::Expired);
                removed += 1;
            }
        }
        removed
    }

    /// Whether every limit count was released (a consistency check for tests).
    pub fn limit_counts_are_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// Whether the per-source accounts of early drop agree with the live states (a
    /// consistency check for tests).
    pub fn shares_agree(&self) -> bool {
        let states = (0..self.slab.used_slots() as u32)
            .filter_map(|slot| self.slab.get(slot))
            .map(|state| (state.account, state.queue.queued()));
        self.shares.agree_with(states)
    }

    fn state(&self, id: StateId) -> Option<&State> {
        if self.slab.generation(id.slot)? != id.generation {
            return None;
        }
        self.slab.get(id.slot)
    }

    fn id_of(&self, slot: u32) -> Option<StateId> {
        Some(StateId {
            slot,
            generation: self.slab.generation(slot)?,
        })
    }

    /// The index entry filed under `tuple` (whose hash is `hash`), live or expired.
    fn find_filed(&self, tuple: &FlowTuple, hash: u64) -> Option<IndexKey> {
        let slab = &self.slab;
        self.index.find(hash, |k| {
            slab.get(k.slot)
                .is_some_and(|s| s.tuple(k.direction) == *tuple)
        })
    }

    /// The live state filed under `tuple` (whose hash is `hash`); an expired one found there
    /// is removed.
    fn find_live(&mut self, tuple: &FlowTuple, hash: u64, now: Instant) -> Option<IndexKey> {
        let key = self.find_filed(tuple, hash)?;
        if self.slab.get(key.slot)?.expired(now) {
            self.kill(key.slot, Death::Expired);
            return None;
        }
        Some(key)
    }

    fn kill(&mut self, slot: u32, death: Death) {
        let Some(state) = self.slab.get(slot).copied() else {
            return;
        };
        for direction in [Direction::Original, Direction::Reply] {
            let hash = self.index.hash(&state.tuple(direction));
            let (index, slab) = (&mut self.index, &self.slab);
            index.remove(IndexKey { slot, direction }, hash, |k| {
                match slab.get(k.slot) {
                    Some(s) => s.tuple(k.direction),
                    None => state.tuple(direction),
                }
            });
        }
        self.shares.discharge(state.account, slot, &mut self.slab);
        self.slab.remove(slot);
        self.limits.release(state.held, &state.owner());
        self.count_live(&state, false);
        match death {
            Death::Expired => self.stats.expired += 1,
            Death::EarlyDrop => self.stats.early_drops += 1,
            Death::Removed => self.stats.removed += 1,
        }
    }

    /// Counts a state in (`born`) or out of the live counters.
    fn count_live(&mut self, state: &State, born: bool) {
        let change = |counter: &mut u32| {
            *counter = if born {
                *counter + 1
            } else {
                counter.saturating_sub(1)
            }
        };
        change(self.stats.by_protocol.slot(state.original.protocol));
        if state.translates_source() {
            change(&mut self.stats.nat_ports_in_use);
        }
    }
}
