//! Alert templates against the real thing: every case is expanded by `gotemplate::expand`
//! and the result written as the expected annotation of a `promtool test rules` unit test
//! (Prometheus 2.42.0's promtool, from Debian's `prometheus` package). promtool passing
//! proves the two texts are equal, error texts included; `promtool check rules` does the same
//! for `check`'s parse errors.

use obsd::gotemplate::{self as template, QuerySample, TemplateData};
use obsd::model::Labels;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

fn promtool() -> Option<&'static str> {
    ["/usr/bin/promtool", "/usr/local/bin/promtool"].into_iter().find(|p| Path::new(p).exists())
}

const EXTERNAL_URL: &str = "http://prom.example:9090/sub/path";

fn node() -> Labels {
    Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "host.example.com:9100")])
}

fn prom() -> Labels {
    Labels::from_pairs([("__name__", "up"), ("job", "prom"), ("instance", "10.0.0.1:9090")])
}

/// What promtool's PromQL returns at 1m for the queries the templates run, over the input
/// series written below. promtool's test storage creates series in map order, so the order of
/// a query's samples varies from run to run: templates that show it sort first.
fn query(q: &str) -> Result<Vec<QuerySample>, String> {
    Ok(match q {
        "up" => vec![QuerySample { labels: prom(), value: 0.0 }, QuerySample { labels: node(), value: 1.0 }],
        "up{job='node'}" => vec![QuerySample { labels: node(), value: 1.0 }],
        "sum(up)" => vec![QuerySample { labels: Labels::new(), value: 1.0 }],
        _ => Vec::new(),
    })
}

struct Case {
    /// The alert's expression; `None` selects `up{job="node"}`.
    value: Option<&'static str>,
    template: &'static str,
}

fn case(template: &'static str) -> Case {
    Case { value: None, template }
}

fn valued(value: &'static str, template: &'static str) -> Case {
    Case { value: Some(value), template }
}

fn cases() -> Vec<Case> {
    vec![
        case("{{ $labels.job }} on {{ $labels.instance }} ({{ $labels.missing }}) {{ $labels.__name__ }}"),
        case("{{ $externalLabels.cluster }} {{ $externalURL }} {{ .ExternalLabels }}"),
        valued("42", "{{ $value }}"),
        valued("0.1", "{{ $value }}"),
        valued("1e21", "{{ $value }}"),
        valued("1.5e-7", "{{ $value }}"),
        valued("-3", "{{ $value }}"),
        valued("123456789", "{{ $value }} {{ .Value }}"),
        valued(
            "1234567.89",
            "{{ humanize $value }} {{ humanize1024 $value }} {{ humanizeDuration $value }} {{ humanizePercentage $value }} {{ humanizeTimestamp $value }}",
        ),
        valued(
            "0.00123",
            "{{ humanize $value }} {{ humanize1024 $value }} {{ humanizeDuration $value }} {{ humanizePercentage $value }}",
        ),
        valued(
            "1672531200",
            "{{ humanizeTimestamp $value }} {{ (toTime $value).Format \"2006-01-02T15:04:05Z07:00 Mon Jan _2\" }} {{ humanizeDuration $value }}",
        ),
        valued(
            "3.14159",
            "{{ printf \"%.2f\" $value }} {{ printf \"%5.1f|%-6d|%x|%q|%e|%g\" $value 42 255 \"q\" $value $value }}",
        ),
        valued("42", "{{ printf \"%d %s\" $value $value }} {{ printf \"%v %T\" $labels $value }}"),
        case(
            "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }} {{ reReplaceAll \"\\\\.\" \"_\" $labels.instance }} {{ match \"^host\" $labels.instance }}",
        ),
        case(
            "{{ toUpper $labels.job }} {{ title \"hello world\" }} {{ toLower \"ABC\" }} {{ stripPort $labels.instance }} {{ stripDomain $labels.instance }}",
        ),
        case(
            "{{ with query \"up{job='node'}\" }}{{ . | first | value }} {{ . | first | label \"instance\" }}{{ end }}",
        ),
        case("{{ range query \"up\" | sortByLabel \"job\" }}{{ .Labels.job }}={{ .Value }} {{ end }}"),
        case(
            "{{ query \"sum(up)\" | first | value | humanize }} {{ len (query \"up\") }} {{ range $i, $s := query \"up\" }}{{ $i }}{{ end }}",
        ),
        valued(
            "2",
            "{{ if gt $value 1.0 }}high{{ else }}low{{ end }} {{ $x := 5 }}{{ $x }} {{- \" trimmed \" -}} !",
        ),
        case(
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }} {{ index $labels \"job\" }} {{ args 1 \"a\" }}",
        ),
        case(
            "{{ js $labels.instance }} {{ html \"<b>\" }} {{ urlquery \"a b&c\" }} {{ graphLink \"up == 0\" }} {{ tableLink \"up\" }}",
        ),
        case(
            "{{ define \"row\" }}[{{ .Labels.job }}]{{ end }}{{ range query \"up\" | sortByLabel \"job\" }}{{ template \"row\" . }}{{ end }}",
        ),
        // Execution errors: Prometheus puts its error text in the annotation.
        case("{{ index $value 0 }}"),
        case("{{ template \"x\" }}"),
        case("{{ $labels.job.nope }}"),
        case("{{ humanize \"abc\" }}"),
        case("{{ first (query \"nothing\") }}"),
        case("{{ eq $labels.job 1 }}"),
        case("{{ reReplaceAll \"(\" \"x\" $labels.job }}"),
        case("first line\n{{ .Nope }}"),
        case("{{ printf \"%s\" (query \"up\" | sortByLabel \"instance\") }}"),
    ]
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(
        l.iter().filter(|(k, _)| *k != "__name__").map(|(k, v)| (k.to_string(), json!(v))).collect(),
    )
}

#[test]
fn expansions_match_promtool_test_rules() {
    let Some(promtool) = promtool() else {
        println!(
            "skipped: promtool (Prometheus 2.42) is not installed; CI installs Debian's prometheus package"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let external = Labels::from_pairs([("cluster", "c1"), ("region", "eu")]);
    let mut rules = Vec::new();
    let mut tests = Vec::new();
    for (i, c) in cases().into_iter().enumerate() {
        let name = format!("A{i}");
        let (expr, labels, value) = match c.value {
            None => ("up{job=\"node\"}".to_string(), node(), 1.0),
            Some(v) => (format!("vector({v})"), Labels::new(), v.parse::<f64>().expect("value")),
        };
        let data =
            TemplateData { labels: &labels, external_labels: &external, external_url: EXTERNAL_URL, value };
        let expanded = template::expand(&format!("__alert_{name}"), c.template, &data, &query, 60_000);
        let annotation = expanded.unwrap_or_else(|e| e);
        rules.push(json!({"alert": name, "expr": expr, "annotations": {"a": c.template}}));
        tests.push(json!({
            "eval_time": "1m",
            "alertname": name,
            "exp_alerts": [{"exp_labels": labels_json(&labels), "exp_annotations": {"a": annotation}}],
        }));
    }
    let rule_file = json!({"groups": [{"name": "templates", "rules": rules}]});
    std::fs::write(dir.path().join("rules.yml"), rule_file.to_string()).expect("write rules");
    let test_file = json!({
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "external_labels": {"cluster": "c1", "region": "eu"},
            "external_url": EXTERNAL_URL,
            "input_series": [
                {"series": "up{job=\"node\", instance=\"host.example.com:9100\"}", "values": "1 1 1"},
                {"series": "up{job=\"prom\", instance=\"10.0.0.1:9090\"}", "values": "0 0 0"},
            ],
            "alert_rule_test": tests,
        }],
    });
    std::fs::write(dir.path().join("test.yml"), test_file.to_string()).expect("write test");
    let out = Command::new(promtool)
        .arg("test")
        .arg("rules")
        .arg(dir.path().join("test.yml"))
        .output()
        .expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool disagrees with expand():\n{text}");
}

#[test]
fn parse_errors_match_promtool_check_rules() {
    let Some(promtool) = promtool() else {
        println!(
            "skipped: promtool (Prometheus 2.42) is not installed; CI installs Debian's prometheus package"
        );
        return;
    };
    let templates = [
        "{{ foo }}",
        "{{ $x }}",
        "{{ if true }}",
        "{{ end }}",
        "{{ 1 | 2 }}",
        "{{ \"abc }}",
        "{{ ) }}",
        "line one\n\n{{ range . }}{{ else }}{{ else }}{{ end }}",
        "{{ 1 \n 2",
        "{{ .a! }}",
        "{{ break }}",
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, t) in templates.iter().enumerate() {
        let want = template::check("__alert_Bad", t).expect_err("template must not parse");
        let file = dir.path().join(format!("bad{i}.yml"));
        let rules = json!({"groups": [{"name": "g", "rules": [{"alert": "Bad", "expr": "up", "annotations": {"a": t}}]}]});
        std::fs::write(&file, rules.to_string()).expect("write rules");
        let out = Command::new(promtool).arg("check").arg("rules").arg(&file).output().expect("run promtool");
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "promtool accepted {t:?}");
        assert!(
            text.contains(&format!("annotation \"a\": {want}\n")),
            "{t:?}: check() says {want:?}, promtool:\n{text}"
        );
    }
    let good = json!({"groups": [{"name": "g", "rules": [{"alert": "Good", "expr": "up",
        "annotations": {"a": "{{ $labels.job }} {{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}"}}]}]});
    std::fs::write(dir.path().join("good.yml"), good.to_string()).expect("write rules");
    assert!(
        template::check(
            "__alert_Good",
            "{{ $labels.job }} {{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}"
        )
        .is_ok()
    );
    let out = Command::new(promtool)
        .arg("check")
        .arg("rules")
        .arg(dir.path().join("good.yml"))
        .output()
        .expect("run promtool");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
