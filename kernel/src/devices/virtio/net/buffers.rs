//! The buffers of one NIC: how many, how big ([`Plan`], from the memory it may take), and
//! the receive pool they come from and go back to ([`Pool`]).
//!
//! Receive buffers hold the virtio-net header and one frame: a whole 64 KiB super-frame
//! when the NIC takes them (big buffers), one Ethernet frame otherwise — and where memory
//! is too short for big buffers, a super-frame spreads over several small ones (merged
//! buffers) and the driver gathers it into one of a few big *assembly* buffers, which
//! belong to the pool too. A received buffer
//! may be lent to another NIC's transmit queue (the forwarded frame leaves without a
//! copy); it comes back to its own NIC's pool when that transmission completes. A NIC
//! never lends the buffers that keep an eighth of its receive ring posted (at least two,
//! [`Pool::may_lend`]) — unless the pool may still grow to replace them — so neither a
//! stuck egress nor transmissions not yet taken back can empty its ring: the next frame
//! still arrives, and wakes the main loop. (An egress whose device stops completing
//! transmissions keeps what it was lent until it resumes: taps never stop, a vhost-user
//! backend could; the lender then runs on the rest.)
//!
//! A ring rests shallow ([`Plan::resting_posted`]); the plan's depth is what the NIC's
//! share of memory pays for. A ring that runs nearly dry goes deeper
//! ([`dataplane::ring_depth`]): freely up to the plan's depth, and for big buffers on up to
//! [`MOST_BIG_POSTED`], with buffers beyond the share taken from the heap only while it
//! keeps a reserve free for everything else ([`Pool::take`]); so do buffers to lend beyond
//! what keeps an eighth of the ring posted. Buffers beyond what the ring's depth needs go
//! back to the heap when they have sat spare for a while ([`Pool::refilled`]), and every
//! buffer beyond the share as soon as it is spare when the rest of the appliance has eaten
//! into the reserve ([`Pool::heap_low`], [`Pool::shed`]): the memory is lent to the
//! rings, never taken from the state, neighbour and fragment tables that grow at run time.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use core::sync::atomic::{AtomicUsize, Ordering};
use dataplane::offload::VIRTIO_NET_HDR_LEN;

use smoltcp::time::{Duration, Instant};

use super::features::ReceiveBuffers;

/// The largest frame a device writes into a big buffer: a 65,535-byte IPv4 packet, its
/// Ethernet header and a VLAN tag (virtio 1.2, 5.1.6.3.1: 65,562 bytes with the header).
const MAX_SUPER_FRAME: usize = 14 + 4 + 65_535;
/// Bytes of a big receive buffer: the header and a whole super-frame.
pub const BIG_BUFFER: usize = VIRTIO_NET_HDR_LEN + MAX_SUPER_FRAME;
/// Bytes of a small buffer: the header and the largest Ethernet frame (1,522 bytes with a
/// VLAN tag), rounded up.
pub const SMALL_BUFFER: usize = 1600;
/// Receive buffers posted at most (QEMU's rings hold 256).
const MOST_POSTED: usize = 256;
/// Big buffers posted at most: 64 super-frames (4 MiB) in flight per NIC are plenty.
const MOST_BIG_POSTED: usize = 64;
/// Fewest big buffers worth posting: below this, small buffers (the host segments).
const FEWEST_BIG_POSTED: usize = 8;
/// Fewest receive buffers posted in any case.
const FEWEST_POSTED: usize = 16;
/// Assembly buffers for merged super-frames, at most and at least: each holds one
/// super-frame until the data plane is done with it (or its egress, when lent).
const MOST_ASSEMBLY: usize = 4;
const FEWEST_ASSEMBLY: usize = 2;
/// Receive buffers a ring keeps posted at rest, at most: small ones (not merged), and big
/// ones. A pool starts with these (each big one is 64 KiB zeroed at boot); it grows, a few
/// buffers a round, only when traffic runs the ring nearly dry and it goes deeper.
const RESTING_BUFFERS: usize = 16;
const RESTING_BIG_BUFFERS: usize = 8;
/// Buffers a pool adds at most per round of the main loop.
const GROWTH_PER_ROUND: usize = 4;
/// A super-frame's buffer is lent only while the buffers not lent would still fill this
/// share of the ring (one part in this many, of those allocated while the pool has not
/// grown to the ring's size), and at least [`KEPT_LEAST`] — unless the pool may grow to
/// replace it. Half of the ring, as it was, held 8 MiB downloads back (16 posted, 8 of
/// them lendable: interleaved A/Bs at -m 8, keeping an eighth, 2, instead of 8 gave
/// +14 to +31% world -> client); an eighth still leaves the ring buffers for the next
/// frames when an egress holds the rest.
const KEPT_SHARE: usize = 8;
const KEPT_LEAST: usize = 2;

/// Transmit buffers for frames that are copied (those the appliance builds, software
/// segments, fragments): at most, and at least.
const MOST_COPY_BUFFERS: usize = 128;
const FEWEST_COPY_BUFFERS: usize = 16;

/// How a NIC's buffers are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Big or small receive buffers.
    pub buffers: ReceiveBuffers,
    /// Receive buffers posted to the device that the NIC's share of memory pays for: a
    /// ring that runs dry goes this deep whatever the rest of the heap holds.
    pub posted: usize,
    /// The deepest the ring may go when it runs dry, with buffers beyond the share.
    pub most_posted: usize,
    /// Receive buffers in all (posted, spare, lent, being forwarded).
    pub total: usize,
    /// Transmit buffers for copied frames.
    pub copies: usize,
    /// Big buffers that merged super-frames are gathered into (merged buffers only).
    pub assembly: usize,
}

impl Plan {
    /// The plan for a NIC that may take `budget` bytes of memory, and could receive
    /// super-frames (`super_frames`) if its buffers can hold them — or, short of memory
    /// for big buffers, over merged small ones if the device can (`mergeable`).
    pub fn for_budget(budget: usize, super_frames: bool, mergeable: bool) -> Plan {
        let copies = (budget / 16 / SMALL_BUFFER).clamp(FEWEST_COPY_BUFFERS, MOST_COPY_BUFFERS);
        let left = budget.saturating_sub(copies * SMALL_BUFFER);
        // Half again as many buffers as are posted: the rest are being forwarded or lent.
        let big = left / BIG_BUFFER;
        let big_posted = big * 2 / 3;
        let assembly = (left / 4 / BIG_BUFFER).min(MOST_ASSEMBLY);
        if super_frames && big_posted >= FEWEST_BIG_POSTED {
            let posted = big_posted.min(MOST_BIG_POSTED);
            return Plan {
                buffers: ReceiveBuffers::Big,
                posted,
                most_posted: MOST_BIG_POSTED,
                total: buffers_for(posted),
                copies,
                assembly: 0,
            };
        }
        // Too short of memory for big buffers: super-frames over merged small ones, where
        // the device can, each gathered into an assembly buffer at the cost of a copy
        // (`scripts/bench forward` under TCG: TCP at 2.5–2.9 Gbit/s in 6 MiB, against
        // 0.7–1.0 with small buffers; big buffers, zero-copy, gave 6.2 in 8 MiB).
        if super_frames && mergeable && assembly >= FEWEST_ASSEMBLY {
            let small = (left - assembly * BIG_BUFFER) / SMALL_BUFFER;
            let posted = (small * 2 / 3).clamp(FEWEST_POSTED, MOST_POSTED);
            return Plan {
                buffers: ReceiveBuffers::Merged,
                posted,
                most_posted: posted,
                total: buffers_for(posted),
                copies,
                assembly,
            };
        }
        let small = left / SMALL_BUFFER;
        let posted = (small * 2 / 3).clamp(FEWEST_POSTED, MOST_POSTED);
        Plan {
            buffers: ReceiveBuffers::Small,
            posted,
            most_posted: posted,
            total: buffers_for(posted),
            copies,
            assembly: 0,
        }
    }

    /// Receive buffers the ring keeps posted at rest: a NIC without traffic holds no more
    /// (the first frames through the appliance do not wait for buffers being zeroed), and
    /// one whose ring runs dry goes deeper ([`dataplane::ring_depth`]). Merged buffers
    /// rest at the plan's depth: a super-frame spread over them is delivered only once
    /// the ring holds enough for all of it (42 small buffers for 64 KiB), so a shallower
    /// ring would never run dry, never deepen, and hold the first super-frame back for
    /// ever.
    pub fn resting_posted(&self) -> usize {
        match self.buffers {
            ReceiveBuffers::Big => self.posted.min(RESTING_BIG_BUFFERS),
            ReceiveBuffers::Small => self.posted.min(RESTING_BUFFERS),
            ReceiveBuffers::Merged => self.posted,
        }
    }

    /// Bytes of one receive buffer (posted to the device).
    pub fn buffer_size(&self) -> usize {
        match self.buffers {
            ReceiveBuffers::Big => BIG_BUFFER,
            ReceiveBuffers::Small | ReceiveBuffers::Merged => SMALL_BUFFER,
        }
    }

    /// Bytes the plan takes.
    pub fn bytes(&self) -> usize {
        self.total * self.buffer_size() + self.copies * SMALL_BUFFER + self.assembly * BIG_BUFFER
    }
}

/// Receive buffers a pool holds for a ring of `posted`: half again as many, the rest
/// being forwarded or lent.
fn buffers_for(posted: usize) -> usize {
    posted + posted / 2
}

/// A buffer of `size` zeroed bytes.
pub fn buffer(size: usize) -> Box<[u8]> {
    vec![0u8; size].into_boxed_slice()
}

/// A buffer of `size` zeroed bytes, or `None` if the heap cannot spare it.
fn try_buffer(size: usize) -> Option<Box<[u8]>> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(size).ok()?;
    bytes.resize(size, 0);
    Some(bytes.into_boxed_slice())
}

/// Bytes of the NICs' shares not allocated yet, all pools together: a pool grows beyond
/// its share only while the heap keeps these free too, so that every NIC can still grow
/// to its own share.
static SHARES_UNALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// How often a pool gives back to the heap the spare buffers it did not use meanwhile
/// (at once when another NIC's pool is short of memory: [`Pool::release_idle`]).
const RELEASE_INTERVAL: Duration = Duration::from_millis(1000);

/// A NIC's receive buffers that are not posted: spares, and the count of those lent; and
/// its assembly buffers (merged super-frames), which are never posted.
///
/// The pool grows as the ring and lending ask, a few buffers a round: freely up to what
/// the NIC's share pays for, beyond that (up to what the deepest ring would hold) only
/// while the heap keeps its reserve free. What it holds beyond what its ring's present
/// depth needs goes back to the heap once it has sat spare for [`RELEASE_INTERVAL`].
pub struct Pool {
    spare: Vec<Box<[u8]>>,
    size: usize,
    assembly: Vec<Box<[u8]>>,
    /// Buffers allocated so far.
    allocated: usize,
    /// Buffers allocated at most (for the deepest ring).
    most: usize,
    /// Buffers the NIC's share of memory pays for: beyond them, a buffer is allocated
    /// only while the heap keeps `reserve` bytes free.
    paid: usize,
    reserve: usize,
    /// Buffers the pool keeps however long they sit spare: the ring's depth, and at least
    /// what the share pays for.
    keep: usize,
    /// The fewest spare buffers seen at a refill since `interval_start`.
    fewest_spare: usize,
    interval_start: Instant,
    /// Whether the heap has failed a buffer within the share (reported once).
    warned: bool,
    /// Whether the pool could not grow for the heap's reserve since last asked.
    starved: bool,
    /// Buffers that may still be allocated this round.
    growth: usize,
    lent: usize,
    /// Buffers the NIC keeps posted.
    posted: usize,
}

impl Pool {
    /// A pool of buffers of the plan's size for a ring at its resting depth, whose buffers
    /// ([`Plan::resting_posted`]) are allocated now, and the plan's big assembly buffers
    /// (all now: later the heap may be short of 64 KiB in one piece). Buffers up to the
    /// plan's total are allocated as the ring deepens; beyond it, only while the heap keeps
    /// `reserve` bytes free.
    pub fn new(plan: &Plan, reserve: usize, now: Instant) -> Pool {
        let size = plan.buffer_size();
        let initial = plan.resting_posted();
        let most = buffers_for(plan.most_posted).max(plan.total);
        SHARES_UNALLOCATED.fetch_add((plan.total - initial) * size, Ordering::Relaxed);
        let mut spare = Vec::with_capacity(most);
        spare.extend((0..initial).map(|_| buffer(size)));
        Pool {
            spare,
            size,
            assembly: (0..plan.assembly).map(|_| buffer(BIG_BUFFER)).collect(),
            allocated: initial,
            most,
            paid: plan.total,
            reserve,
            keep: plan.total,
            fewest_spare: usize::MAX,
            interval_start: now,
            warned: false,
            starved: false,
            growth: 0,
            lent: 0,
            posted: initial,
        }
    }

    /// A spare buffer, if there is one (a new one while the pool may still grow this
    /// round).
    pub fn take(&mut self) -> Option<Box<[u8]>> {
        if let Some(buffer) = self.spare.pop() {
            return Some(buffer);
        }
        if self.growth == 0 {
            return None;
        }
        if !self.may_grow() {
            self.starved = self.allocated < self.most;
            return None;
        }
        self.growth -= 1;
        let Some(buffer) = try_buffer(self.size) else {
            // Within the share the heap should have had it; beyond it, the free bytes may
            // lie in pieces too small. Either way the pool tries again next round.
            if self.allocated < self.paid && !self.warned {
                log::warn!(
                    "out of memory for receive buffers: the pool stays at {} of {}",
                    self.allocated,
                    self.paid
                );
                self.warned = true;
            }
            self.growth = 0;
            return None;
        };
        if self.allocated < self.paid {
            SHARES_UNALLOCATED.fetch_sub(self.size, Ordering::Relaxed);
        }
        self.allocated += 1;
        Some(buffer)
    }

    /// Whether one more buffer may be allocated: within the share, or beyond it with the
    /// heap still keeping its reserve and a margin above it (so that the rest of the
    /// appliance may allocate a little without the pools shedding at once).
    fn may_grow(&self) -> bool {
        self.allocated < self.paid
            || (self.allocated < self.most
                && crate::memory::heap::free_bytes() >= self.grow_threshold(1))
    }

    /// Free heap bytes needed to allocate `buffers` more beyond the share: the reserve, a
    /// margin, and what the NICs' shares may still take.
    fn grow_threshold(&self, buffers: usize) -> usize {
        self.reserve
            + self.reserve / 4
            + SHARES_UNALLOCATED.load(Ordering::Relaxed)
            + buffers * self.size
    }

    /// Whether the heap has less than its reserve free: the pools give back what they hold
    /// beyond their shares ([`Pool::shed`]).
    pub fn heap_low(&self) -> bool {
        crate::memory::heap::free_bytes() < self.reserve
    }

    /// Back to a ring `posted` deep (the resting depth), every spare buffer beyond the
    /// share freed now (and the others as they come back).
    pub fn shed(&mut self, posted: usize) {
        self.set_depth(posted);
        while self.allocated > self.keep && self.spare.pop().is_some() {
            self.allocated -= 1;
        }
    }

    /// A new round: the pool may grow by a few buffers again.
    pub fn next_round(&mut self) {
        self.growth = GROWTH_PER_ROUND;
    }

    /// The ring's depth changed to `posted`: the pool keeps as many buffers (never fewer
    /// than the share pays for); those beyond, which lending asked for, go back to the heap
    /// as they sit spare ([`Pool::refilled`]).
    pub fn set_depth(&mut self, posted: usize) {
        self.posted = posted;
        self.keep = posted.max(self.paid);
    }

    /// Whether the pool could hold the buffers of a ring `posted` deep: within what its
    /// share pays for, or with the heap still keeping its reserve free once they are
    /// allocated.
    pub fn can_hold(&self, posted: usize) -> bool {
        let wanted = buffers_for(posted);
        if wanted <= self.paid {
            return true;
        }
        let more = wanted.saturating_sub(self.allocated);
        crate::memory::heap::free_bytes() >= self.grow_threshold(more)
    }

    /// After a refill at `now`: once per [`RELEASE_INTERVAL`], the buffers beyond what the
    /// pool keeps that sat spare all along go back to the heap.
    pub fn refilled(&mut self, now: Instant) {
        self.fewest_spare = self.fewest_spare.min(self.spare.len());
        if now - self.interval_start >= RELEASE_INTERVAL {
            self.release_idle(now);
        }
    }

    /// Whether the pool could not grow for the heap's reserve since the last call.
    pub fn take_starved(&mut self) -> bool {
        core::mem::take(&mut self.starved)
    }

    /// Gives back to the heap the buffers beyond what the pool keeps that sat spare at
    /// every refill since the last release, and starts counting again at `now`.
    pub fn release_idle(&mut self, now: Instant) {
        let idle = self
            .fewest_spare
            .min(self.allocated.saturating_sub(self.keep));
        for _ in 0..idle {
            if self.spare.pop().is_some() {
                self.allocated -= 1;
            }
        }
        self.fewest_spare = usize::MAX;
        self.interval_start = now;
    }

    /// Puts a buffer back (a receive or an assembly buffer: they differ in size).
    pub fn put(&mut self, buffer: Box<[u8]>) {
        if buffer.len() == self.size {
            self.spare.push(buffer);
        } else {
            self.assembly.push(buffer);
        }
    }

    /// A spare assembly buffer, if there is one.
    pub fn take_assembly(&mut self) -> Option<Box<[u8]>> {
        self.assembly.pop()
    }

    /// Whether `len` bytes (a received frame with its header) lie in an assembly buffer
    /// rather than a receive buffer.
    pub fn is_assembled(&self, len: usize) -> bool {
        len > self.size
    }

    /// Whether one more buffer may be lent: the buffers not lent must still fill an
    /// eighth of the ring ([`KEPT_SHARE`]; of those allocated, while the pool has not
    /// grown to the ring's size), and at least [`KEPT_LEAST`] — unless the pool may
    /// still grow, and so replace it at the refill.
    pub fn may_lend(&self) -> bool {
        let kept = (self.posted / KEPT_SHARE)
            .min(self.allocated / KEPT_SHARE)
            .max(KEPT_LEAST);
        self.allocated - self.lent > kept || self.may_grow()
    }

    /// Whether one more buffer may be lent without the ring going short: the buffers not
    /// lent still fill all of it. (A frame that could be copied instead is lent only then.)
    pub fn may_lend_freely(&self) -> bool {
        self.allocated - self.lent > self.posted
    }

    /// Counts a buffer lent.
    pub fn lend(&mut self) {
        self.lent += 1;
    }

    /// A lent buffer comes back (an assembly buffer was not counted as lent: it is never
    /// posted, so lending it cannot starve the ring).
    pub fn returned(&mut self, buffer: Box<[u8]>) {
        if buffer.len() == self.size {
            self.lent = self.lent.saturating_sub(1);
        }
        self.put(buffer);
    }
}
