//! The loop's races in flight, by race id: a slab of fixed-size chunks
//! with a bitmap of free slots per chunk, so that starting and ending a
//! race costs no allocation and finding one no hashing.
//!
//! A race id is its slot's index (plus one) in the low [`SLOT_BITS`] bits
//! and the slot's generation above them: a slot taken again gets another
//! id, so that what is left of a finished race (a stale timer, a queued
//! answer, a socket event of the same poll batch) never reaches the race
//! that reuses its slot. Ids stay below 2^47, so that an attempt's socket
//! token holds its race id and attempt id (see [`super::tokens`]); they
//! are never 0. A generation wraps after 2^23 reuses of one slot.
//!
//! A new race takes the first free slot of the first chunk that has one,
//! so that after a burst the races gather in the first chunks and the last
//! ones empty: a chunk at the end is freed when it and the one before it
//! are empty (one empty chunk is kept, so that a count of races going up
//! and down across a chunk's boundary does not allocate and free it each
//! time). The memory kept follows the races in flight, not the most there
//! ever were.

/// Bits of a race id that hold the slot index plus one.
const SLOT_BITS: u32 = 24;
/// Bits of a race id that hold the slot's generation.
const GEN_BITS: u32 = 23;
/// Slots per chunk (one bit each in a `u64`): a chunk is allocated once
/// and kept while it holds a race, so that growing the table moves no race
/// and costs no doubling of its memory.
const CHUNK: usize = 64;
/// A chunk with every slot free.
const ALL_FREE: u64 = u64::MAX;

struct Slot<T> {
    /// The id of the race in the slot, or of the last one it held (0 for
    /// none).
    id: u64,
    entry: Option<T>,
}

/// Races by id.
pub(super) struct RaceTable<T> {
    chunks: Vec<Box<[Slot<T>]>>,
    /// Per chunk, a bit set for each slot that holds no race.
    free: Vec<u64>,
    /// Every chunk below this one is full.
    lowest: usize,
    /// The generation of a slot taken for the first time: above every
    /// generation of a slot in a chunk freed before (its races' ids may
    /// still be in a timer or a resolver's answer).
    fresh_gen: u64,
    len: usize,
}

fn slot_of(id: u64) -> Option<usize> {
    let low = (id & ((1 << SLOT_BITS) - 1)) as usize;
    low.checked_sub(1)
}

fn gen_of(id: u64) -> u64 {
    id >> SLOT_BITS
}

fn make_id(gen: u64, index: usize) -> u64 {
    (gen & ((1 << GEN_BITS) - 1)) << SLOT_BITS | (index as u64 + 1)
}

impl<T> Default for RaceTable<T> {
    fn default() -> Self {
        RaceTable { chunks: Vec::new(), free: Vec::new(), lowest: 0, fresh_gen: 0, len: 0 }
    }
}

impl<T> RaceTable<T> {
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.chunks.get(index / CHUNK).map(|c| &c[index % CHUNK])
    }

    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.chunks.get_mut(index / CHUNK).map(|c| &mut c[index % CHUNK])
    }

    /// The slot the next insert takes, and the id it gives.
    fn next_slot(&self) -> Option<(usize, u64)> {
        let chunk = (self.lowest..self.free.len()).find(|&c| self.free[c] != 0).unwrap_or(self.free.len());
        let index = match self.free.get(chunk) {
            Some(bits) => chunk * CHUNK + bits.trailing_zeros() as usize,
            None => chunk * CHUNK,
        };
        if index + 1 >= 1 << SLOT_BITS {
            return None;
        }
        let gen = match self.slot(index) {
            Some(s) if s.id != 0 => gen_of(s.id) + 1,
            _ => self.fresh_gen,
        };
        Some((index, make_id(gen, index)))
    }

    /// The id the next [`RaceTable::insert`] gives, if it can take one.
    pub(super) fn next_id(&self) -> Option<u64> {
        self.next_slot().map(|(_, id)| id)
    }

    /// Keep `entry`; its id, or `None` when 2^24 - 1 races are in flight.
    pub(super) fn insert(&mut self, entry: T) -> Option<u64> {
        let (index, id) = self.next_slot()?;
        let chunk = index / CHUNK;
        if chunk == self.chunks.len() {
            self.chunks.push((0..CHUNK).map(|_| Slot { id: 0, entry: None }).collect());
            self.free.push(ALL_FREE);
        }
        self.free[chunk] &= !(1 << (index % CHUNK));
        self.lowest = chunk;
        let slot = self.slot_mut(index).expect("the slot's chunk exists");
        slot.id = id;
        slot.entry = Some(entry);
        self.len += 1;
        Some(id)
    }

    pub(super) fn get(&self, id: &u64) -> Option<&T> {
        let slot = self.slot(slot_of(*id)?)?;
        if slot.id == *id {
            slot.entry.as_ref()
        } else {
            None
        }
    }

    pub(super) fn get_mut(&mut self, id: &u64) -> Option<&mut T> {
        let slot = self.slot_mut(slot_of(*id)?)?;
        if slot.id == *id {
            slot.entry.as_mut()
        } else {
            None
        }
    }

    pub(super) fn contains_key(&self, id: &u64) -> bool {
        self.get(id).is_some()
    }

    pub(super) fn remove(&mut self, id: &u64) -> Option<T> {
        let index = slot_of(*id)?;
        let slot = self.slot_mut(index)?;
        if slot.id != *id {
            return None;
        }
        let entry = slot.entry.take()?;
        let chunk = index / CHUNK;
        self.free[chunk] |= 1 << (index % CHUNK);
        self.lowest = self.lowest.min(chunk);
        self.len -= 1;
        self.shrink();
        Some(entry)
    }

    /// Free the last chunk while it and the one before it hold no race.
    fn shrink(&mut self) {
        while let [.., ALL_FREE, ALL_FREE] = self.free[..] {
            let chunk = self.chunks.pop().expect("a chunk per bitmap");
            self.free.pop();
            for s in chunk.iter().filter(|s| s.id != 0) {
                self.fresh_gen = self.fresh_gen.max(gen_of(s.id) + 1);
            }
            self.lowest = self.lowest.min(self.chunks.len());
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The races, in slot order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.chunks.iter().flat_map(|c| c.iter()).filter_map(|s| s.entry.as_ref().map(|e| (s.id, e)))
    }

    /// The ids of the races, in slot order.
    pub(super) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|(id, _)| id)
    }

    /// Chunks allocated (for tests).
    #[cfg(test)]
    fn chunks(&self) -> usize {
        self.chunks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_until_removed_and_never_reused_for_another_race() {
        let mut t = RaceTable::default();
        let a = t.insert(1).unwrap();
        let b = t.insert(2).unwrap();
        assert!(a != 0 && b != 0 && a != b);
        assert_eq!(t.next_id(), Some(3));
        assert_eq!((t.get(&a), t.get(&b)), (Some(&1), Some(&2)));
        assert_eq!(t.remove(&a), Some(1));
        assert_eq!(t.get(&a), None);
        assert_eq!(t.remove(&a), None);
        // The freed slot is taken again, under another id.
        let next = t.next_id().unwrap();
        let c = t.insert(3).unwrap();
        assert_eq!(c, next);
        assert_ne!(c, a);
        assert_eq!(c & ((1 << SLOT_BITS) - 1), a & ((1 << SLOT_BITS) - 1));
        assert_eq!(t.get(&a), None);
        assert_eq!(t.get(&c), Some(&3));
        *t.get_mut(&c).unwrap() = 4;
        assert_eq!(t.keys().collect::<Vec<_>>(), vec![c, b]);
        assert_eq!(t.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![4, 2]);
        assert!(!t.is_empty());
        t.remove(&b);
        t.remove(&c);
        assert!(t.is_empty() && t.get(&0).is_none() && t.get(&u64::MAX).is_none());
    }

    #[test]
    fn ids_fit_attempt_tokens_across_chunks_and_generations() {
        let mut t = RaceTable::default();
        let ids: Vec<u64> = (0..CHUNK * 3).map(|i| t.insert(i).unwrap()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.get(id), Some(&i));
        }
        let (mut id, mut value) = (ids[5], 5);
        for n in 0..1000 {
            assert_eq!(t.remove(&id), Some(value));
            assert_eq!(t.get(&id), None);
            value = 1000 + n;
            id = t.insert(value).unwrap();
            assert!(id < 1 << 47 && id != 0);
        }
        assert_eq!(t.keys().count(), CHUNK * 3);
    }

    #[test]
    fn memory_follows_the_races_in_flight_and_ids_stay_unique() {
        let mut t = RaceTable::default();
        let mut seen = std::collections::HashSet::new();
        let burst: Vec<u64> = (0..CHUNK * 10).map(|i| t.insert(i).unwrap()).collect();
        seen.extend(burst.iter().copied());
        assert_eq!(t.chunks(), 10);
        // The burst ends but for a few races in the first chunk and one in
        // the last: nothing is freed while the last chunk holds a race.
        for id in &burst[3..burst.len() - 1] {
            t.remove(id).unwrap();
        }
        assert_eq!(t.chunks(), 10);
        // New races take the lowest free slots, in the first chunk.
        let early: Vec<u64> = (0..5).map(|i| t.insert(i).unwrap()).collect();
        assert!(early.iter().all(|id| slot_of(*id).unwrap() < CHUNK));
        // The last race of the burst ends: every empty chunk at the end
        // goes but one.
        t.remove(burst.last().unwrap()).unwrap();
        assert_eq!(t.chunks(), 2);
        for id in &early {
            assert!(seen.insert(*id), "ids are never reused while the table lives");
        }
        // Growing again: the slots of freed chunks come back under ids
        // never given before, so a stale id of the burst finds nothing.
        let again: Vec<u64> = (0..CHUNK * 10).map(|i| t.insert(i).unwrap()).collect();
        for id in &again {
            assert!(seen.insert(*id), "id {id:#x} given twice");
        }
        for id in &burst[3..] {
            assert_eq!(t.get(id), None);
        }
        for (i, id) in again.iter().enumerate() {
            assert_eq!(t.get(id), Some(&i));
        }
        // Up and down across a chunk's boundary: the spare chunk stays.
        let mut t = RaceTable::default();
        let ids: Vec<u64> = (0..CHUNK).map(|i| t.insert(i).unwrap()).collect();
        for _ in 0..3 {
            let extra = t.insert(0).unwrap();
            assert_eq!(t.chunks(), 2);
            t.remove(&extra).unwrap();
            assert_eq!(t.chunks(), 2);
        }
        for id in &ids {
            t.remove(id).unwrap();
        }
        assert!(t.is_empty());
        assert_eq!(t.chunks(), 1);
    }
}
