//! Response normalisation: a response reduced to the parts that must match,
//! with each section as a sorted multiset of canonical record texts.

use std::fmt;

use super::client::{Outcome, Q};
use super::wire::{self, Message};

/// A normalised response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normal {
    /// Whether the response id equals the query id.
    pub id_echoed: bool,
    pub opcode: u8,
    /// Full response code by name (extended codes included: BADVERS).
    pub rcode: String,
    /// Header flags, fixed order: `qr aa tc rd ra z ad cd`.
    pub flags: String,
    /// Questions exactly as sent back (case preserved): `name CLASS TYPE`.
    pub question: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    /// Without the OPT record (see `edns`).
    pub additional: Vec<String>,
    /// `None` when the response has no OPT record.
    pub edns: Option<String>,
}

/// Canonical text of an OPT record.
pub fn edns_text(
    version: u8,
    payload: u16,
    dnssec_ok: bool,
    z: u16,
    options: &[(u16, Vec<u8>)],
    owner: &str,
) -> String {
    let mut opts: Vec<String> = options
        .iter()
        .map(|(c, d)| match c {
            // Extended DNS Error (RFC 8914): INFO-CODE, then optional text.
            15 if d.len() >= 2 => {
                let code = u16::from_be_bytes([d[0], d[1]]);
                if d.len() > 2 {
                    format!("EDE:{code}:{:?}", String::from_utf8_lossy(&d[2..]))
                } else {
                    format!("EDE:{code}")
                }
            }
            _ => format!(
                "{c}:{}",
                d.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
        })
        .collect();
    opts.sort();
    let mut s = format!("version={version} payload={payload} do={}", dnssec_ok as u8);
    if z != 0 {
        s += &format!(" z={z:#x}");
    }
    if owner != "." {
        s += &format!(" owner={owner}");
    }
    s += &format!(" options=[{}]", opts.join(","));
    s
}

fn sorted(rs: &[wire::Record]) -> Vec<String> {
    let mut v: Vec<String> = rs.iter().map(|r| r.text()).collect();
    v.sort();
    v
}

pub fn normalise(m: &Message, query_id: Option<u16>) -> Normal {
    Normal {
        id_echoed: query_id.is_none_or(|id| id == m.id),
        opcode: m.opcode,
        rcode: wire::rcode_name(m.rcode()),
        flags: m.flags(),
        question: m
            .questions
            .iter()
            .map(|q| {
                format!(
                    "{} {} {}",
                    q.name,
                    wire::class_name(q.qclass),
                    wire::type_name(q.qtype)
                )
            })
            .collect(),
        answer: sorted(&m.answer),
        authority: sorted(&m.authority),
        additional: sorted(&m.additional),
        edns: m
            .opt
            .as_ref()
            .map(|o| edns_text(o.version, o.payload, o.dnssec_ok, o.z, &o.options, &o.owner)),
    }
}

impl Normal {
    /// What a correct authoritative answer to `q` looks like before the
    /// per-case details: id and question echoed, QR set, RD copied, AA/TC/RA/AD/CD
    /// clear, NOERROR, empty sections, and an OPT (version 0, payload 1232, DO
    /// copied, no options) exactly when the query had one.
    pub fn expected_for(q: &Q) -> Normal {
        Normal {
            id_echoed: true,
            opcode: q.opcode,
            rcode: "NOERROR".into(),
            flags: if q.rd { "qr rd".into() } else { "qr".into() },
            question: vec![format!(
                "{} {} {}",
                absolute(&q.name),
                wire::class_name(q.qclass),
                wire::type_name(q.qtype)
            )],
            answer: vec![],
            authority: vec![],
            additional: vec![],
            edns: q
                .edns
                .as_ref()
                .map(|e| edns_text(0, 1232, e.dnssec_ok, 0, &[], ".")),
        }
    }

    pub fn set_flag(&mut self, flag: &str, on: bool) {
        let order = ["qr", "aa", "tc", "rd", "ra", "z", "ad", "cd"];
        let mut have: Vec<&str> = self
            .flags
            .split_whitespace()
            .filter(|f| *f != flag)
            .collect();
        if on {
            have.push(flag);
        }
        have.sort_by_key(|f| order.iter().position(|o| o == f));
        self.flags = have.join(" ");
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.split_whitespace().any(|f| f == flag)
    }

    /// The same response with the record sections blanked: used for truncated
    /// (TC=1) UDP answers, whose partial content legitimately differs.
    pub fn without_sections(mut self) -> Normal {
        for s in [&mut self.answer, &mut self.authority, &mut self.additional] {
            s.clear();
        }
        self
    }
}

pub fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

impl fmt::Display for Normal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  opcode={} rcode={} flags=[{}] id_echoed={}",
            self.opcode, self.rcode, self.flags, self.id_echoed
        )?;
        writeln!(f, "  question: {:?}", self.question)?;
        for (n, s) in [
            ("answer", &self.answer),
            ("authority", &self.authority),
            ("additional", &self.additional),
        ] {
            writeln!(f, "  {n}:")?;
            for r in s.iter() {
                writeln!(f, "    {r}")?;
            }
        }
        write!(f, "  edns: {}", self.edns.as_deref().unwrap_or("(none)"))
    }
}

/// A field-by-field diff of two normalised responses (`None` when equal).
/// Sections are compared as multisets: `-` only in `a`, `+` only in `b`.
pub fn diff(a_name: &str, a: &Normal, b_name: &str, b: &Normal) -> Option<String> {
    if a == b {
        return None;
    }
    let mut out = format!("  (- {a_name}, + {b_name})\n");
    let mut field = |name: &str, x: String, y: String| {
        if x != y {
            out += &format!("  {name}: - {x}\n  {name}: + {y}\n");
        }
    };
    field(
        "id_echoed",
        a.id_echoed.to_string(),
        b.id_echoed.to_string(),
    );
    field("opcode", a.opcode.to_string(), b.opcode.to_string());
    field("rcode", a.rcode.clone(), b.rcode.clone());
    field("flags", format!("[{}]", a.flags), format!("[{}]", b.flags));
    field(
        "question",
        format!("{:?}", a.question),
        format!("{:?}", b.question),
    );
    field("edns", format!("{:?}", a.edns), format!("{:?}", b.edns));
    for (name, x, y) in [
        ("answer", &a.answer, &b.answer),
        ("authority", &a.authority, &b.authority),
        ("additional", &a.additional, &b.additional),
    ] {
        if x != y {
            out += &format!("  {name}:\n");
            let (mut only_x, mut only_y) = (x.clone(), y.clone());
            for r in y {
                if let Some(i) = only_x.iter().position(|e| e == r) {
                    only_x.remove(i);
                }
            }
            for r in x {
                if let Some(i) = only_y.iter().position(|e| e == r) {
                    only_y.remove(i);
                }
            }
            for r in only_x {
                out += &format!("    - {r}\n");
            }
            for r in only_y {
                out += &format!("    + {r}\n");
            }
        }
    }
    Some(out)
}

/// Short text for an outcome that is not a well-formed response.
pub fn describe_outcome(o: &Outcome) -> String {
    match o {
        Outcome::NoResponse => "no response".into(),
        Outcome::Response {
            raw,
            parsed: Err(e),
            ..
        } => format!("unparseable response ({} bytes): {}", raw.len(), e.0),
        Outcome::Response { parsed: Ok(m), .. } => format!("{}", normalise(m, None)),
    }
}
