//! RFC 1035 master files: import into Roundel's TOML, export from it.
//!
//! `roundel import` reads a BIND/NSD/Knot-style zone file with a parser of our own
//! ([`lexer`] for the presentation format, [`reader`] for directives and entries,
//! [`generate`] for `$GENERATE`, [`rdata`] for record data) and writes an equivalent
//! Roundel zone file ([`convert`]), which it loads again and compares with the source
//! before printing it: anything Roundel cannot represent exactly is an error naming the
//! file and line, never a silent change. `roundel export` ([`export()`]) writes a zone as a
//! master file any other server can load.

pub mod convert;
pub mod dname;
pub mod export;
pub mod generate;
pub mod lexer;
pub mod rdata;
pub mod reader;

use std::fmt;
use std::path::Path;

pub use export::export;

use dname::DName;

/// A problem at one place of a master file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (an included one where the problem is there).
    pub file: String,
    /// 1-based line; 0 for the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.reason)
        } else {
            write!(f, "{}: {}", self.file, self.reason)
        }
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The master file has errors, or data Roundel zone files cannot express.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Problems(Vec<Problem>),
    /// The converted zone breaks a rule of Roundel zone files (a CNAME beside other data,
    /// missing glue, ...).
    #[error("{file}: the zone is not valid as a Roundel zone:\n{errors}")]
    Rejected {
        /// The master file.
        file: String,
        /// What Roundel's zone loader found in the converted text.
        errors: crate::zone::ZoneErrors,
    },
}

/// Converts the master file at `path` into Roundel zone-file text.
pub fn import_file(path: &Path, origin: Option<&str>) -> Result<String, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        file: path.display().to_string(),
        source,
    })?;
    import(&text, path, origin)
}

/// Converts master-file text (read from `path`, which `$INCLUDE` paths are relative to)
/// into Roundel zone-file text. `origin`, when given, is the zone's origin and the starting
/// `$ORIGIN`; otherwise the origin is the owner of the SOA record.
pub fn import(text: &str, path: &Path, origin: Option<&str>) -> Result<String, ImportError> {
    let origin = origin
        .map(|o| {
            let absolute = if o.ends_with('.') {
                o.to_owned()
            } else {
                format!("{o}.")
            };
            DName::parse(&absolute, None).map_err(|why| {
                ImportError::Problems(vec![Problem {
                    file: path.display().to_string(),
                    line: 0,
                    reason: format!("invalid --origin: {why}"),
                }])
            })
        })
        .transpose()?;
    let records = reader::read(path, text, origin.clone())?;
    convert::to_toml(path, records, origin)
}

#[cfg(test)]
mod tests;
