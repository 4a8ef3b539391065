//! Response rate limiting (RRL) for UDP, in the manner of NSD, BIND and Knot.
//!
//! A spoofed query makes Roundel send its answer to the victim whose address was forged;
//! the answer is larger than the query (up to 21 times in the shipped zones), so an
//! attacker multiplies its bandwidth. RRL counts responses per client prefix (/24 for
//! IPv4, /56 for IPv6), response class and name, and once a count exceeds the rate it
//! drops most of them and sends every `slip`-th one truncated (TC=1, no records, never
//! larger than the query), so that a real client behind the flood retries over TCP, which
//! cannot be spoofed and is never limited. A client that returns a valid server cookie
//! ([`super::cookie`]) is not spoofed either and is not limited; nor are exempt prefixes.
//!
//! Names, as BIND and NSD key them: a positive answer by question name and type, NODATA
//! and ANY by name, NXDOMAIN and wildcard answers by zone (random names under a zone all
//! count together), a referral by the delegation, errors by client alone.
//!
//! The table is a fixed array of 64-bit atomic buckets indexed by a keyed SipHash of the
//! key (the key is random per start, so that nobody can aim different keys at one bucket
//! or make one key share a victim's). A bucket packs a 12-bit tag (more bits of the hash,
//! to notice another key in the slot, which then takes it over), a 12-bit second stamp, the
//! smoothed rate of the previous seconds (20 bits) and this second's count (20 bits). One
//! compare-and-swap per response: no lock, no allocation.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use siphasher::sip::SipHasher13;

use super::rrl_config::{Prefix, RrlConfig, mask};
use crate::answer::Response;

/// What the answers of a class are keyed by, besides the client prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ResponseClass {
    /// Records of the asked type: by question name and type.
    Positive = 1,
    /// The name exists without the type: by name.
    Nodata = 2,
    /// No such name: by zone.
    Nxdomain = 3,
    /// A delegation: by the delegated name.
    Referral = 4,
    /// Synthesised from a wildcard: by zone.
    Wildcard = 5,
    /// An ANY query (RFC 8482 answer): by name.
    Any = 6,
    /// REFUSED, FORMERR, SERVFAIL, NOTIMP, BADVERS: by client alone.
    Error = 7,
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Over the limit: send the truncated "slip" answer instead.
    Slip,
    /// Over the limit: send nothing.
    Drop,
}

/// The class of `resp` to a question for `qname`/`qtype`, with the name it is counted by.
pub fn classify<'a>(
    qname: &'a [u8],
    qtype: RecordType,
    resp: &Response<'a>,
) -> (ResponseClass, &'a [u8]) {
    let zone = resp.zone.map_or(&[0u8][..], |z| &z.origin_key[..]);
    match resp.rcode {
        ResponseCode::NoError if resp.referral => {
            (ResponseClass::Referral, resp.cut.unwrap_or(zone))
        }
        ResponseCode::NoError if resp.wildcard => (ResponseClass::Wildcard, zone),
        ResponseCode::NoError if qtype == RecordType::ANY => (ResponseClass::Any, qname),
        ResponseCode::NoError if resp.answer_count() == 0 => (ResponseClass::Nodata, qname),
        ResponseCode::NoError => (ResponseClass::Positive, qname),
        ResponseCode::NXDomain => (ResponseClass::Nxdomain, zone),
        _ => (ResponseClass::Error, &[]),
    }
}

const FIELD: u64 = (1 << 20) - 1;
const STAMP_MASK: u64 = (1 << 12) - 1;

fn pack(tag: u64, stamp: u64, rate: u64, count: u64) -> u64 {
    (tag << 52) | ((stamp & STAMP_MASK) << 40) | ((rate & FIELD) << 20) | (count & FIELD)
}

/// The rate limiter of one server.
#[derive(Debug)]
pub struct Rrl {
    table: Box<[AtomicU64]>,
    mask: usize,
    limit: u64,
    slip: u64,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
    exempt: Vec<Prefix>,
    key: [u8; 16],
    epoch: Instant,
}

impl Rrl {
    /// A limiter as configured (the table is allocated here, once).
    pub fn new(config: &RrlConfig) -> std::io::Result<Rrl> {
        let size = config.table_size.next_power_of_two().max(1);
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).map_err(std::io::Error::from)?;
        Ok(Rrl {
            table: (0..size).map(|_| AtomicU64::new(0)).collect(),
            mask: size - 1,
            limit: u64::from(config.responses_per_second),
            slip: u64::from(config.slip),
            ipv4_prefix: config.ipv4_prefix,
            ipv6_prefix: config.ipv6_prefix,
            exempt: config.exempt.clone(),
            key,
            epoch: Instant::now(),
        })
    }

    /// Whether `client` is on the exempt list.
    pub fn is_exempt(&self, client: IpAddr) -> bool {
        self.exempt.iter().any(|p| p.contains(client))
    }

    /// Counts one response of `class` for `name` to `client` at `now` and says whether it
    /// may go out.
    pub fn check(
        &self,
        client: IpAddr,
        class: ResponseClass,
        name: &[u8],
        qtype: RecordType,
        now: Instant,
    ) -> Verdict {
        if self.is_exempt(client) {
            return Verdict::Send;
        }
        let mut h = SipHasher13::new_with_key(&self.key);
        match client.to_canonical() {
            ip @ IpAddr::V4(_) => match mask(ip, self.ipv4_prefix) {
                IpAddr::V4(a) => h.write(&a.octets()),
                IpAddr::V6(a) => h.write(&a.octets()),
            },
            ip @ IpAddr::V6(_) => match mask(ip, self.ipv6_prefix) {
                IpAddr::V4(a) => h.write(&a.octets()),
                IpAddr::V6(a) => h.write(&a.octets()),
            },
        }
        h.write_u8(class as u8);
        h.write(name);
        if class == ResponseClass::Positive {
            h.write_u16(u16::from(qtype));
        }
        let hash = h.finish();
        let second = now.saturating_duration_since(self.epoch).as_secs();
        self.count(hash, second)
    }

    /// The bucket update: `hash` picks the slot (low bits) and the tag (high bits).
    fn count(&self, hash: u64, second: u64) -> Verdict {
        let slot = &self.table[hash as usize & self.mask];
        let tag = hash >> 52;
        let stamp = second & STAMP_MASK;
        let mut cur = slot.load(Relaxed);
        // A few attempts; under contention so heavy that they all fail, the response goes
        // out (failing open on one response is better than spinning on the hot path).
        for _ in 0..4 {
            let (t, s, rate, count) = (
                cur >> 52,
                (cur >> 40) & STAMP_MASK,
                (cur >> 20) & FIELD,
                cur & FIELD,
            );
            let (rate, count) = if t != tag || cur == 0 {
                (0, 0)
            } else {
                match stamp.wrapping_sub(s) & STAMP_MASK {
                    0 => (rate, count),
                    // A second went by: the rate is the mean of the previous estimate and
                    // the last second's count, so a steady r per second converges on r.
                    // Idle seconds count as zero and halve it again.
                    elapsed => (((rate + count) / 2) >> (elapsed - 1).min(63), 0),
                }
            };
            let count = (count + 1).min(FIELD);
            let new = pack(tag, stamp, rate, count);
            match slot.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return self.verdict(rate, count),
                Err(now) => cur = now,
            }
        }
        Verdict::Send
    }

    fn verdict(&self, rate: u64, count: u64) -> Verdict {
        if count <= self.limit && rate <= self.limit {
            Verdict::Send
        } else if self.slip > 0 && count.is_multiple_of(self.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrl(rate: u32, slip: u32) -> Rrl {
        Rrl::new(&RrlConfig {
            responses_per_second: rate,
            slip,
            table_size: 1024,
            exempt: vec![Prefix::parse("192.0.2.128/25").unwrap()],
            ..RrlConfig::default()
        })
        .unwrap()
    }

    fn tally(r: &Rrl, client: &str, name: &[u8], n: usize, at: Instant) -> [usize; 3] {
        let mut out = [0; 3];
        for _ in 0..n {
            let v = r.check(
                client.parse().unwrap(),
                ResponseClass::Positive,
                name,
                RecordType::A,
                at,
            );
            out[v as usize] += 1;
        }
        out
    }

    #[test]
    fn limits_per_prefix_class_and_name_with_slip() {
        let r = rrl(10, 2);
        let t = r.epoch;
        // 100 in one second: 10 sent, the other 90 alternate slip and drop.
        assert_eq!(tally(&r, "192.0.2.1", b"\x01a\x00", 100, t), [10, 45, 45]);
        // Same /24, same name: limited too.
        assert_eq!(tally(&r, "192.0.2.9", b"\x01a\x00", 2, t), [0, 1, 1]);
        // Another name, another prefix, an exempt address: not limited.
        assert_eq!(tally(&r, "192.0.2.1", b"\x01b\x00", 10, t), [10, 0, 0]);
        assert_eq!(tally(&r, "198.51.100.1", b"\x01a\x00", 10, t), [10, 0, 0]);
        assert_eq!(tally(&r, "192.0.2.200", b"\x01a\x00", 100, t), [100, 0, 0]);
        // Next second: the smoothed rate (51) is still over 10, so all are limited...
        let t1 = t + std::time::Duration::from_secs(1);
        assert_eq!(tally(&r, "192.0.2.1", b"\x01a\x00", 4, t1)[0], 0);
        // ...and it halves each idle second until it is under the limit again.
        let t5 = t + std::time::Duration::from_secs(5);
        assert_eq!(tally(&r, "192.0.2.1", b"\x01a\x00", 5, t5), [5, 0, 0]);
    }

    fn name(s: &str) -> Vec<u8> {
        crate::zone::name::key_of(&hickory_proto::rr::Name::from_ascii(s).unwrap()).into()
    }

    #[test]
    fn classes_and_names_as_bind_and_nsd_key_them() {
        use crate::answer::{Client, Question, answer};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
        let snapshot = crate::zone::load_snapshot(&dir, None).unwrap();
        let zone = name("example.test.");
        let client = Client {
            addr: "192.0.2.1".parse().unwrap(),
            subnet: None,
        };
        let cases: [(&str, RecordType, ResponseClass, Vec<u8>); 7] = [
            (
                "ns1.example.test.",
                RecordType::A,
                ResponseClass::Positive,
                name("ns1.example.test."),
            ),
            (
                "ns1.example.test.",
                RecordType::MX,
                ResponseClass::Nodata,
                name("ns1.example.test."),
            ),
            (
                "nx1.example.test.",
                RecordType::A,
                ResponseClass::Nxdomain,
                zone.clone(),
            ),
            (
                "x.y.apps.example.test.",
                RecordType::A,
                ResponseClass::Wildcard,
                zone.clone(),
            ),
            (
                "www.ext.example.test.",
                RecordType::A,
                ResponseClass::Referral,
                name("ext.example.test."),
            ),
            (
                "example.test.",
                RecordType::ANY,
                ResponseClass::Any,
                zone.clone(),
            ),
            (
                "example.org.",
                RecordType::A,
                ResponseClass::Error,
                Vec::new(),
            ),
        ];
        for (qname, qtype, class, key) in cases {
            let q = name(qname);
            let resp = answer(
                &snapshot,
                &Question {
                    qname: &q,
                    qtype,
                    client,
                },
            );
            assert_eq!(
                classify(&q, qtype, &resp),
                (class, &key[..]),
                "{qname} {qtype}"
            );
        }
    }

    #[test]
    fn random_names_under_a_zone_share_one_nxdomain_allowance() {
        let r = rrl(10, 2);
        let zone = name("example.test.");
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let sent = (0..100)
            .filter(|_| {
                r.check(
                    client,
                    ResponseClass::Nxdomain,
                    &zone,
                    RecordType::A,
                    r.epoch,
                ) == Verdict::Send
            })
            .count();
        assert_eq!(sent, 10);
    }

    #[test]
    fn a_steady_rate_under_the_limit_is_never_limited() {
        let r = rrl(10, 2);
        for s in 0..30 {
            let at = r.epoch + std::time::Duration::from_secs(s);
            assert_eq!(tally(&r, "203.0.113.5", b"\x01a\x00", 10, at), [10, 0, 0]);
        }
    }

    #[test]
    fn slip_zero_drops_and_slip_one_truncates_all() {
        let r = rrl(5, 0);
        assert_eq!(tally(&r, "192.0.2.1", b"\x00", 20, r.epoch), [5, 0, 15]);
        let r = rrl(5, 1);
        assert_eq!(tally(&r, "192.0.2.1", b"\x00", 20, r.epoch), [5, 15, 0]);
    }
}
