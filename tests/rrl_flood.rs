//! Response rate limiting against real UDP floods from bound 127.0.0.x sources: the
//! flooding /24 is limited (answered, slipped with TC, dropped counted), another source is
//! answered in full meanwhile, TCP from the flooding source is answered, the exempt list
//! and a valid server cookie lift the limit, and the metrics count what was held back.
//! The same flood against a server without rate limiting gives the "before" figures.

mod hardening_support;

use std::time::Duration;

use hardening_support::*;
use roundel::dns::rrl_config::{CookieConfig, Prefix, RrlConfig};

const TXT: u16 = 16;
const A: u16 = 1;
/// The largest answer of the shipped zones over UDP with EDNS.
const BIG: &str = "big.example.test.";

/// Server-side counts of a flood: answers sent, slipped, dropped.
#[derive(Debug, Clone, Copy)]
struct Sent {
    answered: u64,
    slipped: u64,
    dropped: u64,
}

fn counters(s: &Server) -> Sent {
    let slipped = s.metric("roundel_dns_rrl_limited_total{action=\"slipped\"}");
    Sent {
        answered: s.metric("roundel_dns_queries_by_transport_total{transport=\"udp\"}") - slipped,
        slipped,
        dropped: s.metric("roundel_dns_rrl_limited_total{action=\"dropped\"}"),
    }
}

fn report(label: &str, sent: Sent, client: &FloodResult) {
    let bytes =
        sent.answered as usize * client.answer_len + sent.slipped as usize * client.slip_len;
    println!(
        "{label}: {} queries of {} bytes -> server sent {} answers of {} bytes, {} slipped (TC) of {} bytes, dropped {}; {} bytes out for {} in: amplification {:.2} (client received {} answers, {} slipped)",
        client.sent,
        client.bytes_sent / client.sent,
        sent.answered,
        client.answer_len,
        sent.slipped,
        client.slip_len,
        sent.dropped,
        bytes,
        client.bytes_sent,
        bytes as f64 / client.bytes_sent as f64,
        client.answered,
        client.slipped,
    );
}

#[test]
fn a_flood_from_one_prefix_is_limited_while_others_and_tcp_are_answered() {
    let zones = shipped_zones();
    let msg = query(0, BIG, TXT, None);
    assert_eq!(msg.len(), 45);

    // Before: no rate limiting, every query answered with 949 bytes. (Counted by the
    // server: the client's receive buffer may overflow at this rate of large replies.)
    {
        let s = Server::start(&zones, RrlConfig::disabled(), CookieConfig::default());
        let before = flood("127.0.0.2", s.dns, &msg, 5000, Duration::from_secs(1));
        let sent = counters(&s);
        report("without RRL", sent, &before);
        assert_eq!(before.answer_len, 949);
        // Every query that reached the server (on a busy machine the kernel may drop a
        // few of the flood before the server reads them) was answered.
        assert!(
            sent.answered >= 4500,
            "nearly every query answered: {sent:?}"
        );
        assert_eq!((sent.slipped, sent.dropped), (0, 0));
    }

    // After: the default limits.
    let s = Server::start(&zones, RrlConfig::default(), CookieConfig::default());
    let (after, full) = std::thread::scope(|scope| {
        let dns = s.dns;
        let msg = &msg;
        let flooder =
            scope.spawn(move || flood("127.0.0.2", dns, msg, 5000, Duration::from_secs(1)));
        // Meanwhile a source in another /24 asks the same name 150 times over the same
        // second (under the limit): every one answered in full.
        let sock = udp_from("127.0.1.3");
        let mut full = 0;
        for i in 0..150u16 {
            let r = ask(&sock, dns, &query(i, BIG, TXT, None));
            if r.is_some_and(|r| r.answers == 8 && !r.tc) {
                full += 1;
            }
            std::thread::sleep(Duration::from_millis(6));
        }
        (flooder.join().unwrap(), full)
    });
    assert_eq!(full, 150, "the other source is answered in full");
    let mut sent = counters(&s);
    sent.answered -= 150;
    report("with RRL (defaults)", sent, &after);
    let seen = sent.answered + sent.slipped + sent.dropped;
    assert!((4500..=5000).contains(&seen), "{sent:?}");
    // 200 per second; the flood may straddle a second boundary, which allows at most
    // another 200 in the second second.
    assert!(
        (200..=400).contains(&sent.answered),
        "answered within the limit: {sent:?}"
    );
    let limited = sent.slipped + sent.dropped;
    assert!(
        sent.slipped.abs_diff(limited / 2) <= 2,
        "every second limited response slips: {sent:?}"
    );
    assert!(after.answered as u64 <= sent.answered && after.slipped as u64 <= sent.slipped);
    assert!(
        after.slip_len <= msg.len(),
        "a slip is no larger than the query"
    );

    // The same /24 as the flooder is limited now too (it is counted per /24).
    let sock = udp_from("127.0.0.9");
    for i in 0..4u16 {
        let r = ask(&sock, s.dns, &query(i, BIG, TXT, None));
        assert!(
            r.as_ref().is_none_or(|r| r.tc && r.answers == 0),
            "same /24 not limited: {r:?}"
        );
    }

    // TCP from the flooding source is answered in full: TCP is never limited.
    let r = ask_tcp("127.0.0.2", s.dns, &query(7, BIG, TXT, None));
    assert_eq!((r.rcode, r.answers, r.tc), (0, 8, false));
}

#[test]
fn exempt_prefixes_are_never_limited() {
    let rrl = RrlConfig {
        exempt: vec![Prefix::parse("127.0.3.0/24").unwrap()],
        responses_per_second: 50,
        ..RrlConfig::default()
    };
    let s = Server::start(&shipped_zones(), rrl, CookieConfig::default());
    let msg = query(0, "ns1.example.test.", A, None);
    let exempt = flood("127.0.3.7", s.dns, &msg, 1000, Duration::from_millis(500));
    assert_eq!(exempt.answered, 1000, "{exempt:?}");
    let other = flood("127.0.4.7", s.dns, &msg, 1000, Duration::from_millis(500));
    assert!(other.answered <= 100, "{other:?}");
}

#[test]
fn a_client_with_a_valid_server_cookie_is_not_limited() {
    let rrl = RrlConfig {
        responses_per_second: 50,
        ..RrlConfig::default()
    };
    let s = Server::start(&shipped_zones(), rrl, CookieConfig::default());
    let client = [0x11u8, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

    // A client cookie alone earns a server cookie but no exemption.
    let only_client = flood(
        "127.0.5.1",
        s.dns,
        &query(0, "ns1.example.test.", A, Some(&client)),
        1000,
        Duration::from_millis(500),
    );
    assert!(only_client.answered <= 100, "{only_client:?}");

    // Learn the server cookie (from a fresh source), then flood with it: all answered.
    let sock = udp_from("127.0.6.1");
    let r = ask(
        &sock,
        s.dns,
        &query(1, "ns1.example.test.", A, Some(&client)),
    )
    .unwrap();
    let cookie = r.cookie.expect("a server cookie");
    assert_eq!(
        (cookie.len(), &cookie[..8], cookie[8]),
        (24, &client[..], 1)
    );
    drop(sock);
    let valid = flood(
        "127.0.6.1",
        s.dns,
        &query(0, "ns1.example.test.", A, Some(&cookie)),
        1000,
        Duration::from_millis(500),
    );
    assert_eq!(valid.answered, 1000, "{valid:?}");
    assert!(s.metric("roundel_dns_cookies_total{result=\"valid\"}") >= 1000);

    // The same cookie from another address does not verify: limited like any other.
    let stolen = flood(
        "127.0.7.1",
        s.dns,
        &query(0, "ns1.example.test.", A, Some(&cookie)),
        1000,
        Duration::from_millis(500),
    );
    assert!(stolen.answered <= 100, "{stolen:?}");
    assert!(s.metric("roundel_dns_cookies_total{result=\"invalid\"}") >= 1000);
}
