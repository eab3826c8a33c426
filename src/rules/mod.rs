//! Recording and alerting rules as Prometheus 2.42 evaluates them: rule files (`file`), one
//! group's evaluation (`group`) and its alerts (`alert`), the groups' schedule and reloads
//! (`manager`), alert templates (`template`) and delivery to Alertmanager (`notifier`).
//!
//! A role that stores samples (replica, federation) runs one [`manager::RuleManager`]; results
//! go into its store through the same appender as scraped samples.

pub mod alert;
pub mod check;
pub mod file;
pub mod group;
pub mod manager;
pub mod notifier;
pub mod unittest;

use std::path::Path;

/// Loads every group the patterns name (already joined to their base directory by config).
/// Every problem of every file comes back, each a line as `promtool check rules` prints it.
pub fn load(patterns: &[String]) -> Result<Vec<file::GroupSpec>, Vec<String>> {
    file::load_groups(&file::rule_file_paths(patterns, Path::new(".")))
}

/// Prometheus's default `--web.external-url`: `http://<hostname>:<port>`, which alert
/// `generatorURL`s and `$externalURL` use.
pub fn default_external_url(listen: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("http://{host}:{}", listen.port())
}

/// Loads a storing role's rule files and starts evaluating them: results into `store` (and
/// whatever `forward` takes them onward to), queries
/// through `engine`, external labels from the role's Prometheus settings. A broken rule file
/// refuses the start with every problem.
pub async fn start_for_role(
    store: &crate::store::Store,
    forward: Option<group::RuleForward>,
    engine: &std::sync::Arc<crate::promql::Engine>,
    settings: &crate::config::prometheus::ScrapeSettings,
    listen: std::net::SocketAddr,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<std::sync::Arc<manager::RuleManager>, Vec<String>> {
    let groups = load(&settings.rule_files)?;
    let notifier =
        notifier::Notifier::new(&settings.alerting, &settings.external_labels, &settings.alert_drop_labels);
    tokio::spawn(notifier.clone().run(shutdown));
    let ctx = group::EvalContext {
        engine: engine.clone(),
        queryable: std::sync::Arc::new(crate::promql::store_source::StoreSource(store.clone())),
        store: store.clone(),
        external_labels: crate::model::Labels::from_pairs(settings.external_labels.clone()),
        external_url: default_external_url(listen),
        notifier: Some(notifier),
        template_failures: std::sync::Arc::default(),
        timing: settings.alert_timing,
        forward,
    };
    let rules = manager::RuleManager::new(ctx);
    rules.apply(groups, settings.evaluation_interval).await;
    Ok(rules)
}

/// A reload: new rule files and external labels take over, unless a file is broken (the
/// caller has refused such a reload already; this guards against a file changed since), in
/// which case the running rules stay.
pub fn reload_for_role(
    rules: &std::sync::Arc<manager::RuleManager>,
    settings: &crate::config::prometheus::ScrapeSettings,
) {
    let groups = match load(&settings.rule_files) {
        Ok(g) => g,
        Err(errors) => {
            for e in errors {
                tracing::error!(error = %e, "rule file refused; keeping the running rules");
            }
            return;
        }
    };
    let old = rules.context();
    if let Some(n) = &old.notifier {
        n.apply(&settings.alerting, &settings.external_labels, &settings.alert_drop_labels);
    }
    rules.set_context(group::EvalContext {
        engine: old.engine.clone(),
        queryable: old.queryable.clone(),
        store: old.store.clone(),
        external_labels: crate::model::Labels::from_pairs(settings.external_labels.clone()),
        external_url: old.external_url.clone(),
        notifier: old.notifier.clone(),
        template_failures: old.template_failures.clone(),
        timing: settings.alert_timing,
        forward: old.forward.clone(),
    });
    let (rules, interval) = (rules.clone(), settings.evaluation_interval);
    tokio::spawn(async move { rules.apply(groups, interval).await });
}
