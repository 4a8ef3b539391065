//! Import cases from issue reports: origin choice, escapes, parentheses, refusals.

use std::path::Path;

use hickory_proto::rr::{RData, RecordType};

use super::{ImportError, import};
use crate::zone::file::parse_zone;

const HEAD: &str =
    "$TTL 300\n@ SOA ns1 hostmaster 7 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n";

fn imported(text: &str, origin: Option<&str>) -> crate::zone::Zone {
    let toml = import(text, Path::new("test.zone"), origin).unwrap_or_else(|e| panic!("{e}"));
    parse_zone(Path::new("out.toml"), &toml, None).unwrap_or_else(|e| panic!("{e:?}\n{toml}"))
}

fn txt(zone: &crate::zone::Zone, name: &str) -> Vec<Vec<Vec<u8>>> {
    let key = crate::zone::name::key_of(&hickory_proto::rr::Name::from_ascii(name).unwrap());
    let node = zone.nodes.get(&key).unwrap_or_else(|| panic!("no {name}"));
    node.rrset(RecordType::TXT)
        .unwrap()
        .records
        .iter()
        .map(|r| match r.data(RecordType::TXT) {
            RData::TXT(t) => t.txt_data.iter().map(|p| p.to_vec()).collect(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn problems(text: &str, origin: Option<&str>) -> String {
    match import(text, Path::new("bad.zone"), origin) {
        Ok(t) => panic!("imported, but should not have:\n{t}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn origin_is_the_soa_owner_not_the_last_origin_directive() {
    let text = format!(
        "$ORIGIN corp.test.\n{HEAD}www A 192.0.2.1\n$ORIGIN lab.corp.test.\nhost A 192.0.2.2\n"
    );
    let z = imported(&text, None);
    assert_eq!(z.origin.to_string(), "corp.test.");
    assert!(!txt_free_has(&z, "host.lab.corp.test.").is_empty());
}

fn txt_free_has(zone: &crate::zone::Zone, name: &str) -> Vec<RecordType> {
    let key = crate::zone::name::key_of(&hickory_proto::rr::Name::from_ascii(name).unwrap());
    zone.nodes
        .get(&key)
        .map(|n| n.rrsets.iter().map(|s| s.rtype).collect())
        .unwrap_or_default()
}

#[test]
fn the_origin_option_always_wins() {
    let text = format!("{HEAD}www A 192.0.2.1\n");
    let z = imported(&text, Some("given.test"));
    assert_eq!(z.origin.to_string(), "given.test.");
    // A file whose SOA sits elsewhere is refused with the line, not silently re-rooted.
    let text = format!("$ORIGIN other.test.\n{HEAD}");
    let err = problems(&text, Some("given.test."));
    assert!(err.contains("bad.zone:3:"), "{err}");
    assert!(err.contains("origin is given.test."), "{err}");
}

#[test]
fn dkim_split_over_lines_in_parentheses() {
    let text = format!(
        "$ORIGIN example.test.\n{HEAD}sel._domainkey TXT ( \"v=DKIM1; k=rsa; \"\n    \"p=MIIBIjANBgkq\" ) ; key\n"
    );
    let z = imported(&text, None);
    assert_eq!(
        txt(&z, "sel._domainkey.example.test."),
        [[b"v=DKIM1; k=rsa; ".to_vec(), b"p=MIIBIjANBgkq".to_vec()]]
    );
    let one_line = format!("$ORIGIN example.test.\n{HEAD}x TXT ( \"a; b\" \"c\" )\n");
    let z = imported(&one_line, None);
    assert_eq!(
        txt(&z, "x.example.test."),
        [[b"a; b".to_vec(), b"c".to_vec()]]
    );
}

#[test]
fn decimal_escapes_are_byte_values() {
    let text = format!("$ORIGIN example.test.\n{HEAD}e TXT \"\\065BC\" \"caf\\195\\169\"\n");
    let z = imported(&text, None);
    let got = txt(&z, "e.example.test.");
    assert_eq!(got[0][0], b"ABC");
    assert_eq!(got[0][1], "café".as_bytes());
    assert_eq!(got[0][1].len(), 5);
}

#[test]
fn unclosed_parenthesis_has_a_line_number() {
    let text = format!("$ORIGIN example.test.\n{HEAD}x TXT ( \"a; b\" \"c\"\n");
    let err = problems(&text, None);
    assert!(err.contains("bad.zone:6:"), "{err}");
    assert!(err.contains("missing ')'"), "{err}");
}

#[test]
fn what_roundel_cannot_hold_is_an_error_with_its_line() {
    let cases = [
        ("h HINFO \"pc\" \"unix\"\n", "HINFO is not supported"),
        ("b TXT \"\\200\"\n", "not UTF-8"),
        ("a\\.b A 192.0.2.1\n", "cannot express"),
        ("ch CH TXT \"x\"\n", "class IN only"),
        (
            "t 60 A 192.0.2.1\nt 120 A 192.0.2.2\n",
            "at line 6: the records of an RRset share one TTL",
        ),
        ("out.other.test. A 192.0.2.1\n", "outside the zone"),
        ("$FOO bar\n", "unknown directive"),
    ];
    for (line, want) in cases {
        let text = format!("$ORIGIN example.test.\n{HEAD}{line}");
        let err = problems(&text, None);
        let at = if line.contains("120") {
            "bad.zone:7:"
        } else {
            "bad.zone:6:"
        };
        assert!(err.contains(at), "{line}: {err}");
        assert!(err.contains(want), "{line}: {err}");
    }
}

#[test]
fn roundel_rules_are_checked_on_the_result() {
    let text = format!("$ORIGIN example.test.\n{HEAD}www CNAME ns1\nwww A 192.0.2.1\n");
    match import(&text, Path::new("bad.zone"), None) {
        Err(ImportError::Rejected { errors, .. }) => {
            assert!(errors.to_string().contains("CNAME"), "{errors}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn omitted_owner_ttl_class_and_units() {
    let text = "$ORIGIN example.test.\n$TTL 1h\n@ IN SOA ns1 hostmaster ( 1 ; serial\n  3h 1h 1w 5m )\n  NS ns1\nns1 30 IN A 192.0.2.53\n    IN 30 AAAA 2001:db8::53\n";
    let z = imported(text, None);
    assert_eq!(z.soa_ttl, 3600);
    let key = crate::zone::name::key_of(
        &hickory_proto::rr::Name::from_ascii("ns1.example.test.").unwrap(),
    );
    let node = z.nodes.get(&key).expect("ns1 is in the zone");
    assert_eq!(node.rrset(RecordType::A).unwrap().ttl, 30);
    assert_eq!(node.rrset(RecordType::AAAA).unwrap().ttl, 30);
    match z.soa().data(RecordType::SOA) {
        RData::SOA(s) => assert_eq!((s.refresh, s.expire, s.minimum), (10800, 604800, 300)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn generate_and_include() {
    let dir = std::env::temp_dir().join(format!("roundel-import-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("hosts.inc"),
        "h1 A 192.0.2.101\nh2 A 192.0.2.102\n",
    )
    .unwrap();
    let text = format!(
        "$ORIGIN example.test.\n{HEAD}$INCLUDE hosts.inc sub.example.test.\nafter A 192.0.2.9\n$GENERATE 1-3 gen${{0,2,d}} A 192.0.2.${{10}}\n"
    );
    let toml = import(&text, &dir.join("main.zone"), None).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(&dir).unwrap();
    let z = parse_zone(Path::new("out.toml"), &toml, None).unwrap();
    for n in [
        "h1.sub.example.test.",
        "h2.sub.example.test.",
        "after.example.test.",
        "gen01.example.test.",
        "gen03.example.test.",
    ] {
        assert_eq!(txt_free_has(&z, n), [RecordType::A], "{n}\n{toml}");
    }
}

#[test]
fn export_then_import_keeps_every_record() {
    let text = format!(
        "$ORIGIN example.test.\n{HEAD}t TXT \"caf\\195\\169\" \"a\\\"b\"\nm MX 10 ns1\n@ CAA 0 issue \"ca.test\"\n"
    );
    let z = imported(&text, None);
    let again = imported(&super::export(&z), None);
    let sets = |z: &crate::zone::Zone| {
        let mut v: Vec<String> = z
            .rrsets()
            .iter()
            .map(|(n, s)| format!("{} {} {} {:?}", z.name(n), s.rtype, s.ttl, s.records))
            .collect();
        v.sort();
        v
    };
    assert_eq!(sets(&z), sets(&again));
}
