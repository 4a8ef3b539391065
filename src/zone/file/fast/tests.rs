//! The fast reader against toml, on real zone files and on mutations of them: wherever
//! the reader gives entries, they are exactly toml's, and toml found nothing wrong.

use std::fmt::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::super::chunked::{Entry, toml_slice};
use super::super::raw::RawItem;
use super::super::split::{CHUNK_BYTES, names_chunks};
use super::read;

/// Everything an entry holds, spans included (`Spanned` compares values only).
#[derive(Debug, PartialEq)]
struct Flat {
    key: (Range<usize>, String),
    table: Range<usize>,
    ttl: Option<(Range<usize>, i64)>,
    sets: Vec<FlatSet>,
}

#[derive(Debug, PartialEq)]
struct FlatSet {
    rtype: String,
    span: Range<usize>,
    ttl: Option<(Range<usize>, i64)>,
    single: bool,
    items: Vec<(Option<Range<usize>>, FlatItem)>,
}

/// A string, or (`Err`) an array of strings.
type FlatItem = Result<String, Vec<String>>;

fn flat(entries: &[Entry]) -> Vec<Flat> {
    entries
        .iter()
        .map(|(k, n)| Flat {
            key: (k.span(), k.get_ref().clone()),
            table: n.span(),
            ttl: n.get_ref().ttl.as_ref().map(|t| (t.span(), *t.get_ref())),
            sets: n
                .get_ref()
                .sets()
                .map(|(t, s)| FlatSet {
                    rtype: t.to_string(),
                    span: s.span(),
                    ttl: s.get_ref().ttl.as_ref().map(|t| (t.span(), *t.get_ref())),
                    single: s.get_ref().single,
                    items: s
                        .get_ref()
                        .items
                        .iter()
                        .map(|(span, item)| {
                            let item = match item {
                                RawItem::Text(t) => Ok(t.clone()),
                                RawItem::Parts(p) => Err(p.clone()),
                            };
                            (span.clone(), item)
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// The reader's contract on one slice: `None`, or exactly toml's entries with no problem
/// found by toml. Says whether the reader read the slice.
fn agrees(slice: &str) -> bool {
    let Some(fast) = read(slice) else {
        return false;
    };
    let (toml, problems) = toml_slice(slice);
    assert!(
        problems.is_empty(),
        "read a slice in which toml finds {problems:?}: {slice:?}"
    );
    let toml = toml.unwrap_or_else(|| panic!("read a slice toml refuses: {slice:?}"));
    let (fast, toml) = (flat(&fast), flat(&toml));
    let short: String = slice.chars().take(400).collect();
    for (f, t) in fast.iter().zip(&toml) {
        assert_eq!(f, t, "in {short:?}");
    }
    assert_eq!(fast.len(), toml.len(), "{short:?}");
    true
}

/// The names slices of a zone file: each table alone, and as the loader cuts them.
fn slices(text: &str) -> Vec<&str> {
    let (one, _) = names_chunks(text, 1);
    let (big, _) = names_chunks(text, CHUNK_BYTES);
    one.into_iter().chain(big).map(|r| &text[r]).collect()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// The shipped zones.
fn shipped() -> Vec<String> {
    let zones: Vec<String> = files("zones", "toml")
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(zones.len() >= 4, "zones/ has the example zones");
    zones
}

/// What `roundel import` writes for the master files of the tests.
fn imported() -> Vec<String> {
    let mut paths = files("tests/data", "zone");
    paths.extend(files("tests/data/import", "zone"));
    let zones: Vec<String> = paths
        .iter()
        .map(|p| crate::zone::master::import_file(p, None).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert!(zones.len() >= 8, "the master files of tests/data");
    zones
}

/// What `benches/gen-zone.py NAMES` writes (the same lines, in Rust).
fn gen_zone(names: usize) -> String {
    let mut w = String::from(
        "origin = \"big.test.\"\nttl = 3600\n\n[soa]\nmname = \"ns1\"\nrname = \"hostmaster\"\n\
         serial = 1\nminimum = 60\n\n[names.\"@\"]\nNS = [\"ns1\", \"ns2\"]\n\n\
         [names.ns1]\nA = \"192.0.2.53\"\n\n[names.ns2]\nA = \"192.0.2.54\"\n\n",
    );
    for i in 0..names {
        let sub = format!("h{:02x}", i % 256);
        let name = format!("n{i}.{sub}");
        let k = i % 100;
        let owner = if k == 99 {
            format!("*.{name}")
        } else {
            name.clone()
        };
        let _ = writeln!(w, "[names.\"{owner}\"]");
        let (hi, mid, lo) = ((i >> 16) & 255, (i >> 8) & 255, i & 255);
        let to = format!("n{}.h{:02x}", i - k, (i - k) % 256);
        let _ = match k {
            0..55 => writeln!(w, "A = \"10.{hi}.{mid}.{lo}\""),
            55..70 => writeln!(w, "AAAA = \"2001:db8::{:x}:{:x}\"", i >> 16, i & 0xffff),
            70..80 => writeln!(w, "TXT = \"v=spf1 ip4:10.{mid}.{lo}.0/24 -all id{i}\""),
            80..88 => writeln!(w, "MX = [\"10 {to}\", \"20 ns1\"]"),
            88..98 => writeln!(w, "CNAME = \"{to}\""),
            98 => writeln!(
                w,
                "NS = [\"ns.{name}\"]\n\n[names.\"ns.{name}\"]\nA = \"192.0.2.{}\"",
                i % 250 + 1
            ),
            _ => writeln!(w, "A = \"10.99.{mid}.{lo}\""),
        };
        w.push('\n');
    }
    w
}

/// The zone of `chunked`'s tests across slices: bare names, one A each.
fn bare_names(n: usize) -> String {
    let mut t = String::from("origin = \"x.test.\"\n[soa]\nmname = \"ns1\"\nrname = \"h\"\n");
    for i in 0..n {
        let _ = writeln!(t, "[names.h{i}]\nA = \"192.0.2.{}\"", i % 250 + 1);
    }
    t
}

/// Slices toml reads without a problem, inside the subset (`true`) or not (`false`), and
/// slices toml refuses. Each is checked alone, and is a seed of the mutations.
const CASES: &[(&str, bool)] = &[
    ("[names.a]\nA = \"192.0.2.1\"\n", true),
    ("[names.a]", true),
    ("[names.a]\n\n# only a comment\n\n", true),
    (
        "[names.\"@\"] # apex\r\nNS = [\"ns1\", \"ns2\"]\r\nttl = 60\r\n",
        true,
    ),
    ("[names.'*.w']\nA = '192.0.2.1'\n[names.\"\"]\n", true),
    ("[names.a-b_9]\nA=\"x\"\t# t\nAAAA\t=\t[ ]\n", true),
    (
        "[names.a]\nTXT = [\n  \"a\", # one\n  [\"b\", 'c',],\n\n  [],\n]\n",
        true,
    ),
    (
        "[names.a]\nMX = { ttl = 60, data = [\"10 m\", \"20 n\"] }\n",
        true,
    ),
    (
        "[names.a]\nA = {data='x'}\nTXT = { data = [[\"p\"]] , ttl = 0 }\n",
        true,
    ),
    (
        "[names.a]\nTXT = \"\\\"q\\\\ \\t\\n\\r\\b\\f \\u00e9\\U0001F600\"\n",
        true,
    ),
    (
        "[names.a]\nTXT = \"tab\tin é and ✓\"\nCAA = '0 issue \"ca\"'\n",
        true,
    ),
    ("[names.\"a\\\"b\\u0041\"]\nA = \"1\"\n", true),
    (
        "[names.b]\nNS = \"n\"\nA = \"1\"\nCNAME = \"c\"\nttl = 9\nTXT = \"t\"\n",
        true,
    ),
    (
        "[names.a]\nA = \"1\"\n  [names.b]  \n  A = \"2\"  \n[names.c]",
        true,
    ),
    ("[names.a]\nttl = 123456789012345678\n", true),
    // Names alike in their first eight bytes, shorter, or ending in NUL: sorted as toml does.
    (
        "[names.abcdefghij]\n[names.abcdefghi]\n[names.\"ab\\u0000\"]\n[names.ab]\n\
         [names.\"é\"]\n[names.abcdefgh]\n[names.\"\"]\n[names.\"abcdefgh\\u0000\"]\n[names.b]\n",
        true,
    ),
    // Valid TOML outside the subset.
    ("[names.a]\nA = \"\"\"x\"\"\"\n", false),
    ("[names.a]\nA = '''x'''\n", false),
    ("[names.a]\n\"A\" = \"x\"\n", false),
    ("[ names.a ]\nA = \"x\"\n", false),
    ("[names.a]\nttl = 1_000\n", false),
    ("[names.a]\nttl = +5\n", false),
    ("[names.a]\nttl = -5\n", false),
    ("[names.a]\nttl = 0x10\n", false),
    ("[names.a]\nttl = 1234567890123456789\n", false),
    ("[names.a]\nA = \"\\e\"\n", false),
    ("[names.a]\nA = \"\\x41\"\n", false),
    ("[names.a]\nA = { data = \"x\", }\n", false),
    ("[names.a]\nA = {\n data = \"x\" }\n", false),
    ("[names.a]\nA = \"x\"\n[names.b]\n[names.b.c]\n", false),
    // Problems for toml.
    ("[names.a]\nA = \"x\"\n[names.\"a\"]\n", false),
    ("[names.a]\nA = \"x\"\nA = \"y\"\n", false),
    ("[names.a]\nttl = 1\nttl = 1\n", false),
    ("[names.a]\nAA = \"x\"\n", false),
    ("[names.a]\nA = 5\n", false),
    ("[names.a]\nA = { ttl = 5 }\n", false),
    ("[names.a]\nA = { data = { data = \"x\" } }\n", false),
    ("[names.a]\nA = [[[\"x\"]]]\n", false),
    ("[names.a]\nA = [\"x\",,]\n", false),
    ("[names.a]\nA = \"x\" B = \"y\"\n", false),
    ("[names.a]\nA = \"x\r\n", false),
    ("[names.a]\rA = \"x\"\n", false),
    ("[names.a]\nA = \"\\q\"\n", false),
    ("[names.a]\nA = \"\\uD800\"\n", false),
    ("[names.a]\nA = \"\\u+041\"\n", false),
    ("[names.a]\n# \u{7f}\n", false),
    ("[names.a]\nA = \"\u{1}\"\n", false),
    ("[names.é]\n", false),
    ("A = \"x\"\n[names.a]\n", false),
    ("# no table\n", false),
    ("", false),
];

#[test]
fn the_cases_are_read_or_left_to_toml_as_listed() {
    for (slice, in_subset) in CASES {
        assert_eq!(agrees(slice), *in_subset, "{slice:?}");
    }
}

#[test]
fn every_slice_of_the_shipped_and_imported_zones_reads_as_toml_reads_it() {
    let (mut read, mut all) = (0, 0);
    for zone in shipped().iter().chain(&imported()) {
        for slice in slices(zone) {
            all += 1;
            read += usize::from(agrees(slice));
        }
    }
    // Inline tables written over several lines (TOML 1.1) are left to toml.
    assert!(read * 10 >= all * 9, "{read} of {all} slices read");
}

#[test]
fn every_slice_of_generated_zones_is_read_as_toml_reads_it() {
    for zone in [gen_zone(20_000), bare_names(30_000)] {
        let all = slices(&zone);
        assert!(all.len() > 20_000, "{}", all.len());
        for slice in all {
            assert!(agrees(slice), "not read: {slice:?}");
        }
    }
}

/// Bytes that matter to TOML's grammar, and some that do not.
const ALPHABET: &[u8] = b"\"'\\[]{},=#.\t\n\r \x00\x01\x1b\x7f0159aAeuUxX_-+:nbtTLXMS";

/// `slice` with one to three bytes deleted, inserted or replaced; `None` when that is not
/// UTF-8 any more.
fn mutate(slice: &str, rng: &mut fastrand::Rng) -> Option<String> {
    let mut b = slice.as_bytes().to_vec();
    for _ in 0..1 + rng.usize(..3) {
        let at = rng.usize(..b.len() + 1);
        let byte = ALPHABET[rng.usize(..ALPHABET.len())];
        match rng.usize(..3) {
            0 if at < b.len() => {
                b.remove(at);
            }
            1 if at < b.len() => b[at] = byte,
            _ => b.insert(at, byte),
        }
    }
    String::from_utf8(b).ok()
}

#[test]
fn mutated_slices_are_read_as_toml_reads_them_or_left_to_toml() {
    let mut seeds: Vec<String> = CASES.iter().map(|(s, _)| s.to_string()).collect();
    for zone in shipped().iter().chain(&imported()) {
        let (one, _) = names_chunks(zone, 1);
        seeds.extend(one.into_iter().map(|r| zone[r].to_owned()));
    }
    let generated = gen_zone(300);
    let (one, _) = names_chunks(&generated, 1);
    seeds.extend(one.into_iter().step_by(7).map(|r| generated[r].to_owned()));
    // Seeded, so that a failure can be replayed.
    let mut rng = fastrand::Rng::with_seed(0x5eed_f00d_dead_beef);
    let (mut tried, mut read) = (0, 0);
    for seed in &seeds {
        for _ in 0..60 {
            let Some(mutant) = mutate(seed, &mut rng) else {
                continue;
            };
            tried += 1;
            read += usize::from(agrees(&mutant));
        }
    }
    // Enough of each: mutants the reader reads (so equality is checked) and mutants it
    // leaves to toml.
    assert!(tried > 5_000, "{tried}");
    assert!(
        read > tried / 10 && read < tried * 9 / 10,
        "{read} of {tried}"
    );
}
