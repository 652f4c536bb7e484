#![no_main]
//! IDX (raw/gzip) and NPY parsers: an error or data, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certquant::data::fuzz_parse(data);
});
