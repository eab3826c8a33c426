//! Alertmanager 0.25's notification templates (`template/template.go`): the default named
//! templates, the user's `templates:` files, and each receiver field's text executed over
//! `template.Data` with Alertmanager's functions, as text (`ExecuteTextString`) or as HTML
//! (`ExecuteHTMLString`, whose escaping here is html/template's for HTML text in every
//! action; attribute and URL contexts are not told apart).

use super::exec::{self, Source};
use super::funcs::Env;
use super::parse::{self, Dialect, TreeSet};
use super::value::{AmAlert, AmData, GoTime, StrMap, Value};
use crate::model::Labels;
use std::rc::Rc;

const DEFAULTS: &str = include_str!("alertmanager_default.tmpl");

/// One alert as a template sees it.
#[derive(Debug, Clone)]
pub struct AlertData {
    /// "firing" or "resolved".
    pub status: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// Unix nanoseconds; `EndsAt` of a firing alert is Go's zero time.
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: String,
    pub fingerprint: String,
}

/// `template.Data`: what every field of a notification is rendered from.
#[derive(Debug, Clone)]
pub struct NotificationData {
    /// The receiver's name with `regexp.QuoteMeta` applied, as Alertmanager puts it.
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<AlertData>,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    pub external_url: String,
}

/// A parsed template file.
#[derive(Debug)]
struct File {
    name: String,
    text: String,
    trees: TreeSet,
}

/// The default templates and the user's files, parsed once at config load.
#[derive(Debug)]
pub struct NotificationTemplates {
    /// Lookup order: the user's files, the last one first (a later definition wins, as in
    /// Go's template set), then the defaults.
    files: Vec<File>,
}

/// The `.` of one notification, built once and shared by every field rendered for it.
pub struct Prepared(Value);

fn str_map(labels: &Labels) -> Rc<StrMap> {
    Rc::new(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// Go's zero `time.Time` is 0001-01-01T00:00:00Z; obsd stores it as 0.
fn go_time(nanos: i64) -> GoTime {
    if nanos == 0 {
        return GoTime { secs: -62_135_596_800, nanos: 0 };
    }
    GoTime { secs: nanos.div_euclid(1_000_000_000), nanos: nanos.rem_euclid(1_000_000_000) as u32 }
}

impl NotificationData {
    pub fn prepare(&self) -> Prepared {
        let alerts = self
            .alerts
            .iter()
            .map(|a| {
                Rc::new(AmAlert {
                    status: Rc::from(a.status.as_str()),
                    labels: str_map(&a.labels),
                    annotations: str_map(&a.annotations),
                    starts_at: go_time(a.starts_at),
                    ends_at: go_time(a.ends_at),
                    generator_url: Rc::from(a.generator_url.as_str()),
                    fingerprint: Rc::from(a.fingerprint.as_str()),
                })
            })
            .collect();
        Prepared(Value::AmData(Rc::new(AmData {
            receiver: Rc::from(self.receiver.as_str()),
            status: Rc::from(self.status.as_str()),
            alerts: Rc::new(alerts),
            group_labels: str_map(&self.group_labels),
            common_labels: str_map(&self.common_labels),
            common_annotations: str_map(&self.common_annotations),
            external_url: Rc::from(self.external_url.as_str()),
        })))
    }
}

impl NotificationTemplates {
    /// The defaults plus `files` (name, text) in the order the config lists them. `Err` is
    /// Go's parse error text.
    pub fn new(files: &[(String, String)]) -> Result<Self, String> {
        let mut parsed = Vec::with_capacity(files.len() + 1);
        for (name, text) in files.iter().rev() {
            let trees = parse::parse(name, text, Dialect::Alertmanager)?;
            parsed.push(File { name: name.clone(), text: text.clone(), trees });
        }
        let trees = parse::parse("default.tmpl", DEFAULTS, Dialect::Alertmanager)?;
        parsed.push(File { name: "default.tmpl".into(), text: DEFAULTS.into(), trees });
        Ok(NotificationTemplates { files: parsed })
    }

    /// Whether template `name` is defined (the default ones and the user's).
    pub fn defines(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.trees.contains_key(name))
    }

    /// Parse-only check of a field's text, for config load.
    pub fn check(text: &str) -> Result<(), String> {
        parse::parse("", text, Dialect::Alertmanager).map(|_| ())
    }

    /// `ExecuteTextString`: an empty text is empty; otherwise the text parsed as template ""
    /// beside the set and executed with `missingkey=zero`.
    pub fn text(&self, text: &str, data: &Prepared) -> Result<String, String> {
        self.execute(text, data, false)
    }

    /// `ExecuteHTMLString`.
    pub fn html(&self, text: &str, data: &Prepared) -> Result<String, String> {
        self.execute(text, data, true)
    }

    fn execute(&self, text: &str, data: &Prepared, escape_html: bool) -> Result<String, String> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let trees = parse::parse("", text, Dialect::Alertmanager)?;
        let mut sources = Vec::with_capacity(self.files.len() + 1);
        sources.push(Source { trees: &trees, text, name: "" });
        sources.extend(self.files.iter().map(|f| Source { trees: &f.trees, text: &f.text, name: &f.name }));
        let no_query = |_: &str| Err("query is not a function of notification templates".to_string());
        let env =
            Env { query: &no_query, external_url: Rc::from(""), dialect: Dialect::Alertmanager, escape_html };
        super::deep(|| exec::execute(&sources, "", data.0.clone(), &env))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(statuses: &[&str]) -> NotificationData {
        let alerts = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| AlertData {
                status: s.to_string(),
                labels: Labels::from_pairs([
                    ("alertname", "HighLatency"),
                    ("severity", "page"),
                    ("instance", if i == 0 { "a:9100" } else { "b:9100" }),
                ]),
                annotations: Labels::from_pairs([("summary", "slow")]),
                starts_at: 1_700_000_000_000_000_000,
                ends_at: 0,
                generator_url: "http://prom:9090/graph".into(),
                fingerprint: format!("{i:016x}"),
            })
            .collect();
        NotificationData {
            receiver: "team\\.x".into(),
            status: if statuses.contains(&"firing") { "firing" } else { "resolved" }.into(),
            alerts,
            group_labels: Labels::from_pairs([("alertname", "HighLatency")]),
            common_labels: Labels::from_pairs([("alertname", "HighLatency"), ("severity", "page")]),
            common_annotations: Labels::from_pairs([("summary", "slow")]),
            external_url: "http://am:9093".into(),
        }
    }

    #[test]
    fn the_subject_is_alertmanagers() {
        let t = NotificationTemplates::new(&[]).unwrap();
        let p = data(&["firing", "resolved"]).prepare();
        assert_eq!(t.text(r#"{{ template "__subject" . }}"#, &p).unwrap(), "[FIRING:1] HighLatency (page)");
        assert_eq!(
            t.text(r#"{{ template "slack.default.titlelink" . }}"#, &p).unwrap(),
            "http://am:9093/#/alerts?receiver=team%5C.x"
        );
        let resolved = data(&["resolved"]).prepare();
        assert_eq!(
            t.text(r#"{{ template "__subject" . }}"#, &resolved).unwrap(),
            "[RESOLVED] HighLatency (page)"
        );
    }

    #[test]
    fn kv_methods_and_functions() {
        let t = NotificationTemplates::new(&[]).unwrap();
        let p = data(&["firing", "firing"]).prepare();
        let cases = [
            ("{{ .CommonLabels.SortedPairs.Names | join \",\" }}", "alertname,severity"),
            ("{{ (index .Alerts 1).Labels.instance }}", "b:9100"),
            (
                "{{ range .Alerts }}{{ .Labels.SortedPairs.Names }}{{ end }}",
                "[alertname instance severity][alertname instance severity]",
            ),
            ("{{ .CommonLabels.Remove (stringSlice \"severity\") }}", "map[alertname:HighLatency]"),
            ("{{ len .Alerts.Resolved }}/{{ len .Alerts.Firing }}", "0/2"),
            ("{{ (index .Alerts 0).StartsAt }}", "2023-11-14 22:13:20 +0000 UTC"),
            ("{{ (index .Alerts 0).EndsAt }}", "0001-01-01 00:00:00 +0000 UTC"),
            (
                "{{ range .GroupLabels.SortedPairs }}{{ .Name }}={{ .Value }}{{ end }}",
                "alertname=HighLatency",
            ),
            ("{{ .CommonAnnotations.summary | toUpper }}", "SLOW"),
            ("{{ reReplaceAll \":.*\" \"\" (index .Alerts 0).Labels.instance }}", "a"),
        ];
        for (text, want) in cases {
            assert_eq!(t.text(text, &p).as_deref(), Ok(want), "{text}");
        }
        // Prometheus's functions are not Alertmanager's.
        assert!(t.text("{{ humanize 1 }}", &p).unwrap_err().contains("function \"humanize\" not defined"));
    }

    #[test]
    fn user_files_override_and_html_escapes_actions() {
        let files =
            vec![("mine.tmpl".to_string(), r#"{{ define "__alertmanager" }}AM <x>{{ end }}"#.to_string())];
        let t = NotificationTemplates::new(&files).unwrap();
        let p = data(&["firing"]).prepare();
        assert_eq!(t.text(r#"{{ template "slack.default.username" . }}"#, &p).unwrap(), "AM <x>");
        assert_eq!(
            t.html("<b>{{ .CommonAnnotations.summary }}+{{ \"<i>+\" }}</b>", &p).unwrap(),
            "<b>slow+&lt;i&gt;&#43;</b>"
        );
        assert_eq!(t.html("{{ \"<i>\" | safeHtml }}", &p).unwrap(), "<i>");
        let err = t.text("{{ template \"nope\" . }}", &p).unwrap_err();
        assert!(err.contains("template \"nope\" not defined"), "{err}");
        assert!(NotificationTemplates::new(&[("bad.tmpl".into(), "{{ end }}".into())]).is_err());
    }
}
