//! The behaviour cases: one query each and the exact answer an authoritative
//! server must give for the shipped zones (zones/*.toml, tests/data/*.zone).
//!
//! Written once, checked against the reference server (to prove the
//! expectations right) and against Roundel, over UDP and TCP. Where the
//! reference legitimately differs from the behaviour Roundel must have, the
//! case says so with `reference_differs`, and that difference is asserted too.

use super::client::{Q, Transport};
use super::reference::Kind;
use super::wire::{self, ty};
use super::{Case, Expect, case};

// --- Records of the example zones, in canonical text -----------------------

pub const SOA: &str = "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 14400 3600 1209600 60";
/// RFC 2308: negative answers carry the SOA with TTL min(SOA TTL 300, minimum 60).
pub const NEG: &str = "example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 14400 3600 1209600 60";
/// second.test.: SOA TTL 30 < minimum 3600, so negative TTL 30.
pub const NEG2: &str =
    "second.test. 30 IN SOA ns1.example.test. hostmaster.example.test. 7 7200 900 604800 3600";
/// Reverse zone: SOA TTL 86400 > minimum 300, so negative TTL 300.
pub const NEG_REV: &str = "2.0.192.in-addr.arpa. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 14400 3600 1209600 300";

pub const NS_ADD: [&str; 3] = [
    "ns1.example.test. 300 IN A 192.0.2.53",
    "ns1.example.test. 300 IN AAAA 2001:db8::53",
    "ns2.example.test. 300 IN A 198.51.100.53",
];
pub const MAIL_ADD: [&str; 3] = [
    "mail.example.test. 300 IN A 192.0.2.25",
    "mail.example.test. 300 IN AAAA 2001:db8::25",
    "mail2.example.test. 300 IN A 198.51.100.25",
];
pub const SUB_REFERRAL: [&str; 2] = [
    "sub.example.test. 300 IN NS ns.sub.example.test.",
    "sub.example.test. 300 IN NS ns.other.test.",
];
pub const SUB_GLUE: [&str; 2] = [
    "ns.sub.example.test. 300 IN A 192.0.2.99",
    "ns.sub.example.test. 300 IN AAAA 2001:db8::99",
];
pub const EXT_REFERRAL: [&str; 2] = [
    "ext.example.test. 300 IN NS ns1.example.net.",
    "ext.example.test. 300 IN NS ns2.example.net.",
];
/// The RFC 2317 delegation of 192.0.2.128/25 in the reverse zone.
pub const CLASSLESS_REFERRAL: [&str; 2] = [
    "128/25.2.0.192.in-addr.arpa. 86400 IN NS ns1.customer.test.",
    "128/25.2.0.192.in-addr.arpa. 86400 IN NS ns2.customer.test.",
];
pub const LONG_TXT: &str = "example.test. 300 IN TXT \"This TXT record is deliberately longer than 255 bytes so that it has to be split into several character-strings on the wire. Roundel splits a long string at 255 bytes; the reference server is given the same split by hand in the master file. 0123456789abcd\" \"efghijklmnopqrstuvwxyz0123456789abcdefghijklm\"";
const WEB_A: &str = "web.example.test. 300 IN A 192.0.2.10";
const WWW_CNAME: &str = "www.example.test. 300 IN CNAME web.example.test.";

const PAD: &str =
    "012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012";

/// `big`: 8 TXT records of 100 bytes, TTL 30 (answer about 900 bytes).
pub fn big_txt() -> Vec<String> {
    (1..=8)
        .map(|i| format!("big.example.test. 30 IN TXT \"big-{i:02} {PAD}\""))
        .collect()
}

/// `huge`: 20 TXT records of 100 bytes (answer about 2200 bytes).
pub fn huge_txt() -> Vec<String> {
    (1..=20)
        .map(|i| {
            format!(
                "huge.example.test. 300 IN TXT \"huge-{i:02} {}\"",
                &PAD[..92]
            )
        })
        .collect()
}

/// `many`: 40 A records 192.0.2.100-139 (answer about 680 bytes).
pub fn many_a() -> Vec<String> {
    (100..140)
        .map(|i| format!("many.example.test. 300 IN A 192.0.2.{i}"))
        .collect()
}

fn q(name: &str, t: u16) -> Q {
    Q::new(name, t)
}

fn owned(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Positive answers: AA set, the RRset in the answer, nothing in authority,
/// A/AAAA of in-zone NS/MX/SRV targets in additional.
pub fn positive() -> Vec<Case> {
    vec![
        case("apex SOA", q("example.test.", ty::SOA)).aa().ans(&[SOA]),
        case("apex NS with in-zone glue in additional", q("example.test.", ty::NS))
            .aa()
            .ans(&["example.test. 300 IN NS ns1.example.test.", "example.test. 300 IN NS ns2.example.test."])
            .add(&NS_ADD),
        case("apex MX with exchanger addresses in additional", q("example.test.", ty::MX))
            .aa()
            .ans(&["example.test. 300 IN MX 10 mail.example.test.", "example.test. 300 IN MX 20 mail2.example.test."])
            .add(&MAIL_ADD),
        case("apex A", q("example.test.", ty::A)).aa().ans(&["example.test. 300 IN A 192.0.2.1"]),
        case("apex AAAA", q("example.test.", ty::AAAA)).aa().ans(&["example.test. 300 IN AAAA 2001:db8::1"]),
        case("apex TXT: plain, multi-string, and >255 bytes split at 255", q("example.test.", ty::TXT)).aa().ans(&[
            "example.test. 300 IN TXT \"v=spf1 mx -all\"",
            "example.test. 300 IN TXT \"first string\" \"second string\" \"third string\"",
            LONG_TXT,
        ]),
        case("apex CAA", q("example.test.", ty::CAA)).aa().ans(&[
            "example.test. 300 IN CAA 0 issue \"ca.test\"",
            "example.test. 300 IN CAA 0 iodef \"mailto:security@example.test\"",
        ]),
        case("host A", q("ns1.example.test.", ty::A)).aa().ans(&["ns1.example.test. 300 IN A 192.0.2.53"]),
        case("host AAAA", q("ns1.example.test.", ty::AAAA)).aa().ans(&["ns1.example.test. 300 IN AAAA 2001:db8::53"]),
        case("host TXT", q("web.example.test.", ty::TXT)).aa().ans(&["web.example.test. 300 IN TXT \"web server\""]),
        case("SRV with in-zone target addresses in additional", q("_sip._udp.example.test.", ty::SRV))
            .aa()
            .ans(&[
                "_sip._udp.example.test. 300 IN SRV 10 5 5060 sip.example.test.",
                "_sip._udp.example.test. 300 IN SRV 20 5 5060 sip2.example.net.",
            ])
            .add(&["sip.example.test. 300 IN A 192.0.2.60", "sip.example.test. 300 IN AAAA 2001:db8::60"]),
        case("PTR in a forward zone", q("ptr.example.test.", ty::PTR))
            .aa()
            .ans(&["ptr.example.test. 300 IN PTR web.example.test."]),
        case("reverse zone PTR", q("10.2.0.192.in-addr.arpa.", ty::PTR))
            .aa()
            .ans(&["10.2.0.192.in-addr.arpa. 86400 IN PTR web.example.test."]),
        case("reverse zone NS: out-of-zone servers, no additional", q("2.0.192.in-addr.arpa.", ty::NS)).aa().ans(&[
            "2.0.192.in-addr.arpa. 86400 IN NS ns1.example.test.",
            "2.0.192.in-addr.arpa. 86400 IN NS ns2.example.test.",
        ]),
        case(
            "classless reverse delegation (RFC 2317): the address's CNAME leads into the delegated zone",
            q("130.2.0.192.in-addr.arpa.", ty::PTR),
        )
        .aa()
        .ans(&["130.2.0.192.in-addr.arpa. 86400 IN CNAME 130.128/25.2.0.192.in-addr.arpa."])
        .auth(&CLASSLESS_REFERRAL),
        case(
            "classless reverse delegation: a name in the delegated zone is a referral",
            q("130.128/25.2.0.192.in-addr.arpa.", ty::PTR),
        )
        .auth(&CLASSLESS_REFERRAL),
        case("second zone SOA has its own TTL", q("second.test.", ty::SOA))
            .aa()
            .ans(&["second.test. 30 IN SOA ns1.example.test. hostmaster.example.test. 7 7200 900 604800 3600"]),
        case("second zone NS in another served zone: no additional", q("second.test.", ty::NS))
            .aa()
            .ans(&["second.test. 3600 IN NS ns1.example.test.", "second.test. 3600 IN NS ns2.example.test."]),
        case("second zone MX out of zone: no additional", q("second.test.", ty::MX))
            .aa()
            .ans(&["second.test. 3600 IN MX 5 mx.example.test."]),
        case("second zone SRV with in-zone target", q("_http._tcp.second.test.", ty::SRV))
            .aa()
            .ans(&["_http._tcp.second.test. 3600 IN SRV 0 0 80 www.second.test."])
            .add(&["www.second.test. 3600 IN A 198.51.100.80", "www.second.test. 3600 IN AAAA 2001:db8:2::80"]),
        case("second zone multi-string TXT", q("info.second.test.", ty::TXT)).aa().ans(&[
            "info.second.test. 3600 IN TXT \"key=value\" \"another=string\"",
            "info.second.test. 3600 IN TXT \"plain\"",
        ]),
        case("RD is copied, RA never set", q("ns1.example.test.", ty::A).rd())
            .aa()
            .ans(&["ns1.example.test. 300 IN A 192.0.2.53"]),
        case("AD in the query: AD clear in the answer (no DNSSEC)", q("ns1.example.test.", ty::A).ad())
            .aa()
            .ans(&["ns1.example.test. 300 IN A 192.0.2.53"]),
        case("CD is copied (RFC 4035 3.1.6)", q("ns1.example.test.", ty::A).cd())
            .aa()
            .ans(&["ns1.example.test. 300 IN A 192.0.2.53"])
            .with(|n| n.set_flag("cd", true))
            .reference_differs(Kind::Knot, "Knot clears CD in its answers", |n| n.set_flag("cd", false)),
        case("case-insensitive match, question echoed in the client's case", q("NS1.ExAmPlE.tEsT.", ty::A))
            .aa()
            .ans(&["ns1.example.test. 300 IN A 192.0.2.53"]),
        case("case-insensitive apex MX", q("EXAMPLE.TEST.", ty::MX))
            .aa()
            .ans(&["example.test. 300 IN MX 10 mail.example.test.", "example.test. 300 IN MX 20 mail2.example.test."])
            .add(&MAIL_ADD),
        case("case-insensitive wildcard", q("FoO.ApPs.example.test.", ty::A))
            .aa()
            .ans(&["foo.apps.example.test. 60 IN A 192.0.2.80", "foo.apps.example.test. 60 IN A 192.0.2.81"]),
        case("case-insensitive CNAME chain", q("WwW.Example.Test.", ty::A)).aa().ans(&[WWW_CNAME, WEB_A]),
    ]
}

/// CNAMEs: chains followed inside the zone, never into another zone.
pub fn cname() -> Vec<Case> {
    vec![
        case("CNAME then A", q("www.example.test.", ty::A))
            .aa()
            .ans(&[WWW_CNAME, WEB_A]),
        case("CNAME then AAAA", q("www.example.test.", ty::AAAA))
            .aa()
            .ans(&[WWW_CNAME, "web.example.test. 300 IN AAAA 2001:db8::10"]),
        case(
            "qtype CNAME: the CNAME alone",
            q("www.example.test.", ty::CNAME),
        )
        .aa()
        .ans(&[WWW_CNAME]),
        case("CNAME then TXT", q("www.example.test.", ty::TXT))
            .aa()
            .ans(&[WWW_CNAME, "web.example.test. 300 IN TXT \"web server\""]),
        case(
            "CNAME to a name without the type: CNAME + NODATA SOA",
            q("www.example.test.", ty::MX),
        )
        .aa()
        .ans(&[WWW_CNAME])
        .auth(&[NEG]),
        case(
            "chain of three CNAMEs followed in-zone",
            q("chain.example.test.", ty::A),
        )
        .aa()
        .ans(&[
            "chain.example.test. 300 IN CNAME chain2.example.test.",
            "chain2.example.test. 300 IN CNAME www.example.test.",
            WWW_CNAME,
            WEB_A,
        ]),
        case(
            "CNAME to a wildcard-synthesised name",
            q("to-wild.example.test.", ty::A),
        )
        .aa()
        .ans(&[
            "to-wild.example.test. 300 IN CNAME foo.apps.example.test.",
            "foo.apps.example.test. 60 IN A 192.0.2.80",
            "foo.apps.example.test. 60 IN A 192.0.2.81",
        ]),
        case(
            "CNAME to a nonexistent in-zone name: NXDOMAIN (RFC 6604)",
            q("dangling.example.test.", ty::A),
        )
        .aa()
        .rcode("NXDOMAIN")
        .ans(&["dangling.example.test. 300 IN CNAME nowhere.example.test."])
        .auth(&[NEG]),
        case(
            "CNAME out of every zone: CNAME alone",
            q("external.example.test.", ty::A),
        )
        .aa()
        .ans(&["external.example.test. 300 IN CNAME www.example.org."]),
        case(
            "CNAME into another served zone: not followed",
            q("to-second.example.test.", ty::A),
        )
        .aa()
        .ans(&["to-second.example.test. 300 IN CNAME www.second.test."]),
        case(
            "CNAME back from the second zone: not followed",
            q("back.second.test.", ty::A),
        )
        .aa()
        .ans(&["back.second.test. 3600 IN CNAME web.example.test."]),
        case(
            "CNAME below a delegation: CNAME then the referral",
            q("to-sub.example.test.", ty::A),
        )
        .aa()
        .ans(&["to-sub.example.test. 300 IN CNAME host.sub.example.test."])
        .auth(&SUB_REFERRAL)
        .add(&SUB_GLUE),
        case(
            "CNAME loop: each CNAME once, NOERROR",
            q("loop1.example.test.", ty::A),
        )
        .aa()
        .ans(&[
            "loop1.example.test. 300 IN CNAME loop2.example.test.",
            "loop2.example.test. 300 IN CNAME loop1.example.test.",
        ]),
    ]
}

/// NXDOMAIN and NODATA, with the SOA at TTL min(SOA TTL, minimum).
pub fn negative() -> Vec<Case> {
    vec![
        case(
            "NXDOMAIN with SOA in authority",
            q("nx.example.test.", ty::A),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG]),
        case(
            "NXDOMAIN several labels down",
            q("a.b.nx.example.test.", ty::AAAA),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG]),
        case(
            "NODATA: name exists, type does not",
            q("ns1.example.test.", ty::TXT),
        )
        .aa()
        .auth(&[NEG]),
        case("NODATA: AAAA missing", q("ns2.example.test.", ty::AAAA))
            .aa()
            .auth(&[NEG]),
        case("NODATA at the apex", q("example.test.", ty::SRV))
            .aa()
            .auth(&[NEG]),
        case(
            "empty non-terminal (one level) is NODATA",
            q("deep.example.test.", ty::A),
        )
        .aa()
        .auth(&[NEG]),
        case(
            "empty non-terminal (two levels) is NODATA",
            q("a.deep.example.test.", ty::A),
        )
        .aa()
        .auth(&[NEG]),
        case(
            "empty non-terminal (three levels) is NODATA",
            q("b.a.deep.example.test.", ty::TXT),
        )
        .aa()
        .auth(&[NEG]),
        case(
            "the name making the ENTs",
            q("c.b.a.deep.example.test.", ty::A),
        )
        .aa()
        .ans(&["c.b.a.deep.example.test. 300 IN A 192.0.2.30"]),
        case(
            "below the deepest name: NXDOMAIN",
            q("d.c.b.a.deep.example.test.", ty::A),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG]),
        case(
            "sibling of an ENT: NXDOMAIN",
            q("x.a.deep.example.test.", ty::A),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG]),
        case("ENT made by an SRV name", q("_udp.example.test.", ty::SRV))
            .aa()
            .auth(&[NEG]),
        case(
            "second zone: negative TTL is the SOA TTL 30",
            q("nx.second.test.", ty::A),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG2]),
        case("second zone NODATA", q("www.second.test.", ty::MX))
            .aa()
            .auth(&[NEG2]),
        case(
            "reverse zone NXDOMAIN: negative TTL is the minimum 300",
            q("99.2.0.192.in-addr.arpa.", ty::PTR),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG_REV]),
        case(
            "DS at a delegation is answered by the parent: NODATA",
            q("sub.example.test.", ty::DS),
        )
        .aa()
        .auth(&[NEG]),
    ]
}

/// Wildcards per RFC 4592.
pub fn wildcard() -> Vec<Case> {
    let apps = [
        "foo.apps.example.test. 60 IN A 192.0.2.80",
        "foo.apps.example.test. 60 IN A 192.0.2.81",
    ];
    vec![
        case(
            "wildcard synthesises the owner name",
            q("foo.apps.example.test.", ty::A),
        )
        .aa()
        .ans(&apps),
        case(
            "wildcard matches several labels",
            q("a.b.apps.example.test.", ty::A),
        )
        .aa()
        .ans(&[
            "a.b.apps.example.test. 60 IN A 192.0.2.80",
            "a.b.apps.example.test. 60 IN A 192.0.2.81",
        ]),
        case("wildcard TXT", q("foo.apps.example.test.", ty::TXT))
            .aa()
            .ans(&["foo.apps.example.test. 60 IN TXT \"wildcard\""]),
        case(
            "wildcard without the type: NODATA",
            q("foo.apps.example.test.", ty::AAAA),
        )
        .aa()
        .auth(&[NEG]),
        case(
            "the wildcard's parent is an empty non-terminal",
            q("apps.example.test.", ty::A),
        )
        .aa()
        .auth(&[NEG]),
        case(
            "asking for the wildcard name itself",
            q("*.apps.example.test.", ty::A),
        )
        .aa()
        .ans(&[
            "*.apps.example.test. 60 IN A 192.0.2.80",
            "*.apps.example.test. 60 IN A 192.0.2.81",
        ]),
        case(
            "wildcard with existing names beside it",
            q("foo.svc.example.test.", ty::A),
        )
        .aa()
        .ans(&["foo.svc.example.test. 300 IN A 192.0.2.90"]),
        case(
            "wildcard MX: exchanger addresses in additional",
            q("foo.svc.example.test.", ty::MX),
        )
        .aa()
        .ans(&["foo.svc.example.test. 300 IN MX 10 mail.example.test."])
        .add(&MAIL_ADD[..2]),
        case(
            "existing name is not matched by the wildcard",
            q("db.svc.example.test.", ty::A),
        )
        .aa()
        .ans(&["db.svc.example.test. 300 IN A 192.0.2.91"]),
        case(
            "existing name without the type: NODATA, not the wildcard",
            q("db.svc.example.test.", ty::MX),
        )
        .aa()
        .auth(&[NEG]),
        case(
            "below an existing name: no wildcard there, NXDOMAIN",
            q("a.db.svc.example.test.", ty::A),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG]),
        case(
            "empty non-terminal below a wildcard's parent: NODATA, not the wildcard",
            q("deep.svc.example.test.", ty::A),
        )
        .aa()
        .auth(&[NEG]),
        case(
            "below an ENT: closest encloser is the ENT, NXDOMAIN",
            q("y.deep.svc.example.test.", ty::A),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG]),
        case(
            "existing name below the ENT",
            q("x.deep.svc.example.test.", ty::A),
        )
        .aa()
        .ans(&["x.deep.svc.example.test. 300 IN A 192.0.2.92"]),
        case(
            "the wildcard's parent is an ENT",
            q("svc.example.test.", ty::A),
        )
        .aa()
        .auth(&[NEG]),
        case(
            "wildcard multi-label below svc",
            q("a.b.svc.example.test.", ty::A),
        )
        .aa()
        .ans(&["a.b.svc.example.test. 300 IN A 192.0.2.90"]),
    ]
}

/// Referrals at and below a delegation: AA clear, NS in authority, glue in additional.
pub fn referral() -> Vec<Case> {
    let r = |name: &str, t: u16| {
        case(
            &format!("referral for {name} {}", wire::type_name(t)),
            q(name, t),
        )
    };
    vec![
        r("sub.example.test.", ty::NS)
            .auth(&SUB_REFERRAL)
            .add(&SUB_GLUE),
        r("sub.example.test.", ty::A)
            .auth(&SUB_REFERRAL)
            .add(&SUB_GLUE),
        r("host.sub.example.test.", ty::A)
            .auth(&SUB_REFERRAL)
            .add(&SUB_GLUE),
        r("a.b.sub.example.test.", ty::MX)
            .auth(&SUB_REFERRAL)
            .add(&SUB_GLUE),
        r("ns.sub.example.test.", ty::A)
            .auth(&SUB_REFERRAL)
            .add(&SUB_GLUE),
        r("ns.sub.example.test.", ty::AAAA)
            .auth(&SUB_REFERRAL)
            .add(&SUB_GLUE),
        r("sub.example.test.", ty::SOA)
            .auth(&SUB_REFERRAL)
            .add(&SUB_GLUE),
        r("sub.example.test.", ty::ANY)
            .auth(&SUB_REFERRAL)
            .add(&SUB_GLUE),
        r("ext.example.test.", ty::NS).auth(&EXT_REFERRAL),
        r("www.ext.example.test.", ty::A).auth(&EXT_REFERRAL),
        r("HOST.SUB.example.test.", ty::TXT)
            .auth(&SUB_REFERRAL)
            .add(&SUB_GLUE),
    ]
}

/// REFUSED outside the served zones; opcodes, classes, counts, transfers.
pub fn protocol() -> Vec<Case> {
    let refused = |name: &str, q: Q| case(name, q).rcode("REFUSED");
    // Both Knot and NSD attach Extended DNS Error 20 (Not Authoritative) to
    // REFUSED answers for names they do not serve; Roundel does the same.
    let ede20 = "version=0 payload=1232 do=0 options=[EDE:20]";
    vec![
        refused("outside every zone: REFUSED", q("example.org.", ty::A)).edns(Some(ede20)),
        refused("parent of served zones: REFUSED", q("test.", ty::SOA)).edns(Some(ede20)),
        refused("the root: REFUSED", q(".", ty::NS)).edns(Some(ede20)),
        refused(
            "suffix that is not a zone cut: REFUSED",
            q("notexample.test.", ty::A),
        )
        .edns(Some(ede20)),
        refused(
            "outside, without EDNS: REFUSED, no OPT",
            q("example.org.", ty::A).no_edns(),
        ),
        refused("class CH: REFUSED", q("example.test.", ty::SOA).class(3)),
        refused("class HS: REFUSED", q("example.test.", ty::A).class(4)),
        refused("class ANY: REFUSED", q("example.test.", ty::SOA).class(255)).reference_differs(
            Kind::Knot,
            "Knot treats QCLASS ANY like IN and answers (NOERROR, AA)",
            |n| {
                n.rcode = "NOERROR".into();
                n.set_flag("aa", true);
                n.answer = vec![SOA.into()];
            },
        ),
        refused("AXFR: REFUSED", q("example.test.", ty::AXFR))
            .reference_differs(
                Kind::Knot,
                "Knot: NOTAUTH for a transfer no ACL allows",
                |n| n.rcode = "NOTAUTH".into(),
            )
            .reference_differs_on(
                Kind::Knot,
                Transport::Udp,
                "Knot: NOTIMP for AXFR over UDP",
                |n| n.rcode = "NOTIMP".into(),
            ),
        refused("IXFR: REFUSED", q("example.test.", ty::IXFR)).reference_differs(
            Kind::Knot,
            "Knot: NOTAUTH for a transfer no ACL allows",
            |n| n.rcode = "NOTAUTH".into(),
        ),
        case(
            "opcode STATUS: NOTIMP",
            q("example.test.", ty::SOA).opcode(2),
        )
        .rcode("NOTIMP"),
        case(
            "unassigned opcode 3: NOTIMP",
            q("example.test.", ty::SOA).opcode(3),
        )
        .rcode("NOTIMP"),
        case(
            "opcode NOTIFY: NOTIMP",
            q("example.test.", ty::SOA).opcode(4),
        )
        .rcode("NOTIMP")
        .reference_differs(
            Kind::Knot,
            "Knot processes NOTIFY and answers NOTAUTH for a zone it is primary for",
            |n| n.rcode = "NOTAUTH".into(),
        ),
        case(
            "opcode UPDATE: NOTIMP",
            q("example.test.", ty::SOA).opcode(5),
        )
        .rcode("NOTIMP")
        .reference_differs(
            Kind::Knot,
            "Knot supports UPDATE and answers NOTAUTH when no ACL allows it",
            |n| n.rcode = "NOTAUTH".into(),
        ),
        case(
            "opcode DSO (6): NOTIMP",
            q("example.test.", ty::SOA).opcode(6),
        )
        .rcode("NOTIMP"),
        case(
            "opcode STATUS with RD, CD and AD: NOTIMP with AA, RD, RA, AD, CD clear",
            q("example.test.", ty::SOA).opcode(2).rd().cd().ad(),
        )
        .rcode("NOTIMP")
        .with(|n| n.set_flag("rd", false))
        .reference_differs(Kind::Knot, "Knot copies RD into a NOTIMP answer", |n| {
            n.set_flag("rd", true)
        }),
        case(
            "QDCOUNT 0: FORMERR",
            Q::raw("QDCOUNT 0, no EDNS", wire::header(0, 0, 0, 0, 0, 0)),
        )
        .rcode("FORMERR")
        .no_question()
        .edns(None),
        case(
            "QDCOUNT 0 with EDNS: FORMERR with OPT",
            Q::raw("QDCOUNT 0 + OPT", {
                let mut m = wire::header(0, 0, 0, 0, 0, 1);
                m.extend(wire::opt_record(1232, 0, &[]));
                m
            }),
        )
        .rcode("FORMERR")
        .no_question()
        .edns(Some("version=0 payload=1232 do=0 options=[]")),
        case(
            "QDCOUNT 2: FORMERR",
            Q::raw("QDCOUNT 2", {
                let mut m = wire::header(0, 0, 2, 0, 0, 0);
                m.extend(wire::question("example.test.", ty::A, 1));
                m.extend(wire::question("www.example.test.", ty::A, 1));
                m
            }),
        )
        .rcode("FORMERR")
        .no_question()
        .edns(None)
        .reference_expect(
            Kind::Knot,
            "Knot drops messages with QDCOUNT > 1",
            Expect::Drop,
        ),
    ]
}

/// EDNS(0): OPT iff the query had one, payload <= 1232, BADVERS, DO copied.
pub fn edns() -> Vec<Case> {
    let ns1 = ["ns1.example.test. 300 IN A 192.0.2.53"];
    vec![
        case(
            "no EDNS in the query: no OPT in the answer",
            q("ns1.example.test.", ty::A).no_edns(),
        )
        .aa()
        .ans(&ns1),
        case(
            "EDNS: OPT version 0, payload 1232",
            q("ns1.example.test.", ty::A),
        )
        .aa()
        .ans(&ns1),
        case(
            "client payload 4096: server advertises 1232",
            q("ns1.example.test.", ty::A).payload(4096),
        )
        .aa()
        .ans(&ns1),
        case(
            "client payload 512: server still advertises 1232",
            q("ns1.example.test.", ty::A).payload(512),
        )
        .aa()
        .ans(&ns1),
        case(
            "client payload below 512 is treated as 512",
            q("ns1.example.test.", ty::A).payload(100),
        )
        .aa()
        .ans(&ns1),
        case(
            "DO bit is copied",
            q("ns1.example.test.", ty::A).dnssec_ok(),
        )
        .aa()
        .ans(&ns1),
        case(
            "DO bit copied on NXDOMAIN",
            q("nx.example.test.", ty::A).dnssec_ok(),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG]),
        case(
            "unknown EDNS option is ignored",
            q("ns1.example.test.", ty::A).option(65001, &[0xab, 0xcd]),
        )
        .aa()
        .ans(&ns1),
        case(
            "empty unknown option is ignored",
            q("ns1.example.test.", ty::A).option(65002, &[]),
        )
        .aa()
        .ans(&ns1),
        case(
            "client cookie is not answered (no server cookies)",
            q("ns1.example.test.", ty::A).option(10, &[1, 2, 3, 4, 5, 6, 7, 8]),
        )
        .aa()
        .ans(&ns1),
        case(
            "client subnet with address bits beyond the source prefix: FORMERR (RFC 7871 6)",
            // 192.0.3.0/23: the last bit of the third byte is beyond the prefix.
            q("ns1.example.test.", ty::A).option(8, &[0, 1, 23, 0, 192, 0, 3]),
        )
        .rcode("FORMERR")
        .no_question()
        .edns(None)
        .reference_differs(
            Kind::Knot,
            "Knot without its ECS module ignores the option and answers",
            |n| {
                n.rcode = "NOERROR".into();
                n.set_flag("aa", true);
                n.question = vec!["ns1.example.test. IN A".into()];
                n.edns = Some("version=0 payload=1232 do=0 options=[]".into());
                n.answer = vec!["ns1.example.test. 300 IN A 192.0.2.53".into()];
            },
        ),
        case(
            "EDNS version 1: BADVERS, OPT version 0, no answer",
            q("ns1.example.test.", ty::A).edns_version(1),
        )
        .rcode("BADVERS"),
        case(
            "EDNS version 255 with DO: BADVERS, DO copied",
            q("example.test.", ty::SOA).edns_version(255).dnssec_ok(),
        )
        .rcode("BADVERS"),
        case(
            "EDNS version 1 outside the zones: BADVERS first",
            q("example.org.", ty::A).edns_version(1),
        )
        .rcode("BADVERS"),
    ]
}

/// UDP truncation (TC) over the client's limit; TCP carries everything.
pub fn truncation() -> Vec<Case> {
    let big = big_txt();
    let huge = huge_txt();
    let many = many_a();
    vec![
        case(
            "900-byte answer without EDNS: TC over UDP, full over TCP",
            q("big.example.test.", ty::TXT).no_edns(),
        )
        .aa()
        .ans(&owned(&big))
        .truncated_over_udp(),
        case(
            "900-byte answer with EDNS 1232: fits",
            q("big.example.test.", ty::TXT),
        )
        .aa()
        .ans(&owned(&big)),
        case(
            "900-byte answer with EDNS 600: TC over UDP",
            q("big.example.test.", ty::TXT).payload(600),
        )
        .aa()
        .ans(&owned(&big))
        .truncated_over_udp(),
        case(
            "2200-byte answer with EDNS 1232: TC over UDP",
            q("huge.example.test.", ty::TXT),
        )
        .aa()
        .ans(&owned(&huge))
        .truncated_over_udp(),
        case(
            "2200-byte answer with EDNS 4096: still TC (server limit 1232)",
            q("huge.example.test.", ty::TXT).payload(4096),
        )
        .aa()
        .ans(&owned(&huge))
        .truncated_over_udp(),
        case(
            "40 A records without EDNS: TC over UDP",
            q("many.example.test.", ty::A).no_edns(),
        )
        .aa()
        .ans(&owned(&many))
        .truncated_over_udp(),
        case(
            "40 A records with EDNS: fit",
            q("many.example.test.", ty::A),
        )
        .aa()
        .ans(&owned(&many)),
        case(
            "small answer without EDNS is not truncated",
            q("example.test.", ty::NS).no_edns(),
        )
        .aa()
        .ans(&[
            "example.test. 300 IN NS ns1.example.test.",
            "example.test. 300 IN NS ns2.example.test.",
        ])
        .add(&NS_ADD),
    ]
}

/// ANY (RFC 8482): one RRset. Like Knot, Roundel answers ANY with the RRset
/// of the lowest type code at the name (a CNAME if there is one), over UDP and
/// TCP alike; negative answers and referrals are as for any other type.
pub fn any() -> Vec<Case> {
    vec![
        case(
            "ANY at the apex: one RRset (A, the lowest type)",
            q("example.test.", ty::ANY),
        )
        .aa()
        .ans(&["example.test. 300 IN A 192.0.2.1"]),
        case("ANY at a host: one RRset", q("web.example.test.", ty::ANY))
            .aa()
            .ans(&[WEB_A]),
        case(
            "ANY at a CNAME: the CNAME, not followed",
            q("www.example.test.", ty::ANY),
        )
        .aa()
        .ans(&[WWW_CNAME]),
        case(
            "ANY at a wildcard name",
            q("foo.apps.example.test.", ty::ANY),
        )
        .aa()
        .ans(&[
            "foo.apps.example.test. 60 IN A 192.0.2.80",
            "foo.apps.example.test. 60 IN A 192.0.2.81",
        ]),
        case(
            "ANY without EDNS",
            q("mail.example.test.", ty::ANY).no_edns(),
        )
        .aa()
        .ans(&["mail.example.test. 300 IN A 192.0.2.25"]),
        case(
            "ANY at a name with only SRV",
            q("_sip._udp.example.test.", ty::ANY),
        )
        .aa()
        .ans(&[
            "_sip._udp.example.test. 300 IN SRV 10 5 5060 sip.example.test.",
            "_sip._udp.example.test. 300 IN SRV 20 5 5060 sip2.example.net.",
        ])
        .add(&[
            "sip.example.test. 300 IN A 192.0.2.60",
            "sip.example.test. 300 IN AAAA 2001:db8::60",
        ]),
        case(
            "ANY at a nonexistent name: NXDOMAIN",
            q("nx.example.test.", ty::ANY),
        )
        .aa()
        .rcode("NXDOMAIN")
        .auth(&[NEG]),
        case(
            "ANY at an empty non-terminal: NODATA",
            q("deep.example.test.", ty::ANY),
        )
        .aa()
        .auth(&[NEG]),
        case("ANY at the second zone's apex", q("second.test.", ty::ANY))
            .aa()
            .ans(&["second.test. 3600 IN A 198.51.100.1"]),
    ]
}

/// Malformed messages: FORMERR or silence, and the server keeps answering.
pub fn malformed() -> Vec<Case> {
    let good_q = wire::question("example.test.", ty::A, 1);
    let mut cases = vec![];
    cases.push(
        case(
            "5 bytes: shorter than a header",
            Q::raw("5 bytes", vec![0, 0, 1, 0, 0]),
        )
        .drop(),
    );
    cases.push(
        case(
            "11 bytes: truncated header",
            Q::raw("11 bytes", wire::header(0, 0, 1, 0, 0, 0)[..11].to_vec()),
        )
        .drop(),
    );
    cases.push(
        case(
            "a response (QR=1) sent to the server is ignored",
            Q::raw("QR=1", {
                let mut m = wire::header(0, 0x8000, 1, 0, 0, 0);
                m.extend(&good_q);
                m
            }),
        )
        .drop(),
    );
    cases.push(
        case(
            "a malformed response (QR=1, garbage) is ignored, over TCP too",
            Q::raw("QR=1 garbage", {
                let mut m = wire::header(0, 0x8000, 1, 1, 1, 1);
                m.extend((0..40u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8));
                m
            }),
        )
        .drop(),
    );
    cases.push(
        case(
            "garbage after a header",
            Q::raw("garbage", {
                let mut m = wire::header(0, 0, 1, 1, 1, 1);
                m.extend((0..60u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "question cut short (no type and class)",
            Q::raw("short question", {
                let mut m = wire::header(0, 0, 1, 0, 0, 0);
                m.extend(wire::encode_name("example.test."));
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "compression loop in the question name",
            Q::raw("pointer to itself", {
                let mut m = wire::header(0, 0, 1, 0, 0, 0);
                m.extend([0xC0, 12, 0, 1, 0, 1]);
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "two pointers pointing at each other",
            Q::raw("pointer loop", {
                let mut m = wire::header(0, 0, 1, 0, 0, 0);
                m.extend([3, b'f', b'o', b'o', 0xC0, 18, 0xC0, 16, 0, 1, 0, 1]);
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "forward compression pointer",
            Q::raw("forward pointer", {
                let mut m = wire::header(0, 0, 1, 0, 0, 0);
                m.extend([0xC0, 20, 0, 1, 0, 1, 0, 0, 3, b'c', b'o', b'm', 0]);
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "name of 130 one-byte labels (over 255 bytes)",
            Q::raw("130 labels", {
                let mut m = wire::header(0, 0, 1, 0, 0, 0);
                for _ in 0..130 {
                    m.extend([1, b'a']);
                }
                m.extend([0, 0, 1, 0, 1]);
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "reserved label type 0x40",
            Q::raw("label type 01", {
                let mut m = wire::header(0, 0, 1, 0, 0, 0);
                m.extend([0x41, b'a', 0, 0, 1, 0, 1]);
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "ARCOUNT 1 with no record",
            Q::raw("missing additional", {
                let mut m = wire::header(0, 0, 1, 0, 0, 1);
                m.extend(&good_q);
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "two OPT records",
            Q::raw("two OPTs", {
                let mut m = wire::header(0, 0, 1, 0, 0, 2);
                m.extend(&good_q);
                m.extend(wire::opt_record(1232, 0, &[]));
                m.extend(wire::opt_record(1232, 0, &[]));
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "OPT with a non-root owner",
            Q::raw("OPT owner", {
                let mut m = wire::header(0, 0, 1, 0, 0, 1);
                m.extend(&good_q);
                let opt = wire::opt_record(1232, 0, &[]);
                m.extend(wire::encode_name("example.test."));
                m.extend(&opt[1..]);
                m
            }),
        )
        .formerr_or_drop()
        .reference_expect(
            Kind::Knot,
            "Knot ignores the owner name of the OPT record and answers",
            Expect::Exact({
                let mut n = super::normal::Normal::expected_for(&q("example.test.", ty::A));
                n.set_flag("aa", true);
                n.answer = vec!["example.test. 300 IN A 192.0.2.1".into()];
                n
            }),
        ),
    );
    cases.push(
        case(
            "OPT option longer than its RDATA",
            Q::raw("OPT option overrun", {
                let mut m = wire::header(0, 0, 1, 0, 0, 1);
                m.extend(&good_q);
                m.extend(wire::opt_record(1232, 0, &[0xfd, 0xe9, 0x00, 0x10, 0xab]));
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "OPT in the answer section",
            Q::raw("OPT in answer", {
                let mut m = wire::header(0, 0, 1, 1, 0, 0);
                m.extend(&good_q);
                m.extend(wire::opt_record(1232, 0, &[]));
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases.push(
        case(
            "RDLENGTH past the end of the message",
            Q::raw("rdlength overrun", {
                let mut m = wire::header(0, 0, 1, 0, 0, 1);
                m.extend(&good_q);
                m.extend([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 40]);
                m
            }),
        )
        .formerr_or_drop(),
    );
    cases
}

/// Every group, in order.
pub fn all() -> Vec<(&'static str, Vec<Case>)> {
    vec![
        ("positive", positive()),
        ("cname", cname()),
        ("negative", negative()),
        ("wildcard", wildcard()),
        ("referral", referral()),
        ("protocol", protocol()),
        ("edns", edns()),
        ("truncation", truncation()),
        ("any", any()),
        ("malformed", malformed()),
    ]
}
