//! cargo-fuzz target `query`: see `fuzz/harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static ENGINE: std::sync::Mutex<Option<harness::QueryEngine>> = std::sync::Mutex::new(None);
    let mut engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    engine.get_or_insert_with(harness::QueryEngine::new).run(data);
});
