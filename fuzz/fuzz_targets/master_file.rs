//! cargo-fuzz target `master_file`: see `fuzz/harness.rs`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::master_file(data);
});
