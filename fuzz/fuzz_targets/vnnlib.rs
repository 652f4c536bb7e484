#![no_main]
//! VNN-LIB reader: a query or an error naming the line, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    certquant::vnnlib::fuzz_parse(data);
});
