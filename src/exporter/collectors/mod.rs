//! node_exporter's collectors, one file each, with node_exporter 1.5's metric names, types,
//! units and labels. A collector is a plain function from the exporter config to families;
//! it reads /proc and /sys below the configured roots so tests can point it at fixtures.

mod cpu;
mod loadavg;
mod meminfo;

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
    Registered { name: "cpu", default_enabled: true, collect: cpu::collect },
    Registered { name: "loadavg", default_enabled: true, collect: loadavg::collect },
    Registered { name: "meminfo", default_enabled: true, collect: meminfo::collect },
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
