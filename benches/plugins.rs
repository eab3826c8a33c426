//! Criterion benches for exporter plugins: one collect = instantiate + run + check, for the
//! two example plugins and a trivial WAT plugin (pure overhead), with wasmtime's on-demand
//! and pooling instance allocators side by side. Run by benches/plugins.sh, which builds the
//! plugins and passes their directory in OBSD_PLUGIN_WASM_DIR.

use criterion::{Criterion, criterion_group, criterion_main};
use obsd::config::{GrantedDir, PluginConfig};
use obsd::exporter::plugins::output;
use obsd::exporter::plugins::sandbox::{Allocation, Sandbox};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn plugin(name: &str, file: PathBuf, args: &[&str], dirs: &[(&str, &str)]) -> PluginConfig {
    let mut c = PluginConfig::with_defaults(name, &file);
    c.args = args.iter().map(|a| a.to_string()).collect();
    c.read_only_dirs =
        dirs.iter().map(|(h, g)| GrantedDir { host: h.into(), guest: g.to_string() }).collect();
    c
}

fn collect(c: &mut Criterion) {
    let wasm = PathBuf::from(std::env::var("OBSD_PLUGIN_WASM_DIR").unwrap_or_else(|_| {
        panic!("set OBSD_PLUGIN_WASM_DIR to the built plugins (benches/plugins.sh does)")
    }));
    let cgroup = std::env::var("OBSD_BENCH_CGROUP").unwrap_or_else(|_| "/sys/fs/cgroup/unified".into());
    let plugins = [
        plugin("trivial", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/good.wat"), &[], &[]),
        plugin(
            "process",
            wasm.join("process_exporter.wasm"),
            &["obsd", "bash", "sshd", "cargo"],
            &[("/proc", "/proc")],
        ),
        plugin("units", wasm.join("systemd_units.wasm"), &["ssh.service"], &[(&cgroup, "/sys/fs/cgroup")]),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let builtin = BTreeSet::new();
    let mut g = c.benchmark_group("plugin_collect");
    g.measurement_time(Duration::from_secs(4)).sample_size(30);
    for (label, allocation) in [
        ("on_demand", Allocation::OnDemand),
        ("pooling", Allocation::Pooling { instances: 16, memory_bytes: 64 << 20 }),
    ] {
        let sandbox = Sandbox::new(allocation).unwrap();
        for p in &plugins {
            let compiled = sandbox.compile_file(&p.file).unwrap();
            // Fail loudly rather than time an error path.
            let first = runtime.block_on(sandbox.run(&compiled, p));
            let stdout = first.result.unwrap_or_else(|e| panic!("{}: {e}", p.name));
            output::validate(&p.name, &stdout, &builtin).unwrap();
            g.bench_function(format!("{}/{label}", p.name), |b| {
                b.iter(|| {
                    let run = runtime.block_on(sandbox.run(&compiled, p));
                    output::validate(&p.name, &run.result.unwrap(), &builtin).unwrap()
                })
            });
        }
    }
    g.finish();
    let sandbox = Sandbox::new(Allocation::OnDemand).unwrap();
    let mut g = c.benchmark_group("plugin_compile");
    g.measurement_time(Duration::from_secs(4)).sample_size(10);
    let bytes = std::fs::read(&plugins[1].file).unwrap();
    g.bench_function("process_exporter.wasm", |b| b.iter(|| sandbox.compile(&bytes).unwrap()));
    g.finish();
}

criterion_group!(benches, collect);
criterion_main!(benches);
