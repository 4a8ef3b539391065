//! Selection: which nodes of a pool go into one answer, in which order, with which TTL.
//!
//! [`select`] is the entry point of the DNS answer path. It reads each node's runtime
//! state through atomics and writes into a fixed-capacity [`Selection`]: no lock, no heap
//! allocation (checked by `noalloc_tests.rs`, with a counting allocator). [`explain`] runs the very
//! same code with a sink that records, for every node, why it was picked or left out.
//!
//! Order of decisions for a query of one address family:
//! 1. Nodes of the other family are ignored (an A answer only carries IPv4 nodes).
//! 2. Maintenance (config `maint = true` or admin), drain, down and weight-0 nodes are
//!    left out; the rest are *usable*, each with an effective weight: admin override, else
//!    the weight the node reported, else the configured one, scaled by the slow-start ramp.
//! 3. Tiers: the first tier whose usable nodes reach its `min_healthy` answers; if none
//!    does, the first tier with any usable node; if no node is usable the pool is *all
//!    down* and its `all_down` mode decides.
//! 4. The policy orders the chosen nodes; `max_answers` cuts the list.
//! 5. TTL: `degraded_ttl` while any node of the family is down, else `ttl`.
//!
//! [`answering`] names the outcome of these decisions for a whole pool (normal,
//! degraded, failing over, all down) for operators.

use std::net::IpAddr;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crate::node::pool::mix;
use crate::node::{AdminState, Family, Health, NodeRuntime, PoolRuntime, state_epoch};
use crate::pool::spec::{MAX_ANSWERS, MAX_NODES};
use crate::pool::{AllDown, Policy};

pub mod answering;
#[cfg(test)]
mod memo_tests;
#[cfg(test)]
mod noalloc_tests;
#[cfg(test)]
mod tests;

/// Who is asking, as far as `client-hash` cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// ECS address when the query carried EDNS Client Subnet, else the source address.
    pub addr: IpAddr,
    /// ECS source prefix length (ignored when `from_ecs` is false).
    pub prefix_len: u8,
    /// Whether `addr` / `prefix_len` come from ECS.
    pub from_ecs: bool,
}

/// Prefix a `client-hash` key keeps of an IPv4 source (and most of an ECS subnet it uses):
/// one /24 is one site or one resolver farm, and resolvers cache per /24 anyway.
pub const CLIENT_PREFIX_V4: u8 = 24;
/// Same for IPv6: /56 is the usual end-site assignment.
pub const CLIENT_PREFIX_V6: u8 = 56;

/// Everything a selection needs to know about one query.
#[derive(Debug, Clone, Copy)]
pub struct SelectInput {
    /// A per-query counter (e.g. [`PoolRuntime::next_counter`]); drives rotation.
    pub counter: u64,
    /// A or AAAA.
    pub family: Family,
    /// The client, for `client-hash`.
    pub client: ClientKey,
    /// Now, for slow start.
    pub now: Instant,
}

/// What kind of response a selection calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Addresses in [`Selection::nodes`].
    Answer,
    /// NOERROR with no address (no node of the family, or `all_down = "empty"`).
    Empty,
    /// SERVFAIL (`all_down = "servfail"`).
    ServFail,
}

/// The result of one selection; fixed capacity, reused by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    nodes: [u8; MAX_ANSWERS],
    len: u8,
    /// TTL for the answer records.
    pub ttl: u32,
    /// Answer, empty or SERVFAIL.
    pub outcome: Outcome,
    /// ECS scope prefix to echo: the client prefix the answer depends on (0 when the
    /// answer is the same for every client, i.e. every policy but `client-hash`).
    pub scope_prefix: u8,
    /// The tier that answered; 0 when none did (all down).
    pub tier: u8,
    /// Some node of the queried family is down.
    pub degraded: bool,
    /// No node was usable; `all_down` decided.
    pub all_down: bool,
    /// The usable nodes of the tier that answered (a bit per node index), which
    /// [`record`] remembers for `all_down = "last-healthy"`; 0 when all were down.
    pub healthy: u64,
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            nodes: [0; MAX_ANSWERS],
            len: 0,
            ttl: 0,
            outcome: Outcome::Empty,
            scope_prefix: 0,
            tier: 0,
            degraded: false,
            all_down: false,
            healthy: 0,
        }
    }
}

impl Selection {
    /// Indices (into [`PoolRuntime::nodes`]) of the nodes to answer with, in order.
    pub fn nodes(&self) -> &[u8] {
        &self.nodes[..self.len as usize]
    }

    /// [`Selection::nodes`] as the whole fixed array (entries past the length mean nothing):
    /// copied as one move.
    pub fn node_array(&self) -> [u8; MAX_ANSWERS] {
        self.nodes
    }

    /// The addresses to answer with, in order.
    pub fn addrs<'a>(&'a self, pool: &'a PoolRuntime) -> impl Iterator<Item = IpAddr> + 'a {
        self.nodes()
            .iter()
            .map(|&i| pool.nodes[i as usize].spec.addr)
    }
}

/// Why a node is, or is not, in a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// In the answer at this position (0 = first).
    Selected {
        /// Position.
        rank: u8,
    },
    /// Health check failing (or no result yet).
    Down,
    /// Admin drain.
    Drained,
    /// Admin or configured maintenance.
    Maint,
    /// Usable, but another tier answered.
    OtherTier {
        /// The node's tier.
        tier: u8,
    },
    /// Effective weight 0 (reported by the node or set by an admin).
    WeightZero,
    /// The query is for the other address family.
    OtherFamily,
    /// Usable and in the answering tier, but `max_answers` cut it.
    CutByMaxAnswers,
    /// Ramping up after coming back, and skipped for this answer.
    SlowStart,
    /// All down with `last-healthy`, and not in the last healthy set.
    NotInLastHealthy,
    /// All down with `empty` or `servfail`.
    AllDown,
}

/// Receives a verdict for each node during a selection. `()` ignores them (the answer
/// path); [`Explanation`] keeps them.
pub trait Explain {
    /// Records (or overwrites) the verdict of node `node`.
    fn note(&mut self, node: usize, verdict: Verdict);
}

impl Explain for () {
    #[inline(always)]
    fn note(&mut self, _: usize, _: Verdict) {}
}

/// A selection with a verdict for every node, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// What `select` returned.
    pub selection: Selection,
    /// The final verdict of each node, by index.
    pub verdicts: Vec<Verdict>,
}

impl Explain for Explanation {
    fn note(&mut self, node: usize, verdict: Verdict) {
        self.verdicts[node] = verdict;
    }
}

/// Picks the nodes for one answer into `out` and does the answer's bookkeeping (the DNS
/// answer path: lock- and allocation-free): [`select_with`], then [`record`].
///
/// Node state changes rarely, so the first half of the decision (`choose`) is memoized
/// per pool and family and taken from the memo while the state epoch has not moved (see
/// [`crate::node::memo`]); what depends on the query (rotation, client, clock) is
/// computed every time. `memo_matches_fresh_selection` in the tests checks the two ways
/// agree through every kind of state change.
#[inline]
pub fn select(pool: &PoolRuntime, input: &SelectInput, out: &mut Selection) {
    let epoch = state_epoch();
    let memo = &pool.memos[input.family.index()];
    if let Some(words) = memo.get(epoch) {
        let chosen = from_memo_words(pool, words, out);
        order(pool, input, chosen, out, &mut ());
    } else if let Some(chosen) = choose(pool, input, out, &mut ()) {
        if let Some(words) = memo_words(chosen, out) {
            memo.put(epoch, words);
        }
        order(pool, input, chosen, out, &mut ());
    }
    record(pool, input, out);
}

/// The bookkeeping of an answer actually sent, kept apart from the decision so that the
/// decision changes nothing and explain can run it freely: remembers the healthy set for
/// `last-healthy`, and when each node was handed out and for how long, so the admin API
/// can tell when a drained node has left every cache. Relaxed atomics, mostly loads:
/// stores happen only on change, so steady traffic does not keep bouncing cache lines.
#[inline]
pub fn record(pool: &PoolRuntime, input: &SelectInput, sel: &Selection) {
    if sel.healthy != 0 {
        let lh = &pool.last_healthy[input.family.index()];
        if lh.load(Relaxed) != sel.healthy {
            lh.store(sel.healthy, Relaxed);
        }
    }
    if sel.outcome == Outcome::Answer
        && let Some(first) = pool.nodes.first()
    {
        let now_ms = input
            .now
            .saturating_duration_since(first.health.epoch())
            .as_millis() as u64;
        // One answer in ANSWER_SAMPLE also counts towards each node's share.
        let sample = input.counter.is_multiple_of(crate::node::ANSWER_SAMPLE);
        for &i in sel.nodes() {
            let admin = &pool.nodes[i as usize].admin;
            admin.note_served(now_ms, sel.ttl);
            if sample {
                admin.note_sampled();
            }
        }
    }
}

/// [`select_with`] that also says why each node is in or out. Same code, other sink; no
/// bookkeeping: it changes nothing, so it does not count as serving the nodes it picks.
pub fn explain(pool: &PoolRuntime, input: &SelectInput) -> Explanation {
    let mut ex = Explanation {
        selection: Selection::default(),
        verdicts: vec![Verdict::OtherFamily; pool.nodes.len()],
    };
    let mut sel = Selection::default();
    select_with(pool, input, &mut sel, &mut ex);
    ex.selection = sel;
    ex
}

/// Full weight in slow-start ramp units.
const RAMP_ONE: u64 = 1024;
/// 2^64 / golden ratio: successive multiples spread evenly over the u64 range (a
/// low-discrepancy sequence), which makes `weighted` smooth across answers.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The selection itself, generic over the verdict sink: a pure decision. It reads the
/// nodes' state and the input (counter, clock, client) and writes only `out` and `ex`;
/// the bookkeeping of an answer sent is [`record`]'s.
pub fn select_with<E: Explain + ?Sized>(
    pool: &PoolRuntime,
    input: &SelectInput,
    out: &mut Selection,
    ex: &mut E,
) {
    if let Some(chosen) = choose(pool, input, out, ex) {
        order(pool, input, chosen, out, ex);
    }
}

/// The candidates [`choose`] leaves to the policy.
#[derive(Debug, Clone, Copy)]
struct Chosen {
    /// The nodes, a bit per index.
    cand: u64,
    /// Those of them in their slow-start ramp.
    ramping: u64,
}

/// A [`Chosen`] and the flags of `out` it came with, in the two words of a [`Memo`]:
/// only a choice that depends on node state alone is kept (a tier answered and no node is
/// ramping; all-down modes read `last_healthy`, ramps read the clock).
fn memo_words(chosen: Chosen, out: &Selection) -> Option<[u64; 2]> {
    (chosen.ramping == 0 && !out.all_down)
        .then_some([chosen.cand, out.tier as u64 | (out.degraded as u64) << 8])
}

/// What [`memo_words`] kept, back as a [`Chosen`] with `out` set as [`choose`] left it.
fn from_memo_words(pool: &PoolRuntime, [cand, flags]: [u64; 2], out: &mut Selection) -> Chosen {
    let degraded = flags >> 8 & 1 == 1;
    *out = Selection {
        ttl: answer_ttl(pool, degraded),
        tier: flags as u8,
        degraded,
        healthy: cand,
        ..Selection::default()
    };
    Chosen { cand, ramping: 0 }
}

/// The TTL of an answer: `degraded_ttl` while any node of the family is down.
fn answer_ttl(pool: &PoolRuntime, degraded: bool) -> u32 {
    if degraded {
        pool.spec().degraded_ttl
    } else {
        pool.spec().ttl
    }
}

/// The first half of [`select_with`], from node state: which nodes are candidates (the
/// answering tier, or what an all-down mode hands out), with `out`'s TTL and flags set.
/// `None` when the answer is already decided (no node of the family, an empty or
/// SERVFAIL all-down answer).
fn choose<E: Explain + ?Sized>(
    pool: &PoolRuntime,
    input: &SelectInput,
    out: &mut Selection,
    ex: &mut E,
) -> Option<Chosen> {
    *out = Selection::default();
    let spec = pool.spec();
    let fam = input.family;
    out.ttl = spec.ttl;

    // Nodes of the other family, then the family's nodes one by one: only the live
    // state (admin override, health, weight, ramp) is read per answer; which node is of
    // which family and tier is fixed for the pool's life and kept as bit sets.
    let family_mask = pool.family_masks[fam.index()];
    for_each_bit(pool.family_masks[1 - fam.index()], |i| {
        ex.note(i, Verdict::OtherFamily)
    });
    let slow_start = spec.slow_start.is_some();
    // Usable nodes still in their slow-start ramp (most answers have none): their ramp
    // is computed again where it matters, so no per-node table is filled for every answer.
    let mut ramping = 0u64;
    let mut usable = 0u64;
    // Not maint / drain: what fail-open modes may hand out.
    let mut serveable = 0u64;
    let mut any_down = false;
    let mut m = family_mask;
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        m &= m - 1;
        let node = &pool.nodes[i];
        let bit = 1u64 << i;
        let admin = node.admin.state();
        if node.spec.maint || admin == AdminState::Maint {
            ex.note(i, Verdict::Maint);
            continue;
        }
        let up = node.health.health() == Health::Up;
        any_down |= !up;
        if admin == AdminState::Drain {
            ex.note(i, Verdict::Drained);
            continue;
        }
        serveable |= bit;
        if !up {
            ex.note(i, Verdict::Down);
            continue;
        }
        if node.base_weight() == 0 {
            ex.note(i, Verdict::WeightZero);
            continue;
        }
        if slow_start && ramp_of(pool, node, input.now) < RAMP_ONE {
            ramping |= bit;
        }
        usable |= bit;
    }

    if family_mask == 0 {
        // No node of this family at all: NODATA, nothing is down.
        return None;
    }
    out.degraded = any_down;

    // Tier choice: first tier meeting min_healthy, else first tier with anything usable.
    // With one tier both come to "any usable node".
    let tier_masks = &pool.tier_masks[..];
    let chosen = if tier_masks.len() == 1 {
        (usable != 0).then_some(0)
    } else {
        tier_masks
            .iter()
            .position(|&t| {
                let up = (usable & t).count_ones() as usize;
                up > 0
                    && up
                        >= spec
                            .min_healthy
                            .required((family_mask & t).count_ones() as usize)
            })
            .or_else(|| tier_masks.iter().position(|&t| usable & t != 0))
    };

    let cand_mask = match chosen {
        Some(t) => {
            let m = usable & tier_masks[t];
            for_each_bit(usable & !m, |i| {
                ex.note(
                    i,
                    Verdict::OtherTier {
                        tier: pool.nodes[i].spec.tier,
                    },
                )
            });
            out.tier = pool.tiers[t];
            out.healthy = m;
            m
        }
        None => {
            out.all_down = true;
            out.degraded = true;
            let m = match spec.all_down {
                AllDown::ServFail | AllDown::Empty => {
                    out.outcome = if spec.all_down == AllDown::ServFail {
                        Outcome::ServFail
                    } else {
                        Outcome::Empty
                    };
                    out.ttl = spec.degraded_ttl;
                    for_each_bit(serveable, |i| ex.note(i, Verdict::AllDown));
                    return None;
                }
                AllDown::ServeAll => serveable,
                AllDown::LastHealthy => {
                    let last = pool.last_healthy(fam) & serveable;
                    if last == 0 {
                        // Nothing was ever answered healthy (since this pool was built):
                        // fail open rather than answer nothing.
                        serveable
                    } else {
                        for_each_bit(serveable & !last, |i| ex.note(i, Verdict::NotInLastHealthy));
                        last
                    }
                }
            };
            // Failing nodes carry no live weight: `weights` uses the configured one,
            // unramped.
            ramping = 0;
            m
        }
    };
    out.ttl = answer_ttl(pool, out.degraded);
    (cand_mask != 0).then_some(Chosen {
        cand: cand_mask,
        ramping,
    })
}

/// The second half of [`select_with`]: the policy orders the candidates (slow start
/// thins them first) and `max_answers` cuts the list.
fn order<E: Explain + ?Sized>(
    pool: &PoolRuntime,
    input: &SelectInput,
    chosen: Chosen,
    out: &mut Selection,
    ex: &mut E,
) {
    let spec = pool.spec();
    let Chosen {
        cand: cand_mask,
        ramping,
    } = chosen;
    let mut cand = [0u8; MAX_NODES];
    let mut len = 0usize;
    for_each_bit(cand_mask, |i| {
        cand[len] = i as u8;
        len += 1;
    });

    // Slow start for policies without weights: a ramping node is in an answer with the
    // probability of its ramp fraction (weighted and client-hash scale its weight instead).
    if ramping != 0 && matches!(spec.policy, Policy::RoundRobin | Policy::Fastest) {
        let mut kept = 0usize;
        let mut skipped = [0u8; MAX_NODES];
        let mut nskipped = 0usize;
        for j in 0..len {
            let i = cand[j] as usize;
            // The draw only for a ramping node (most answers have none).
            if ramping & (1 << i) == 0
                || mix(input.counter ^ pool.nodes[i].seed) % RAMP_ONE
                    < ramp_of(pool, &pool.nodes[i], input.now)
            {
                cand[kept] = i as u8;
                kept += 1;
            } else {
                skipped[nskipped] = i as u8;
                nskipped += 1;
            }
        }
        if kept == 0 {
            // Never answer nothing because every node is ramping.
            cand[..nskipped].copy_from_slice(&skipped[..nskipped]);
            kept = nskipped;
        } else {
            for &i in &skipped[..nskipped] {
                ex.note(i as usize, Verdict::SlowStart);
            }
        }
        len = kept;
    }

    let k = (spec.max_answers as usize).min(len).min(MAX_ANSWERS);
    let cand = &mut cand[..len];
    // Round robin starts the list at a rotating position; the others order it.
    let mut start = 0;
    match spec.policy {
        Policy::RoundRobin => start = (input.counter % len as u64) as usize,
        Policy::Weighted => {
            let weight = weights(pool, cand, input.now, out.all_down);
            weighted_order(cand, &weight, k, input.counter)
        }
        Policy::ClientHash => {
            let weight = weights(pool, cand, input.now, out.all_down);
            let (key, prefix) = client_hash(&input.client);
            out.scope_prefix = prefix;
            let mut score = [0f64; MAX_NODES];
            for &i in cand.iter() {
                let i = i as usize;
                score[i] = hrw_score(key, pool.nodes[i].seed, weight[i]);
            }
            insertion_sort_by(cand, |a, b| score[a as usize] > score[b as usize]);
        }
        Policy::Fastest => {
            let mut rtt = [0u32; MAX_NODES];
            for &i in cand.iter() {
                rtt[i as usize] = pool.nodes[i as usize].health.srtt_us();
            }
            insertion_sort_by(cand, |a, b| rtt[a as usize] < rtt[b as usize]);
        }
    }
    let (head, tail) = cand.split_at(start);
    // The first k of tail-then-head (a loop: k is small, and a copy of a few bytes
    // costs more as a call).
    for (r, slot) in out.nodes[..k].iter_mut().enumerate() {
        let j = start + r;
        *slot = cand[if j >= len { j - len } else { j }];
    }
    out.len = k as u8;
    for (rank, &i) in tail.iter().chain(head).enumerate() {
        if rank < k {
            ex.note(i as usize, Verdict::Selected { rank: rank as u8 });
        } else {
            ex.note(i as usize, Verdict::CutByMaxAnswers);
        }
    }
    out.outcome = Outcome::Answer;
}

/// Effective weight of each candidate (indexed by node), for the policies that use
/// weights: the node's weight (reported, else configured) scaled by its slow-start ramp;
/// when all are down and a fail-open mode answers, the configured weight, unramped.
fn weights(pool: &PoolRuntime, cand: &[u8], now: Instant, fail_open: bool) -> [u64; MAX_NODES] {
    let mut weight = [0u64; MAX_NODES];
    for &i in cand {
        let node = &pool.nodes[i as usize];
        weight[i as usize] = if fail_open {
            node.spec.weight.max(1) as u64 * RAMP_ONE
        } else {
            node.base_weight() as u64 * ramp_of(pool, node, now)
        };
    }
    weight
}

/// Slow-start ramp of a node, in `1..=RAMP_ONE`.
fn ramp_of(pool: &PoolRuntime, node: &NodeRuntime, now: Instant) -> u64 {
    // No slow start configured: no need to load when the node came up.
    let Some(period) = pool.spec().slow_start else {
        return RAMP_ONE;
    };
    let Some(since) = node.health.up_since() else {
        return RAMP_ONE;
    };
    let elapsed = now.saturating_duration_since(since);
    if elapsed >= period {
        return RAMP_ONE;
    }
    ((RAMP_ONE as u128 * elapsed.as_micros() / period.as_micros().max(1)) as u64).max(1)
}

fn for_each_bit(mut m: u64, mut f: impl FnMut(usize)) {
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        f(i);
        m &= m - 1;
    }
}

/// Stable insertion sort (the candidate list is at most 64 long; no allocation).
fn insertion_sort_by(v: &mut [u8], before: impl Fn(u8, u8) -> bool) {
    for j in 1..v.len() {
        let x = v[j];
        let mut k = j;
        while k > 0 && before(x, v[k - 1]) {
            v[k] = v[k - 1];
            k -= 1;
        }
        v[k] = x;
    }
}

/// Orders `cand` so that its first `k` entries are a weighted pick (systematic sampling).
///
/// The candidates are laid end to end on a line of length W (sum of weights); the answer
/// takes the nodes under the `k` points `p0 + j·W/k`, where `p0` is the counter's point of
/// a golden-ratio sequence. Over answers `p0` covers the line evenly, so a node is first
/// with probability w/W and in the answer with probability k·w/W (capped at 1): the shares
/// follow the weights without any per-pool state. Nodes heavy enough to sit under two
/// points leave slots that are filled by walking the line onward.
fn weighted_order(cand: &mut [u8], weight: &[u64; MAX_NODES], k: usize, counter: u64) {
    let len = cand.len();
    if len <= 1 || k == 0 {
        return;
    }
    let total: u64 = cand.iter().map(|&i| weight[i as usize]).sum();
    if total == 0 {
        return;
    }
    let frac = counter.wrapping_add(1).wrapping_mul(GOLDEN);
    let p0 = ((frac as u128 * total as u128) >> 64) as u64;
    let mut order = [0u8; MAX_NODES];
    let mut picked = 0u64; // bit per position in `cand`
    let mut n = 0usize;
    for j in 0..k {
        let p = ((p0 as u128 + j as u128 * total as u128 / k as u128) % total as u128) as u64;
        let mut acc = 0u64;
        let mut pos = len - 1;
        for (q, &i) in cand.iter().enumerate() {
            acc += weight[i as usize];
            if p < acc {
                pos = q;
                break;
            }
        }
        if picked & (1 << pos) == 0 {
            picked |= 1 << pos;
            order[n] = pos as u8;
            n += 1;
        }
    }
    // Fill slots left by heavy nodes, then the rest (beyond k), walking the line onward.
    let first = order[0] as usize;
    for step in 1..len {
        let pos = (first + step) % len;
        if picked & (1 << pos) == 0 {
            picked |= 1 << pos;
            order[n] = pos as u8;
            n += 1;
        }
    }
    let mut out = [0u8; MAX_NODES];
    for (o, &pos) in out.iter_mut().zip(&order[..len]) {
        *o = cand[pos as usize];
    }
    cand.copy_from_slice(&out[..len]);
}

/// Weighted rendezvous score: `w / -ln(u)` with `u` uniform in (0, 1) from the hash of
/// (client, node). The highest score wins; a node's disappearance moves only the clients
/// it had, and a weight w attracts a w/W share of clients.
fn hrw_score(client: u64, seed: u64, weight: u64) -> f64 {
    let h = mix(client ^ seed);
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    weight as f64 / -u.ln()
}

/// The client's hash key and the prefix length it was cut to.
fn client_hash(c: &ClientKey) -> (u64, u8) {
    // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; key them as IPv4.
    match c.addr.to_canonical() {
        IpAddr::V4(a) => {
            let cap = CLIENT_PREFIX_V4;
            let p = if c.from_ecs {
                c.prefix_len.min(cap)
            } else {
                cap
            };
            let bits = u32::from(a) & mask32(p);
            (mix(bits as u64 ^ ((p as u64) << 32) ^ (4 << 40)), p)
        }
        IpAddr::V6(a) => {
            let cap = CLIENT_PREFIX_V6;
            let p = if c.from_ecs {
                c.prefix_len.min(cap)
            } else {
                cap
            };
            let bits = u128::from(a) & mask128(p);
            let hi = (bits >> 64) as u64;
            let lo = bits as u64;
            (mix(hi ^ mix(lo ^ (p as u64) ^ (6 << 40))), p)
        }
    }
}

fn mask32(p: u8) -> u32 {
    if p == 0 {
        0
    } else {
        u32::MAX << (32 - p.min(32) as u32)
    }
}

fn mask128(p: u8) -> u128 {
    if p == 0 {
        0
    } else {
        u128::MAX << (128 - p.min(128) as u32)
    }
}
