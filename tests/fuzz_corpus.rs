//! Replays the committed fuzzing corpora (`fuzz/corpus-committed/<target>/`) through the
//! same code the cargo-fuzz targets run (`fuzz/harness.rs`), on stable Rust, so that every
//! input the fuzzer kept (and every crash it found, once fixed) is checked by `cargo test`.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus-committed")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 100,
        "{}: only {} inputs",
        dir.display(),
        files.len()
    );
    files
}

/// Runs every input of `target`, naming the one that fails.
fn replay(target: &str, mut f: impl FnMut(&[u8])) {
    let files = corpus(target);
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&data)));
        assert!(r.is_ok(), "{target}: {} fails", file.display());
    }
    println!("{target}: {} inputs replayed", files.len());
}

#[test]
fn query_corpus() {
    let mut engine = harness::QueryEngine::new();
    replay("query", |d| engine.run(d));
}

#[test]
fn zone_file_corpus() {
    replay("zone_file", harness::zone_file);
}

#[test]
fn master_file_corpus() {
    replay("master_file", harness::master_file);
}
