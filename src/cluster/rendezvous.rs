//! Rendezvous (highest random weight) hashing: which members probe a (target, check).
//!
//! Every member scores `hash(member, probe)` and the `k` highest scores observe the
//! probe. All instances compute the same choice from the same member list, with no
//! coordination; a member joining or leaving changes only the probes whose top `k` it
//! enters or leaves (Thaler and Ravishankar, "Using name-based mappings to increase hit
//! rates", 1998).

/// FNV-1a over the bytes, then the SplitMix64 finaliser for a well-mixed 64-bit score.
fn score(member: &str, probe: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in member.bytes().chain([0u8]).chain(probe.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The `k` members (of `members`) that observe `probe`, best first.
pub fn observers<'a>(
    members: impl IntoIterator<Item = &'a str>,
    probe: &str,
    k: usize,
) -> Vec<&'a str> {
    let mut scored: Vec<(u64, &str)> = members.into_iter().map(|m| (score(m, probe), m)).collect();
    // Ties (practically impossible) are broken by name so every instance agrees.
    scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.truncate(k);
    scored.into_iter().map(|(_, m)| m).collect()
}

/// Whether `me` is among the `k` observers of `probe`.
pub fn is_observer<'a>(
    me: &str,
    members: impl IntoIterator<Item = &'a str>,
    probe: &str,
    k: usize,
) -> bool {
    observers(members, probe, k).contains(&me)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_even_and_a_leave_moves_only_its_share() {
        let five = ["a", "b", "c", "d", "e"];
        let probes: Vec<String> = (0..2000)
            .map(|i| format!("10.0.{}.{}:80:http:x", i / 250, i % 250))
            .collect();
        let mut load = std::collections::HashMap::new();
        for p in &probes {
            let o = observers(five.iter().copied(), p, 3);
            assert_eq!(o.len(), 3);
            for m in o {
                *load.entry(m).or_insert(0) += 1;
            }
        }
        // 2000 * 3 / 5 = 1200 each, give or take.
        for m in five {
            assert!((1000..1400).contains(&load[m]), "{m}: {}", load[m]);
        }
        let four = ["a", "b", "c", "d"];
        for p in &probes {
            let before = observers(five.iter().copied(), p, 3);
            let after = observers(four.iter().copied(), p, 3);
            if !before.contains(&"e") {
                assert_eq!(
                    before, after,
                    "a probe e did not observe kept its observers"
                );
            } else {
                for m in before.iter().filter(|m| **m != "e") {
                    assert!(after.contains(m));
                }
            }
        }
        assert_eq!(observers(["a"].iter().copied(), "p", 3), vec!["a"]);
        assert!(is_observer("a", ["a", "b"].iter().copied(), "p", 3));
    }
}
