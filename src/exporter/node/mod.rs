//! The node metrics: node_exporter's collectors (its word, kept in `[exporter.collectors]`),
//! one file each, with node_exporter 1.5's metric names, types, units and labels. Each is a
//! plain function from the exporter config to families; it reads /proc and /sys below the
//! configured roots so tests can point it at fixtures. (obsd's `collector` is the tracing role.)

mod arp;
mod conntrack;
mod cpu;
mod diskstats;
mod entropy;
mod filefd;
mod filesystem;
mod loadavg;
mod meminfo;
mod netclass;
mod netdev;
mod netstat;
mod os;
mod pressure;
mod selinux;
mod sockstat;
mod softnet;
mod stat;
pub(crate) mod textfile;
mod time;
mod timex;
mod udp_queues;
mod uname;
mod vmstat;

use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot parse: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no data: {0}")]
    NoData(String),
}

pub type CollectFn = fn(&ExporterConfig) -> Result<Vec<MetricFamily>, CollectError>;

pub struct Registered {
    pub name: &'static str,
    pub collect: CollectFn,
}

/// Every collector obsd implements. Which are on by default, and the names
/// `[exporter.collectors]` accepts, are the config's (`config::EXPORTER_COLLECTORS`); a test
/// keeps the two lists equal.
pub static REGISTRY: &[Registered] = &[
    Registered { name: "arp", collect: arp::collect },
    Registered { name: "conntrack", collect: conntrack::collect },
    Registered { name: "cpu", collect: cpu::collect },
    Registered { name: "diskstats", collect: diskstats::collect },
    Registered { name: "entropy", collect: entropy::collect },
    Registered { name: "filefd", collect: filefd::collect },
    Registered { name: "filesystem", collect: filesystem::collect },
    Registered { name: "loadavg", collect: loadavg::collect },
    Registered { name: "meminfo", collect: meminfo::collect },
    Registered { name: "netclass", collect: netclass::collect },
    Registered { name: "netdev", collect: netdev::collect },
    Registered { name: "netstat", collect: netstat::collect },
    Registered { name: "os", collect: os::collect },
    Registered { name: "pressure", collect: pressure::collect },
    Registered { name: "selinux", collect: selinux::collect },
    Registered { name: "sockstat", collect: sockstat::collect },
    Registered { name: "softnet", collect: softnet::collect },
    Registered { name: "stat", collect: stat::collect },
    Registered { name: "textfile", collect: textfile::collect },
    Registered { name: "time", collect: time::collect },
    Registered { name: "timex", collect: timex::collect },
    Registered { name: "udp_queues", collect: udp_queues::collect },
    Registered { name: "uname", collect: uname::collect },
    Registered { name: "vmstat", collect: vmstat::collect },
];

pub fn find(name: &str) -> Option<&'static Registered> {
    REGISTRY.iter().find(|r| r.name == name)
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read(path: impl AsRef<Path>) -> Result<String, CollectError> {
    let path = path.as_ref();
    std::fs::read_to_string(path).map_err(|source| CollectError::Io { path: path.to_path_buf(), source })
}

pub(crate) fn parse_error(path: impl AsRef<Path>, message: impl Into<String>) -> CollectError {
    CollectError::Parse { path: path.as_ref().to_path_buf(), message: message.into() }
}

/// Parses a number field, naming the file on failure.
pub(crate) fn number(path: &Path, text: &str) -> Result<f64, CollectError> {
    text.trim().parse::<f64>().map_err(|_| parse_error(path, format!("{text:?} is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config accepts exactly the collectors the exporter has, in the same order.
    #[test]
    fn registry_matches_the_configs_collector_table() {
        let registry: Vec<&str> = REGISTRY.iter().map(|r| r.name).collect();
        let config: Vec<&str> = crate::config::EXPORTER_COLLECTORS.iter().map(|(name, _)| *name).collect();
        assert_eq!(registry, config);
    }
}
