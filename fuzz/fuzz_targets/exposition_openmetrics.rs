#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obsd::fuzzing::exposition_openmetrics(data));
