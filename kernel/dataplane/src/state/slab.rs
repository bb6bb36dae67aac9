//! [`Slab`]: the states themselves, in slots allocated once at construction, and the
//! intrusive queues that link them in creation order — each source's not-yet-established
//! states, its early-drop candidates ([`super::shares`]). A queue is its two ends
//! ([`QueueEnds`], kept by its owner) and the links in each queued entry.
//!
//! A slot's generation changes each time it is freed, so a [`StateId`](super::StateId)
//! kept past its state's death no longer finds anything.

use alloc::vec::Vec;

/// "No slot" in the early-drop queue's links.
pub(crate) const NIL: u32 = u32::MAX;

/// Links of an entry in a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueLinks {
    older: u32,
    newer: u32,
    queued: bool,
}

impl QueueLinks {
    pub const NONE: QueueLinks = QueueLinks {
        older: NIL,
        newer: NIL,
        queued: false,
    };

    /// Whether its entry is in a queue.
    pub fn queued(&self) -> bool {
        self.queued
    }
}

/// The two ends of a queue: its oldest and newest entries' slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueueEnds {
    oldest: u32,
    newest: u32,
}

impl QueueEnds {
    /// An empty queue.
    pub const EMPTY: QueueEnds = QueueEnds {
        oldest: NIL,
        newest: NIL,
    };

    /// The slot of its oldest entry.
    pub fn oldest(&self) -> Option<u32> {
        (self.oldest != NIL).then_some(self.oldest)
    }
}

/// What the slab needs from what it stores.
pub(crate) trait Queued {
    fn links(&self) -> &QueueLinks;
    fn links_mut(&mut self) -> &mut QueueLinks;
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Slots of `T` with a free list; entries can be linked into intrusive FIFOs.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    capacity: usize,
    live: usize,
}

impl<T: Queued> Slab<T> {
    /// An empty slab of `capacity` slots, all allocated now. Slots are initialised the first
    /// time they are used, so creating a large table costs no time at boot.
    pub fn new(capacity: usize) -> Slab<T> {
        let slots = Vec::with_capacity(capacity);
        let free = Vec::with_capacity(capacity);
        Slab {
            slots,
            free,
            capacity,
            live: 0,
        }
    }

    /// Bytes a slab of `capacity` slots occupies.
    pub const fn bytes_for(capacity: usize) -> usize {
        capacity * (core::mem::size_of::<Slot<T>>() + core::mem::size_of::<u32>())
    }

    /// Slots used at least once (the others have never held an entry).
    pub fn used_slots(&self) -> usize {
        self.slots.len()
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.live >= self.capacity
    }

    /// Stores `value`; returns its slot and generation, or `None` when full.
    pub fn insert(&mut self, value: T) -> Option<(u32, u32)> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            // Never-used slots come next; their memory was reserved at construction, so
            // this push never reallocates.
            None if self.slots.len() < self.capacity => {
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                (self.slots.len() - 1) as u32
            }
            None => return None,
        };
        let entry = &mut self.slots[slot as usize];
        entry.value = Some(value);
        self.live += 1;
        Some((slot, entry.generation))
    }

    /// Takes the entry out of `slot`, freeing the slot. It must not be queued.
    pub fn remove(&mut self, slot: u32) -> Option<T> {
        debug_assert!(!self.is_queued(slot), "removing a queued entry");
        let entry = self.slots.get_mut(slot as usize)?;
        let value = entry.value.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
        Some(value)
    }

    /// The entry in `slot`.
    pub fn get(&self, slot: u32) -> Option<&T> {
        self.slots.get(slot as usize)?.value.as_ref()
    }

    /// The entry in `slot`, mutably.
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.slots.get_mut(slot as usize)?.value.as_mut()
    }

    /// The generation of `slot` (changes when the slot is freed).
    pub fn generation(&self, slot: u32) -> Option<u32> {
        self.slots.get(slot as usize).map(|s| s.generation)
    }

    /// Whether the entry in `slot` is in a queue.
    pub fn is_queued(&self, slot: u32) -> bool {
        self.get(slot).is_some_and(|entry| entry.links().queued)
    }

    /// Appends the entry in `slot` to the queue `ends` (as the newest), unless it is in a
    /// queue already.
    pub fn enqueue(&mut self, ends: &mut QueueEnds, slot: u32) {
        let newest = ends.newest;
        let Some(entry) = self.get_mut(slot) else {
            return;
        };
        if entry.links().queued {
            return;
        }
        *entry.links_mut() = QueueLinks {
            older: newest,
            newer: NIL,
            queued: true,
        };
        match self.get_mut(newest) {
            Some(previous) => previous.links_mut().newer = slot,
            None => ends.oldest = slot,
        }
        ends.newest = slot;
    }

    /// Takes the entry in `slot` out of the queue `ends`, which must be the one it is in;
    /// returns whether it was queued.
    pub fn unqueue(&mut self, ends: &mut QueueEnds, slot: u32) -> bool {
        let Some(entry) = self.get_mut(slot) else {
            return false;
        };
        let links = *entry.links();
        if !links.queued {
            return false;
        }
        *entry.links_mut() = QueueLinks::NONE;
        match self.get_mut(links.older) {
            Some(older) => older.links_mut().newer = links.newer,
            None => ends.oldest = links.newer,
        }
        match self.get_mut(links.newer) {
            Some(newer) => newer.links_mut().older = links.older,
            None => ends.newest = links.older,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Item(u32, QueueLinks);

    impl Queued for Item {
        fn links(&self) -> &QueueLinks {
            &self.1
        }
        fn links_mut(&mut self) -> &mut QueueLinks {
            &mut self.1
        }
    }

    fn slab_with(n: u32) -> (Slab<Item>, QueueEnds) {
        let mut slab = Slab::new(n as usize);
        let mut queue = QueueEnds::EMPTY;
        for i in 0..n {
            let (slot, _) = slab.insert(Item(i, QueueLinks::NONE)).unwrap();
            slab.enqueue(&mut queue, slot);
        }
        (slab, queue)
    }

    fn oldest_item(slab: &Slab<Item>, queue: &QueueEnds) -> Option<u32> {
        queue.oldest().map(|s| slab.get(s).unwrap().0)
    }

    #[test]
    fn queue_gives_entries_oldest_first_and_skips_unqueued_ones() {
        let (mut slab, mut queue) = slab_with(4);
        slab.unqueue(&mut queue, 0);
        slab.unqueue(&mut queue, 2);
        assert_eq!(oldest_item(&slab, &queue), Some(1));
        slab.unqueue(&mut queue, 1);
        slab.remove(1);
        assert_eq!(oldest_item(&slab, &queue), Some(3));
        assert!(slab.unqueue(&mut queue, 3));
        assert!(!slab.unqueue(&mut queue, 3), "only once");
        assert_eq!(queue.oldest(), None);
    }

    #[test]
    fn full_slab_refuses_and_a_freed_slot_gets_a_new_generation() {
        let (mut slab, mut queue) = slab_with(2);
        assert!(slab.is_full());
        assert!(slab.insert(Item(9, QueueLinks::NONE)).is_none());
        let before = slab.generation(0).unwrap();
        slab.unqueue(&mut queue, 0);
        slab.remove(0);
        let (slot, generation) = slab.insert(Item(9, QueueLinks::NONE)).unwrap();
        assert_eq!(slot, 0);
        assert_ne!(generation, before);
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn removing_the_middle_of_a_queue_keeps_both_ends_linked() {
        let (mut slab, mut queue) = slab_with(3);
        slab.unqueue(&mut queue, 1);
        assert_eq!(queue.oldest(), Some(0));
        slab.unqueue(&mut queue, 0);
        assert_eq!(queue.oldest(), Some(2));
        slab.remove(1);
        let (slot, _) = slab.insert(Item(7, QueueLinks::NONE)).unwrap();
        slab.enqueue(&mut queue, slot);
        slab.unqueue(&mut queue, 2);
        assert_eq!(queue.oldest(), Some(slot));
    }

    #[test]
    fn two_queues_over_one_slab_keep_their_own_order() {
        let mut slab: Slab<Item> = Slab::new(6);
        let (mut even, mut odd) = (QueueEnds::EMPTY, QueueEnds::EMPTY);
        for i in 0..6 {
            let (slot, _) = slab.insert(Item(i, QueueLinks::NONE)).unwrap();
            let queue = if i % 2 == 0 { &mut even } else { &mut odd };
            slab.enqueue(queue, slot);
        }
        slab.unqueue(&mut even, 0);
        assert_eq!(oldest_item(&slab, &even), Some(2));
        assert_eq!(oldest_item(&slab, &odd), Some(1));
        slab.unqueue(&mut odd, 1);
        slab.unqueue(&mut odd, 3);
        assert_eq!(oldest_item(&slab, &odd), Some(5));
        assert_eq!(oldest_item(&slab, &even), Some(2));
    }
}
