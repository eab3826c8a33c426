//! Replays every committed fuzz input on the stable toolchain: the seed corpora under
//! `fuzz/corpus/<target>/` and every crash the fuzzers found, kept under
//! `fuzz/regressions/<target>/`. `scripts/fuzz` runs the same entries under libFuzzer.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// The fuzzers run on the main thread's 8 MiB stack; so do these.
fn on_fuzzer_stack(f: impl FnOnce() + Send + 'static) {
    let handle = std::thread::Builder::new().stack_size(8 << 20).spawn(f).expect("spawn");
    if let Err(panic) = handle.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn every_target_has_seeds_and_every_committed_input_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let declared = std::fs::read_to_string(root.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, entry) in obsd::fuzzing::TARGETS {
        assert!(
            declared.contains(&format!("name = \"{name}\"")),
            "{name} is not a fuzz target in fuzz/Cargo.toml"
        );
        assert!(
            root.join("fuzz_targets").join(format!("{name}.rs")).is_file(),
            "fuzz/fuzz_targets/{name}.rs"
        );
        let seeds = inputs(&root.join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seed");
        for path in seeds.into_iter().chain(inputs(&root.join("regressions").join(name))) {
            let data = std::fs::read(&path).expect("read input");
            let entry = *entry;
            on_fuzzer_stack(move || entry(&data));
        }
    }
}

/// Seeds that do not parse only teach the fuzzer the error paths: the peers' seeds must parse.
#[test]
fn peer_seeds_are_valid_inputs() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let read = |p: &str| std::fs::read(corpus.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let rw = obsd::remote_write::decode(&read("remote_write/snappy-request"), &Default::default())
        .expect("remote write seed");
    assert_eq!(rw.timeseries.len(), 2);
    let otlp =
        ExportTraceServiceRequest::decode(read("otlp_protobuf/sdk-spans").as_slice()).expect("OTLP seed");
    assert_eq!(obsd::fuzzing::otlp_span_count(&otlp), 2);
    let json: ExportTraceServiceRequest =
        serde_json::from_slice(&read("otlp_json/sdk-spans.json")).expect("OTLP/JSON seed");
    assert_eq!(obsd::fuzzing::otlp_span_count(&json), 2);
    for t in ["jaeger_thrift_compact", "jaeger_thrift_binary"] {
        assert_eq!(obsd::fuzzing::jaeger_spans(t, &read(&format!("{t}/collector-batch"))), Some(2), "{t}");
        assert_eq!(obsd::fuzzing::jaeger_spans(t, &read(&format!("{t}/agent-emit-batch"))), Some(2), "{t}");
    }
    let text = String::from_utf8(read("exposition_text/families")).unwrap();
    assert!(obsd::exposition::parse_exposition(&text, obsd::exposition::Format::Text).is_ok());
    let om = String::from_utf8(read("exposition_openmetrics/families")).unwrap();
    assert!(obsd::exposition::parse_exposition(&om, obsd::exposition::Format::OpenMetrics).is_ok());
}
