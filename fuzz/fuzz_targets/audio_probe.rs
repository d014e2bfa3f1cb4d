//! Fuzzes one parser that takes outside input; the properties are in `modgate::fuzzing::audio_probe`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| modgate::fuzzing::audio_probe(data));
