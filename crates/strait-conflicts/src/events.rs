//! One order of events for every region.
//!
//! For event topics (`ORDER_SHIPPED`, `ORDER_CANCELLED`, folded by consumers), strait keeps a
//! merged stream in each region holding both regions' events. Consumers that fold it must reach
//! the same state everywhere, so every region's merged stream must hold the same events in the
//! same order, although each region hears of the other's events later than of its own, and in
//! a different interleaving.
//!
//! **The order** is by (effective time, region order, partition, position). An event's
//! effective time is its timestamp, raised to the floor its stream had promised when the event
//! was written: strait marks each stream (a region's partition) regularly with
//! `(position, time)`, "what is written from `position` on is stamped no earlier than `time`"
//! (the log end offset read at `time` on the region's clock, less the allowed lateness). A late
//! timestamp is raised to the floor, so that the promise holds. The effective time depends only
//! on the stream's own events and marks, never on when a region heard of them: every region
//! computes the same.
//!
//! **Release.** An event gets its effective time once a mark beyond its position is known (all
//! marks before it are known then: marks come in order). An event is released once every stream
//! is known to write nothing earlier: each stream's floor at the position it has been read to.
//! Nothing released can be preceded by an event heard of later, so each region's released
//! sequence is the one sorted sequence of all events.
//!
//! **Duplicates.** An event whose id was released before, at an effective time no more than
//! the dedupe window earlier, is dropped (reported, not released). Decided on the released
//! sequence, so the same everywhere; an id is forgotten once nothing can be released within the
//! window after it.
//!
//! **Resuming.** A merger stopped after releasing some event K (the last one written) resumes
//! exactly where it was from a small [`Resume`] per stream, taken with [`Merger::snapshot`]
//! right after K: the position to read the stream again from (nothing before it is still to be
//! released), the one mark that gives the floor there, and the position of the next mark kept,
//! so that the caller re-reads its marks from where that one was written. A fresh merger given
//! these ([`Merger::resume`]), the ids released within the dedupe window before K
//! ([`Merger::remember`]) and K itself ([`Merger::skip_through`]) releases what the first one
//! would have released after K, and nothing of what it released before.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

use crate::Rank;

/// One partition of one region's event topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stream {
    /// The region written in.
    pub origin: Rank,
    /// The partition.
    pub partition: i32,
}

/// An event as written in its region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<I, P> {
    /// Where it was written.
    pub stream: Stream,
    /// Its position in the stream (the offset in the region it was written in).
    pub position: i64,
    /// Its timestamp, milliseconds, as written.
    pub timestamp: i64,
    /// Its event id (from the configured header), if it has one.
    pub id: Option<I>,
    /// What the caller carries along with it.
    pub payload: P,
}

/// What [`Merger::release`] gives, in the merged order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output<I, P> {
    /// The next event of the merged stream, with its effective time.
    Event {
        /// The event.
        event: Event<I, P>,
        /// Its effective time.
        at: i64,
    },
    /// An event dropped as a repeat of an earlier one with the same id.
    Duplicate {
        /// The event dropped.
        event: Event<I, P>,
        /// Its effective time.
        at: i64,
        /// The event released before with the same id: its stream and position.
        of: (Stream, i64),
    },
}

#[derive(Debug)]
struct StreamState<I, P> {
    /// Marks known: (position, floor) with the floor the highest so far, in position order.
    marks: Vec<(i64, i64)>,
    /// Everything before this position has been given.
    read_to: i64,
    /// Events given but without a mark beyond them yet.
    waiting: BTreeMap<i64, Event<I, P>>,
    /// Positions of the events given a time but not released yet.
    ready: BTreeSet<i64>,
}

impl<I, P> StreamState<I, P> {
    /// The floor for `position`, from the marks known (`i64::MIN` before the first).
    fn floor(&self, position: i64) -> i64 {
        let n = self.marks.partition_point(|(o, _)| *o <= position);
        if n == 0 {
            i64::MIN
        } else {
            self.marks[n - 1].1
        }
    }

    /// No event heard of from now on can have an effective time below this: what is still to
    /// come is at or after `read_to`. (Events waiting for a mark are at or after the last mark,
    /// whose floor is the same.)
    fn watermark(&self) -> i64 {
        self.floor(self.read_to)
    }

    /// Nothing before this position is still to be released.
    fn from(&self) -> i64 {
        let first = |p: Option<&i64>| p.copied().unwrap_or(i64::MAX);
        first(self.waiting.keys().next())
            .min(first(self.ready.first()))
            .min(self.read_to)
    }
}

/// Where a stream stands right after an event was released: what a merger needs to go on from
/// there (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// Read the stream again from this position: every event before it was released.
    pub from: i64,
    /// The last mark at or before `from` (position, floor), which gives its floor.
    pub seed: Option<(i64, i64)>,
    /// The position of the first mark kept after `seed`: the caller reads marks again from the
    /// first one written at this position (`None`: from the next one it has not read yet).
    pub next_mark: Option<i64>,
}

type Key = (i64, Rank, i32, i64);

/// An event's place in the merged order: (effective time, region rank, partition, position).
pub fn place(at: i64, stream: Stream, position: i64) -> (i64, Rank, i32, i64) {
    (at, stream.origin, stream.partition, position)
}

/// Merges the streams of one event topic (see the module docs).
#[derive(Debug)]
pub struct Merger<I, P> {
    lateness: i64,
    dedupe_window: i64,
    streams: BTreeMap<Stream, StreamState<I, P>>,
    ready: BTreeMap<Key, Event<I, P>>,
    /// Ids released, with their effective time and stream/position, and when each can go.
    ids: HashMap<I, (i64, Stream, i64)>,
    id_expiry: BTreeMap<(i64, Stream, i64), I>,
    /// Events at or before this place were released before a restart: dropped unseen.
    skip: Option<Key>,
}

impl<I: Clone + Eq + Hash, P> Merger<I, P> {
    /// A merger of `streams`; a mark at `time` promises `time - lateness`, and ids repeat
    /// within `dedupe_window` milliseconds.
    pub fn new(
        streams: impl IntoIterator<Item = Stream>,
        lateness: i64,
        dedupe_window: i64,
    ) -> Self {
        Self {
            lateness: lateness.max(0),
            dedupe_window: dedupe_window.max(0),
            streams: streams
                .into_iter()
                .map(|s| {
                    (
                        s,
                        StreamState {
                            marks: Vec::new(),
                            read_to: i64::MIN,
                            waiting: BTreeMap::new(),
                            ready: BTreeSet::new(),
                        },
                    )
                })
                .collect(),
            ready: BTreeMap::new(),
            ids: HashMap::new(),
            id_expiry: BTreeMap::new(),
            skip: None,
        }
    }

    /// Start `stream` where a snapshot left it (before giving it anything): everything before
    /// `from` is taken as given, and `seed` is its mark there.
    pub fn resume(&mut self, stream: Stream, from: i64, seed: Option<(i64, i64)>) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.read_to = from;
            s.marks = seed.into_iter().collect();
        }
    }

    /// An id released (not as a duplicate) before a restart, at `at` from `stream`/`position`:
    /// a repeat of it within the window is dropped as if the merger had not stopped.
    pub fn remember(&mut self, id: I, at: i64, stream: Stream, position: i64) {
        if let Some(old) = self.ids.insert(id.clone(), (at, stream, position)) {
            self.id_expiry.remove(&old);
        }
        self.id_expiry.insert((at, stream, position), id);
    }

    /// Everything up to and including `place` (see [`place`]) was released before a restart:
    /// it is dropped when it comes again, without a trace (not even in the dedupe ids).
    pub fn skip_through(&mut self, place: (i64, Rank, i32, i64)) {
        self.skip = Some(place);
    }

    /// How far `stream` is known to have come: nothing heard of from it from now on has an
    /// earlier effective time (`i64::MIN` before its first mark).
    pub fn watermark(&self, stream: Stream) -> Option<i64> {
        self.streams.get(&stream).map(StreamState::watermark)
    }

    /// Where `stream` stands now (call right after an event was released).
    pub fn snapshot(&self, stream: Stream) -> Option<Resume> {
        let s = self.streams.get(&stream)?;
        let from = s.from();
        let n = s.marks.partition_point(|(o, _)| *o <= from);
        Some(Resume {
            from,
            seed: n.checked_sub(1).map(|i| s.marks[i]),
            next_mark: s.marks.get(n).map(|(o, _)| *o),
        })
    }

    /// Events waiting for a mark or for release.
    pub fn pending(&self) -> usize {
        self.ready.len()
            + self
                .streams
                .values()
                .map(|s| s.waiting.len())
                .sum::<usize>()
    }

    /// Take in an event of a stream being merged (others are ignored, and so is an event given
    /// again).
    pub fn event(&mut self, e: Event<I, P>) {
        let Some(s) = self.streams.get_mut(&e.stream) else {
            return;
        };
        if e.position < s.read_to {
            return; // given before (everything before `read_to` has been)
        }
        s.read_to = s.read_to.max(e.position + 1);
        s.waiting.insert(e.position, e);
        self.settle(None);
    }

    /// Everything of `stream` before `position` has been given (the reader is there).
    pub fn read_to(&mut self, stream: Stream, position: i64) {
        if let Some(s) = self.streams.get_mut(&stream) {
            s.read_to = s.read_to.max(position);
        }
    }

    /// The stream's mark: from `position` on, nothing is stamped before `time - lateness`.
    /// Marks come in order of position; one behind the last is ignored.
    pub fn mark(&mut self, stream: Stream, position: i64, time: i64) {
        let lateness = self.lateness;
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        let floor = time.saturating_sub(lateness);
        match s.marks.last() {
            Some((o, _)) if *o > position => return,
            Some((o, f)) if *o == position => {
                let f = (*f).max(floor);
                s.marks.last_mut().expect("just seen").1 = f;
            }
            Some((_, f)) => {
                let f = (*f).max(floor);
                s.marks.push((position, f));
            }
            None => s.marks.push((position, floor)),
        }
        self.settle(Some(stream));
    }

    /// Give every event given a mark beyond its position its effective time.
    fn settle(&mut self, only: Option<Stream>) {
        for (stream, s) in self.streams.iter_mut() {
            if only.is_some_and(|o| o != *stream) {
                continue;
            }
            let Some(&(last, _)) = s.marks.last() else {
                continue;
            };
            let later = s.waiting.split_off(&last);
            let now = std::mem::replace(&mut s.waiting, later);
            for (pos, e) in now {
                let at = e.timestamp.max(s.floor(pos));
                s.ready.insert(pos);
                self.ready
                    .insert((at, stream.origin, stream.partition, pos), e);
            }
            // Marks before the last one that applies to what is still to be released can go
            // (the one kept gives a snapshot its floor).
            let keep_from = s.from();
            let n = s.marks.partition_point(|(o, _)| *o <= keep_from);
            if n > 1 {
                s.marks.drain(..n - 1);
            }
        }
    }

    /// The events that can be released now, in the merged order.
    pub fn release(&mut self) -> Vec<Output<I, P>> {
        std::iter::from_fn(|| self.release_next()).collect()
    }

    /// The next event that can be released now, if any (one at a time, so that a
    /// [`snapshot`](Self::snapshot) can be taken after each).
    pub fn release_next(&mut self) -> Option<Output<I, P>> {
        let frontier = self
            .streams
            .values()
            .map(StreamState::watermark)
            .min()
            .unwrap_or(i64::MIN);
        // Ids nothing can repeat any more: whatever is released from now on is at or after the
        // frontier or the first event ready. (So forgetting never changes a decision: each is a
        // function of the released sequence alone.)
        let bound = self
            .ready
            .first_key_value()
            .map_or(frontier, |(k, _)| k.0.min(frontier));
        while let Some(entry) = self.id_expiry.first_entry() {
            if entry.key().0.saturating_add(self.dedupe_window) >= bound {
                break;
            }
            let id = entry.remove();
            self.ids.remove(&id);
        }
        loop {
            let entry = self.ready.first_entry()?;
            let key = *entry.key();
            let (at, _, _, pos) = key;
            if at >= frontier {
                return None;
            }
            let event = entry.remove();
            if let Some(s) = self.streams.get_mut(&event.stream) {
                s.ready.remove(&pos);
            }
            if self.skip.is_some_and(|k| key <= k) {
                continue;
            }
            let here = (event.stream, pos);
            let repeat =
                event
                    .id
                    .as_ref()
                    .and_then(|id| self.ids.get(id))
                    .and_then(|&(first_at, s, p)| {
                        (at - first_at <= self.dedupe_window).then_some((s, p))
                    });
            return Some(match repeat {
                Some(of) => Output::Duplicate { event, at, of },
                None => {
                    if let Some(id) = &event.id {
                        self.remember(id.clone(), at, here.0, here.1);
                    }
                    Output::Event { event, at }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EAST: Stream = Stream {
        origin: 0,
        partition: 0,
    };
    const WEST: Stream = Stream {
        origin: 1,
        partition: 0,
    };

    fn ev(
        stream: Stream,
        position: i64,
        timestamp: i64,
        id: &'static str,
    ) -> Event<&'static str, ()> {
        Event {
            stream,
            position,
            timestamp,
            id: Some(id),
            payload: (),
        }
    }

    fn released(out: &[Output<&'static str, ()>]) -> Vec<(&'static str, i64)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Event { event, at } => Some((event.id.unwrap(), *at)),
                Output::Duplicate { .. } => None,
            })
            .collect()
    }

    #[test]
    fn nothing_is_released_before_every_stream_has_passed_it() {
        let mut m = Merger::new([EAST, WEST], 0, 1_000);
        m.event(ev(EAST, 0, 100, "shipped"));
        m.mark(EAST, 1, 500);
        assert!(m.release().is_empty(), "west has promised nothing yet");
        m.mark(WEST, 0, 150);
        m.read_to(WEST, 0);
        assert_eq!(released(&m.release()), vec![("shipped", 100)]);
    }

    #[test]
    fn a_late_timestamp_is_raised_to_its_streams_promise() {
        let mut m = Merger::new([EAST, WEST], 10, 1_000);
        m.mark(EAST, 0, 200);
        m.event(ev(EAST, 0, 50, "late"));
        m.mark(EAST, 1, 300);
        m.mark(WEST, 0, 1_000);
        m.read_to(WEST, 0);
        assert_eq!(released(&m.release()), vec![("late", 190)]);
    }

    #[test]
    fn a_repeated_id_within_the_window_is_dropped_and_said() {
        let mut m = Merger::new([EAST, WEST], 0, 100);
        m.event(ev(EAST, 0, 10, "e1"));
        m.event(ev(WEST, 0, 60, "e1"));
        m.event(ev(WEST, 1, 500, "e1"));
        m.mark(EAST, 1, 1_000);
        m.mark(WEST, 2, 1_000);
        let out = m.release();
        assert_eq!(released(&out), vec![("e1", 10), ("e1", 500)]);
        assert!(matches!(out[1], Output::Duplicate { of: (EAST, 0), .. }));
    }

    /// A stream's items in its own order: events by position (with gaps), marks by position
    /// (anywhere among the events), as both regions hear them.
    #[derive(Clone, Debug)]
    enum Item {
        Event(i64, i64, u8),
        Mark(i64, i64),
    }

    fn stream_items() -> impl Strategy<Value = Vec<Item>> {
        (
            prop::collection::vec((1i64..4, 0i64..1_000, 0u8..12), 0..12),
            prop::collection::vec((0i64..4, 0i64..1_000), 0..8),
            any::<u64>(),
        )
            .prop_map(|(events, marks, seed)| {
                let mut pos = 0;
                let mut es = Vec::new();
                for (gap, t, id) in events {
                    pos += gap;
                    es.push(Item::Event(pos, t, id));
                }
                let mut o = 0;
                let ms: Vec<Item> = marks
                    .into_iter()
                    .map(|(step, t)| {
                        o += step;
                        Item::Mark(o, t)
                    })
                    .collect();
                interleave(vec![es, ms], seed)
            })
    }

    /// Merge lists keeping each one's order, choosing by `seed`.
    fn interleave<T: Clone>(lists: Vec<Vec<T>>, mut seed: u64) -> Vec<T> {
        let mut idx = vec![0; lists.len()];
        let mut out = Vec::new();
        loop {
            let open: Vec<usize> = (0..lists.len())
                .filter(|&i| idx[i] < lists[i].len())
                .collect();
            if open.is_empty() {
                return out;
            }
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = open[(seed >> 33) as usize % open.len()];
            out.push(lists[i][idx[i]].clone());
            idx[i] += 1;
        }
    }

    type Heard = Vec<(Stream, Item)>;

    /// Feed one region's interleaving, then a last mark per stream past everything.
    fn merge(heard: &Heard, streams: &[Stream]) -> Vec<(Stream, i64, i64, bool)> {
        let mut m: Merger<u8, ()> = Merger::new(streams.iter().copied(), 5, 100);
        let mut out = Vec::new();
        let mut take = |m: &mut Merger<u8, ()>| {
            for o in m.release() {
                out.push(match o {
                    Output::Event { event, at } => (event.stream, event.position, at, true),
                    Output::Duplicate { event, at, .. } => {
                        (event.stream, event.position, at, false)
                    }
                });
            }
        };
        for (s, item) in heard {
            match *item {
                Item::Event(pos, t, id) => m.event(Event {
                    stream: *s,
                    position: pos,
                    timestamp: t,
                    id: Some(id),
                    payload: (),
                }),
                Item::Mark(o, t) => m.mark(*s, o, t),
            }
            take(&mut m);
        }
        for s in streams {
            m.mark(*s, 1_000, 10_000);
            m.read_to(*s, 1_000);
        }
        take(&mut m);
        assert_eq!(m.pending(), 0);
        out
    }

    type Row = (Stream, i64, i64, bool);

    fn row(o: Output<u8, ()>) -> (Row, Option<u8>) {
        match o {
            Output::Event { event, at } => ((event.stream, event.position, at, true), event.id),
            Output::Duplicate { event, at, .. } => {
                ((event.stream, event.position, at, false), event.id)
            }
        }
    }

    fn feed(m: &mut Merger<u8, ()>, s: Stream, item: &Item) {
        match *item {
            Item::Event(pos, t, id) => m.event(Event {
                stream: s,
                position: pos,
                timestamp: t,
                id: Some(id),
                payload: (),
            }),
            Item::Mark(o, t) => m.mark(s, o, t),
        }
    }

    fn finish(m: &mut Merger<u8, ()>, streams: &[Stream], out: &mut Vec<(Row, Option<u8>)>) {
        for s in streams {
            m.mark(*s, 1_000, 10_000);
            m.read_to(*s, 1_000);
        }
        out.extend(m.release().into_iter().map(row));
        assert_eq!(m.pending(), 0);
    }

    proptest! {
        /// A merger stopped right after any event it released, and started again from its
        /// snapshot (each stream read again from `from`, its marks from `next_mark`), the ids
        /// released within the window before, and the last place, releases exactly what an
        /// uninterrupted one releases after that event.
        #[test]
        fn a_merger_resumed_from_a_snapshot_goes_on_as_if_never_stopped(
            items in prop::collection::vec(stream_items(), 4),
            seeds in (any::<u64>(), any::<u64>()),
            stop in any::<prop::sample::Index>(),
        ) {
            let streams = [
                Stream { origin: 0, partition: 0 },
                Stream { origin: 0, partition: 1 },
                Stream { origin: 1, partition: 0 },
                Stream { origin: 1, partition: 1 },
            ];
            let (lateness, window) = (5, 100);
            let tagged: Vec<Vec<(Stream, Item)>> = items
                .iter()
                .zip(streams)
                .map(|(its, s)| its.iter().map(|i| (s, i.clone())).collect())
                .collect();
            let heard = interleave(tagged, seeds.0);

            // Uninterrupted.
            let mut whole = Vec::new();
            let mut m: Merger<u8, ()> = Merger::new(streams, lateness, window);
            for (s, item) in &heard {
                feed(&mut m, *s, item);
                whole.extend(m.release().into_iter().map(row));
            }
            finish(&mut m, &streams, &mut whole);
            let events: Vec<usize> = (0..whole.len()).filter(|&i| whole[i].0 .3).collect();
            prop_assume!(!events.is_empty());
            let k = events[stop.index(events.len())] + 1;

            // Stopped right after the k-th output (an event written), as a crash would.
            let mut before = Vec::new();
            let mut m: Merger<u8, ()> = Merger::new(streams, lateness, window);
            let mut marks_read: BTreeMap<Stream, usize> = BTreeMap::new();
            let mut stopped = false;
            for (s, item) in &heard {
                feed(&mut m, *s, item);
                if matches!(item, Item::Mark(..)) {
                    *marks_read.entry(*s).or_default() += 1;
                }
                while before.len() < k {
                    match m.release_next() {
                        Some(o) => before.push(row(o)),
                        None => break,
                    }
                }
                if before.len() == k {
                    stopped = true;
                    break;
                }
            }
            if !stopped {
                for s in &streams {
                    m.mark(*s, 1_000, 10_000);
                    m.read_to(*s, 1_000);
                }
                // The final marks are not part of any stream's items: read again in `finish`.
                while before.len() < k {
                    before.push(row(m.release_next().expect("the whole run released it")));
                }
            }
            prop_assert_eq!(&before[..], &whole[..k]);
            let ((ls, lpos, lat, _), _) = before[k - 1];

            // Started again from the snapshot.
            let mut again: Merger<u8, ()> = Merger::new(streams, lateness, window);
            again.skip_through(place(lat, ls, lpos));
            for ((s, pos, at, kept), id) in &before {
                if *kept && *at >= lat - window {
                    again.remember(id.unwrap(), *at, *s, *pos);
                }
            }
            let mut lists = Vec::new();
            for (its, s) in items.iter().zip(streams) {
                let r = m.snapshot(s).unwrap();
                again.resume(s, r.from, r.seed);
                let marks: Vec<&Item> = its.iter().filter(|i| matches!(i, Item::Mark(..))).collect();
                let first_mark = match r.next_mark {
                    // Not among the items: the final mark, which `finish` gives again.
                    Some(p) => marks
                        .iter()
                        .position(|i| matches!(i, Item::Mark(o, _) if *o == p))
                        .unwrap_or(marks.len()),
                    None => marks_read.get(&s).copied().unwrap_or(0).min(marks.len()),
                };
                let mut list: Vec<(Stream, Item)> = its
                    .iter()
                    .filter(|i| matches!(i, Item::Event(pos, ..) if *pos >= r.from))
                    .map(|i| (s, i.clone()))
                    .collect();
                list.extend(marks[first_mark..].iter().map(|i| (s, (*i).clone())));
                lists.push(list);
            }
            let mut after = Vec::new();
            for (s, item) in interleave(lists, seeds.1) {
                feed(&mut again, s, &item);
                after.extend(again.release().into_iter().map(row));
            }
            finish(&mut again, &streams, &mut after);
            let mut joined = before.clone();
            joined.extend(after);
            prop_assert_eq!(joined, whole);
        }
    }

    proptest! {
        /// Two regions hearing the same streams in different interleavings release the same
        /// sequence, and it is every event sorted by effective time.
        #[test]
        fn every_region_releases_the_same_sequence(
            items in prop::collection::vec(stream_items(), 4),
            seeds in (any::<u64>(), any::<u64>()),
        ) {
            let streams = [
                Stream { origin: 0, partition: 0 },
                Stream { origin: 0, partition: 1 },
                Stream { origin: 1, partition: 0 },
                Stream { origin: 1, partition: 1 },
            ];
            let tagged: Vec<Vec<(Stream, Item)>> = items
                .iter()
                .zip(streams)
                .map(|(its, s)| its.iter().map(|i| (s, i.clone())).collect())
                .collect();
            let east = merge(&interleave(tagged.clone(), seeds.0), &streams);
            let west = merge(&interleave(tagged, seeds.1), &streams);
            prop_assert_eq!(&east, &west);
            let n: usize = items.iter().map(|its| its.iter().filter(|i| matches!(i, Item::Event(..))).count()).sum();
            prop_assert_eq!(east.len(), n, "every event comes out once");
            let keys: Vec<_> = east.iter().map(|(s, p, at, _)| (*at, s.origin, s.partition, *p)).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            prop_assert_eq!(keys, sorted);
        }
    }
}
