//! Query statistics, counted on the hot path without contention.
//!
//! Every counter lives in one of [`SHARDS`] cache-line-aligned shards; each UDP worker
//! writes only its own shard (relaxed atomic adds on a line no other core writes), and a
//! scrape sums the shards. Per-zone counters are kept here by [`crate::zone::Zone::index`],
//! which a zone keeps across reloads, so they carry over by origin.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use arc_swap::{ArcSwap, Cache};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::zone::Snapshot;

/// Number of counter shards; workers beyond this share shards (still correct, just
/// contended).
pub const SHARDS: usize = 16;

/// Query types counted by name; everything else is `other`.
pub const QTYPES: [RecordType; 11] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::PTR,
    RecordType::NS,
    RecordType::SOA,
    RecordType::ANY,
];
const QTYPE_SLOTS: usize = QTYPES.len() + 1;

/// Response codes counted by name; everything else is `other`.
pub const RCODES: [ResponseCode; 7] = [
    ResponseCode::NoError,
    ResponseCode::FormErr,
    ResponseCode::ServFail,
    ResponseCode::NXDomain,
    ResponseCode::NotImp,
    ResponseCode::Refused,
    ResponseCode::BADVERS,
];
const RCODE_SLOTS: usize = RCODES.len() + 1;

/// Upper bounds (nanoseconds) of the answer-latency histogram buckets: the time from a
/// request's arrival to its encoded response, microseconds to milliseconds. Integers, so
/// the hot path compares without converting; [`latency_bound_seconds`] gives the bounds
/// metrics export.
pub const LATENCY_BUCKETS: [u64; 12] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 5_000_000,
    20_000_000,
];

/// Upper bound of latency bucket `i`, in seconds.
pub fn latency_bound_seconds(i: usize) -> f64 {
    LATENCY_BUCKETS[i] as f64 / 1e9
}

fn qtype_slot(t: RecordType) -> usize {
    QTYPES.iter().position(|&q| q == t).unwrap_or(QTYPES.len())
}

fn rcode_slot(r: ResponseCode) -> usize {
    RCODES.iter().position(|&c| c == r).unwrap_or(RCODES.len())
}

/// Label of a query-type slot.
pub fn qtype_label(slot: usize) -> &'static str {
    QTYPES.get(slot).map_or("other", |&t| t.into())
}

/// Label of an rcode slot.
pub fn rcode_label(slot: usize) -> &'static str {
    RCODES
        .get(slot)
        .map_or("other", |&r| super::wire::rcode_name(r))
}

#[repr(align(128))]
#[derive(Default)]
struct ZoneShard {
    counts: [[AtomicU64; RCODE_SLOTS]; QTYPE_SLOTS],
}

/// Queries of one zone by type and rcode.
pub struct ZoneStats {
    shards: Box<[ZoneShard]>,
}

impl Default for ZoneStats {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| ZoneShard::default()).collect(),
        }
    }
}

impl std::fmt::Debug for ZoneStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ZoneStats")
    }
}

impl ZoneStats {
    #[inline]
    fn count(&self, shard: usize, qtype: RecordType, rcode: ResponseCode) {
        self.shards[shard % SHARDS].counts[qtype_slot(qtype)][rcode_slot(rcode)]
            .fetch_add(1, Relaxed);
    }

    /// Summed counts, indexed `[qtype slot][rcode slot]` (see [`qtype_label`], [`rcode_label`]).
    pub fn totals(&self) -> [[u64; RCODE_SLOTS]; QTYPE_SLOTS] {
        let mut out = [[0u64; RCODE_SLOTS]; QTYPE_SLOTS];
        for shard in self.shards.iter() {
            for (t, row) in shard.counts.iter().enumerate() {
                for (r, c) in row.iter().enumerate() {
                    out[t][r] += c.load(Relaxed);
                }
            }
        }
        out
    }
}

#[repr(align(128))]
#[derive(Default)]
struct WireShard {
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_ns: AtomicU64,
    udp: AtomicU64,
    tcp: AtomicU64,
    truncated: AtomicU64,
    dropped: AtomicU64,
    rrl_dropped: AtomicU64,
    rrl_slipped: AtomicU64,
    cookies: [AtomicU64; 3],
}

/// Per-zone counters by zone index, as the last reload left them ([`DnsStats::track`]).
pub type ZoneTable = Vec<Option<Arc<ZoneStats>>>;

/// A worker's view of the per-zone table, refreshed with one atomic load (arc-swap's
/// `Cache`) where a guarded load would cost about fifty instructions: a UDP worker loads
/// it once per batch.
pub struct ZoneCache<'a>(Cache<&'a ArcSwap<ZoneTable>, Arc<ZoneTable>>);

impl ZoneCache<'_> {
    /// The current table (picks up the one a reload stored since the last call).
    #[inline]
    pub fn load(&mut self) -> &ZoneTable {
        self.0.load()
    }
}

/// Where the answer path counts, for a batch of answers: the counters, the caller's
/// shard and the per-zone table loaded once for the batch.
#[derive(Clone, Copy)]
pub struct Counts<'a> {
    /// The server's counters.
    pub stats: &'a DnsStats,
    zones: &'a [Option<Arc<ZoneStats>>],
    /// The caller's shard (see [`SHARDS`]).
    pub shard: usize,
}

impl<'a> Counts<'a> {
    /// Counting into `stats`, shard `shard`, with the per-zone table `zones` (from
    /// [`ZoneCache::load`] or [`DnsStats::zones_now`]).
    pub fn new(stats: &'a DnsStats, zones: &'a ZoneTable, shard: usize) -> Self {
        Self {
            stats,
            zones,
            shard,
        }
    }

    /// Counts one response by zone (`zone`: the index of the zone that answered it), type
    /// and rcode, and whether it was truncated.
    #[inline]
    pub fn answer(
        &self,
        zone: Option<usize>,
        qtype: RecordType,
        rcode: ResponseCode,
        truncated: bool,
    ) {
        zone.and_then(|i| self.zones.get(i)?.as_deref())
            .unwrap_or(&self.stats.unmatched)
            .count(self.shard, qtype, rcode);
        if truncated {
            self.stats.wire[self.shard % SHARDS]
                .truncated
                .fetch_add(1, Relaxed);
        }
    }
}

/// Transport-level counters for the whole server.
pub struct DnsStats {
    /// Queries that matched no zone (REFUSED) or could not be parsed.
    pub unmatched: ZoneStats,
    /// Per-zone counters by zone index ([`DnsStats::track`]); `None` for indices of zones
    /// no longer served.
    zones: ArcSwap<ZoneTable>,
    wire: Box<[WireShard]>,
    tcp_connections: AtomicU64,
    /// The UDP workers' sockets, for the kernel's count of queries it dropped at them.
    pub udp_sockets: super::udp_buffers::SocketDrops,
}

impl Default for DnsStats {
    fn default() -> Self {
        Self {
            unmatched: ZoneStats::default(),
            zones: ArcSwap::from_pointee(Vec::new()),
            wire: (0..SHARDS).map(|_| WireShard::default()).collect(),
            tcp_connections: AtomicU64::new(0),
            udp_sockets: Default::default(),
        }
    }
}

impl std::fmt::Debug for DnsStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DnsStats")
    }
}

/// The transport a query came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// Summed transport counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WireTotals {
    /// Histogram bucket counts (non-cumulative), the last one above every bound.
    pub latency: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of latencies, seconds.
    pub latency_sum: f64,
    /// Queries answered over UDP.
    pub udp: u64,
    /// Queries answered over TCP.
    pub tcp: u64,
    /// UDP responses sent with TC.
    pub truncated: u64,
    /// Messages dropped without an answer (too short, or responses).
    pub dropped: u64,
    /// TCP connections that carried at least one query.
    pub tcp_connections: u64,
    /// UDP responses dropped by rate limiting.
    pub rrl_dropped: u64,
    /// UDP responses sent truncated by rate limiting (slip).
    pub rrl_slipped: u64,
    /// Requests with a COOKIE option, by [`COOKIE_RESULTS`]: a valid server cookie, a
    /// client cookie alone, a server cookie that did not verify.
    pub cookies: [u64; 3],
}

/// Labels of [`WireTotals::cookies`].
pub const COOKIE_RESULTS: [&str; 3] = ["valid", "client_only", "invalid"];

impl DnsStats {
    /// Makes room for the zones of `snapshot` before it is served: counters of zones it
    /// keeps are kept, new zones start at zero, zones it dropped are forgotten. Runs off the
    /// query path (startup and reloads, one at a time).
    pub fn track(&self, snapshot: &Snapshot) {
        self.track_indices(
            snapshot.next_index,
            snapshot.zones.values().map(|z| z.index),
        );
    }

    fn track_indices(&self, len: usize, served: impl Iterator<Item = usize>) {
        let old = self.zones.load();
        let mut table: ZoneTable = vec![None; len];
        for index in served {
            if let Some(slot) = table.get_mut(index) {
                *slot = Some(old.get(index).cloned().flatten().unwrap_or_default());
            }
        }
        self.zones.store(Arc::new(table));
    }

    /// Summed counts of the zone with `index`, if it is tracked.
    pub fn zone_totals(&self, index: usize) -> Option<[[u64; RCODE_SLOTS]; QTYPE_SLOTS]> {
        self.zones.load().get(index)?.as_ref().map(|z| z.totals())
    }

    /// Counts one answered query (`zone`: the index of the zone that answered it).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        shard: usize,
        zone: Option<usize>,
        qtype: RecordType,
        rcode: ResponseCode,
        transport: Transport,
        truncated: bool,
        elapsed: Duration,
    ) {
        let zones = self.zones.load();
        Counts::new(self, &zones, shard).answer(zone, qtype, rcode, truncated);
        self.record_batch(shard, transport, 1, elapsed);
    }

    /// A per-worker cache of the per-zone table (see [`ZoneCache`]).
    pub fn zone_cache(&self) -> ZoneCache<'_> {
        ZoneCache(Cache::new(&self.zones))
    }

    /// The per-zone table as it is now (a guarded load), for [`Counts::new`].
    pub fn zones_now(&self) -> impl std::ops::Deref<Target = Arc<ZoneTable>> + '_ {
        self.zones.load()
    }

    /// The per-batch part of [`DnsStats::record`]: counts `count` responses sent over
    /// `transport`, each answered within `elapsed` of its batch's arrival.
    #[inline]
    pub fn record_batch(&self, shard: usize, transport: Transport, count: u64, elapsed: Duration) {
        if count == 0 {
            return;
        }
        let w = &self.wire[shard % SHARDS];
        let ns = elapsed.as_nanos().min(u64::MAX as u128) as u64;
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        w.latency[bucket].fetch_add(count, Relaxed);
        w.latency_sum_ns
            .fetch_add(ns.saturating_mul(count), Relaxed);
        match transport {
            Transport::Udp => w.udp.fetch_add(count, Relaxed),
            Transport::Tcp => w.tcp.fetch_add(count, Relaxed),
        };
    }

    /// Counts a message dropped without an answer.
    #[inline]
    pub fn record_drop(&self, shard: usize) {
        self.wire[shard % SHARDS].dropped.fetch_add(1, Relaxed);
    }

    /// Counts a response limited by rate limiting (dropped or slipped).
    #[inline]
    pub fn record_rrl(&self, shard: usize, verdict: super::rrl::Verdict) {
        let w = &self.wire[shard % SHARDS];
        match verdict {
            super::rrl::Verdict::Send => {}
            super::rrl::Verdict::Slip => {
                w.rrl_slipped.fetch_add(1, Relaxed);
            }
            super::rrl::Verdict::Drop => {
                w.rrl_dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Counts what a request's COOKIE option showed.
    #[inline]
    pub fn record_cookie(&self, shard: usize, status: super::cookie::CookieStatus) {
        use super::cookie::CookieStatus as C;
        let slot = match status {
            C::Absent => return,
            C::Valid => 0,
            C::ClientOnly => 1,
            C::Invalid => 2,
        };
        self.wire[shard % SHARDS].cookies[slot].fetch_add(1, Relaxed);
    }

    /// Counts one accepted TCP connection.
    #[inline]
    pub fn note_tcp_connection(&self) {
        self.tcp_connections.fetch_add(1, Relaxed);
    }

    /// Summed transport counters.
    pub fn wire_totals(&self) -> WireTotals {
        let mut t = WireTotals {
            tcp_connections: self.tcp_connections.load(Relaxed),
            ..WireTotals::default()
        };
        let mut sum_ns = 0u64;
        for w in self.wire.iter() {
            for (i, b) in w.latency.iter().enumerate() {
                t.latency[i] += b.load(Relaxed);
            }
            sum_ns = sum_ns.saturating_add(w.latency_sum_ns.load(Relaxed));
            t.udp += w.udp.load(Relaxed);
            t.tcp += w.tcp.load(Relaxed);
            t.truncated += w.truncated.load(Relaxed);
            t.dropped += w.dropped.load(Relaxed);
            t.rrl_dropped += w.rrl_dropped.load(Relaxed);
            t.rrl_slipped += w.rrl_slipped.load(Relaxed);
            for (sum, c) in t.cookies.iter_mut().zip(&w.cookies) {
                *sum += c.load(Relaxed);
            }
        }
        t.latency_sum = sum_ns as f64 / 1e9;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_sum_and_slots_label() {
        let stats = DnsStats::default();
        stats.track_indices(1, [0].into_iter());
        for shard in 0..40 {
            stats.record(
                shard,
                Some(0),
                RecordType::A,
                ResponseCode::NoError,
                Transport::Udp,
                shard == 0,
                Duration::from_micros(3),
            );
        }
        stats.record(
            1,
            None,
            RecordType::HINFO,
            ResponseCode::Refused,
            Transport::Tcp,
            false,
            Duration::from_secs(1),
        );
        let z = stats.zone_totals(0).unwrap();
        assert_eq!(
            z[qtype_slot(RecordType::A)][rcode_slot(ResponseCode::NoError)],
            40
        );
        assert_eq!(qtype_label(qtype_slot(RecordType::HINFO)), "other");
        assert_eq!(rcode_label(rcode_slot(ResponseCode::Refused)), "REFUSED");
        assert_eq!(
            stats.unmatched.totals()[QTYPES.len()][rcode_slot(ResponseCode::Refused)],
            1
        );
        let w = stats.wire_totals();
        assert_eq!((w.udp, w.tcp, w.truncated), (40, 1, 1));
        assert_eq!(w.latency[2], 40, "3 us falls in the (2, 5] us bucket");
        assert_eq!(
            w.latency[LATENCY_BUCKETS.len()],
            1,
            "1 s is above every bound"
        );
    }

    #[test]
    fn zone_counters_follow_the_zone_index_across_reloads() {
        let stats = DnsStats::default();
        stats.track_indices(1, [0].into_iter());
        let count = |i| {
            stats.record(
                0,
                Some(i),
                RecordType::A,
                ResponseCode::NoError,
                Transport::Udp,
                false,
                Duration::ZERO,
            )
        };
        count(0);
        // A reload adds zone 1: zone 0 keeps its count, zone 1 starts at zero.
        stats.track_indices(2, [0, 1].into_iter());
        count(0);
        count(1);
        let a = qtype_slot(RecordType::A);
        assert_eq!(stats.zone_totals(0).unwrap()[a][0], 2);
        assert_eq!(stats.zone_totals(1).unwrap()[a][0], 1);
        // Zone 0 is removed: forgotten, and a late query for it counts as unmatched.
        stats.track_indices(2, [1].into_iter());
        assert_eq!(stats.zone_totals(0), None);
        count(0);
        assert_eq!(stats.unmatched.totals()[a][0], 1);
    }

    #[test]
    fn tcp_connections_are_counted() {
        let stats = DnsStats::default();
        for _ in 0..3 {
            stats.note_tcp_connection();
        }
        assert_eq!(stats.wire_totals().tcp_connections, 3);
    }
}
