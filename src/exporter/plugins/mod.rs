//! WASM plugins of the exporter role: `.wasm` files named by `[[exporter.plugin]]`, compiled
//! once at load, run in a fresh sandbox per scrape, their output checked and merged into
//! `/metrics`. A failing plugin reports `obsd_plugin_up{plugin} 0` and counts
//! `obsd_plugin_errors_total{plugin,reason}`; nothing else in the scrape changes.
//! plugins/README.md is the plugin author's side of the interface.

pub mod output;
pub mod sandbox;

use crate::config::PluginConfig;
use crate::exposition::MetricFamily;
use sandbox::{Allocation, Compiled, Failure, Sandbox};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long past its timeout a collect stuck in a host call is waited for before the scrape
/// goes on without it.
const GRACE: Duration = Duration::from_secs(1);

/// A configured plugin and its compiled module (or why it could not be loaded).
pub struct Plugin {
    pub config: PluginConfig,
    module: Result<Compiled, Failure>,
    digest: [u8; 16],
    /// Collects of this module still on a blocking thread, a stuck one included. Kept across
    /// a reload that keeps the module, so a stuck plugin cannot take a thread per scrape.
    running: Arc<AtomicUsize>,
}

/// Collects of one plugin that may run at once: room for a few scrapers (HA replicas) at the
/// same moment, while a plugin stuck in a host call holds at most this many of tokio's
/// blocking threads, which every role shares.
const MAX_RUNNING_COLLECTS: usize = 4;

/// One plugin's part of a scrape.
pub struct Collected {
    pub name: String,
    pub families: Result<Vec<MetricFamily>, (&'static str, String)>,
    pub duration: Duration,
    pub fuel_used: u64,
}

/// The loaded plugins and the engine they run on. Swapped whole on reload.
pub struct Plugins {
    sandbox: Arc<Sandbox>,
    plugins: Vec<Arc<Plugin>>,
    errors: Arc<Mutex<BTreeMap<(String, &'static str), u64>>>,
}

fn digest(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(bytes).into()
}

impl Plugins {
    /// Creates the engine (on-demand allocation: see benches/plugins.sh) and loads `configs`.
    pub fn new(configs: &[PluginConfig]) -> Result<Plugins, Failure> {
        let sandbox = Arc::new(Sandbox::new(Allocation::OnDemand)?);
        let plugins = configs.iter().map(|c| Arc::new(load(&sandbox, c, &[]))).collect();
        Ok(Plugins { sandbox, plugins, errors: Arc::new(Mutex::new(BTreeMap::new())) })
    }

    /// A new set for a reloaded config: a file whose bytes did not change keeps its compiled
    /// module, a changed or new file is compiled, and error counters carry over.
    pub fn reload(&self, configs: &[PluginConfig]) -> Plugins {
        let plugins = configs.iter().map(|c| Arc::new(load(&self.sandbox, c, &self.plugins))).collect();
        Plugins { sandbox: self.sandbox.clone(), plugins, errors: self.errors.clone() }
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Runs every plugin at once and checks each output; `builtin` are family names the
    /// plugins may not use (obsd's own; `families` checks the collectors' names later).
    pub async fn collect(&self, builtin: &BTreeSet<String>) -> Vec<Collected> {
        let handle = tokio::runtime::Handle::current();
        let mut tasks = Vec::new();
        for plugin in &self.plugins {
            if plugin.running.fetch_add(1, Ordering::AcqRel) >= MAX_RUNNING_COLLECTS {
                plugin.running.fetch_sub(1, Ordering::AcqRel);
                tasks.push(None);
                continue;
            }
            let slot = super::InFlight(plugin.running.clone());
            let plugin = plugin.clone();
            let sandbox = self.sandbox.clone();
            let builtin = builtin.clone();
            let handle = handle.clone();
            // One blocking thread per collect: the plugin's file calls run inline on it, and a
            // call that never returns costs that thread, not the scrape (see `GRACE`).
            let limit = plugin.config.timeout + GRACE;
            let run = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                handle.block_on(async move { collect_one(&sandbox, &plugin, &builtin).await })
            });
            tasks.push(Some(tokio::spawn(async move { tokio::time::timeout(limit, run).await })));
        }
        let mut out = Vec::new();
        for (task, plugin) in tasks.into_iter().zip(&self.plugins) {
            let failed = |reason: &'static str, message: String| Collected {
                name: plugin.config.name.clone(),
                families: Err((reason, message)),
                duration: Duration::ZERO,
                fuel_used: 0,
            };
            let Some(task) = task else {
                out.push(failed(
                    "busy",
                    format!(
                        "{MAX_RUNNING_COLLECTS} earlier collects are still running (blocked in a host call?)"
                    ),
                ));
                continue;
            };
            out.push(match task.await {
                Ok(Ok(Ok(c))) => c,
                Ok(Err(_)) => {
                    failed("timeout", format!("still blocked in a host call {:?} after its timeout", GRACE))
                }
                Ok(Ok(Err(e))) | Err(e) => failed("trap", format!("collect task failed: {e}")),
            });
        }
        out
    }

    /// The accepted plugin families plus obsd_plugin_up, _errors_total,
    /// _collect_duration_seconds and _fuel_consumed. A plugin family that the collectors
    /// (`taken`: a textfile, say) or an earlier plugin in config order already export
    /// rejects that plugin's whole output.
    pub fn families(&self, collected: Vec<Collected>, taken: &BTreeSet<String>) -> Vec<MetricFamily> {
        let mut up = MetricFamily::gauge(
            "obsd_plugin_up",
            "1 if the plugin's last collect succeeded and its output was accepted.",
        );
        let mut duration = MetricFamily::gauge(
            "obsd_plugin_collect_duration_seconds",
            "Time the plugin's last collect took, instantiation and checks included.",
        );
        let mut fuel = MetricFamily::gauge(
            "obsd_plugin_fuel_consumed",
            "Fuel (roughly wasm instructions) the plugin's last collect used.",
        );
        let mut errors =
            MetricFamily::counter("obsd_plugin_errors_total", "Failed plugin collects by reason.");
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::new();
        for mut c in collected {
            if let Ok(families) = &c.families {
                let clash = families.iter().find_map(|f| {
                    if taken.contains(&f.name) {
                        Some((f.name.clone(), "the exporter's collectors".to_string()))
                    } else {
                        owners.get(&f.name).map(|o| (f.name.clone(), format!("plugin {o:?}")))
                    }
                });
                if let Some((family, owner)) = clash {
                    let err = output::OutputError::Collision(family, owner);
                    c.families = Err((err.reason(), err.to_string()));
                }
            }
            let name = c.name.as_str();
            up.add(&[("plugin", name)], if c.families.is_ok() { 1.0 } else { 0.0 });
            duration.add(&[("plugin", name)], c.duration.as_secs_f64());
            fuel.add(&[("plugin", name)], c.fuel_used as f64);
            match c.families {
                Ok(families) => {
                    for f in &families {
                        owners.insert(f.name.clone(), c.name.clone());
                    }
                    out.extend(families);
                }
                Err((reason, message)) => {
                    tracing::warn!(plugin = %c.name, reason, error = %message, "plugin collect failed");
                    if let Ok(mut errors) = self.errors.lock() {
                        *errors.entry((c.name.clone(), reason)).or_insert(0) += 1;
                    }
                }
            }
        }
        if let Ok(counts) = self.errors.lock() {
            for ((plugin, reason), n) in counts.iter() {
                if self.plugins.iter().any(|p| &p.config.name == plugin) {
                    errors.add(&[("plugin", plugin.as_str()), ("reason", reason)], *n as f64);
                }
            }
        }
        out.extend([up, duration, fuel, errors]);
        out
    }
}

fn load(sandbox: &Sandbox, config: &PluginConfig, previous: &[Arc<Plugin>]) -> Plugin {
    let bytes = match std::fs::read(&config.file) {
        Ok(b) => b,
        Err(e) => {
            let failure = Failure::Load(format!("{}: {e}", config.file.display()));
            tracing::error!(plugin = %config.name, error = %failure, "plugin not loaded");
            return Plugin {
                config: config.clone(),
                module: Err(failure),
                digest: [0; 16],
                running: Arc::default(),
            };
        }
    };
    let digest = digest(&bytes);
    if let Some(same) = previous.iter().find(|p| p.digest == digest && p.module.is_ok()) {
        return Plugin {
            config: config.clone(),
            module: same.module.clone(),
            digest,
            running: same.running.clone(),
        };
    }
    let started = std::time::Instant::now();
    let module = sandbox.compile(&bytes);
    match &module {
        Ok(_) => {
            tracing::info!(plugin = %config.name, file = %config.file.display(), compile_ms = started.elapsed().as_millis() as u64, "plugin loaded")
        }
        Err(e) => {
            tracing::error!(plugin = %config.name, file = %config.file.display(), error = %e, "plugin not loaded")
        }
    }
    Plugin { config: config.clone(), module, digest, running: Arc::default() }
}

async fn collect_one(sandbox: &Sandbox, plugin: &Plugin, builtin: &BTreeSet<String>) -> Collected {
    let name = plugin.config.name.clone();
    let compiled = match &plugin.module {
        Ok(c) => c,
        Err(f) => {
            return Collected {
                name,
                families: Err((f.reason(), f.to_string())),
                duration: Duration::ZERO,
                fuel_used: 0,
            };
        }
    };
    let run = sandbox.run(compiled, &plugin.config).await;
    log_stderr(&name, &run.stderr, run.result.is_err());
    let families = match run.result {
        Err(f) => Err((f.reason(), f.to_string())),
        Ok(stdout) => output::validate(&name, &stdout, builtin).map_err(|e| (e.reason(), e.to_string())),
    };
    Collected { name, families, duration: run.elapsed, fuel_used: run.fuel_used }
}

/// A plugin's stderr goes to obsd's log: at warn when the collect failed (it usually says
/// why), at debug otherwise.
fn log_stderr(plugin: &str, stderr: &[u8], failed: bool) {
    if stderr.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim_end();
    if failed {
        tracing::warn!(plugin, stderr = %text, "plugin stderr");
    } else {
        tracing::debug!(plugin, stderr = %text, "plugin stderr");
    }
}

/// `obsd plugin check`: loads one plugin, runs one collect under the sandbox and checks the
/// output. Ok carries the output as it would appear on `/metrics`; Err says why not.
///
/// The collect runs as `Plugins::collect` runs it, on a thread of its own that is abandoned
/// `GRACE` after the plugin's timeout: a host call that blocks its thread (WASI's `poll_oneoff`
/// on one relative clock is a plain thread sleep, a FIFO read blocks in the kernel) never
/// returns to the async timeout inside `Sandbox::run`. The thread has its own runtime, so
/// neither the caller's runtime nor the process waits for it.
pub async fn check(config: &PluginConfig) -> Result<(String, Collected), String> {
    let sandbox = Sandbox::new(Allocation::OnDemand).map_err(|e| e.to_string())?;
    let compiled =
        sandbox.compile_file(&config.file).map_err(|e| format!("rejected ({}): {e}", e.reason()))?;
    let started = std::time::Instant::now();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run_config = config.clone();
    std::thread::Builder::new()
        .name("obsd-plugin-check".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let run = runtime
                .map(|rt| rt.block_on(sandbox.run(&compiled, &run_config)))
                .map_err(|e| format!("cannot start the plugin's runtime: {e}"));
            let _ = tx.send(run);
        })
        .map_err(|e| format!("cannot start the plugin's thread: {e}"))?;
    let builtin = super::builtin_family_names();
    let (stderr, families, duration, fuel_used) =
        match tokio::time::timeout(config.timeout + GRACE, rx).await {
            Ok(Ok(run)) => {
                let run = run?;
                let families = match run.result {
                    Err(f) => Err((f.reason(), f.to_string())),
                    Ok(stdout) => output::validate(&config.name, &stdout, &builtin)
                        .map_err(|e| (e.reason(), e.to_string())),
                };
                (
                    String::from_utf8_lossy(&run.stderr).trim_end().to_string(),
                    families,
                    run.elapsed,
                    run.fuel_used,
                )
            }
            Ok(Err(_)) => return Err("the plugin's thread ended without a result".into()),
            Err(_) => {
                let failure = Failure::Timeout(config.timeout);
                let message = format!("{failure}: still blocked in a host call {GRACE:?} after its timeout");
                (String::new(), Err((failure.reason(), message)), started.elapsed(), 0)
            }
        };
    Ok((stderr, Collected { name: config.name.clone(), families, duration, fuel_used }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn family(name: &str) -> MetricFamily {
        MetricFamily::gauge(name, "h").with_value(1.0)
    }

    fn collected(name: &str, families: Vec<MetricFamily>) -> Collected {
        Collected { name: name.into(), families: Ok(families), duration: Duration::ZERO, fuel_used: 0 }
    }

    #[test]
    fn collisions_reject_the_later_plugin_and_are_counted() {
        let configs: Vec<PluginConfig> = ["a", "b", "c"]
            .iter()
            .map(|n| PluginConfig::with_defaults(n, Path::new("/nonexistent/x.wasm")))
            .collect();
        let plugins = Plugins::new(&configs).unwrap();
        let taken: BTreeSet<String> = ["backup_ok".to_string()].into();
        for round in 1..=2 {
            let out = plugins.families(
                vec![
                    collected("a", vec![family("shared")]),
                    collected("b", vec![family("mine"), family("shared")]),
                    collected("c", vec![family("backup_ok")]),
                ],
                &taken,
            );
            let get = |name: &str| out.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name}"));
            let value = |name: &str, labels: &[(&str, &str)]| {
                let labels: Vec<(String, String)> =
                    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                get(name).samples.iter().find(|s| s.labels == labels).map(|s| s.value)
            };
            assert_eq!(value("obsd_plugin_up", &[("plugin", "a")]), Some(1.0));
            assert_eq!(value("obsd_plugin_up", &[("plugin", "b")]), Some(0.0));
            assert_eq!(value("obsd_plugin_up", &[("plugin", "c")]), Some(0.0));
            assert_eq!(out.iter().filter(|f| f.name == "shared").count(), 1);
            assert!(!out.iter().any(|f| f.name == "mine" || f.name == "backup_ok"), "rejected whole");
            let errors = [("plugin", "b"), ("reason", "collision")];
            assert_eq!(value("obsd_plugin_errors_total", &errors), Some(round as f64));
            assert_eq!(value("obsd_plugin_errors_total", &[("plugin", "a"), ("reason", "collision")]), None);
        }
        // A reload drops counters of plugins no longer configured from the output.
        let reloaded = plugins.reload(&configs[..1]);
        let out = reloaded.families(vec![collected("a", Vec::new())], &taken);
        let errors = out.iter().find(|f| f.name == "obsd_plugin_errors_total").unwrap();
        assert!(errors.samples.is_empty(), "{:?}", errors.samples);
    }
}
