#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obsd::fuzzing::otlp_json(data));
