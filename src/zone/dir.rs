//! The zones directory: which entries are zone files, and which entries are errors.
//!
//! Every `*.toml` entry must be a readable regular file (directly or through a symbolic
//! link). A dangling or looping link, a directory, a FIFO or an entry that cannot be
//! examined is an error naming its path, never skipped: skipping it would drop that zone
//! from service while the reload reports success. Names starting with a dot are ignored
//! (editor lock and swap files such as Emacs' `.#zone.toml` links).

use std::path::{Path, PathBuf};

use super::ZoneError;

fn problem(path: &Path, reason: String) -> ZoneError {
    ZoneError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        key: String::new(),
        reason,
    }
}

/// Whether a directory entry's name makes it a zone file candidate.
pub(crate) fn is_candidate(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !hidden && path.extension().is_some_and(|e| e == "toml")
}

/// Why an entry that looks like a zone file cannot be one, if it cannot.
fn unusable(path: &Path) -> Option<String> {
    let link = std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    let target = || {
        std::fs::read_link(path)
            .map(|t| format!(" -> {}", t.display()))
            .unwrap_or_default()
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some("is a directory, not a zone file".into()),
        Ok(_) => Some("is not a regular file (a FIFO, socket or device?)".into()),
        Err(e) if link && e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "dangling symbolic link{}: its target does not exist",
            target()
        )),
        // ELOOP: too many levels of symbolic links.
        Err(e) if link && e.raw_os_error() == Some(40) => {
            Some(format!("symbolic link loop{}: {e}", target()))
        }
        Err(e) => Some(format!("cannot read{}: {e}", target())),
    }
}

/// The zone files of `dir`, sorted by name, or every problem with its entries.
pub fn zone_files(dir: &Path) -> Result<Vec<PathBuf>, Vec<ZoneError>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![problem(
            dir,
            format!("cannot read the zones directory: {e}"),
        )]
    })?;
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        let path = match entry {
            Ok(e) => e.path(),
            Err(e) => {
                errors.push(problem(
                    dir,
                    format!("cannot read an entry of the zones directory: {e}"),
                ));
                continue;
            }
        };
        if !is_candidate(&path) {
            continue;
        }
        match unusable(&path) {
            None => files.push(path),
            Some(why) => errors.push(problem(&path, why)),
        }
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.file.cmp(&b.file));
        return Err(errors);
    }
    files.sort();
    Ok(files)
}
