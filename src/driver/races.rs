//! The loop's races in flight, by race id: a slab of fixed-size chunks
//! with a free list, so that starting and ending a race costs no
//! allocation and finding one no hashing.
//!
//! A race id is its slot's index (plus one) in the low [`SLOT_BITS`] bits
//! and the slot's generation above them: a slot taken again gets another
//! id, so that what is left of a finished race (a stale timer, a queued
//! answer, a socket event of the same poll batch) never reaches the race
//! that reuses its slot. Ids stay below 2^47, so that an attempt's socket
//! token holds its race id and attempt id (see [`super::tokens`]); they
//! are never 0. A generation wraps after 2^23 reuses of one slot.

/// Bits of a race id that hold the slot index plus one.
const SLOT_BITS: u32 = 24;
/// Bits of a race id that hold the slot's generation.
const GEN_BITS: u32 = 23;
/// Slots per chunk: a chunk is allocated once and kept, so that growing
/// the table moves no race and costs no doubling of its memory.
const CHUNK: usize = 64;

struct Slot<T> {
    /// The id of the race in the slot, or of the last one it held.
    id: u64,
    entry: Option<T>,
}

/// Races by id.
pub(super) struct RaceTable<T> {
    chunks: Vec<Box<[Slot<T>]>>,
    /// Slots in use or given out so far (the rest of the last chunk is
    /// untouched).
    used: usize,
    /// Free slot indices, the most recently freed last (its memory is the
    /// likeliest in cache).
    free: Vec<u32>,
    len: usize,
}

fn slot_of(id: u64) -> Option<usize> {
    let low = (id & ((1 << SLOT_BITS) - 1)) as usize;
    low.checked_sub(1)
}

impl<T> Default for RaceTable<T> {
    fn default() -> Self {
        RaceTable { chunks: Vec::new(), used: 0, free: Vec::new(), len: 0 }
    }
}

impl<T> RaceTable<T> {
    fn slot(&self, index: usize) -> &Slot<T> {
        &self.chunks[index / CHUNK][index % CHUNK]
    }

    fn slot_mut(&mut self, index: usize) -> &mut Slot<T> {
        &mut self.chunks[index / CHUNK][index % CHUNK]
    }

    /// The slot the next insert takes, and the id it gives.
    fn next_slot(&self) -> Option<(usize, u64)> {
        if let Some(&index) = self.free.last() {
            let index = index as usize;
            let old = self.slot(index).id >> SLOT_BITS;
            let gen = (old + 1) & ((1 << GEN_BITS) - 1);
            return Some((index, gen << SLOT_BITS | (index as u64 + 1)));
        }
        let index = self.used;
        if index + 1 >= 1 << SLOT_BITS {
            return None;
        }
        Some((index, index as u64 + 1))
    }

    /// The id the next [`RaceTable::insert`] gives, if it can take one.
    pub(super) fn next_id(&self) -> Option<u64> {
        self.next_slot().map(|(_, id)| id)
    }

    /// Keep `entry`; its id, or `None` when 2^24 - 1 races are in flight.
    pub(super) fn insert(&mut self, entry: T) -> Option<u64> {
        let (index, id) = self.next_slot()?;
        if self.free.last() == Some(&(index as u32)) {
            self.free.pop();
        } else {
            if index / CHUNK == self.chunks.len() {
                self.chunks.push((0..CHUNK).map(|_| Slot { id: 0, entry: None }).collect());
            }
            self.used += 1;
        }
        let slot = self.slot_mut(index);
        slot.id = id;
        slot.entry = Some(entry);
        self.len += 1;
        Some(id)
    }

    pub(super) fn get(&self, id: &u64) -> Option<&T> {
        let index = slot_of(*id).filter(|&i| i < self.used)?;
        let slot = self.slot(index);
        if slot.id == *id {
            slot.entry.as_ref()
        } else {
            None
        }
    }

    pub(super) fn get_mut(&mut self, id: &u64) -> Option<&mut T> {
        let index = slot_of(*id).filter(|&i| i < self.used)?;
        let slot = self.slot_mut(index);
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
        let index = slot_of(*id).filter(|&i| i < self.used)?;
        let slot = self.slot_mut(index);
        if slot.id != *id {
            return None;
        }
        let entry = slot.entry.take()?;
        self.free.push(index as u32);
        self.len -= 1;
        Some(entry)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The races, in slot order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .take(self.used)
            .filter_map(|s| s.entry.as_ref().map(|e| (s.id, e)))
    }

    /// The ids of the races, in slot order.
    pub(super) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|(id, _)| id)
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
}
