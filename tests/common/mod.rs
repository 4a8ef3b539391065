//! Shared test harness: DNS client, response normalisation, reference-server
//! runner, the in-process Roundel server, and the case-checking engine.
#![allow(dead_code)]

pub mod cases;
pub mod client;
pub mod compare;
pub mod normal;
pub mod reference;
pub mod wire;

// ---------------------------------------------------------------------------
// THE ONE SWITCH for the Roundel-targeted tests.
//
// `roundel_off.rs` compiles without `roundel::server`; `roundel_on.rs` starts
// Roundel in-process through `roundel::server::{Listeners, ServeOptions, serve}`.
// Once that API exists in src/, change "roundel_off.rs" to "roundel_on.rs":
// every behaviour case then also runs against Roundel (UDP and TCP) and the
// differential test compares Roundel with Knot.
#[path = "roundel_on.rs"]
pub mod roundel_target;
// ---------------------------------------------------------------------------

use std::net::SocketAddr;
use std::path::PathBuf;

use client::{Outcome, Q, Transport};
use normal::{Normal, describe_outcome, diff, normalise};
use reference::{Kind, Reference};
use wire::{rcode, ty};

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped example zones (Roundel TOML).
pub fn zones_dir() -> PathBuf {
    repo_dir().join("zones")
}

/// Hand-written RFC 1035 equivalents of the shipped zones.
pub fn master_dir() -> PathBuf {
    repo_dir().join("tests/data")
}

/// The reference server the behaviour and differential tests use (see tests/README.md).
pub const REFERENCE: Kind = Kind::Knot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Reference(Kind),
    Roundel,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub who: Who,
    pub addr: SocketAddr,
    pub transport: Transport,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.who {
            Who::Reference(k) => write!(f, "{}/{}", k.name(), self.transport),
            Who::Roundel => write!(f, "roundel/{}", self.transport),
        }
    }
}

/// The servers under test: the reference (always) and Roundel (when enabled).
pub struct Servers {
    pub reference: Reference,
    pub roundel: Option<roundel_target::TestServer>,
}

impl Servers {
    /// Starts the reference on the hand-written master files and, when
    /// enabled, Roundel on `zones/`.
    pub fn start() -> Servers {
        let reference = Reference::start(REFERENCE, &reference::master_files(&master_dir()));
        let roundel = roundel_target::start(&zones_dir());
        Servers { reference, roundel }
    }

    pub fn targets(&self) -> Vec<Target> {
        let mut v = vec![];
        for transport in [Transport::Udp, Transport::Tcp] {
            v.push(Target {
                who: Who::Reference(self.reference.kind),
                addr: self.reference.addr,
                transport,
            });
        }
        if let Some(r) = &self.roundel {
            v.push(Target {
                who: Who::Roundel,
                addr: r.udp,
                transport: Transport::Udp,
            });
            v.push(Target {
                who: Who::Roundel,
                addr: r.tcp,
                transport: Transport::Tcp,
            });
        }
        v
    }
}

// ---------------------------------------------------------------------------
// Cases: one query and what the answer must be.

#[derive(Debug, Clone)]
pub enum Expect {
    /// Exactly this response, over UDP and TCP alike.
    Exact(Normal),
    /// Over TCP exactly this; over UDP the same header with TC set, sections
    /// not compared (servers may send a partial or empty answer), and no more
    /// bytes than the client's limit.
    TruncatedOverUdp(Normal),
    /// Malformed input: a FORMERR response or no response at all; the server
    /// must answer a normal query afterwards.
    FormerrOrDrop,
    /// No response at all (e.g. a message with QR=1); the server must keep answering.
    Drop,
}

pub struct Deviation {
    pub kind: Kind,
    /// Only on this transport (`None`: both).
    pub transport: Option<Transport>,
    pub why: &'static str,
    pub expect: Expect,
}

pub struct Case {
    pub name: String,
    pub q: Q,
    pub expect: Expect,
    /// Documented, legitimate differences of a reference server from the
    /// spec Roundel follows. Roundel is always held to `expect`.
    pub deviations: Vec<Deviation>,
}

/// A case expecting a NOERROR answer to `q` with everything else empty (add
/// the details with the builder methods).
pub fn case(name: &str, q: Q) -> Case {
    let n = Normal::expected_for(&q);
    Case {
        name: name.to_string(),
        q,
        expect: Expect::Exact(n),
        deviations: vec![],
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

impl Case {
    fn n(&mut self) -> &mut Normal {
        match &mut self.expect {
            Expect::Exact(n) | Expect::TruncatedOverUdp(n) => n,
            _ => panic!("case {}: no exact expectation to refine", self.name),
        }
    }
    pub fn aa(mut self) -> Self {
        self.n().set_flag("aa", true);
        self
    }
    pub fn rcode(mut self, r: &str) -> Self {
        self.n().rcode = r.to_string();
        self
    }
    pub fn ans(mut self, v: &[&str]) -> Self {
        self.n().answer = strs(v);
        self
    }
    pub fn auth(mut self, v: &[&str]) -> Self {
        self.n().authority = strs(v);
        self
    }
    pub fn add(mut self, v: &[&str]) -> Self {
        self.n().additional = strs(v);
        self
    }
    pub fn edns(mut self, e: Option<&str>) -> Self {
        self.n().edns = e.map(str::to_string);
        self
    }
    pub fn no_question(mut self) -> Self {
        self.n().question.clear();
        self
    }
    pub fn with(mut self, f: impl FnOnce(&mut Normal)) -> Self {
        f(self.n());
        self
    }
    pub fn truncated_over_udp(mut self) -> Self {
        if let Expect::Exact(n) = self.expect {
            self.expect = Expect::TruncatedOverUdp(n);
        }
        self
    }
    pub fn formerr_or_drop(mut self) -> Self {
        self.expect = Expect::FormerrOrDrop;
        self
    }
    pub fn drop(mut self) -> Self {
        self.expect = Expect::Drop;
        self
    }
    /// The reference `kind` legitimately answers differently: `f` turns the
    /// spec expectation into what it does. The difference is asserted too, so
    /// the documentation of it cannot go stale.
    pub fn reference_differs(
        mut self,
        kind: Kind,
        why: &'static str,
        f: impl FnOnce(&mut Normal),
    ) -> Self {
        let mut e = self.expect.clone();
        match &mut e {
            Expect::Exact(n) | Expect::TruncatedOverUdp(n) => f(n),
            _ => panic!("reference_differs needs an exact expectation"),
        }
        self.deviations.push(Deviation {
            kind,
            transport: None,
            why,
            expect: e,
        });
        self
    }
    /// As [`Case::reference_differs`], on one transport only (takes precedence).
    pub fn reference_differs_on(
        mut self,
        kind: Kind,
        transport: Transport,
        why: &'static str,
        f: impl FnOnce(&mut Normal),
    ) -> Self {
        self = self.reference_differs(kind, why, f);
        let mut d = self.deviations.pop().unwrap();
        d.transport = Some(transport);
        self.deviations.insert(0, d);
        self
    }
    pub fn reference_expect(mut self, kind: Kind, why: &'static str, e: Expect) -> Self {
        self.deviations.push(Deviation {
            kind,
            transport: None,
            why,
            expect: e,
        });
        self
    }

    /// The documented reference difference that applies to `who` over `t`, if any.
    pub fn deviation(&self, who: Who, t: Transport) -> Option<&Deviation> {
        match who {
            Who::Reference(k) => self
                .deviations
                .iter()
                .find(|d| d.kind == k && d.transport.is_none_or(|x| x == t)),
            Who::Roundel => None,
        }
    }

    fn expect_for(&self, who: Who, t: Transport) -> &Expect {
        self.deviation(who, t).map_or(&self.expect, |d| &d.expect)
    }
}

/// A normal query that must always work: proves the server is still alive.
fn alive(t: &Target) -> Result<(), String> {
    let o = client::exchange(t.addr, t.transport, &Q::new("example.test.", ty::SOA));
    match o.message() {
        Some(m) if m.rcode() == rcode::NOERROR && m.answer.len() == 1 => Ok(()),
        _ => Err(format!(
            "server no longer answers example.test. SOA: {}",
            describe_outcome(&o)
        )),
    }
}

/// Checks one case against one target; `Err` holds a readable report.
pub fn check(c: &Case, t: &Target) -> Result<(), String> {
    let o = client::exchange(t.addr, t.transport, &c.q);
    let expect = c.expect_for(t.who, t.transport);
    let got = |o: &Outcome| -> Result<Normal, String> {
        match o {
            Outcome::Response {
                parsed: Ok(m),
                query_id,
                ..
            } => Ok(normalise(m, *query_id)),
            other => Err(format!(
                "expected a response, got {}",
                describe_outcome(other)
            )),
        }
    };
    let size_ok = |o: &Outcome| -> Result<(), String> {
        let len = o.raw().map_or(0, |r| r.len());
        if t.transport == Transport::Udp && len > c.q.udp_limit() {
            return Err(format!(
                "UDP response of {len} bytes exceeds the client's limit {}",
                c.q.udp_limit()
            ));
        }
        Ok(())
    };
    match (expect, t.transport) {
        (Expect::Exact(n), _) | (Expect::TruncatedOverUdp(n), Transport::Tcp) => {
            let g = got(&o)?;
            size_ok(&o)?;
            match diff("expected", n, &t.to_string(), &g) {
                None => Ok(()),
                Some(d) => Err(format!("{d}  full response:\n{g}")),
            }
        }
        (Expect::TruncatedOverUdp(n), Transport::Udp) => {
            let g = got(&o)?;
            size_ok(&o)?;
            let mut want = n.clone().without_sections();
            want.set_flag("tc", true);
            match diff(
                "expected (TC, sections ignored)",
                &want,
                &t.to_string(),
                &g.clone().without_sections(),
            ) {
                None => Ok(()),
                Some(d) => Err(format!("{d}  full response:\n{g}")),
            }
        }
        (Expect::FormerrOrDrop, _) => {
            match &o {
                Outcome::NoResponse => {}
                Outcome::Response { parsed: Ok(m), .. } if m.rcode() == rcode::FORMERR => {}
                other => {
                    return Err(format!(
                        "expected FORMERR or no response, got {}",
                        describe_outcome(other)
                    ));
                }
            }
            alive(t)
        }
        (Expect::Drop, _) => {
            if !matches!(o, Outcome::NoResponse) {
                return Err(format!(
                    "expected no response, got {}",
                    describe_outcome(&o)
                ));
            }
            alive(t)
        }
    }
}

/// Runs every case against every target and panics with one report listing
/// every failure.
pub fn run_cases(servers: &Servers, cases: &[Case]) {
    let targets = servers.targets();
    let mut failures = vec![];
    let mut checks = 0;
    for t in &targets {
        for c in cases {
            checks += 1;
            if let Err(e) = check(c, t) {
                let note = match c.deviation(t.who, t.transport) {
                    Some(d) => format!(" [documented reference difference: {}]", d.why),
                    None => String::new(),
                };
                failures.push(format!(
                    "--- {} on {}: {}{note}\n{e}",
                    c.name,
                    t,
                    c.q.describe()
                ));
            }
        }
    }
    let names: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    eprintln!("{checks} checks ({} cases x {:?})", cases.len(), names);
    if !failures.is_empty() {
        panic!(
            "{} of {checks} checks failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
