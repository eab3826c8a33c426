//! obsd plugin: per-name process groups from /proc, with the metric names of the widely used
//! process-exporter (`namedprocess_namegroup_*`), so its dashboards and alerts work unchanged.
//!
//! Arguments: the process names to watch. A process belongs to a name when its `comm` or the
//! base name of its argv[0] equals it. Every name is reported, with `num_procs 0` when no
//! process runs, so "is sshd running" is one alert.
//! Grants: /proc read-only. Env: `PROC_ROOT` (default /proc), `CLK_TCK` (default 100, the
//! value on every mainstream Linux architecture; a wasm guest cannot ask sysconf).

use obsd_plugin::Kind;
use std::collections::BTreeMap;

#[derive(Default, Clone)]
struct Group {
    procs: u64,
    user_ticks: u64,
    system_ticks: u64,
    minor_faults: u64,
    major_faults: u64,
    threads: u64,
    resident: u64,
    virtual_bytes: u64,
    swapped: u64,
    fds: u64,
    worst_fd_ratio: f64,
    oldest_start_ticks: Option<u64>,
    read_bytes: u64,
    write_bytes: u64,
    io_readable: bool,
}

/// The fields of /proc/PID/stat this plugin uses; comm may hold spaces and parentheses, so
/// the fields after it are found from the last ')'.
struct Stat {
    comm: String,
    minor_faults: u64,
    major_faults: u64,
    utime: u64,
    stime: u64,
    threads: u64,
    start_ticks: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // Fields from 3 (state) on; field n is rest[n - 3].
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        comm,
        minor_faults: field(10)?,
        major_faults: field(12)?,
        utime: field(14)?,
        stime: field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
    })
}

fn status_kb(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

fn io_field(io: &str, key: &str) -> u64 {
    io.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn boot_time(root: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("{root}/stat")).ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn argv0_base(cmdline: &[u8]) -> String {
    let first = cmdline.split(|b| *b == 0).next().unwrap_or(&[]);
    let text = String::from_utf8_lossy(first);
    text.rsplit('/').next().unwrap_or("").to_string()
}

/// Lists a directory whole, retrying when an entry vanishes mid-listing: the WASI host stats
/// every entry (for its inode) and fails the whole read when one is gone, which in /proc
/// happens whenever a process exits or closes a file at that moment.
fn list(dir: &str, tries: usize) -> std::io::Result<Vec<String>> {
    let mut last = None;
    for _ in 0..tries {
        let listed = std::fs::read_dir(dir).and_then(|entries| {
            entries.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect()
        });
        match listed {
            Ok(names) => return Ok(names),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no attempt")))
}

/// Adds one process to its group. Any file may vanish as the process exits; such a process
/// is skipped rather than failing the collect.
fn add_process(root: &str, pid: &str, names: &[String], groups: &mut BTreeMap<String, Group>) -> Option<()> {
    let dir = format!("{root}/{pid}");
    let stat = parse_stat(&std::fs::read_to_string(format!("{dir}/stat")).ok()?)?;
    let name = if names.contains(&stat.comm) {
        stat.comm.clone()
    } else {
        let argv0 = argv0_base(&std::fs::read(format!("{dir}/cmdline")).ok()?);
        names.iter().find(|n| **n == argv0)?.clone()
    };
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let fds = list(&format!("{dir}/fd"), 3).map(|d| d.len() as u64).unwrap_or(0);
    let limit = std::fs::read_to_string(format!("{dir}/limits")).ok().and_then(|l| max_open_files(&l));
    let io = std::fs::read_to_string(format!("{dir}/io")).ok();
    let g = groups.get_mut(&name)?;
    g.procs += 1;
    g.user_ticks += stat.utime;
    g.system_ticks += stat.stime;
    g.minor_faults += stat.minor_faults;
    g.major_faults += stat.major_faults;
    g.threads += stat.threads;
    g.resident += status_kb(&status, "VmRSS:");
    g.virtual_bytes += status_kb(&status, "VmSize:");
    g.swapped += status_kb(&status, "VmSwap:");
    g.fds += fds;
    if let Some(limit) = limit.filter(|l| *l > 0) {
        g.worst_fd_ratio = g.worst_fd_ratio.max(fds as f64 / limit as f64);
    }
    g.oldest_start_ticks = Some(g.oldest_start_ticks.map_or(stat.start_ticks, |o| o.min(stat.start_ticks)));
    if let Some(io) = io {
        g.io_readable = true;
        g.read_bytes += io_field(&io, "read_bytes:");
        g.write_bytes += io_field(&io, "write_bytes:");
    }
    Some(())
}

fn main() {
    obsd_plugin::run(|out| {
        let names = obsd_plugin::args();
        if names.is_empty() {
            return Err("no process names given: pass them as the plugin's args".into());
        }
        let root = std::env::var("PROC_ROOT").unwrap_or_else(|_| "/proc".into());
        let tck: f64 = std::env::var("CLK_TCK").ok().and_then(|v| v.parse().ok()).unwrap_or(100.0);
        let entries = list(&root, 5).map_err(|e| format!("{root}: {e} (grant it in read_only_dirs)"))?;
        let mut groups: BTreeMap<String, Group> =
            names.iter().map(|n| (n.clone(), Group::default())).collect();
        for pid in entries {
            if pid.bytes().all(|b| b.is_ascii_digit()) {
                let _ = add_process(&root, &pid, &names, &mut groups);
            }
        }
        let btime = boot_time(&root);
        write(out, &groups, tck, btime);
        Ok(())
    });
}

fn write(out: &mut obsd_plugin::Exposition, groups: &BTreeMap<String, Group>, tck: f64, btime: Option<u64>) {
    let p = "namedprocess_namegroup_";
    let each = |out: &mut obsd_plugin::Exposition,
                metric: &str,
                help: &str,
                kind: Kind,
                value: &dyn Fn(&Group) -> f64| {
        let mut f = out.family(&format!("{p}{metric}"), help, kind);
        for (name, g) in groups {
            f.sample(&[("groupname", name)], value(g));
        }
    };
    each(out, "num_procs", "Number of processes in this group.", Kind::Gauge, &|g| g.procs as f64);
    let mut cpu =
        out.family(&format!("{p}cpu_seconds_total"), "CPU time consumed by this group.", Kind::Counter);
    for (name, g) in groups {
        cpu.sample(&[("groupname", name), ("mode", "user")], g.user_ticks as f64 / tck);
        cpu.sample(&[("groupname", name), ("mode", "system")], g.system_ticks as f64 / tck);
    }
    let mut mem =
        out.family(&format!("{p}memory_bytes"), "Memory in use by this group, by type.", Kind::Gauge);
    for (name, g) in groups {
        mem.sample(&[("groupname", name), ("memtype", "resident")], g.resident as f64);
        mem.sample(&[("groupname", name), ("memtype", "virtual")], g.virtual_bytes as f64);
        mem.sample(&[("groupname", name), ("memtype", "swapped")], g.swapped as f64);
    }
    each(out, "open_filedesc", "Open file descriptors of this group.", Kind::Gauge, &|g| g.fds as f64);
    each(
        out,
        "worst_fd_ratio",
        "The largest open file descriptors / limit ratio of any process in this group.",
        Kind::Gauge,
        &|g| g.worst_fd_ratio,
    );
    each(out, "num_threads", "Threads of this group.", Kind::Gauge, &|g| g.threads as f64);
    each(out, "minor_page_faults_total", "Minor page faults of this group.", Kind::Counter, &|g| {
        g.minor_faults as f64
    });
    each(out, "major_page_faults_total", "Major page faults of this group.", Kind::Counter, &|g| {
        g.major_faults as f64
    });
    if let Some(btime) = btime {
        let mut f = out.family(
            &format!("{p}oldest_start_time_seconds"),
            "Start time (Unix seconds) of the oldest process of this group.",
            Kind::Gauge,
        );
        for (name, g) in groups {
            if let Some(ticks) = g.oldest_start_ticks {
                f.sample(&[("groupname", name)], btime as f64 + ticks as f64 / tck);
            }
        }
    }
    let mut read =
        out.family(&format!("{p}read_bytes_total"), "Bytes this group read from storage.", Kind::Counter);
    for (name, g) in groups.iter().filter(|(_, g)| g.io_readable) {
        read.sample(&[("groupname", name)], g.read_bytes as f64);
    }
    let mut written =
        out.family(&format!("{p}write_bytes_total"), "Bytes this group wrote to storage.", Kind::Counter);
    for (name, g) in groups.iter().filter(|(_, g)| g.io_readable) {
        written.sample(&[("groupname", name)], g.write_bytes as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_comm() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 7 0 3 0 150 25 0 0 20 0 5 0 9000 1000 10 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(
            (s.minor_faults, s.major_faults, s.utime, s.stime, s.threads, s.start_ticks),
            (7, 3, 150, 25, 5, 9000)
        );
    }

    #[test]
    fn reads_status_limits_and_argv0() {
        assert_eq!(status_kb("Name:\tx\nVmRSS:\t   1024 kB\n", "VmRSS:"), 1 << 20);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(argv0_base(b"/usr/sbin/sshd\0-D\0"), "sshd");
    }
}
