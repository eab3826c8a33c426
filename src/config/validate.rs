//! Raw TOML → resolved `Config`. Collects every problem instead of stopping at the first,
//! so one edit-and-retry fixes a file.

use super::raw::{RawConfig, RawExporter, RawListener};
use super::{
    Config, ConfigProblem, ExporterConfig, GlobalConfig, ListenerConfig, ListenerOnlyRole, PasswordCheck,
    TlsConfig, line_col, parse_duration,
};
use crate::exporter::collectors;
use regex::Regex;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// node_exporter 1.5's defaults (collector/filesystem_linux.go, diskstats_linux.go,
/// netstat_linux.go, vmstat_linux.go).
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
pub const DEFAULT_DISKSTATS_DEVICE_EXCLUDE: &str = "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";
pub const DEFAULT_NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";
pub const DEFAULT_VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

pub(super) struct Checker<'a> {
    pub(super) text: &'a str,
    pub(super) problems: Vec<ConfigProblem>,
}

impl Checker<'_> {
    pub(super) fn problem<T>(&mut self, spanned: &Spanned<T>, key: &str, message: impl Into<String>) {
        let (line, column) = line_col(self.text, spanned.span().start);
        self.problems.push(ConfigProblem { line, column, key: key.to_string(), message: message.into() });
    }

    pub(super) fn duration(
        &mut self,
        value: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        match value {
            None => default,
            Some(v) => match parse_duration(v.get_ref()) {
                Ok(d) => d,
                Err(e) => {
                    self.problem(v, key, e.to_string());
                    default
                }
            },
        }
    }

    fn regex(&mut self, value: &Option<Spanned<String>>, key: &str, default: &str) -> Regex {
        let fallback = || Regex::new(default).unwrap_or_else(|_| Regex::new("$^").expect("trivial regex"));
        match value {
            None => fallback(),
            Some(v) => match Regex::new(v.get_ref()) {
                Ok(r) => r,
                Err(e) => {
                    self.problem(v, key, format!("invalid regular expression: {e}"));
                    fallback()
                }
            },
        }
    }

    pub(super) fn listener(&mut self, raw: &RawListener, key: &str, default_address: &str) -> ListenerConfig {
        let fallback: SocketAddr = default_address.parse().unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
        let address = match &raw.address {
            None => fallback,
            Some(a) => match resolve_address(a.get_ref()) {
                Ok(addr) => addr,
                Err(message) => {
                    self.problem(a, &format!("{key}.address"), message);
                    fallback
                }
            },
        };
        let tls = raw.tls.as_ref().map(|t| {
            for (field, v) in [("cert_file", &t.cert_file), ("key_file", &t.key_file)] {
                if !std::path::Path::new(v.get_ref()).is_file() {
                    self.problem(
                        v,
                        &format!("{key}.tls.{field}"),
                        format!("file {:?} does not exist", v.get_ref()),
                    );
                }
            }
            TlsConfig { cert_file: t.cert_file.get_ref().into(), key_file: t.key_file.get_ref().into() }
        });
        let mut basic_auth_users = std::collections::BTreeMap::new();
        for (user, secret) in raw.basic_auth_users.iter().flatten() {
            let s = secret.get_ref();
            let check = if let Some(plain) = s.strip_prefix("plain:") {
                PasswordCheck::Plain(plain.to_string())
            } else if s.starts_with("$2a$") || s.starts_with("$2b$") || s.starts_with("$2y$") {
                PasswordCheck::Bcrypt(s.clone())
            } else {
                self.problem(
                    secret,
                    &format!("{key}.basic_auth_users.{user}"),
                    "expected a bcrypt hash ($2y$…) or plain:<password>",
                );
                continue;
            };
            basic_auth_users.insert(user.clone(), check);
        }
        ListenerConfig {
            address,
            tls,
            basic_auth_users,
            max_connections: raw.max_connections.unwrap_or(1024),
            header_read_timeout: self.duration(
                &raw.header_read_timeout,
                &format!("{key}.header_read_timeout"),
                Duration::from_secs(10),
            ),
            max_header_bytes: raw.max_header_bytes.unwrap_or(64 * 1024),
            max_body_bytes: raw.max_body_bytes.unwrap_or(32 * 1024 * 1024),
        }
    }

    fn exporter(&mut self, raw: &RawExporter) -> ExporterConfig {
        let mut collectors: std::collections::BTreeMap<String, bool> =
            collectors::REGISTRY.iter().map(|c| (c.name.to_string(), c.default_enabled)).collect();
        for (name, enabled) in &raw.collectors {
            if collectors::find(name).is_some() {
                collectors.insert(name.clone(), *enabled.get_ref());
            } else {
                self.problem(
                    enabled,
                    &format!("exporter.collectors.{name}"),
                    format!("unknown collector; known collectors: {}", collectors::known_names().join(", ")),
                );
            }
        }
        let path = |v: &Option<Spanned<String>>, d: &str| {
            PathBuf::from(v.as_ref().map(|s| s.get_ref().as_str()).unwrap_or(d))
        };
        ExporterConfig {
            listen: self.listener(&raw.listen, "exporter.listen", "0.0.0.0:9100"),
            collectors,
            proc_path: path(&raw.proc_path, "/proc"),
            sys_path: path(&raw.sys_path, "/sys"),
            rootfs_path: path(&raw.rootfs_path, "/"),
            textfile_directory: raw.textfile_directory.as_ref().map(|s| PathBuf::from(s.get_ref())),
            filesystem_mount_points_exclude: self.regex(
                &raw.filesystem_mount_points_exclude,
                "exporter.filesystem_mount_points_exclude",
                DEFAULT_MOUNT_POINTS_EXCLUDE,
            ),
            filesystem_fs_types_exclude: self.regex(
                &raw.filesystem_fs_types_exclude,
                "exporter.filesystem_fs_types_exclude",
                DEFAULT_FS_TYPES_EXCLUDE,
            ),
            diskstats_device_exclude: self.regex(
                &raw.diskstats_device_exclude,
                "exporter.diskstats_device_exclude",
                DEFAULT_DISKSTATS_DEVICE_EXCLUDE,
            ),
            netdev_device_exclude: raw
                .netdev_device_exclude
                .as_ref()
                .map(|_| self.regex(&raw.netdev_device_exclude, "exporter.netdev_device_exclude", "$^")),
            netstat_fields: self.regex(
                &raw.netstat_fields,
                "exporter.netstat_fields",
                DEFAULT_NETSTAT_FIELDS,
            ),
            vmstat_fields: self.regex(&raw.vmstat_fields, "exporter.vmstat_fields", DEFAULT_VMSTAT_FIELDS),
            filesystem_statfs_timeout: self.duration(
                &raw.filesystem_statfs_timeout,
                "exporter.filesystem_statfs_timeout",
                Duration::from_secs(5),
            ),
        }
    }
}

/// Accepts `host:port`, `:port` (all interfaces, as Go programs do) and `[::1]:port`.
fn resolve_address(text: &str) -> Result<SocketAddr, String> {
    let candidate =
        if let Some(port) = text.strip_prefix(':') { format!("0.0.0.0:{port}") } else { text.to_string() };
    if let Ok(addr) = candidate.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(("localhost", port)) = candidate.rsplit_once(':')
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(([127, 0, 0, 1], port).into());
    }
    Err(format!("{text:?} is not a listen address (expected host:port, :port or [::1]:port)"))
}

pub fn resolve(raw: RawConfig, text: &str, source: Option<PathBuf>) -> Result<Config, Vec<ConfigProblem>> {
    let mut c = Checker { text, problems: Vec::new() };
    let log_level = match &raw.global.log_level {
        None => "info".to_string(),
        Some(l) => {
            let level = l.get_ref().to_lowercase();
            if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
                c.problem(l, "global.log_level", "expected one of error, warn, info, debug, trace");
            }
            level
        }
    };
    let global = GlobalConfig {
        data_dir: raw
            .global
            .data_dir
            .as_ref()
            .map(|d| PathBuf::from(d.get_ref()))
            .unwrap_or_else(|| PathBuf::from(super::DEFAULT_DATA_DIR)),
        log_level,
        shutdown_timeout: c.duration(
            &raw.global.shutdown_timeout,
            "global.shutdown_timeout",
            Duration::from_secs(15),
        ),
    };
    let exporter = c.exporter(&raw.exporter);
    let replica =
        ListenerOnlyRole { listen: c.listener(&raw.replica.listen, "replica.listen", "0.0.0.0:9090") };
    let federation =
        ListenerOnlyRole { listen: c.listener(&raw.federation.listen, "federation.listen", "0.0.0.0:9090") };
    let balancer = c.balancer(&raw.balancer);
    let collector =
        ListenerOnlyRole { listen: c.listener(&raw.collector.listen, "collector.listen", "0.0.0.0:16686") };
    if !c.problems.is_empty() {
        c.problems.sort_by_key(|p| (p.line, p.column));
        return Err(c.problems);
    }
    Ok(Config { source, global, exporter, replica, federation, balancer, collector })
}
