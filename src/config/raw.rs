//! The TOML file as written by a user: every key optional, unknown keys rejected.
//! `validate` turns this into the resolved `Config` the roles run on.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub global: RawGlobal,
    pub exporter: RawExporter,
    pub replica: RawRole,
    pub federation: RawRole,
    pub balancer: super::balancer::RawBalancer,
    pub collector: RawRole,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGlobal {
    pub data_dir: Option<Spanned<String>>,
    pub log_level: Option<Spanned<String>>,
    /// How long SIGTERM waits for in-flight requests before closing anyway.
    pub shutdown_timeout: Option<Spanned<String>>,
}

/// The one listener shape every HTTP endpoint of every role shares.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawListener {
    pub address: Option<Spanned<String>>,
    pub tls: Option<RawTls>,
    /// user → password: a bcrypt hash (`$2y$…`, as Prometheus's web config) or `plain:<secret>`.
    pub basic_auth_users: Option<BTreeMap<String, Spanned<String>>>,
    pub max_connections: Option<usize>,
    pub header_read_timeout: Option<Spanned<String>>,
    pub max_header_bytes: Option<usize>,
    pub max_body_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: Spanned<String>,
    pub key_file: Spanned<String>,
}

/// A role section not yet built beyond its listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRole {
    pub listen: RawListener,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawExporter {
    pub listen: RawListener,
    /// Per-collector switches (`timex = false`); unnamed collectors keep node_exporter's default.
    pub collectors: BTreeMap<String, Spanned<bool>>,
    pub proc_path: Option<Spanned<String>>,
    pub sys_path: Option<Spanned<String>>,
    pub rootfs_path: Option<Spanned<String>>,
    pub textfile_directory: Option<Spanned<String>>,
    pub filesystem_mount_points_exclude: Option<Spanned<String>>,
    pub filesystem_fs_types_exclude: Option<Spanned<String>>,
    pub diskstats_device_exclude: Option<Spanned<String>>,
    pub netdev_device_exclude: Option<Spanned<String>>,
    pub netstat_fields: Option<Spanned<String>>,
    pub vmstat_fields: Option<Spanned<String>>,
    /// Upper bound for one filesystem's statfs call, so a hung NFS mount cannot stall a scrape.
    pub filesystem_statfs_timeout: Option<Spanned<String>>,
}
