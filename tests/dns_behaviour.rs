//! Behaviour tests: exact rcode, flags and sections for every case in
//! `common/cases.rs`, over UDP and TCP, against the reference server (Knot)
//! and, once enabled in `common/mod.rs`, against Roundel.
//!
//! One test per group; each starts its own servers (a few tens of ms).

mod common;

use common::{Servers, cases, run_cases};

fn run(cases: Vec<common::Case>) {
    let servers = Servers::start();
    run_cases(&servers, &cases);
}

#[test]
fn positive_answers() {
    run(cases::positive());
}

#[test]
fn cname_chains() {
    run(cases::cname());
}

#[test]
fn negative_answers() {
    run(cases::negative());
}

#[test]
fn wildcards() {
    run(cases::wildcard());
}

#[test]
fn referrals() {
    run(cases::referral());
}

#[test]
fn protocol_errors() {
    run(cases::protocol());
}

#[test]
fn edns() {
    run(cases::edns());
}

#[test]
fn truncation() {
    run(cases::truncation());
}

#[test]
fn any_queries() {
    run(cases::any());
}

#[test]
fn malformed_input() {
    run(cases::malformed());
}
