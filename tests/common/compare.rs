//! Answer-by-answer comparison shared by the differential tests: the owner names of a
//! Roundel zone file, and two outcomes compared after normalisation.

use super::REFERENCE;
use super::client::{Outcome, Q};
use super::normal::{Normal, describe_outcome, diff, normalise};
use super::wire::ty;

/// Origin and owner names (absolute) of a Roundel TOML zone file.
pub fn toml_names(path: &std::path::Path) -> (String, Vec<String>) {
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let origin = t["origin"].as_str().expect("origin").to_string();
    let mut names = vec![origin.clone()];
    if let Some(n) = t.get("names").and_then(|n| n.as_table()) {
        for k in n.keys() {
            names.push(match k.as_str() {
                "@" => origin.clone(),
                k if k.ends_with('.') => k.to_string(),
                k => format!("{k}.{origin}"),
            });
        }
    }
    names.sort();
    names.dedup();
    (origin, names)
}

/// What the differential tests ask about each owner name: every usual type, then around
/// it: without EDNS, in mixed case (RFC 4343: the answer echoes the case asked), and
/// below it (NXDOMAIN, wildcard or a delegation), with the DO bit.
pub fn about_name(n: &str) -> Vec<Q> {
    let types = [
        ty::A,
        ty::AAAA,
        ty::NS,
        ty::MX,
        ty::TXT,
        ty::SOA,
        ty::CNAME,
        ty::SRV,
        ty::CAA,
        ty::PTR,
        ty::DS,
        ty::ANY,
    ];
    let mut out: Vec<Q> = types.iter().map(|&t| Q::new(n, t)).collect();
    out.push(Q::new(n, ty::A).no_edns());
    out.push(Q::new(n, ty::TXT).no_edns());
    out.push(Q::new(&mixed_case(n), ty::A));
    out.push(Q::new(&format!("zz.{n}"), ty::A));
    out.push(Q::new(&format!("zz.{n}"), ty::TXT).dnssec_ok());
    out
}

/// Flips the case of every other letter: `www.example.test.` -> `WwW.ExAmPlE.TeSt.`
pub fn mixed_case(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// FORMERR or silence (for malformed queries).
pub fn formerr_or_silence(o: &Outcome) -> bool {
    match o {
        Outcome::NoResponse => true,
        Outcome::Response { parsed: Ok(m), .. } => m.rcode() == super::wire::rcode::FORMERR,
        _ => false,
    }
}

/// Compares two outcomes; `None` when they match.
pub fn compare(
    reference: &Outcome,
    candidate: &Outcome,
    cand_name: &str,
    malformed: bool,
) -> Option<String> {
    if malformed && formerr_or_silence(reference) && formerr_or_silence(candidate) {
        return None;
    }
    let norm = |o: &Outcome| -> Option<Normal> {
        match o {
            Outcome::Response {
                parsed: Ok(m),
                query_id,
                ..
            } => Some(normalise(m, *query_id)),
            _ => None,
        }
    };
    match (norm(reference), norm(candidate)) {
        (Some(mut r), Some(mut c)) => {
            if r.has_flag("tc") && c.has_flag("tc") {
                r = r.without_sections();
                c = c.without_sections();
            }
            diff(REFERENCE.name(), &r, cand_name, &c)
        }
        _ => {
            let same = matches!(
                (reference, candidate),
                (Outcome::NoResponse, Outcome::NoResponse)
            );
            (!same).then(|| {
                format!(
                    "  {}: {}\n  {cand_name}: {}\n",
                    REFERENCE.name(),
                    describe_outcome(reference),
                    describe_outcome(candidate)
                )
            })
        }
    }
}
