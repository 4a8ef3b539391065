//! Zone validation: every rejected input is reported with its file, line, column, key and
//! reason, through the library and through `roundel check`.

mod zone_text;

use std::path::Path;
use std::process::Command;

use roundel::zone::file::parse_zone;
use zone_text::{HEAD, problems};

fn assert_problem(tail: &str, want_pos_key: &str, want_reason: &str) {
    let got = problems(tail);
    assert!(
        got.iter()
            .any(|p| p.starts_with(want_pos_key) && p.contains(want_reason)),
        "expected a problem starting {want_pos_key:?} containing {want_reason:?}, got {got:#?}"
    );
}

#[test]
fn the_head_alone_is_valid() {
    assert_eq!(problems(""), Vec::<String>::new());
}

#[test]
fn unknown_keys_and_types_are_named() {
    let got = problems("[names.www]\nHINFO = \"x y\"\n");
    assert!(
        got.iter()
            .any(|g| g.starts_with("10:1: names.www.HINFO: unknown key `HINFO`")),
        "{got:?}"
    );
    assert_problem(
        "colour = \"blue\"\n",
        "9:1: names.ns1.colour",
        "unknown key `colour`",
    );
}

#[test]
fn an_unknown_key_does_not_hide_the_other_problems() {
    let got = problems(
        "tll = 60\n[names.www]\nA = \"192.0.2.300\"\n[names.mail]\nMX = { tll = 5, data = \"10 www\" }\n",
    );
    let want = [
        "9:1: names.ns1.tll: unknown key `tll`; did you mean `ttl`?",
        "11:5: names.www.A: not an IPv4 address",
        "13:8: names.mail.MX.tll: unknown key `tll`; did you mean `ttl`?",
    ];
    for w in want {
        assert!(
            got.iter().any(|g| g.starts_with(w)),
            "{w:?} not in {got:#?}"
        );
    }
}

#[test]
fn bad_addresses_and_names() {
    assert_problem(
        "[names.www]\nA = \"192.0.2.300\"\n",
        "10:5: names.www.A: ",
        "not an IPv4 address",
    );
    assert_problem(
        "[names.www]\nAAAA = [\"2001:db8::1\", \"fe80::zz\"]\n",
        "10:24: names.www.AAAA[1]: ",
        "not an IPv6 address",
    );
    assert_problem(
        "[names.\"bad name\"]\nA = \"192.0.2.2\"\n",
        "9:8: names.\"bad name\": ",
        "invalid character ' '",
    );
    assert_problem(
        "[names.\"a..b\"]\nA = \"192.0.2.2\"\n",
        "9:8",
        "empty label",
    );
    assert_problem(
        "[names.\"a.*\"]\nA = \"192.0.2.2\"\n",
        "9:8",
        "'*' is only allowed as the whole first label",
    );
    assert_problem(
        "[names.www]\nMX = [\"ten mail\"]\n",
        "10:7: names.www.MX[0]: ",
        "MX preference must be a number",
    );
    assert_problem(
        "[names.www]\nSRV = [\"1 2 3\"]\n",
        "10:8: names.www.SRV[0]: ",
        "priority weight port target",
    );
    assert_problem(
        "[names.www]\nCAA = \"0 issue\"\n",
        "10:7: names.www.CAA: ",
        "CAA data",
    );
}

#[test]
fn ttls_out_of_range() {
    assert_problem(
        "[names.www]\nttl = -1\nA = \"192.0.2.2\"\n",
        "10:7: names.www.ttl: ",
        "TTL -1 is out of range",
    );
    assert_problem(
        "[names.www]\nA = { ttl = 2147483648, data = [\"192.0.2.2\"] }\n",
        "10:13: names.www.A.ttl: ",
        "out of range",
    );
}

#[test]
fn cname_rules() {
    assert_problem(
        "[names.www]\nCNAME = \"web\"\nA = \"192.0.2.2\"\n",
        "9:1: names.www: ",
        "a CNAME cannot coexist with other data",
    );
    assert_problem(
        "[names.www]\nCNAME = [\"a\", \"b\"]\n",
        "10:9: names.www.CNAME: ",
        "only one CNAME",
    );
    let got = problems("").len();
    assert_eq!(got, 0);
    let text = HEAD.replace(
        "NS = [\"ns1\"]",
        "NS = [\"ns1\"]\nCNAME = \"elsewhere.test.\"",
    );
    let errs = parse_zone(Path::new("t.toml"), &text, None).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.reason.contains("apex cannot be a CNAME")),
        "{errs:?}"
    );
}

#[test]
fn data_outside_the_origin() {
    assert_problem(
        "[names.\"www.other.test.\"]\nA = \"192.0.2.2\"\n",
        "9:8: names.\"www.other.test.\": ",
        "outside the zone origin example.test.",
    );
}

#[test]
fn missing_soa_and_apex_ns() {
    let errs = parse_zone(
        Path::new("t.toml"),
        "origin = \"example.test.\"\n[names.\"@\"]\nNS = \"ns1.other.test.\"\n",
        None,
    )
    .unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.line == 0 && e.reason.contains("missing [soa]")),
        "{errs:?}"
    );
    let text = HEAD.replace("[names.\"@\"]\nNS = [\"ns1\"]\n", "");
    let errs = parse_zone(Path::new("t.toml"), &text, None).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.line == 1 && e.reason.contains("apex has no NS")),
        "{errs:?}"
    );
    let errs = parse_zone(Path::new("t.toml"), "origin = \"example.test\"\n", None).unwrap_err();
    assert!(
        errs[0].line == 1 && errs[0].column == 10 && errs[0].reason.contains("ending with a dot"),
        "{errs:?}"
    );
}

#[test]
fn in_zone_ns_targets_need_an_address() {
    assert_problem(
        "[names.sub]\nNS = [\"ns.sub\", \"ns2.other.test.\"]\n",
        "10:7: names.sub.NS[0]: ",
        "name server ns.sub.example.test. is inside the zone but has no A or AAAA",
    );
    // Out-of-zone targets need nothing, and glue satisfies in-zone ones.
    assert_eq!(
        problems(
            "[names.sub]\nNS = [\"ns.sub\", \"ns2.other.test.\"]\n[names.\"ns.sub\"]\nA = \"192.0.2.9\"\n"
        ),
        Vec::<String>::new()
    );
}

#[test]
fn delegations_hold_only_ns_and_glue() {
    assert_problem(
        "[names.sub]\nNS = \"ns.other.test.\"\nMX = \"10 mail\"\n",
        "9:8: names.sub: ",
        "can hold nothing but NS",
    );
    assert_problem(
        "[names.sub]\nNS = \"ns.other.test.\"\n[names.\"x.sub\"]\nTXT = \"hidden\"\n",
        "11:8: names.\"x.sub\": ",
        "below the delegation sub.example.test.",
    );
}

#[test]
fn duplicate_and_conflicting_records() {
    assert_problem(
        "[names.www]\nA = [\"192.0.2.2\", \"192.0.2.2\"]\n",
        "10:19: names.www.A[1]: ",
        "duplicate A record",
    );
    assert_problem(
        "[names.www]\nA = \"192.0.2.2\"\n[names.\"www.example.test.\"]\nA = \"192.0.2.3\"\n",
        "11:8",
        "already defined at line 9",
    );
    // The same key twice is a TOML error, still with its position.
    let got = problems("[names.www]\nA = \"192.0.2.2\"\n[names.www]\nA = \"192.0.2.3\"\n");
    assert!(
        got.len() == 1 && got[0].starts_with("11:") && got[0].contains("duplicate"),
        "{got:?}"
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let got = problems("[names.a]\nA = \"x\"\n[names.b]\nAAAA = \"y\"\n[names.c]\nMX = \"z\"\n");
    assert_eq!(got.len(), 3, "{got:#?}");
}

fn roundel(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roundel"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run roundel");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_command_exit_codes_and_format() {
    let dir = tempdir("check");
    std::fs::write(dir.join("good.toml"), HEAD).unwrap();
    let (code, out, _) = roundel(&["check", "good.toml"], &dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("zone example.test. OK"), "{out}");

    std::fs::write(
        dir.join("bad.toml"),
        format!("{HEAD}[names.www]\nA = \"192.0.2.999\"\n"),
    )
    .unwrap();
    let (code, out, _) = roundel(&["check", "bad.toml"], &dir);
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        "bad.toml:10:5: names.www.A: not an IPv4 address: \"192.0.2.999\""
    );

    // The same zone in two files.
    std::fs::write(dir.join("bad.toml"), HEAD).unwrap();
    let (code, out, _) = roundel(&["check", "."], &dir);
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "./good.toml:1:10: origin: zone example.test. is already defined in ./bad.toml"
        ),
        "{out}"
    );
}

#[test]
fn import_then_export_round_trips() {
    let dir = tempdir("roundtrip");
    let master = "$ORIGIN example.test.\n$TTL 300\n\
        @ IN SOA ns1 hostmaster 7 3600 600 86400 120\n\
        @ IN NS ns1\n@ IN NS ns.other.test.\n@ IN MX 10 mail\n\
        @ IN TXT \"v=spf1 -all\"\n@ IN TXT \"part one\" \"part two\"\n\
        @ IN CAA 0 issue \"ca.test\"\n\
        ns1 IN A 192.0.2.1\nmail 60 IN A 192.0.2.25\nmail 60 IN AAAA 2001:db8::25\n\
        _sip._udp IN SRV 10 5 5060 sip\nsip IN A 192.0.2.5\n\
        www 30 IN CNAME web\nweb IN A 192.0.2.10\nweb 120 IN TXT \"web\"\n\
        *.apps IN A 192.0.2.80\nsub IN NS ns.sub\nns.sub IN A 192.0.2.99\n\
        1 IN PTR host.other.test.\n";
    std::fs::write(dir.join("in.zone"), master).unwrap();
    let (code, toml_text, err) = roundel(&["import", "in.zone"], &dir);
    assert_eq!(code, 0, "{err}");
    std::fs::write(dir.join("z.toml"), &toml_text).unwrap();
    let (code, out, err) = roundel(&["check", "z.toml"], &dir);
    assert_eq!(
        code, 0,
        "imported zone must be valid: {out}{err}\n{toml_text}"
    );
    let (code, exported, err) = roundel(&["export", "z.toml"], &dir);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        records(master),
        records(&exported),
        "imported:\n{toml_text}\nexported:\n{exported}"
    );
}

/// Every record of a master file as a sorted list of "name ttl type data" lines.
fn records(master: &str) -> Vec<String> {
    use hickory_proto::serialize::txt::Parser;
    let (_, sets) = Parser::new(master, None, None)
        .parse()
        .expect("master file parses");
    let mut v: Vec<String> = sets
        .values()
        .flat_map(|s| {
            s.records_without_rrsigs()
                .map(|r| {
                    format!(
                        "{} {} {} {}",
                        r.name.to_lowercase(),
                        r.ttl,
                        r.record_type(),
                        r.data
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    v.sort();
    v
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("roundel-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
