//! Reads master files into records: directives, owners, TTLs and classes.
//!
//! RFC 1035 section 5.1 with the usual extensions: `$TTL` (RFC 2308 section 4), BIND's TTL
//! units and `$GENERATE`. An omitted owner is the previous entry's, an omitted TTL is the
//! `$TTL` value or else the last one written, and the class may only be IN. `$INCLUDE`
//! paths are relative to the including file; the included file starts from the given
//! origin (or the current one) and the including file's origin is restored afterwards.

use std::path::{Path, PathBuf};

use super::dname::DName;
use super::generate;
use super::lexer::{Entry, Token, entries};
use super::rdata::{self, Data, is_type, ttl_value};
use super::{ImportError, Problem};

/// How deep `$INCLUDE` may nest (a file including itself is an error, not a hang).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    /// The file, as given or as the including file names it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl Loc {
    /// A problem at this place.
    pub fn problem(&self, reason: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            line: self.line,
            reason: reason.into(),
        }
    }
}

/// One record of the file.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where it is written.
    pub loc: Loc,
    /// Owner name.
    pub owner: DName,
    /// TTL in seconds.
    pub ttl: u32,
    /// The data.
    pub data: Data,
}

/// Reading state, shared across included files.
struct Reader {
    origin: Option<DName>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<DName>,
    records: Vec<Record>,
    problems: Vec<Problem>,
    depth: usize,
}

/// Reads `path` (text `text`); `origin` is the starting `$ORIGIN`. Every problem found is
/// returned, each with its file and line.
pub fn read(path: &Path, text: &str, origin: Option<DName>) -> Result<Vec<Record>, ImportError> {
    let mut r = Reader {
        origin,
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
        records: Vec::new(),
        problems: Vec::new(),
        depth: 0,
    };
    r.file(path, text);
    if r.problems.is_empty() {
        Ok(r.records)
    } else {
        Err(ImportError::Problems(r.problems))
    }
}

impl Reader {
    fn file(&mut self, path: &Path, text: &str) {
        let name = path.display().to_string();
        let entries = match entries(text) {
            Ok(e) => e,
            Err((line, reason)) => {
                self.problems.push(Problem {
                    file: name,
                    line,
                    reason,
                });
                return;
            }
        };
        for e in entries {
            let loc = Loc {
                file: name.clone(),
                line: e.line,
            };
            if let Err(reason) = self.entry(path, &loc, &e) {
                self.problems.push(loc.problem(reason));
            }
        }
    }

    fn entry(&mut self, path: &Path, loc: &Loc, e: &Entry) -> Result<(), String> {
        let first = &e.tokens[0];
        if !e.blank_owner && !first.quoted && first.text.starts_with('$') {
            return self.directive(path, loc, &first.text, &e.tokens[1..]);
        }
        self.record(loc, e)
    }

    fn directive(
        &mut self,
        path: &Path,
        loc: &Loc,
        name: &str,
        args: &[Token],
    ) -> Result<(), String> {
        match name.to_ascii_uppercase().as_str() {
            "$ORIGIN" => {
                let [o] = args else {
                    return Err("$ORIGIN takes one name".into());
                };
                self.origin = Some(DName::parse(&o.text, self.origin.as_ref())?);
                Ok(())
            }
            "$TTL" => {
                let [t] = args else {
                    return Err("$TTL takes one TTL".into());
                };
                self.default_ttl = Some(ttl_value(&t.text)?);
                Ok(())
            }
            "$INCLUDE" => self.include(path, args),
            "$GENERATE" => {
                for line in generate::expand(args)? {
                    let generated = entries(&line).map_err(|(_, why)| {
                        format!("$GENERATE made {line:?}, which does not read: {why}")
                    })?;
                    for g in generated {
                        if g.tokens[0].text.starts_with('$') {
                            return Err("$GENERATE cannot make directives".into());
                        }
                        self.record(loc, &g)
                            .map_err(|why| format!("$GENERATE made {line:?}: {why}"))?;
                    }
                }
                Ok(())
            }
            other => Err(format!(
                "unknown directive {other} (known: $ORIGIN, $TTL, $INCLUDE, $GENERATE)"
            )),
        }
    }

    fn include(&mut self, path: &Path, args: &[Token]) -> Result<(), String> {
        let (file, origin) = match args {
            [f] => (f, None),
            [f, o] => (f, Some(DName::parse(&o.text, self.origin.as_ref())?)),
            _ => return Err("$INCLUDE takes a file name and optionally an origin".into()),
        };
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(format!(
                "$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
            ));
        }
        let bytes = super::lexer::decode(&file.text)?;
        let rel = PathBuf::from(String::from_utf8_lossy(&bytes).into_owned());
        let target = if rel.is_absolute() {
            rel
        } else {
            path.parent().unwrap_or(Path::new(".")).join(rel)
        };
        let text = std::fs::read_to_string(&target)
            .map_err(|e| format!("$INCLUDE {}: {e}", target.display()))?;
        let saved_origin = self.origin.clone();
        if origin.is_some() {
            self.origin = origin;
        }
        self.depth += 1;
        self.file(&target, &text);
        self.depth -= 1;
        self.origin = saved_origin;
        Ok(())
    }

    fn record(&mut self, loc: &Loc, e: &Entry) -> Result<(), String> {
        let mut rest = &e.tokens[..];
        let owner = if e.blank_owner {
            self.last_owner
                .clone()
                .ok_or("the first record has no owner name (the line starts with a blank)")?
        } else {
            let t = &rest[0];
            rest = &rest[1..];
            if t.quoted {
                return Err(format!("owner name {:?} cannot be quoted", t.text));
            }
            DName::parse(&t.text, self.origin.as_ref())?
        };
        self.last_owner = Some(owner.clone());
        let mut ttl = None;
        let mut class = false;
        while let Some(t) = rest.first() {
            if t.quoted || is_type(&t.text) {
                break;
            }
            if t.text.starts_with(|c: char| c.is_ascii_digit()) && ttl.is_none() {
                ttl = Some(ttl_value(&t.text)?);
            } else if is_class(&t.text) && !class {
                if !t.text.eq_ignore_ascii_case("IN") {
                    return Err(format!("class {}: Roundel serves class IN only", t.text));
                }
                class = true;
            } else {
                return Err(format!(
                    "{:?} is not a TTL, class or known record type",
                    t.text
                ));
            }
            rest = &rest[1..];
        }
        let Some(rtype) = rest.first() else {
            return Err("no record type".into());
        };
        let rtype = rtype.text.to_ascii_uppercase();
        if let Some(t) = ttl {
            self.last_ttl = Some(t);
        }
        let ttl = ttl
            .or(self.default_ttl)
            .or(self.last_ttl)
            .ok_or("no TTL: give one on the record or a $TTL line before it")?;
        let data = rdata::parse(&rtype, &rest[1..], self.origin.as_ref())?;
        self.records.push(Record {
            loc: loc.clone(),
            owner,
            ttl,
            data,
        });
        Ok(())
    }
}

/// Whether `t` is a class mnemonic.
fn is_class(t: &str) -> bool {
    let u = t.to_ascii_uppercase();
    matches!(u.as_str(), "IN" | "CH" | "CS" | "HS" | "NONE" | "ANY")
        || u.strip_prefix("CLASS")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
