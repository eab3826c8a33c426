//! node_exporter's collectors, one file each, with node_exporter 1.5's metric names, types,
//! units and labels. A collector is a plain function from the exporter config to families;
//! it reads /proc and /sys below the configured roots so tests can point it at fixtures.

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
    pub default_enabled: bool,
    pub collect: CollectFn,
}

/// Every collector obsd implements, with node_exporter 1.5's default state.
pub static REGISTRY: &[Registered] = &[
    Registered { name: "arp", default_enabled: true, collect: arp::collect },
    Registered { name: "conntrack", default_enabled: true, collect: conntrack::collect },
    Registered { name: "cpu", default_enabled: true, collect: cpu::collect },
    Registered { name: "diskstats", default_enabled: true, collect: diskstats::collect },
    Registered { name: "entropy", default_enabled: true, collect: entropy::collect },
    Registered { name: "filefd", default_enabled: true, collect: filefd::collect },
    Registered { name: "filesystem", default_enabled: true, collect: filesystem::collect },
    Registered { name: "loadavg", default_enabled: true, collect: loadavg::collect },
    Registered { name: "meminfo", default_enabled: true, collect: meminfo::collect },
    Registered { name: "netclass", default_enabled: true, collect: netclass::collect },
    Registered { name: "netdev", default_enabled: true, collect: netdev::collect },
    Registered { name: "netstat", default_enabled: true, collect: netstat::collect },
    Registered { name: "os", default_enabled: true, collect: os::collect },
    Registered { name: "pressure", default_enabled: true, collect: pressure::collect },
    Registered { name: "selinux", default_enabled: true, collect: selinux::collect },
    Registered { name: "sockstat", default_enabled: true, collect: sockstat::collect },
    Registered { name: "softnet", default_enabled: true, collect: softnet::collect },
    Registered { name: "stat", default_enabled: true, collect: stat::collect },
    Registered { name: "textfile", default_enabled: true, collect: textfile::collect },
    Registered { name: "time", default_enabled: true, collect: time::collect },
    Registered { name: "timex", default_enabled: true, collect: timex::collect },
    Registered { name: "udp_queues", default_enabled: true, collect: udp_queues::collect },
    Registered { name: "uname", default_enabled: true, collect: uname::collect },
    Registered { name: "vmstat", default_enabled: true, collect: vmstat::collect },
];

pub fn find(name: &str) -> Option<&'static Registered> {
    REGISTRY.iter().find(|r| r.name == name)
}

pub fn known_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|r| r.name).collect()
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
