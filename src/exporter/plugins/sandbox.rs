//! The wasmtime side of plugins: one engine, modules compiled once, and a fresh sandboxed
//! instance per collect.
//!
//! What a plugin gets is exactly WASI preview 1 with: its argv and the env values the config
//! grants, the granted directories read-only, an empty stdin, stdout and stderr captured into
//! bounded buffers, clocks and random. Preview 1 has no call that creates a socket, and no
//! other import module is linked, so there is no network. Limits: linear memory (a
//! `ResourceLimiter`), a fuel budget (instructions), and a wall-clock timeout. Epoch ticks make
//! running wasm yield to the async runtime every `TICK`, so the timeout also fires on a tight
//! loop. A host call blocked in the kernel (a FIFO in a granted directory) cannot be
//! interrupted; `Plugins::collect` and `plugin check` stop waiting for it at the timeout and
//! report it.

use crate::config::PluginConfig;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{
    Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig,
    ResourceLimiter, Store, Trap,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// How often running wasm yields; also the granularity of the wall-clock check.
const TICK: Duration = Duration::from_millis(5);
/// Enough stderr for a panic message and a backtrace line or two.
const STDERR_CAPACITY: usize = 16 * 1024;
const MAX_TABLE_ELEMENTS: usize = 1_000_000;
const WASI_MODULE: &str = "wasi_snapshot_preview1";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    #[error("cannot load: {0}")]
    Load(String),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("used up its fuel budget of {0}")]
    Cpu(u64),
    #[error("did not finish within {0:?}")]
    Timeout(Duration),
    #[error("tried to grow its memory beyond the {0} byte limit")]
    Memory(u64),
    #[error("exited with status {0}")]
    Exit(i32),
    #[error("wrote more than {0} bytes to stdout")]
    OutputTooLarge(usize),
}

impl Failure {
    /// The `reason` label of obsd_plugin_errors_total.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Load(_) => "load",
            Failure::Trap(_) => "trap",
            Failure::Cpu(_) => "cpu",
            Failure::Timeout(_) => "timeout",
            Failure::Memory(_) => "memory",
            Failure::Exit(_) => "exit",
            Failure::OutputTooLarge(_) => "output_too_large",
        }
    }
}

/// One collect's result: what the plugin printed (stdout only on success) and what it cost.
#[derive(Debug)]
pub struct Run {
    pub result: Result<Vec<u8>, Failure>,
    pub stderr: Vec<u8>,
    pub fuel_used: u64,
    pub elapsed: Duration,
}

struct State {
    wasi: WasiP1Ctx,
    limits: Limits,
}

struct Limits {
    memory_bytes: usize,
    hit: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            // An error (not `Ok(false)`) traps at once: guest allocators that ignore a failed
            // memory.grow would otherwise carry on into undefined behaviour.
            self.hit = true;
            return Err(wasmtime::Error::msg("plugin memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// A compiled, linked plugin, ready to instantiate.
#[derive(Clone)]
pub struct Compiled {
    pre: InstancePre<State>,
}

/// How instances get their memory: fresh mappings each time (on-demand) or slots reserved up
/// front and reused (pooling). benches/plugins.sh measures both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    OnDemand,
    /// Slots for this many concurrent instances of at most this many bytes of memory.
    Pooling {
        instances: u32,
        memory_bytes: u64,
    },
}

pub struct Sandbox {
    engine: Engine,
    linker: Arc<Linker<State>>,
}

impl Sandbox {
    pub fn new(allocation: Allocation) -> Result<Sandbox, Failure> {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true).epoch_interruption(true);
        if let Allocation::Pooling { instances, memory_bytes } = allocation {
            let mut pool = PoolingAllocationConfig::new();
            pool.total_core_instances(instances)
                .total_memories(instances)
                .total_tables(instances * 4)
                .max_memory_size(memory_bytes as usize);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(|e| Failure::Load(format!("wasmtime engine: {e}")))?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut State| &mut s.wasi)
            .map_err(|e| Failure::Load(format!("linking WASI: {e}")))?;
        spawn_ticker(&engine);
        Ok(Sandbox { engine, linker: Arc::new(linker) })
    }

    /// Compiles a module (binary or WAT text) and checks it is a plugin: a WASI command that
    /// imports nothing but WASI preview 1.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, Failure> {
        let module = Module::new(&self.engine, bytes).map_err(|e| Failure::Load(format!("{e:#}")))?;
        for import in module.imports() {
            if import.module() != WASI_MODULE {
                return Err(Failure::Load(format!(
                    "imports {}::{}, but a plugin may import only {WASI_MODULE}",
                    import.module(),
                    import.name()
                )));
            }
        }
        let has_start = module.exports().any(|e| e.name() == "_start" && e.ty().func().is_some());
        if !has_start {
            return Err(Failure::Load("exports no _start function (not a WASI command module)".into()));
        }
        // Fails on a WASI function this host lacks (WasmEdge's sock_open, for one).
        let pre = self.linker.instantiate_pre(&module).map_err(|e| Failure::Load(format!("{e:#}")))?;
        Ok(Compiled { pre })
    }

    pub fn compile_file(&self, path: &Path) -> Result<Compiled, Failure> {
        let bytes = std::fs::read(path).map_err(|e| Failure::Load(format!("{}: {e}", path.display())))?;
        self.compile(&bytes)
    }

    /// Runs one collect: a new instance, `_start`, and the captured stdout.
    pub async fn run(&self, compiled: &Compiled, config: &PluginConfig) -> Run {
        let started = Instant::now();
        let stdout = MemoryOutputPipe::new(config.max_output_bytes);
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        // File calls run inline instead of hopping to tokio's blocking pool per call: 4x
        // faster for the process plugin (benches/plugins.sh). The caller runs a collect on a
        // blocking thread, so a call stuck in the kernel holds that thread, not a worker.
        wasi.allow_blocking_current_thread(true);
        wasi.arg(&config.name).args(&config.args);
        wasi.env("OBSD_PLUGIN_INTERFACE", super::output::INTERFACE_VERSION.to_string());
        for (k, v) in &config.env {
            wasi.env(k, v);
        }
        for dir in &config.read_only_dirs {
            if let Err(e) = wasi.preopened_dir(&dir.host, &dir.guest, FsPerms::ReadOnly) {
                let failure = Failure::Load(format!("granting {}: {e}", dir.host.display()));
                return Run {
                    result: Err(failure),
                    stderr: Vec::new(),
                    fuel_used: 0,
                    elapsed: started.elapsed(),
                };
            }
        }
        let limits =
            Limits { memory_bytes: usize::try_from(config.memory_limit).unwrap_or(usize::MAX), hit: false };
        let mut store = Store::new(&self.engine, State { wasi: wasi.build_p1(), limits });
        store.limiter(|s| &mut s.limits);
        let fuel_set = store.set_fuel(config.fuel).is_ok();
        store.epoch_deadline_async_yield_and_update(1);
        let pre = compiled.pre.clone();
        let outcome = tokio::time::timeout(config.timeout, async {
            let instance = pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        })
        .await;
        let fuel_used = if fuel_set { config.fuel.saturating_sub(store.get_fuel().unwrap_or(0)) } else { 0 };
        let memory_hit = store.data().limits.hit;
        drop(store);
        let out = stdout.contents();
        let result = match outcome {
            _ if out.len() >= config.max_output_bytes => {
                Err(Failure::OutputTooLarge(config.max_output_bytes))
            }
            Err(_) => Err(Failure::Timeout(config.timeout)),
            Ok(Ok(())) => Ok(out.to_vec()),
            Ok(Err(e)) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => Ok(out.to_vec()),
                Some(I32Exit(code)) => Err(Failure::Exit(*code)),
                None if memory_hit => Err(Failure::Memory(config.memory_limit)),
                None => match e.downcast_ref::<Trap>() {
                    Some(Trap::OutOfFuel) => Err(Failure::Cpu(config.fuel)),
                    Some(Trap::Interrupt) => Err(Failure::Timeout(config.timeout)),
                    Some(trap) => Err(Failure::Trap(trap.to_string())),
                    // The outermost context is a wasm backtrace; the cause says what happened.
                    None => Err(Failure::Trap(first_line(&e.root_cause().to_string()))),
                },
            },
        };
        Run { result, stderr: stderr.contents().to_vec(), fuel_used, elapsed: started.elapsed() }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    line.chars().take(300).collect()
}

/// Advances the engine's epoch every tick for as long as the engine lives.
fn spawn_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("obsd-plugin-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        }
    });
    if let Err(e) = spawned {
        // Without ticks a looping plugin is still stopped by its fuel budget.
        tracing::warn!(error = %e, "cannot start the plugin epoch thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PluginConfig;

    fn config(fuel: u64) -> PluginConfig {
        let mut c = PluginConfig::with_defaults("t", Path::new("t.wat"));
        c.fuel = fuel;
        c.timeout = Duration::from_secs(2);
        c.memory_limit = 2 << 20;
        c
    }

    const PRINT: &str = r##"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "# obsd-plugin-interface 1\nx 1\n")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 30))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"##;

    async fn run(wat: &str, fuel: u64) -> Run {
        let sandbox = Sandbox::new(Allocation::OnDemand).unwrap();
        let compiled = match sandbox.compile(wat.as_bytes()) {
            Ok(c) => c,
            Err(f) => {
                return Run { result: Err(f), stderr: Vec::new(), fuel_used: 0, elapsed: Duration::ZERO };
            }
        };
        sandbox.run(&compiled, &config(fuel)).await
    }

    #[tokio::test]
    async fn captures_stdout_and_counts_fuel() {
        let r = run(PRINT, 1_000_000).await;
        assert_eq!(r.result.unwrap(), b"# obsd-plugin-interface 1\nx 1\n");
        assert!(r.fuel_used > 0 && r.fuel_used < 1_000_000);
    }

    #[tokio::test]
    async fn classifies_failures() {
        let looping = r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#;
        assert_eq!(run(looping, 5_000_000).await.result, Err(Failure::Cpu(5_000_000)));
        assert_eq!(run(looping, u64::MAX).await.result, Err(Failure::Timeout(Duration::from_secs(2))));
        let grow = r#"(module (memory (export "memory") 1)
            (func (export "_start") (loop (drop (memory.grow (i32.const 16))) (br 0))))"#;
        assert_eq!(run(grow, u64::MAX).await.result, Err(Failure::Memory(2 << 20)));
        let trap = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;
        assert!(matches!(run(trap, 1000).await.result, Err(Failure::Trap(m)) if m.contains("unreachable")));
        let exit = r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
            (memory (export "memory") 1) (func (export "_start") (call $e (i32.const 3))))"#;
        assert_eq!(run(exit, 1000).await.result, Err(Failure::Exit(3)));
    }

    #[tokio::test]
    async fn rejects_foreign_imports_and_non_commands() {
        let foreign = r#"(module (import "env" "connect" (func)) (memory (export "memory") 1) (func (export "_start")))"#;
        assert!(
            matches!(run(foreign, 1000).await.result, Err(Failure::Load(m)) if m.contains("env::connect"))
        );
        let sock = r#"(module (import "wasi_snapshot_preview1" "sock_open" (func (param i32 i32 i32) (result i32)))
            (memory (export "memory") 1) (func (export "_start")))"#;
        assert!(matches!(run(sock, 1000).await.result, Err(Failure::Load(m)) if m.contains("sock_open")));
        let reactor = r#"(module (memory (export "memory") 1) (func (export "collect")))"#;
        assert!(matches!(run(reactor, 1000).await.result, Err(Failure::Load(m)) if m.contains("_start")));
    }
}
