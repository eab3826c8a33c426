use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand};
use obsd::app;
use obsd::config::LogFormat;
use obsd::config::{self, Role};
use obsd::logging;
use obsd::store;
use std::path::PathBuf;
use std::process::ExitCode;

// Measured on the replica and balancer benchmarks: mimalloc halves the replica's CPU per sample
// and lifts the balancer's requests/s by a third against glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OBSD_GIT_COMMIT"),
    ", rustc ",
    env!("OBSD_RUSTC_VERSION"),
    ")"
);

/// One binary for a high-availability observability stack.
#[derive(Parser)]
#[command(name = "obsd", version = LONG_VERSION, about)]
struct Cli {
    /// Roles to run: exporter, replica, federation, balancer, collector, alertmanager, or all (comma-separated).
    #[arg(long, global = true, value_name = "ROLE[,ROLE...]")]
    role: Option<String>,
    /// Config file (default /etc/obsd/obsd.toml when it exists, else embedded defaults).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where samples and spans are stored (overrides global.data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Overrides global.log_level; RUST_LOG adds per-module filters (RUST_LOG=obsd::scrape=debug)
    /// or replaces the level (RUST_LOG=debug).
    #[arg(
        long,
        global = true,
        value_name = "LEVEL",
        ignore_case = true,
        value_parser = clap::builder::PossibleValuesParser::new(logging::LEVELS)
            .map(|s| s.to_ascii_lowercase())
    )]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Alertmanager configuration tools (amtool's check-config and config routes test).
    Alertmanager {
        #[command(subcommand)]
        command: AlertmanagerCommand,
    },
    /// Balancer tools.
    Balancer {
        #[command(subcommand)]
        command: BalancerCommand,
    },
    /// Validate a config file, print what each role will do and every warning.
    CheckConfig {
        /// The file to check (default: --config, else /etc/obsd/obsd.toml).
        path: Option<PathBuf>,
    },
    /// Exporter plugins (WASM).
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Prometheus rule files: check them as `promtool check rules` does.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// The time-series store: backfill, statistics, integrity check.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Man pages and shell completions, for packaging.
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: GenerateCommand,
    },
}

#[derive(Subcommand)]
enum GenerateCommand {
    /// A man page per subcommand (obsd-check-config.1, obsd-store-import.1, ...) into DIR;
    /// obsd.1 itself is written by hand (packaging/debian/obsd.1).
    Man { dir: PathBuf },
    /// bash (obsd.bash), zsh (_obsd) and fish (obsd.fish) completions into DIR.
    Completions { dir: PathBuf },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Backfill samples with explicit timestamps (like promtool tsdb create-blocks-from).
    Import {
        /// Input format; only `openmetrics` (text with timestamps in seconds).
        #[arg(long, default_value = "openmetrics")]
        format: String,
        /// The file to import.
        file: PathBuf,
    },
    /// Print series, chunk, sample and disk figures.
    Stats,
    /// Open the store, replay its WAL and decode every record; fails if anything is damaged.
    Check,
    /// Print matching samples like `promtool tsdb dump` (benchmarks, debugging).
    #[command(hide = true)]
    Dump {
        #[arg(long = "match", default_value = "{__name__=~\".+\"}")]
        selector: String,
        #[arg(long, default_value_t = i64::MIN, allow_negative_numbers = true)]
        min_time: i64,
        #[arg(long, default_value_t = i64::MAX, allow_negative_numbers = true)]
        max_time: i64,
    },
    /// Append synthetic series as fast as possible, printing durable points (crash tests).
    #[command(hide = true)]
    StressAppend {
        #[arg(long, default_value_t = 20)]
        series: u64,
        #[arg(long, default_value_t = 0)]
        start: i64,
        #[arg(long, default_value_t = 10)]
        sync_every: u64,
        #[arg(long, default_value_t = 1000)]
        fsync_interval_ms: u64,
        /// Timestamps to write (0 = until killed).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
}

#[derive(Subcommand)]
enum AlertmanagerCommand {
    /// Validate alertmanager.yml files as `amtool check-config` does (exit 0 when all are valid).
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the receivers an alert with these labels is routed to, as
    /// `amtool config routes test`.
    RoutesTest {
        /// The alertmanager.yml.
        #[arg(long = "config.file", alias = "config-file")]
        config_file: PathBuf,
        /// The alert's labels, `name=value` each.
        labels: Vec<String>,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Check rule files for syntax and semantic errors, as `promtool check rules` (exit 0 good,
    /// 1 a file refused, 3 duplicate rules with --lint-fatal).
    Check {
        /// `duplicate-rules` (default) or `none`.
        #[arg(long, default_value = "duplicate-rules", value_parser = ["duplicate-rules", "none"])]
        lint: String,
        /// Exit 3 when the lint finds something.
        #[arg(long)]
        lint_fatal: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run rule unit tests in promtool's format (`promtool test rules`): exit 0 when all pass.
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Load a plugin, run one collect in the sandbox, check the output and print it.
    /// Exit status 0 when the exporter would accept it, 1 otherwise.
    Check {
        /// The plugin: a .wasm file (or .wat text).
        file: PathBuf,
        /// Argument passed to the plugin (repeat for more).
        #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
        args: Vec<String>,
        /// Environment value granted to the plugin (repeat for more).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Directory granted read-only: /dir or /host/dir:/guest/dir (repeat for more).
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<String>,
        /// Memory limit, e.g. 64MB.
        #[arg(long)]
        memory_limit: Option<String>,
        /// Fuel budget (roughly wasm instructions).
        #[arg(long)]
        fuel: Option<u64>,
        /// Wall-clock timeout, e.g. 5s.
        #[arg(long)]
        timeout: Option<String>,
    },
}

#[derive(Subcommand)]
enum BalancerCommand {
    /// Translate a haproxy.cfg into obsd's [balancer] TOML (stdout); untranslated lines go to
    /// stderr and make the exit status 2.
    ImportHaproxy {
        /// The haproxy.cfg to read.
        path: PathBuf,
    },
}

/// A mistake in how obsd was invoked: exit status 2, as for clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Balancer { command: BalancerCommand::ImportHaproxy { path } }) = &cli.command {
        return import_haproxy(path);
    }
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("{}", logging::fatal_error_text(&error_chain(&err)));
            if err.is::<Usage>() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

/// The error and its causes, each said once: many errors already include their source's text
/// in their own message.
fn error_chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Logging for the short-lived subcommands: warnings and errors unless asked for more.
fn init_tool_logging(cli: &Cli) -> anyhow::Result<()> {
    logging::init(cli.log_level.as_deref().unwrap_or("warn"), LogFormat::Text).map_err(usage_if_env)
}

/// A RUST_LOG the filter cannot parse is a mistake in how obsd was started.
fn usage_if_env(err: logging::LogError) -> anyhow::Error {
    match err {
        logging::LogError::RustLog { .. } => Usage(err.to_string()).into(),
        other => other.into(),
    }
}

fn import_haproxy(path: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("obsd: error: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let imported = obsd::balancer::import::translate(&text);
    print!("{}", imported.toml);
    if imported.untranslated.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("obsd: {} line(s) of {} were not translated:", imported.untranslated.len(), path.display());
    for line in &imported.untranslated {
        eprintln!("  {line}");
    }
    ExitCode::from(2)
}

fn plugin_command(command: &PluginCommand) -> anyhow::Result<()> {
    let PluginCommand::Check { file, args, env, dirs, memory_limit, fuel, timeout } = command;
    let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin");
    let mut config = config::PluginConfig::with_defaults(name, file);
    config.args = args.clone();
    for pair in env {
        let (k, v) = pair.split_once('=').with_context(|| format!("--env {pair:?}: expected KEY=VALUE"))?;
        config.env.push((k.to_string(), v.to_string()));
    }
    for dir in dirs {
        config.read_only_dirs.push(config::parse_granted_dir(dir).map_err(|e| anyhow::anyhow!("--dir {e}"))?);
    }
    if let Some(m) = memory_limit {
        config.memory_limit = obsd::model::units::parse_byte_size(m)
            .with_context(|| format!("--memory-limit {m:?}: expected a size such as 64MB"))?;
    }
    if let Some(f) = fuel {
        config.fuel = *f;
    }
    if let Some(t) = timeout {
        config.timeout = config::parse_duration(t).with_context(|| format!("--timeout {t:?}"))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (stderr, collected) = runtime
        .block_on(obsd::exporter::plugins::check(&config))
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if !stderr.is_empty() {
        eprintln!("{}: plugin stderr:\n{stderr}", file.display());
    }
    let summary = format!(
        "{:.1} ms, fuel {} of {}",
        collected.duration.as_secs_f64() * 1000.0,
        collected.fuel_used,
        config.fuel
    );
    match collected.families {
        Ok(families) => {
            let families = obsd::exposition::merge_and_sort(families);
            let mut body = String::new();
            obsd::exposition::write_families(&mut body, &families);
            print!("{body}");
            let samples: usize = families.iter().map(|f| f.samples.len()).sum();
            eprintln!("{}: OK: {} families, {samples} samples ({summary})", file.display(), families.len());
            Ok(())
        }
        Err((reason, message)) => {
            anyhow::bail!("{}: rejected ({reason}): {message} ({summary})", file.display())
        }
    }
}

fn check_config(cli: &Cli, path: Option<&PathBuf>) -> anyhow::Result<()> {
    let path = match (path, &cli.config) {
        (Some(p), Some(c)) if p != c => {
            return Err(Usage(format!(
                "check-config {} and --config {} name different files; give one",
                p.display(),
                c.display()
            ))
            .into());
        }
        (Some(p), _) | (None, Some(p)) => p.clone(),
        (None, None) => config::default_path().ok_or_else(|| {
            Usage(format!(
                "check-config needs a file: obsd check-config PATH or --config PATH ({} does not exist)",
                config::DEFAULT_CONFIG_PATH
            ))
        })?,
    };
    let config = config::load(Some(&path))?;
    // Which roles share a host the file cannot say: `--role` names those that do, and their
    // clashes are errors; clashes with the other roles the file configures are warnings.
    let asked = cli.role.as_deref().map(Role::parse_list).transpose().map_err(Usage)?;
    let mut warnings = config.warning_lines();
    let (errors, clashes) = match &asked {
        Some(roles) => (config.clashes_among(roles), config.clashes_with_others(roles)),
        None => (Vec::new(), config.clashes_among(&config.configured_roles)),
    };
    let rule_roles = asked.clone().unwrap_or_else(|| config.configured_roles.clone());
    let rule_problems = obsd::app::rule_file_problems(&config, &rule_roles);
    if !rule_problems.is_empty() {
        anyhow::bail!("rule files refused:\n{}", rule_problems.join("\n"));
    }
    print!("{}", obsd::config::describe(&config));
    warnings.extend(clashes.into_iter().map(|c| format!("{c} (only if both roles run on one host)")));
    for warning in &warnings {
        eprintln!("obsd: warning: {warning}");
    }
    if !errors.is_empty() {
        anyhow::bail!("roles run together need listeners of their own:\n{}", errors.join("\n"));
    }
    match warnings.len() {
        0 => println!("{}: OK", path.display()),
        n => println!("{}: OK with {n} warning(s)", path.display()),
    }
    Ok(())
}

/// Writes a page for every visible subcommand under `cmd` (built, so each has its display
/// name `obsd-store-import`); returns how many.
fn man_pages(cmd: &clap::Command, dir: &std::path::Path) -> anyhow::Result<usize> {
    let mut written = 0;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = sub.get_display_name().unwrap_or(sub.get_name());
        let mut text = Vec::new();
        clap_mangen::Man::new(sub.clone()).render(&mut text)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written += 1 + man_pages(sub, dir)?;
    }
    Ok(written)
}

fn generate(what: &GenerateCommand) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    // Propagates the global options into every subcommand's page and completions.
    cmd.build();
    match what {
        GenerateCommand::Man { dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let n = man_pages(&cmd, dir)?;
            eprintln!("{n} man pages in {}", dir.display());
        }
        GenerateCommand::Completions { dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
                let path = clap_complete::generate_to(shell, &mut cmd, "obsd", dir)
                    .with_context(|| format!("writing {shell} completions to {}", dir.display()))?;
                eprintln!("{}", path.display());
            }
        }
    }
    Ok(())
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::CheckConfig { path }) = &cli.command {
        return check_config(&cli, path.as_ref());
    }
    if let Some(Command::Generate { what }) = &cli.command {
        return generate(what);
    }
    if let Some(Command::Rules { command: RulesCommand::Check { lint, lint_fatal, files } }) = &cli.command {
        let code = obsd::rules::check::check_files(
            files,
            lint == "duplicate-rules",
            *lint_fatal,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        );
        std::process::exit(code);
    }
    if let Some(Command::Alertmanager { command }) = &cli.command {
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        let code = match command {
            AlertmanagerCommand::Check { files } => {
                obsd::alertmanager::cli::check_files(files, &mut out, &mut err)
            }
            AlertmanagerCommand::RoutesTest { config_file, labels } => {
                obsd::alertmanager::cli::routes_test(config_file, labels, &mut out, &mut err)
            }
        };
        std::process::exit(code);
    }
    if let Some(Command::Rules { command: RulesCommand::Test { files } }) = &cli.command {
        let code = obsd::rules::unittest::run_files(files, &mut std::io::stdout(), &mut std::io::stderr());
        std::process::exit(code);
    }
    if let Some(Command::Plugin { command }) = &cli.command {
        init_tool_logging(&cli)?;
        return plugin_command(command);
    }
    if let Some(Command::Store { command }) = &cli.command {
        init_tool_logging(&cli)?;
        let dir = match &cli.data_dir {
            Some(d) => d.clone(),
            None => {
                config::load(cli.config.clone().or_else(config::default_path).as_deref())?.global.data_dir
            }
        };
        // The store a role keeps under the data directory; `--role federation` picks that one.
        let role = cli.role.as_deref().unwrap_or("replica");
        if role != "replica" && role != "federation" {
            return Err(Usage(format!(
                "the store command works on the replica or federation store, not {role:?}"
            ))
            .into());
        }
        let dir = store::role_dir(&dir, role);
        return match command {
            StoreCommand::Import { format, file } => store::cli::import(&dir, file, format),
            StoreCommand::Stats => store::cli::stats(&dir),
            StoreCommand::Check => store::cli::check(&dir),
            StoreCommand::Dump { selector, min_time, max_time } => {
                store::cli::dump(&dir, selector, *min_time, *max_time)
            }
            StoreCommand::StressAppend { series, start, sync_every, fsync_interval_ms, count } => {
                store::cli::stress_append(&dir, *series, *start, *sync_every, *fsync_interval_ms, *count)
            }
        };
    }
    let role_text = cli.role.as_deref().ok_or_else(|| {
        Usage(
            "--role is required: exporter, replica, federation, balancer, collector, alertmanager or all (e.g. obsd --role all)"
                .into(),
        )
    })?;
    let roles = Role::parse_list(role_text).map_err(Usage)?;
    let all = role_text.split(',').any(|r| r.trim() == "all");
    // Whatever loading the config logs must reach stderr even though the config's own
    // log_level and log_format are not known yet.
    let early = logging::early(cli.log_level.as_deref(), "info").map_err(usage_if_env)?;
    let config_path = cli.config.clone().or_else(config::default_path);
    let mut config = match (&config_path, all) {
        // `--role all` with no config file runs the seed topology on loopback.
        (None, true) => config::all_in_one()?,
        _ => config::load(config_path.as_deref())?,
    };
    if let Some(dir) = cli.data_dir {
        config.global.data_dir = dir;
    }
    drop(early);
    logging::init(cli.log_level.as_deref().unwrap_or(&config.global.log_level), config.global.log_format)
        .map_err(usage_if_env)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("obsd")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(app::run(config, config_path, roles))
}
