#![no_main]

use std::sync::Once;

static QUIET_HOOK: Once = Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // obsd turns a panic inside the PromQL parser crate into a parse error (catch_unwind);
    // libFuzzer's panic hook would abort before that. A panic obsd does not catch still ends
    // the run: libfuzzer-sys aborts on any panic that unwinds out of this closure.
    QUIET_HOOK.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    obsd::fuzzing::promql(data)
});
