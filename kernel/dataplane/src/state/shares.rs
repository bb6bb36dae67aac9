//! [`Shares`]: who holds the table's states, and whose not-yet-established state early drop
//! takes when the table is full — the biggest consumer's, never a quiet client's.
//!
//! # Accounts
//! Every state is charged to the [`Source`] of its first packet ([`crate::share`]):
//! - a neighbour (a client; a host on the uplink's network) has an account of its own,
//!   which is its class;
//! - the addresses behind a router on a NIC (the uplink's internet) are one class, the NIC's
//!   *remote side*, whose states are spread over [`REMOTE_BUCKETS`] accounts by a keyed hash
//!   of the address: one remote address always lands in the same bucket, so a single
//!   flooding address makes its bucket the biggest of its side, while a flood from random
//!   addresses spreads over all of them.
//!
//! Each account counts its live states and links its not-yet-established ones (TCP before
//! the handshake completes, UDP and the like before a reply — the early-drop candidates)
//! in a queue, oldest first ([`super::slab`]); a remote side's class account counts its
//! buckets' totals.
//!
//! # Early drop
//! When the table is full and a new flow needs a slot:
//! 1. the class with the most candidates gives one, if it holds more states in all than
//!    the newcomer's class; otherwise the newcomer's own class gives one, and if it has none
//!    the new flow is refused ([`Refused::TableFull`](super::Refused::TableFull): the table
//!    is full of established flows, or of flows of classes no bigger than the newcomer's);
//! 2. within a remote side, its bucket with the most states that has a candidate gives it
//!    (the newcomer's own bucket if it is at least as big);
//! 3. the giving account's oldest candidate is dropped.
//!
//! So a SYN flood from the uplink cycles through its own half-open states, a client
//! flooding new flows through its own, and a quiet client's query in flight is never taken
//! for a bigger consumer's new flow.
//!
//! # Cost and memory
//! Every operation is O(1) except finding (or creating) a neighbour's account when a state
//! is created — a B-tree lookup over the neighbours that hold states — and, when a remote
//! side gives, a scan of its [`REMOTE_BUCKETS`] buckets. Classes are kept in lists by
//! their number of candidates (which changes by one at a time), so the class with the most
//! is always at hand. The lists' heads take 4 bytes per state of capacity, allocated with
//! the table ([`Shares::bytes_for`]); accounts are allocated as sources appear: one per
//! neighbour that holds states (freed with its last state: at most one per live state, 40
//! bytes and a B-tree entry each) and `1 +` [`REMOTE_BUCKETS`] per NIC that has a remote
//! side (kept).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use siphasher::sip::SipHasher13;
use smoltcp::wire::Ipv4Address;

use super::slab::{QueueEnds, Queued, Slab, NIL};
use crate::share::Source;

/// Accounts of one NIC's remote side.
pub const REMOTE_BUCKETS: usize = 64;

/// An account's index in [`Shares`].
pub(crate) type AccountId = u32;

/// What an account is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    /// A neighbour on a NIC (its own class).
    Neighbour(u8, Ipv4Address),
    /// A NIC's remote side as a whole (a class; its buckets follow it).
    RemoteSide,
    /// One bucket of a remote side.
    RemoteBucket,
}

#[derive(Clone, Copy, Debug)]
struct Account {
    holder: Holder,
    /// Live states charged to the account (for a remote side: to its buckets).
    live: u32,
    /// Of those, not yet established.
    candidates: u32,
    /// The not-yet-established states, oldest first (buckets and neighbours).
    queue: QueueEnds,
    /// The class it belongs to (itself for a neighbour or a remote side).
    class: AccountId,
    /// Links in the list of classes with as many candidates (classes only).
    prev: AccountId,
    next: AccountId,
}

impl Account {
    fn new(holder: Holder, class: AccountId) -> Account {
        Account {
            holder,
            live: 0,
            candidates: 0,
            queue: QueueEnds::EMPTY,
            class,
            prev: NIL,
            next: NIL,
        }
    }
}

/// The accounts. See the module documentation.
pub(crate) struct Shares {
    accounts: Vec<Account>,
    free: Vec<AccountId>,
    neighbours: BTreeMap<(u8, Ipv4Address), AccountId>,
    remote_sides: BTreeMap<u8, AccountId>,
    /// `by_candidates[n]`: the first class with `n` candidates (`NIL`: none, as for every
    /// `n` past its end). Its capacity, one per state, is reserved at construction; it is
    /// lengthened as the most candidates grows, so a large table costs nothing to create.
    by_candidates: Vec<AccountId>,
    /// The most candidates any class has.
    most: u32,
    hasher: SipHasher13,
}

/// Domain separation of the remote buckets' hash from the index's, under one table key.
const BUCKET_KEY_TWEAK: u8 = 0x5a;

impl Shares {
    /// Accounts for a table of `capacity` states; remote addresses are filed under a hash
    /// keyed by `key`.
    pub fn new(capacity: usize, key: [u8; 16]) -> Shares {
        Shares {
            accounts: Vec::new(),
            free: Vec::new(),
            neighbours: BTreeMap::new(),
            remote_sides: BTreeMap::new(),
            by_candidates: Vec::with_capacity(capacity + 1),
            most: 0,
            hasher: SipHasher13::new_with_key(&key.map(|b| b ^ BUCKET_KEY_TWEAK)),
        }
    }

    /// Bytes allocated at construction for a table of `capacity` states.
    pub const fn bytes_for(capacity: usize) -> usize {
        (capacity + 1) * core::mem::size_of::<AccountId>()
    }

    /// The account a state of `source` is charged to (created if needed).
    pub fn account_for(&mut self, source: Source) -> AccountId {
        if source.remote {
            let side = self.remote_side(source.nic);
            side + 1 + self.bucket_of(source.addr)
        } else if let Some(&id) = self.neighbours.get(&(source.nic, source.addr)) {
            id
        } else {
            let id = self.allocate(Holder::Neighbour(source.nic, source.addr));
            self.neighbours.insert((source.nic, source.addr), id);
            id
        }
    }

    /// Charges a new state in `slot` to `account`; a `candidate` (not yet established) is
    /// queued for early drop.
    pub fn charge<T: Queued>(
        &mut self,
        account: AccountId,
        slot: u32,
        candidate: bool,
        slab: &mut Slab<T>,
    ) {
        let class = self.accounts[account as usize].class;
        self.accounts[account as usize].live += 1;
        if class != account {
            self.accounts[class as usize].live += 1;
        }
        if candidate {
            slab.enqueue(&mut self.accounts[account as usize].queue, slot);
            self.add_candidate(account, 1);
        }
    }

    /// The state in `slot`, charged to `account`, is established: it is no longer a
    /// candidate for early drop.
    pub fn settle<T: Queued>(&mut self, account: AccountId, slot: u32, slab: &mut Slab<T>) {
        if slab.unqueue(&mut self.accounts[account as usize].queue, slot) {
            self.add_candidate(account, -1);
        }
    }

    /// The state in `slot`, charged to `account`, dies (before the slab frees its slot).
    pub fn discharge<T: Queued>(&mut self, account: AccountId, slot: u32, slab: &mut Slab<T>) {
        self.settle(account, slot, slab);
        let class = self.accounts[account as usize].class;
        let entry = &mut self.accounts[account as usize];
        entry.live = entry.live.saturating_sub(1);
        let (holder, emptied) = (entry.holder, entry.live == 0);
        if class != account {
            let side = &mut self.accounts[class as usize];
            side.live = side.live.saturating_sub(1);
        }
        if let (Holder::Neighbour(nic, addr), true) = (holder, emptied) {
            self.neighbours.remove(&(nic, addr));
            self.free.push(account);
        }
    }

    /// The slot of the state early drop takes to make room for a new flow of `newcomer`
    /// (see the module documentation), or `None` if nothing may be taken.
    pub fn victim(&self, newcomer: Source) -> Option<u32> {
        let own_account = self.existing_account(newcomer);
        let own_class = own_account.map(|a| self.accounts[a as usize].class);
        let own_live = own_class.map_or(0, |c| self.accounts[c as usize].live);
        let top = (self.most > 0).then(|| self.first_with(self.most));
        let class = match top {
            Some(top) if Some(top) != own_class && self.accounts[top as usize].live > own_live => {
                top
            }
            _ => own_class?,
        };
        let giver = match self.accounts[class as usize].holder {
            Holder::RemoteSide => {
                let own = own_account.filter(|_| own_class == Some(class));
                self.biggest_bucket(class, own)?
            }
            _ => class,
        };
        self.accounts[giver as usize].queue.oldest()
    }

    /// Whether the accounts agree with `states`, the `(account, candidate)` of every live
    /// state: every count, and every class in the list of its number of candidates (a
    /// consistency check for tests).
    pub fn agree_with(&self, states: impl Iterator<Item = (AccountId, bool)>) -> bool {
        let mut counted = vec![(0u32, 0u32); self.accounts.len()];
        for (account, candidate) in states {
            let Some(class) = self.accounts.get(account as usize).map(|a| a.class) else {
                return false;
            };
            let ids = if class == account {
                [Some(account), None]
            } else {
                [Some(account), Some(class)]
            };
            for id in ids.into_iter().flatten() {
                counted[id as usize].0 += 1;
                counted[id as usize].1 += u32::from(candidate);
            }
        }
        let free = |id: &u32| self.free.contains(id);
        let counts_agree = self.accounts.iter().zip(&counted).enumerate().all(
            |(id, (account, &(live, candidates)))| {
                free(&(id as u32)) || (account.live, account.candidates) == (live, candidates)
            },
        );
        let listed = |class: AccountId, count: u32| {
            let mut at = self.first_with(count);
            while at != NIL {
                if at == class {
                    return true;
                }
                at = self.accounts[at as usize].next;
            }
            false
        };
        let classes_listed = self.accounts.iter().enumerate().all(|(id, account)| {
            let id = id as AccountId;
            account.class != id || account.candidates == 0 || listed(id, account.candidates)
        });
        let most = self
            .accounts
            .iter()
            .enumerate()
            .filter(|&(id, a)| a.class == id as AccountId && !free(&(id as u32)))
            .map(|(_, a)| a.candidates)
            .max()
            .unwrap_or(0);
        counts_agree && classes_listed && most == self.most
    }

    /// `source`'s account, if it has one.
    fn existing_account(&self, source: Source) -> Option<AccountId> {
        if source.remote {
            let side = *self.remote_sides.get(&source.nic)?;
            Some(side + 1 + self.bucket_of(source.addr))
        } else {
            self.neighbours.get(&(source.nic, source.addr)).copied()
        }
    }

    /// The bucket of remote side `side` that gives: the one with the most states among
    /// those with a candidate, or `own` (the newcomer's) if it is at least as big.
    fn biggest_bucket(&self, side: AccountId, own: Option<AccountId>) -> Option<AccountId> {
        let buckets = side + 1..side + 1 + REMOTE_BUCKETS as AccountId;
        let biggest = buckets
            .filter(|&b| self.accounts[b as usize].candidates > 0)
            .max_by_key(|&b| self.accounts[b as usize].live)?;
        Some(match own {
            Some(own)
                if self.accounts[own as usize].candidates > 0
                    && self.accounts[own as usize].live >= self.accounts[biggest as usize].live =>
            {
                own
            }
            _ => biggest,
        })
    }

    fn bucket_of(&self, addr: Ipv4Address) -> AccountId {
        (self.hasher.hash(&addr.octets()) % REMOTE_BUCKETS as u64) as AccountId
    }

    /// The class account of `nic`'s remote side, created with its buckets if needed.
    fn remote_side(&mut self, nic: u8) -> AccountId {
        if let Some(&side) = self.remote_sides.get(&nic) {
            return side;
        }
        let side = self.accounts.len() as AccountId;
        self.accounts.push(Account::new(Holder::RemoteSide, side));
        for _ in 0..REMOTE_BUCKETS {
            self.accounts.push(Account::new(Holder::RemoteBucket, side));
        }
        self.remote_sides.insert(nic, side);
        side
    }

    fn allocate(&mut self, holder: Holder) -> AccountId {
        match self.free.pop() {
            Some(id) => {
                self.accounts[id as usize] = Account::new(holder, id);
                id
            }
            None => {
                let id = self.accounts.len() as AccountId;
                self.accounts.push(Account::new(holder, id));
                id
            }
        }
    }

    /// Adds `change` (±1) to the candidates of `account` and of its class, moving the
    /// class to its new list.
    fn add_candidate(&mut self, account: AccountId, change: i32) {
        let class = self.accounts[account as usize].class;
        if class != account {
            let bucket = &mut self.accounts[account as usize];
            bucket.candidates = bucket.candidates.saturating_add_signed(change);
        }
        let before = self.accounts[class as usize].candidates;
        let after = before.saturating_add_signed(change);
        self.unlink(class, before);
        self.accounts[class as usize].candidates = after;
        self.link(class, after);
        if after > self.most {
            self.most = after;
        } else if before == self.most && self.first_with(before) == NIL {
            // The one class with the most lost one: the most is one less (it is there now).
            self.most = after;
        }
    }

    /// The first class with `count` candidates (`NIL`: none).
    fn first_with(&self, count: u32) -> AccountId {
        self.by_candidates
            .get(count as usize)
            .copied()
            .unwrap_or(NIL)
    }

    fn unlink(&mut self, class: AccountId, count: u32) {
        if count == 0 {
            return;
        }
        let Account { prev, next, .. } = self.accounts[class as usize];
        match prev {
            NIL => self.by_candidates[count as usize] = next,
            prev => self.accounts[prev as usize].next = next,
        }
        if next != NIL {
            self.accounts[next as usize].prev = prev;
        }
    }

    fn link(&mut self, class: AccountId, count: u32) {
        if count == 0 {
            return;
        }
        let head = self.first_with(count);
        if self.by_candidates.len() <= count as usize {
            // Within the capacity reserved at construction (a class has at most one
            // candidate per state): no allocation.
            self.by_candidates.resize(count as usize + 1, NIL);
        }
        let entry = &mut self.accounts[class as usize];
        entry.prev = NIL;
        entry.next = head;
        if head != NIL {
            self.accounts[head as usize].prev = class;
        }
        self.by_candidates[count as usize] = class;
    }
}
