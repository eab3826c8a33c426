//! Alertmanager's API v2 (api/v2), what amtool, Prometheus and Grafana call: status,
//! receivers, alerts (post, list with filters, groups), silences (post, list, get, expire);
//! plus `/metrics`, the health endpoints and the peers' sync endpoint. API v1 answers 410:
//! Alertmanager 0.27 removed it and Prometheus 2.42 sends v2.

use super::alert::{Alert, fingerprint_string, now_nanos, parse_time, rfc3339_millis};
use super::inhibit::Inhibitor;
use super::silence::{Silence, SilenceError, SilenceMatcher, api_order};
use super::{Shared, lock};
use crate::config::alertmanager::matchers::{all_match, parse_matcher};
use crate::exposition::MetricFamily;
use crate::model::Labels;
use crate::model::labels::is_valid_label_name;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(alert_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route("/api/v2/silence/{id}", get(get_silence).delete(delete_silence))
        .route("/api/obsd/alertmanager/cluster", post(from_peer))
        .route("/api/v1/{*rest}", any(v1_gone))
        .route("/metrics", get(metrics))
        .route("/-/reload", post(reload))
        .with_state(shared)
        .merge(crate::lifecycle::health_routes())
        .merge(crate::webui::router(crate::webui::Features { alertmanager: true, ..Default::default() }))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    json_response(StatusCode::BAD_REQUEST, &Value::String(message.into()))
}

/// go-swagger's answer to a body that is not the declared JSON.
fn unparsable(what: &str, e: impl std::fmt::Display) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"code": 400, "message": format!("parsing {what} body from \"\" failed, because {e}")}),
    )
}

/// go-swagger's answer to a required field that is missing.
fn required(field: &str) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"code": 602, "message": format!("{field} in body is required")}),
    )
}

fn kv(labels: &Labels) -> Value {
    let map: BTreeMap<&str, &str> = labels.iter().collect();
    json!(map)
}

async fn v1_gone() -> Response {
    (
        StatusCode::GONE,
        "obsd's alertmanager serves API v2 only (/api/v2); Alertmanager 0.27 removed v1 as well\n",
    )
        .into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let config = shared.config();
    let cluster = match &shared.cluster {
        Some(c) => {
            let peers: Vec<Value> =
                c.members().into_iter().map(|n| json!({"name": n, "address": n})).collect();
            json!({"name": c.name, "peers": peers, "status": if c.settling() { "settling" } else { "ready" }})
        }
        None => json!({"status": "disabled"}),
    };
    json_response(
        StatusCode::OK,
        &json!({
            "cluster": cluster,
            "config": {"original": config.shown},
            "uptime": rfc3339_millis(shared.started_at),
            "versionInfo": {
                "branch": "", "buildDate": "", "buildUser": "", "goVersion": "",
                "revision": concat!("obsd ", env!("CARGO_PKG_VERSION")), "version": "0.25.0",
            },
        }),
    )
}

async fn receivers(State(shared): State<Arc<Shared>>) -> Response {
    let names: Vec<Value> = shared.config().receivers.keys().map(|n| json!({"name": n})).collect();
    json_response(StatusCode::OK, &Value::Array(names))
}

#[derive(Deserialize)]
struct PostableAlert {
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    generator_url: String,
}

/// `model.Alert.Validate` after the empty labels are dropped.
fn validate(a: &Alert) -> Result<(), String> {
    if a.starts_at == 0 {
        return Err("start time missing".into());
    }
    if a.ends_at != 0 && a.ends_at < a.starts_at {
        return Err("start time must be before end time".into());
    }
    for (n, _) in a.labels.iter() {
        if !is_valid_label_name(n) {
            return Err(format!("invalid label set: invalid name {n:?}"));
        }
    }
    if a.labels.is_empty() {
        return Err("at least one label pair required".into());
    }
    for (n, _) in a.annotations.iter() {
        if !is_valid_label_name(n) {
            return Err(format!("invalid annotations: invalid name {n:?}"));
        }
    }
    Ok(())
}

async fn post_alerts(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let posted: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return unparsable("alerts", e),
    };
    if posted.iter().any(|p| p.labels.is_none()) {
        return required("labels");
    }
    let now = now_nanos();
    let resolve_timeout = i64::try_from(shared.config().resolve_timeout.as_nanos()).unwrap_or(i64::MAX);
    let mut valid = Vec::with_capacity(posted.len());
    let mut errors = Vec::new();
    for p in posted {
        let time =
            |s: &Option<String>| s.as_deref().map(parse_time).transpose().map(Option::unwrap_or_default);
        let (starts_at, ends_at) = match (time(&p.starts_at), time(&p.ends_at)) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(e), _) | (_, Err(e)) => return unparsable("alerts", e),
        };
        let mut alert = Alert {
            labels: Labels::from_pairs(
                p.labels.unwrap_or_default().into_iter().filter(|(_, v)| !v.is_empty()),
            ),
            annotations: Labels::from_pairs(p.annotations),
            starts_at,
            ends_at,
            generator_url: p.generator_url,
            updated_at: now,
            timeout: false,
        };
        if alert.starts_at == 0 {
            alert.starts_at = if alert.ends_at == 0 { now } else { alert.ends_at };
        }
        if alert.ends_at == 0 {
            alert.timeout = true;
            alert.ends_at = now.saturating_add(resolve_timeout);
        }
        shared.metrics.received(alert.ends_at > now_nanos());
        match validate(&alert) {
            Ok(()) => valid.push(alert),
            Err(e) => {
                shared.metrics.invalid.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                errors.push(e);
            }
        }
    }
    shared.put_alerts(valid);
    if errors.is_empty() { StatusCode::OK.into_response() } else { bad_request(errors.join(";")) }
}

/// The query parameters of the list endpoints: `filter` may repeat.
struct ListParams {
    filters: Vec<crate::model::Matcher>,
    receiver: Option<regex::Regex>,
    active: bool,
    silenced: bool,
    inhibited: bool,
    unprocessed: bool,
}

fn list_params(query: Option<String>) -> Result<ListParams, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|e| e.to_string())?;
    let mut p = ListParams {
        filters: Vec::new(),
        receiver: None,
        active: true,
        silenced: true,
        inhibited: true,
        unprocessed: true,
    };
    for (k, v) in pairs {
        let flag = |v: &str| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{k} in query must be of type boolean: {v:?}")),
        };
        match k.as_str() {
            "filter" => p.filters.push(parse_matcher(&v).map_err(|e| e.0)?),
            "receiver" => {
                p.receiver = Some(regex::Regex::new(&format!("^(?:{v})$")).map_err(|e| e.to_string())?);
            }
            "active" => p.active = flag(&v)?,
            "silenced" => p.silenced = flag(&v)?,
            "inhibited" => p.inhibited = flag(&v)?,
            "unprocessed" => p.unprocessed = flag(&v)?,
            _ => {}
        }
    }
    Ok(p)
}

/// An alert as the API shows it, with its current status and receivers.
struct Shown {
    alert: Arc<Alert>,
    receivers: Vec<String>,
    silenced_by: Vec<String>,
    inhibited_by: Vec<String>,
}

impl Shown {
    fn json(&self) -> Value {
        let suppressed = !self.silenced_by.is_empty() || !self.inhibited_by.is_empty();
        json!({
            "annotations": kv(&self.alert.annotations),
            "endsAt": rfc3339_millis(self.alert.ends_at),
            "fingerprint": fingerprint_string(self.alert.fingerprint()),
            "receivers": self.receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
            "startsAt": rfc3339_millis(self.alert.starts_at),
            "status": {
                "inhibitedBy": self.inhibited_by,
                "silencedBy": self.silenced_by,
                "state": if suppressed { "suppressed" } else { "active" },
            },
            "updatedAt": rfc3339_millis(self.alert.updated_at),
            "generatorURL": self.alert.generator_url,
            "labels": kv(&self.alert.labels),
        })
    }
}

/// What deciding an alert's status needs, taken once per request.
struct StatusContext {
    config: Arc<crate::config::alertmanager::AlertmanagerConfig>,
    held: Vec<Arc<Alert>>,
    now: super::alert::Nanos,
}

impl StatusContext {
    fn new(shared: &Shared) -> Self {
        StatusContext {
            config: shared.config(),
            held: lock(&shared.alerts).values().cloned().collect(),
            now: now_nanos(),
        }
    }
}

/// The unresolved alerts `alerts` that pass the filters, with their status.
fn shown(
    shared: &Shared,
    ctx: &StatusContext,
    inhibitor: &Inhibitor,
    alerts: Vec<Arc<Alert>>,
    p: &ListParams,
) -> Vec<Shown> {
    let (config, now) = (&ctx.config, ctx.now);
    let silences = lock(&shared.silences);
    let mut out = Vec::new();
    for alert in alerts {
        let receivers: Vec<String> =
            config.route.matching(&alert.labels).iter().map(|r| r.receiver.clone()).collect();
        if let Some(re) = &p.receiver
            && !receivers.iter().any(|r| re.is_match(r))
        {
            continue;
        }
        if !all_match(&p.filters, &alert.labels) || alert.resolved_at(now) {
            continue;
        }
        let silenced_by = silences.muting(&alert.labels, now);
        let inhibited_by: Vec<String> =
            inhibitor.inhibited_by(&alert.labels).map(fingerprint_string).into_iter().collect();
        let active = silenced_by.is_empty() && inhibited_by.is_empty();
        if (!p.active && active)
            || (!p.silenced && !silenced_by.is_empty())
            || (!p.inhibited && !inhibited_by.is_empty())
        {
            continue;
        }
        out.push(Shown { alert, receivers, silenced_by, inhibited_by });
    }
    out.sort_by_key(|s| s.alert.fingerprint());
    out
}

async fn get_alerts(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let p = match list_params(query) {
        Ok(p) => p,
        Err(e) => return bad_request(e),
    };
    let ctx = StatusContext::new(&shared);
    let inhibitor = Inhibitor::new(&ctx.config.inhibit_rules, ctx.held.iter().map(|a| &**a), ctx.now);
    let body: Vec<Value> =
        shown(&shared, &ctx, &inhibitor, ctx.held.clone(), &p).iter().map(Shown::json).collect();
    json_response(StatusCode::OK, &Value::Array(body))
}

async fn alert_groups(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let p = match list_params(query) {
        Ok(p) => p,
        Err(e) => return bad_request(e),
    };
    let groups = lock(&shared.groups).list();
    let ctx = StatusContext::new(&shared);
    let inhibitor = Inhibitor::new(&ctx.config.inhibit_rules, ctx.held.iter().map(|a| &**a), ctx.now);
    let mut out: Vec<(Labels, String, Vec<Value>)> = Vec::new();
    for g in groups {
        if let Some(re) = &p.receiver
            && !re.is_match(&g.opts.receiver)
        {
            continue;
        }
        let alerts: Vec<Value> =
            shown(&shared, &ctx, &inhibitor, g.alerts(), &p).iter().map(Shown::json).collect();
        if !alerts.is_empty() {
            out.push((g.labels.clone(), g.opts.receiver.clone(), alerts));
        }
    }
    out.sort_by(|a, b| super::alert::label_set_order(&a.0, &b.0).then(a.1.cmp(&b.1)));
    let body: Vec<Value> = out
        .into_iter()
        .map(|(l, r, a)| json!({"alerts": a, "labels": kv(&l), "receiver": {"name": r}}))
        .collect();
    json_response(StatusCode::OK, &Value::Array(body))
}

fn silence_json(s: &Silence, now: i64) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": rfc3339_millis(s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": rfc3339_millis(s.ends_at),
        "matchers": s.matchers,
        "startsAt": rfc3339_millis(s.starts_at),
    })
}

async fn get_silences(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let p = match list_params(query) {
        Ok(p) => p,
        Err(e) => return bad_request(e),
    };
    let now = now_nanos();
    let silences = lock(&shared.silences);
    let mut list: Vec<&Silence> = silences
        .list()
        .filter(|s| {
            // `silenceMatchesFilterLabels`: each filter needs a silence matcher of its name
            // whose value the filter matches.
            p.filters.iter().all(|f| s.matchers.iter().any(|m| m.name == f.name && f.matches(&m.value)))
        })
        .collect();
    list.sort_by(|a, b| api_order(a, b, now));
    let body: Vec<Value> = list.iter().map(|s| silence_json(s, now)).collect();
    json_response(StatusCode::OK, &Value::Array(body))
}

#[derive(Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: String,
    matchers: Option<Vec<SilenceMatcher>>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(rename = "createdBy")]
    created_by: Option<String>,
    comment: Option<String>,
}

async fn post_silence(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return unparsable("silence", e),
    };
    let (Some(matchers), Some(starts), Some(ends), Some(created_by), Some(comment)) =
        (p.matchers, p.starts_at, p.ends_at, p.created_by, p.comment)
    else {
        return required("comment, createdBy, endsAt, matchers and startsAt");
    };
    let (starts_at, ends_at) = match (parse_time(&starts), parse_time(&ends)) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return unparsable("silence", e),
    };
    if starts_at >= ends_at {
        return bad_request("Failed to create silence: start time must be before end time");
    }
    let now = now_nanos();
    if ends_at < now {
        return bad_request("Failed to create silence: end time can't be in the past");
    }
    let silence = Silence { id: p.id, matchers, starts_at, ends_at, updated_at: 0, created_by, comment };
    let result = lock(&shared.silences).set(silence, now);
    match result {
        Ok((id, changed)) => {
            shared.changed(changed, Vec::new());
            json_response(StatusCode::OK, &json!({"silenceID": id}))
        }
        Err(SilenceError::NotFound) => {
            json_response(StatusCode::NOT_FOUND, &Value::String(SilenceError::NotFound.to_string()))
        }
        Err(e) => bad_request(e.to_string()),
    }
}

async fn get_silence(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match lock(&shared.silences).get(&id) {
        Some(s) => json_response(StatusCode::OK, &silence_json(s, now_nanos())),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_silence(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let result = lock(&shared.silences).expire(&id, now_nanos());
    match result {
        Ok(s) => {
            shared.changed(vec![s], Vec::new());
            StatusCode::OK.into_response()
        }
        Err(SilenceError::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => json_response(StatusCode::INTERNAL_SERVER_ERROR, &Value::String(e.to_string())),
    }
}

async fn from_peer(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(cluster) = &shared.cluster else { return StatusCode::NOT_FOUND.into_response() };
    if !cluster.token_ok(headers.get("authorization").and_then(|v| v.to_str().ok())) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match serde_json::from_slice::<super::cluster::Message>(&body) {
        Ok(message) => {
            shared.merge_from_peer(message);
            StatusCode::OK.into_response()
        }
        Err(e) => bad_request(e.to_string()),
    }
}

/// Alertmanager's `/-/reload`: the process reloads its whole configuration, as on SIGHUP.
async fn reload() -> Response {
    // SAFETY: kill(2) on our own pid with a signal the process handles.
    let rc = unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    if rc == 0 { StatusCode::OK.into_response() } else { StatusCode::INTERNAL_SERVER_ERROR.into_response() }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut families = shared.metrics.families();
    let now = now_nanos();
    let config = shared.config();
    let (mut active, mut suppressed) = (0usize, 0usize);
    {
        let held: Vec<Arc<Alert>> =
            lock(&shared.alerts).values().filter(|a| !a.resolved_at(now)).cloned().collect();
        let inhibitor = Inhibitor::new(&config.inhibit_rules, held.iter().map(|a| &**a), now);
        let silences = lock(&shared.silences);
        for a in &held {
            if silences.muting(&a.labels, now).is_empty() && inhibitor.inhibited_by(&a.labels).is_none() {
                active += 1;
            } else {
                suppressed += 1;
            }
        }
    }
    let mut alerts = MetricFamily::gauge("alertmanager_alerts", "How many alerts by state.");
    alerts.add(&[("state", "active")], active as f64);
    alerts.add(&[("state", "suppressed")], suppressed as f64);
    alerts.add(&[("state", "unprocessed")], 0.0);
    let mut silences = MetricFamily::gauge("alertmanager_silences", "How many silences by state.");
    for (state, n) in lock(&shared.silences).counts(now) {
        silences.add(&[("state", state.as_str())], n as f64);
    }
    let groups = MetricFamily::gauge(
        "alertmanager_dispatcher_aggregation_groups",
        "Number of active aggregation groups",
    )
    .with_value(lock(&shared.groups).len() as f64);
    let nflog = MetricFamily::gauge("obsd_alertmanager_nflog_entries", "Entries in the notification log.")
        .with_value(lock(&shared.nflog).len() as f64);
    let hash = MetricFamily::gauge(
        "alertmanager_config_hash",
        "Hash of the currently loaded alertmanager configuration.",
    )
    .with_value(crate::config::alertmanager::config_hash(&config.original));
    // A refused reload keeps the running configuration: the process-wide reload state says so.
    let (ok, at) = crate::self_metrics::config_reload_state();
    let reload_ok = MetricFamily::gauge(
        "alertmanager_config_last_reload_successful",
        "Whether the last configuration reload attempt was successful.",
    )
    .with_value(if ok { 1.0 } else { 0.0 });
    let reload_at = MetricFamily::gauge(
        "alertmanager_config_last_reload_success_timestamp_seconds",
        "Timestamp of the last successful configuration reload.",
    )
    .with_value(at);
    let cluster_enabled = MetricFamily::gauge(
        "alertmanager_cluster_enabled",
        "Indicates whether the clustering is enabled or not.",
    )
    .with_value(if shared.cluster.is_some() { 1.0 } else { 0.0 });
    let members = shared.cluster.as_ref().map_or(1, |c| c.members().len());
    let cluster_members = MetricFamily::gauge(
        "alertmanager_cluster_members",
        "Number indicating current number of members in cluster.",
    )
    .with_value(members as f64);
    let position = MetricFamily::gauge(
        "alertmanager_peer_position",
        "Position the Alertmanager instance believes it's in.",
    )
    .with_value(shared.cluster.as_ref().map_or(0, |c| c.position()) as f64);
    let writes_failed = MetricFamily::counter(
        "obsd_alertmanager_state_write_failures_total",
        "Writes of the silences or notification log to disk that failed (the state stays in memory).",
    )
    .with_value(shared.state_counters.write_failures.load(std::sync::atomic::Ordering::Relaxed) as f64);
    let set_aside = MetricFamily::counter(
        "obsd_alertmanager_state_files_set_aside_total",
        "State files that did not parse at start and were moved aside.",
    )
    .with_value(shared.state_counters.set_aside.load(std::sync::atomic::Ordering::Relaxed) as f64);
    families.extend([
        alerts,
        silences,
        groups,
        nflog,
        hash,
        reload_ok,
        reload_at,
        cluster_enabled,
        cluster_members,
        position,
        writes_failed,
        set_aside,
    ]);
    crate::self_metrics::text_page(families)
}
