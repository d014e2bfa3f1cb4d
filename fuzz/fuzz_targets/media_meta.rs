//! Fuzzes one parser that takes outside input; the properties are in `modgate::fuzzing::media_meta`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| modgate::fuzzing::media_meta(data));
