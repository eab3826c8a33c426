//! obsd plugin: systemd units from the cgroup v2 tree systemd keeps under /sys/fs/cgroup —
//! whether each unit runs, and what it uses (CPU, memory, swap, tasks, I/O, OOM kills,
//! pressure stall time). No D-Bus: a plugin has no sockets, and cgroupfs holds the answer.
//!
//! Arguments: units that must be running (`ssh.service`); each is reported, with
//! `systemd_unit_active 0` when its cgroup is missing or empty, so "is it running" is one
//! alert. Every other unit of the types in `UNIT_TYPES` (default `service`) found in the tree
//! is reported too. Grants: the cgroup root read-only. Env: `CGROUP_ROOT` (default
//! /sys/fs/cgroup; /sys/fs/cgroup/unified on hybrid hosts), `UNIT_TYPES` (comma-separated).

use obsd_plugin::Kind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Default)]
struct Unit {
    active: bool,
    found: bool,
    tasks: Option<f64>,
    memory: Option<f64>,
    memory_peak: Option<f64>,
    swap: Option<f64>,
    user_seconds: Option<f64>,
    system_seconds: Option<f64>,
    oom_kills: Option<f64>,
    read_bytes: Option<f64>,
    write_bytes: Option<f64>,
    /// (resource, kind) → seconds stalled.
    pressure: Vec<(&'static str, &'static str, f64)>,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

fn number(dir: &Path, file: &str) -> Option<f64> {
    read(dir, file)?.trim().parse().ok()
}

/// `key value` lines, as in cpu.stat, memory.events and cgroup.events.
fn keyed(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// io.stat: one line per device, `MAJ:MIN rbytes=… wbytes=… …`; summed over devices.
fn io_totals(text: &str) -> (f64, f64) {
    let mut read = 0.0;
    let mut written = 0.0;
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            read += v.parse::<f64>().unwrap_or(0.0);
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            written += v.parse::<f64>().unwrap_or(0.0);
        }
    }
    (read, written)
}

/// cpu.pressure etc.: `some avg10=… total=USEC` and `full …`.
fn pressure_totals(text: &str) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let kind = match line.split_whitespace().next() {
            Some("some") => "some",
            Some("full") => "full",
            _ => continue,
        };
        let total = line.split_whitespace().find_map(|f| f.strip_prefix("total="));
        if let Some(Ok(usec)) = total.map(str::parse::<f64>) {
            out.push((kind, usec / 1e6));
        }
    }
    out
}

fn read_unit(dir: &Path) -> Unit {
    let mut u = Unit { found: true, ..Unit::default() };
    let events = read(dir, "cgroup.events").unwrap_or_default();
    u.active = keyed(&events, "populated") == Some(1.0);
    u.tasks = number(dir, "pids.current");
    u.memory = number(dir, "memory.current");
    u.memory_peak = number(dir, "memory.peak");
    u.swap = number(dir, "memory.swap.current");
    if let Some(cpu) = read(dir, "cpu.stat") {
        u.user_seconds = keyed(&cpu, "user_usec").map(|v| v / 1e6);
        u.system_seconds = keyed(&cpu, "system_usec").map(|v| v / 1e6);
    }
    u.oom_kills = read(dir, "memory.events").and_then(|e| keyed(&e, "oom_kill"));
    if let Some(io) = read(dir, "io.stat") {
        let (r, w) = io_totals(&io);
        u.read_bytes = Some(r);
        u.write_bytes = Some(w);
    }
    for resource in ["cpu", "memory", "io"] {
        if let Some(text) = read(dir, &format!("{resource}.pressure")) {
            for (kind, seconds) in pressure_totals(&text) {
                u.pressure.push((resource, kind, seconds));
            }
        }
    }
    u
}

/// Finds unit cgroups below `dir`: slices are walked into, units of the wanted types are read.
fn walk(dir: &Path, types: &[String], required: &[String], depth: usize, units: &mut BTreeMap<String, Unit>) {
    if depth > 6 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path: PathBuf = entry.path();
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let kind = name.rsplit_once('.').map(|(_, k)| k).unwrap_or("");
        if kind == "slice" {
            walk(&path, types, required, depth + 1, units);
        } else if types.iter().any(|t| t == kind) || required.contains(&name) {
            units.insert(name, read_unit(&path));
        }
    }
}

fn main() {
    obsd_plugin::run(|out| {
        let required = obsd_plugin::args();
        let root = std::env::var("CGROUP_ROOT").unwrap_or_else(|_| "/sys/fs/cgroup".into());
        let types: Vec<String> = std::env::var("UNIT_TYPES")
            .unwrap_or_else(|_| "service".into())
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        let root = Path::new(&root);
        if !root.join("cgroup.controllers").exists() {
            return Err(format!(
                "{} is not a cgroup v2 root (no cgroup.controllers); grant it in read_only_dirs or set CGROUP_ROOT",
                root.display()
            ));
        }
        let mut units = BTreeMap::new();
        walk(root, &types, &required, 0, &mut units);
        for name in &required {
            units.entry(name.clone()).or_default();
        }
        write(out, &units);
        Ok(())
    });
}

/// A metric read straight off a unit: name, help, and the field.
type Field = (&'static str, &'static str, fn(&Unit) -> Option<f64>);

fn write(out: &mut obsd_plugin::Exposition, units: &BTreeMap<String, Unit>) {
    let mut active = out.family(
        "systemd_unit_active",
        "1 if the unit's cgroup has processes, 0 if it is missing or empty.",
        Kind::Gauge,
    );
    for (name, u) in units {
        active.sample(&[("unit", name)], if u.active { 1.0 } else { 0.0 });
    }
    let gauges: [Field; 4] = [
        ("systemd_unit_tasks", "Tasks (processes and threads) in the unit.", |u| u.tasks),
        ("systemd_unit_memory_bytes", "Memory charged to the unit (memory.current).", |u| u.memory),
        ("systemd_unit_memory_peak_bytes", "Highest memory use recorded for the unit (memory.peak).", |u| {
            u.memory_peak
        }),
        ("systemd_unit_swap_bytes", "Swap used by the unit (memory.swap.current).", |u| u.swap),
    ];
    for (metric, help, get) in gauges {
        let mut f = out.family(metric, help, Kind::Gauge);
        for (name, u) in units.iter().filter(|(_, u)| u.found) {
            if let Some(v) = get(u) {
                f.sample(&[("unit", name)], v);
            }
        }
    }
    let mut cpu = out.family("systemd_unit_cpu_seconds_total", "CPU time used by the unit.", Kind::Counter);
    for (name, u) in units {
        if let (Some(user), Some(system)) = (u.user_seconds, u.system_seconds) {
            cpu.sample(&[("unit", name), ("mode", "user")], user);
            cpu.sample(&[("unit", name), ("mode", "system")], system);
        }
    }
    let counters: [Field; 3] = [
        ("systemd_unit_oom_kills_total", "Processes of the unit killed by the OOM killer.", |u| u.oom_kills),
        ("systemd_unit_io_read_bytes_total", "Bytes the unit read from block devices.", |u| u.read_bytes),
        ("systemd_unit_io_write_bytes_total", "Bytes the unit wrote to block devices.", |u| u.write_bytes),
    ];
    for (metric, help, get) in counters {
        let mut f = out.family(metric, help, Kind::Counter);
        for (name, u) in units {
            if let Some(v) = get(u) {
                f.sample(&[("unit", name)], v);
            }
        }
    }
    let mut pressure = out.family(
        "systemd_unit_pressure_stalled_seconds_total",
        "Time the unit's tasks were stalled on a resource (PSI; some = at least one, full = all).",
        Kind::Counter,
    );
    for (name, u) in units {
        for (resource, kind, seconds) in &u.pressure {
            pressure.sample(&[("unit", name), ("resource", resource), ("kind", kind)], *seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cgroup_files() {
        assert_eq!(keyed("usage_usec 10\nuser_usec 7\nsystem_usec 3\n", "user_usec"), Some(7.0));
        assert_eq!(io_totals("8:0 rbytes=100 wbytes=5 rios=1\n8:16 rbytes=1 wbytes=2\n"), (101.0, 7.0));
        assert_eq!(
            pressure_totals("some avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\nfull avg10=0 total=2\n"),
            vec![("some", 1.5), ("full", 0.000002)]
        );
    }
}
