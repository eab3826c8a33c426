//! `[exporter.plugins]` (shared settings) and `[[exporter.plugin]]` (one WASM plugin each):
//! what a plugin may see and how much it may spend. The exporter's `plugins` module runs them.

use super::check::Checker;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

pub const DEFAULT_PLUGIN_DIRECTORY: &str = "/etc/obsd/plugins";
const DEFAULT_MEMORY_LIMIT: u64 = 64 << 20;
/// About a second of a simple loop on one core; the process plugin over 500 processes uses
/// a few percent of it.
const DEFAULT_FUEL: u64 = 2_000_000_000;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_OUTPUT: u64 = 4 << 20;
/// Far above any plugin's need, low enough that a 32-bit guest cannot map the host's memory.
const MAX_MEMORY_LIMIT: u64 = 4 << 30;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPlugins {
    /// Where a plugin's relative `file` is looked up.
    pub directory: Option<Spanned<String>>,
    /// Defaults for every `[[exporter.plugin]]`.
    pub memory_limit: Option<Spanned<String>>,
    pub fuel: Option<Spanned<u64>>,
    pub timeout: Option<Spanned<String>>,
    pub max_output_bytes: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPlugin {
    pub name: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, Spanned<String>>,
    /// `"/proc"` (seen by the plugin at the same path) or `"/host/dir:/guest/dir"`.
    pub read_only_dirs: Vec<Spanned<String>>,
    pub memory_limit: Option<Spanned<String>>,
    pub fuel: Option<Spanned<u64>>,
    pub timeout: Option<Spanned<String>>,
    pub max_output_bytes: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginsConfig {
    pub directory: PathBuf,
    pub plugins: Vec<PluginConfig>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig { directory: PathBuf::from(DEFAULT_PLUGIN_DIRECTORY), plugins: Vec::new() }
    }
}

/// One plugin as the sandbox runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The `plugin` label of obsd_plugin_up and the plugin's argv[0].
    pub name: String,
    pub file: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub read_only_dirs: Vec<GrantedDir>,
    pub memory_limit: u64,
    pub fuel: u64,
    pub timeout: Duration,
    pub max_output_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrantedDir {
    pub host: PathBuf,
    pub guest: String,
}

impl PluginConfig {
    /// A plugin with the default limits and no grants (`obsd plugin check` starts from this).
    pub fn with_defaults(name: &str, file: &Path) -> Self {
        PluginConfig {
            name: name.to_string(),
            file: file.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            read_only_dirs: Vec::new(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            fuel: DEFAULT_FUEL,
            timeout: DEFAULT_TIMEOUT,
            max_output_bytes: DEFAULT_MAX_OUTPUT as usize,
        }
    }
}

/// Parses a `read_only_dirs` entry.
pub fn parse_granted_dir(text: &str) -> Result<GrantedDir, String> {
    let (host, guest) = match text.split_once(':') {
        Some((h, g)) => (h, g),
        None => (text, text),
    };
    if !host.starts_with('/') || !guest.starts_with('/') {
        return Err(format!("{text:?}: expected an absolute directory or /host/dir:/guest/dir"));
    }
    if !Path::new(host).is_dir() {
        return Err(format!("{host:?} is not a directory"));
    }
    Ok(GrantedDir { host: PathBuf::from(host), guest: guest.to_string() })
}

fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl Checker<'_> {
    fn size(&mut self, value: &Option<Spanned<String>>, key: &str, default: u64) -> u64 {
        let Some(v) = value else { return default };
        match crate::model::units::parse_byte_size(v.get_ref()) {
            Some(0) | None => {
                self.problem(v, key, "not a size (expected e.g. 64MB, 512KB)");
                default
            }
            Some(b) => b,
        }
    }

    pub(super) fn plugins(&mut self, shared: &RawPlugins, raw: &[RawPlugin]) -> PluginsConfig {
        let directory = shared
            .directory
            .as_ref()
            .map(|d| PathBuf::from(d.get_ref()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PLUGIN_DIRECTORY));
        let memory = self.size(&shared.memory_limit, "exporter.plugins.memory_limit", DEFAULT_MEMORY_LIMIT);
        let output =
            self.size(&shared.max_output_bytes, "exporter.plugins.max_output_bytes", DEFAULT_MAX_OUTPUT);
        let timeout = self.duration(&shared.timeout, "exporter.plugins.timeout", DEFAULT_TIMEOUT);
        let fuel = self.fuel(&shared.fuel, "exporter.plugins.fuel", DEFAULT_FUEL);
        if memory > MAX_MEMORY_LIMIT
            && let Some(v) = &shared.memory_limit
        {
            self.problem(v, "exporter.plugins.memory_limit", "at most 4GB (a wasm32 address space)");
        }
        let mut plugins: Vec<PluginConfig> = Vec::new();
        for (i, p) in raw.iter().enumerate() {
            let header = self.nth_plugin_header(i);
            let key = |k: &str| format!("exporter.plugin[{i}].{k}");
            let name = match &p.name {
                None => {
                    self.problem_at(header, &key("name"), "every [[exporter.plugin]] needs a name");
                    continue;
                }
                Some(n) => {
                    if !valid_plugin_name(n.get_ref()) {
                        self.problem(n, &key("name"), "use letters, digits, '.', '-' and '_' (at most 64)");
                    } else if plugins.iter().any(|q| &q.name == n.get_ref()) {
                        self.problem(n, &key("name"), format!("a second plugin named {:?}", n.get_ref()));
                    }
                    n.get_ref().clone()
                }
            };
            let file = match &p.file {
                Some(f) => directory.join(f.get_ref()),
                None => directory.join(format!("{name}.wasm")),
            };
            if !file.is_file() {
                let message = format!("plugin file {} does not exist", file.display());
                match &p.file {
                    Some(f) => self.problem(f, &key("file"), message),
                    None => self.problem_at(header, &key("file"), message),
                }
            }
            let mut env = Vec::new();
            for (k, v) in &p.env {
                if k.is_empty() || k.contains('=') || k.contains('\0') || v.get_ref().contains('\0') {
                    self.problem(v, &key(&format!("env.{k}")), "not a valid environment variable");
                } else {
                    env.push((k.clone(), v.get_ref().clone()));
                }
            }
            let mut read_only_dirs = Vec::new();
            for d in &p.read_only_dirs {
                match parse_granted_dir(d.get_ref()) {
                    Ok(g) => read_only_dirs.push(g),
                    Err(message) => self.problem(d, &key("read_only_dirs"), message),
                }
            }
            let memory_limit = self.size(&p.memory_limit, &key("memory_limit"), memory);
            if memory_limit > MAX_MEMORY_LIMIT
                && let Some(v) = &p.memory_limit
            {
                self.problem(v, &key("memory_limit"), "at most 4GB (a wasm32 address space)");
            }
            if p.args.iter().any(|a| a.contains('\0')) {
                self.problem_at(header, &key("args"), "an argument contains a NUL byte");
            }
            plugins.push(PluginConfig {
                name,
                file,
                args: p.args.clone(),
                env,
                read_only_dirs,
                memory_limit,
                fuel: self.fuel(&p.fuel, &key("fuel"), fuel),
                timeout: self.duration(&p.timeout, &key("timeout"), timeout),
                max_output_bytes: self.size(&p.max_output_bytes, &key("max_output_bytes"), output) as usize,
            });
        }
        PluginsConfig { directory, plugins }
    }

    /// Where the i-th `[[exporter.plugin]]` table starts, for problems with no value to point at
    /// (TOML spans cover values, not tables).
    fn nth_plugin_header(&self, i: usize) -> usize {
        let mut from = 0;
        for n in 0..=i {
            match self.text[from..].find("[[exporter.plugin]]") {
                Some(at) if n == i => return from + at,
                Some(at) => from += at + 1,
                None => break,
            }
        }
        0
    }

    fn problem_at(&mut self, offset: usize, key: &str, message: impl Into<String>) {
        let (line, column) = super::line_col(self.text, offset);
        self.problems.push(super::ConfigProblem {
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn fuel(&mut self, value: &Option<Spanned<u64>>, key: &str, default: u64) -> u64 {
        match value {
            None => default,
            Some(v) if *v.get_ref() == 0 => {
                self.problem(v, key, "must be positive");
                default
            }
            Some(v) => *v.get_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, parse_str};
    use std::path::Path;

    fn problems(text: &str) -> Vec<(String, usize, usize, String)> {
        match parse_str(text, Some(Path::new("t.toml"))) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.into_iter().map(|p| (p.key, p.line, p.column, p.message)).collect()
            }
            other => panic!("expected invalid config, got {other:?}"),
        }
    }

    #[test]
    fn resolves_defaults_paths_and_grants() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("proc.wasm"), b"").unwrap();
        std::fs::write(dir.path().join("other.wasm"), b"").unwrap();
        let text = format!(
            "[exporter.plugins]\ndirectory = {:?}\ntimeout = \"2s\"\n\
             [[exporter.plugin]]\nname = \"proc\"\nargs = [\"sshd\"]\nenv = {{ CLK_TCK = \"100\" }}\n\
             read_only_dirs = [\"/proc\", \"{}:/data\"]\nfuel = 5\n\
             [[exporter.plugin]]\nname = \"two\"\nfile = \"other.wasm\"\nmemory_limit = \"1MB\"\n",
            dir.path().display().to_string(),
            dir.path().display()
        );
        let c = parse_str(&text, None).unwrap().exporter.plugins;
        assert_eq!(c.plugins.len(), 2);
        let p = &c.plugins[0];
        assert_eq!(p.file, dir.path().join("proc.wasm"));
        assert_eq!(p.env, vec![("CLK_TCK".to_string(), "100".to_string())]);
        assert_eq!(p.read_only_dirs[0].guest, "/proc");
        assert_eq!(p.read_only_dirs[1].host, dir.path());
        assert_eq!(p.read_only_dirs[1].guest, "/data");
        assert_eq!((p.fuel, p.timeout.as_secs(), p.memory_limit), (5, 2, 64 << 20));
        assert_eq!(c.plugins[1].file, dir.path().join("other.wasm"));
        assert_eq!(c.plugins[1].memory_limit, 1 << 20);
    }

    #[test]
    fn problems_name_line_column_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"").unwrap();
        let text = format!(
            "[exporter.plugins]\ndirectory = {:?}\nmemory_limit = \"lots\"\n\
             [[exporter.plugin]]\nname = \"a\"\nread_only_dirs = [\"relative\"]\n\
             [[exporter.plugin]]\nname = \"a\"\n\
             [[exporter.plugin]]\nname = \"missing\"\ntimeout = \"soon\"\n\
             [[exporter.plugin]]\nfile = \"x.wasm\"\n",
            dir.path().display().to_string()
        );
        let p = problems(&text);
        let found = |key: &str, line: usize| p.iter().any(|(k, l, _, _)| k == key && *l == line);
        assert!(found("exporter.plugins.memory_limit", 3), "{p:?}");
        assert!(found("exporter.plugin[0].read_only_dirs", 6), "{p:?}");
        assert!(found("exporter.plugin[1].name", 8), "{p:?}");
        assert!(found("exporter.plugin[2].file", 9), "{p:?}");
        assert!(found("exporter.plugin[2].timeout", 11), "{p:?}");
        assert!(found("exporter.plugin[3].name", 12), "{p:?}");
        assert!(p.iter().all(|(_, _, col, _)| *col >= 1));
    }

    #[test]
    fn unknown_plugin_key_is_located() {
        let p = problems("[[exporter.plugin]]\nname = \"a\"\nmemroy_limit = \"1MB\"\n");
        assert_eq!(p[0].0, "exporter.plugin[0].memroy_limit");
        assert_eq!(p[0].1, 3);
    }
}
