//! Cases from Prometheus 2.42's `template/template_test.go` (adapted where Prometheus feeds
//! Go slices as data: the same values are passed as constants or query results) and from
//! `promtool test rules` runs of Prometheus 2.42.0 (the integration test
//! `tests/rule_templates.rs` keeps checking those against the binary).

use super::*;
use crate::model::Labels;

fn metric(pairs: &[(&str, &str)], value: f64) -> QuerySample {
    QuerySample { labels: Labels::from_pairs(pairs.iter().copied()), value }
}

/// Expands like Prometheus's `Expander.Expand` with name "test" and no alert definitions in
/// front, so error positions are the ones `template_test.go` expects.
fn run_with(text: &str, result: Vec<QuerySample>) -> Result<String, String> {
    let q = move |_: &str| Ok(result.clone());
    let env = funcs::Env {
        query: &q,
        external_url: Rc::from("http://testhost:9090/path/prefix"),
        dialect: Dialect::Prometheus,
        escape_html: false,
    };
    let trees = parse::parse("test", text, Dialect::Prometheus)
        .map_err(|e| format!("error parsing template test: {e}"))?;
    let root = value::Root {
        labels: Rc::new(BTreeMap::new()),
        external_labels: Rc::new(BTreeMap::new()),
        external_url: Rc::from("http://testhost:9090/path/prefix"),
        value: 0.0,
    };
    let sources = [exec::Source { trees: &trees, text, name: "test" }];
    exec::execute(&sources, "test", value::Value::Root(Rc::new(root)), &env)
        .map_err(|e| format!("error executing template test: {e}"))
}

fn run(text: &str) -> Result<String, String> {
    run_with(text, Vec::new())
}

fn ok(text: &str, want: &str) {
    assert_eq!(run(text).as_deref(), Ok(want), "{text}");
}

fn fails(text: &str, want: &str) {
    assert_eq!(run(text), Err(want.to_string()), "{text}");
}

#[test]
fn prometheus_template_test_cases() {
    ok("plain text", "plain text");
    ok("{{ 1 }}", "1");
    fails(
        "{{\u{a0}}}",
        "error parsing template test: template: test:1: unrecognized character in action: U+00A0",
    );
    ok("{{ \"<b>\" }}", "<b>");
    ok("{{define \"x\"}}{{.arg0}} {{.arg1}}{{end}}{{template \"x\" (args 1 \"2\")}}", "1 2");
    assert_eq!(run_with("{{ query \"1.5\" | first | value }}", vec![metric(&[], 1.5)]).as_deref(), Ok("1.5"));
    let one = || vec![metric(&[("__name__", "metric"), ("instance", "a")], 11.0)];
    assert_eq!(run_with("{{ query \"metric{instance='a'}\" | first | value }}", one()).as_deref(), Ok("11"));
    assert_eq!(
        run_with("{{ query \"metric{instance='a'}\" | first | label \"instance\" }}", one()).as_deref(),
        Ok("a")
    );
    assert_eq!(
        run_with(
            "{{ query \"metric{__value__='a'}\" | first | strvalue }}",
            vec![metric(&[("__name__", "metric"), ("__value__", "a")], 11.0)]
        )
        .as_deref(),
        Ok("a")
    );
    assert_eq!(
        run_with("{{ query \"metric{instance='a'}\" | first | label \"foo\" }}", one()).as_deref(),
        Ok("")
    );
    assert_eq!(run_with("{{ $x := query \"metric\" | first }}{{ $x.Labels.foo }}", one()).as_deref(), Ok(""));
    let two = vec![
        metric(&[("__name__", "metric"), ("instance", "b")], 21.0),
        metric(&[("__name__", "metric"), ("instance", "a")], 11.0),
    ];
    assert_eq!(
        run_with(
            "{{ range query \"metric\" | sortByLabel \"instance\" }}{{.Labels.instance}}:{{.Value}}: {{end}}",
            two
        )
        .as_deref(),
        Ok("a:11: b:21: ")
    );
    ok("{{ \"foo.example.com\" | stripPort }}", "foo.example.com");
    ok("{{ \"foo.example.com:12345\" | stripPort }}", "foo.example.com");
    ok("{{ \"192.0.2.1\" | stripPort }}", "192.0.2.1");
    ok("{{ \"192.0.2.1:12345\" | stripPort }}", "192.0.2.1");
    ok("{{ \"2001:0DB8::1\" | stripPort }}", "2001:0DB8::1");
    ok("{{ \"[2001:0DB8::1]:12345\" | stripPort }}", "2001:0DB8::1");
    ok("{{ \"[2001:0DB8::1]::12345\" | stripPort }}", "[2001:0DB8::1]::12345");
    fails("{{", "error parsing template test: template: test:1: unclosed action");
    fails(
        "{{ query \"missing\" | first }}",
        "error executing template test: template: test:1:21: executing \"test\" at <first>: error calling first: first() called on vector with no elements",
    );
    fails(
        "{{ (query \"missing\").banana }}",
        "error executing template test: template: test:1:10: executing \"test\" at <\"missing\">: can't evaluate field banana in type template.queryResult",
    );
    ok("{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}", "xa");
    ok(
        "{{ humanize 0.0 }}:{{ humanize 1.0 }}:{{ humanize 1234567.0 }}:{{ humanize .12 }}:",
        "0:1:1.235M:120m:",
    );
    ok(
        "{{ humanize \"0.0\" }}:{{ humanize \"1.0\" }}:{{ humanize \"1234567.0\" }}:{{ humanize \".12\" }}:",
        "0:1:1.235M:120m:",
    );
    fails(
        "{{ humanize \"one\" }}",
        "error executing template test: template: test:1:3: executing \"test\" at <humanize \"one\">: error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax",
    );
    ok(
        "{{ humanize 0 }}:{{ humanize -1 }}:{{ humanize 1 }}:{{ humanize 1234567 }}:{{ humanize 9223372036854775807 }}:",
        "0:-1:1:1.235M:9.223E:",
    );
    ok(
        "{{ humanize1024 0.0 }}:{{ humanize1024 1.0 }}:{{ humanize1024 1048576.0 }}:{{ humanize1024 .12 }}:",
        "0:1:1Mi:0.12:",
    );
    ok(
        "{{ humanize1024 0 }}:{{ humanize1024 -1 }}:{{ humanize1024 1 }}:{{ humanize1024 1234567 }}:{{ humanize1024 9223372036854775807 }}:",
        "0:-1:1:1.177Mi:8Ei:",
    );
    fails(
        "{{ humanize1024 \"one\" }}",
        "error executing template test: template: test:1:3: executing \"test\" at <humanize1024 \"one\">: error calling humanize1024: strconv.ParseFloat: parsing \"one\": invalid syntax",
    );
    ok(
        "{{ humanizeDuration 0 }}:{{ humanizeDuration 1 }}:{{ humanizeDuration 60 }}:{{ humanizeDuration 3600 }}:{{ humanizeDuration 86400 }}:{{ humanizeDuration 90000 }}:{{ humanizeDuration -183845.0 }}:{{ humanizeDuration 899.99 }}:",
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
    );
    ok(
        "{{ humanizeDuration .1 }}:{{ humanizeDuration .0001 }}:{{ humanizeDuration .12345 }}:{{ humanizeDuration 60.1 }}:{{ humanizeDuration 60.5 }}:{{ humanizeDuration 1.2345 }}:{{ humanizeDuration 12.345 }}:",
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
    );
    ok(
        "{{ humanizeDuration \".1\" }}:{{ humanizeDuration \".0001\" }}:{{ humanizeDuration \"12.345\" }}:{{ humanizeDuration 1234567 }}:",
        "100ms:100us:12.35s:14d 6h 56m 7s:",
    );
    ok(
        "{{ range $v := args \"+Inf\" \"-Inf\" \"NaN\" }}{{ humanize $v }}:{{ humanize1024 $v }}:{{ humanizeDuration $v }}:{{ humanizeTimestamp $v }}:{{ end }}",
        "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:",
    );
    ok(
        "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
        "-22.22%:0%:12.35%:123.5%",
    );
    ok(
        "{{ humanizePercentage 1234567 }}:{{ humanizePercentage 9223372036854775807 }}",
        "1.235e+08%:9.223e+20%",
    );
    fails(
        "{{ \"one\" | humanizePercentage }}",
        "error executing template test: template: test:1:11: executing \"test\" at <humanizePercentage>: error calling humanizePercentage: strconv.ParseFloat: parsing \"one\": invalid syntax",
    );
    ok(
        "{{ humanizeTimestamp 0 }}:{{ humanizeTimestamp -1 }}:{{ humanizeTimestamp 1 }}:{{ humanizeTimestamp 1234567 }}:{{ humanizeTimestamp 9223372036 }}:",
        "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:",
    );
    fails(
        "{{ humanizeTimestamp -9223372036854775808 }}",
        "error executing template test: template: test:1:3: executing \"test\" at <humanizeTimestamp -9223372036854775808>: error calling humanizeTimestamp: -9.223372036854776e+18 cannot be represented as a nanoseconds timestamp since it overflows int64",
    );
    ok("{{ 1435065584.128 | humanizeTimestamp }}", "2015-06-23 13:19:44.128 +0000 UTC");
    ok("{{ \"1435065584.128\" | humanizeTimestamp }}", "2015-06-23 13:19:44.128 +0000 UTC");
    ok("{{ (1435065584.128 | toTime).Format \"2006\" }}", "2015");
    ok("{{ (\"1435065584.128\" | toTime).Format \"2006\" }}", "2015");
    ok("{{ \"aa bb CC\" | title }}", "Aa Bb CC");
    ok("{{ \"aa bb CC\" | toUpper }}", "AA BB CC");
    ok("{{ \"aA bB CC\" | toLower }}", "aa bb cc");
    ok("{{ match \"a+\" \"aa\" }} {{ match \"a+\" \"b\" }}", "true false");
    ok("{{ graphLink \"up\" }}", "/graph?g0.expr=up&g0.tab=0");
    ok("{{ tableLink \"up\" }}", "/graph?g0.expr=up&g0.tab=1");
    ok("{{ pathPrefix }}", "/path/prefix");
    ok("{{ externalURL }}", "http://testhost:9090/path/prefix");
    ok("{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}", "3720.01");
    ok("{{ \"foo.example.com\" | stripDomain }}", "foo");
    ok("{{ \"foo.example.com:12345\" | stripDomain }}", "foo:12345");
    ok("{{ \"192.0.2.1\" | stripDomain }}", "192.0.2.1");
    ok("{{ \"192.0.2.1:12345\" | stripDomain }}", "192.0.2.1:12345");
    ok("{{ \"2001:0DB8::1\" | stripDomain }}", "2001:0DB8::1");
    ok("{{ \"[2001:0DB8::1]:12345\" | stripDomain }}", "[2001:0DB8::1]:12345");
    ok("{{ \"[2001:0DB8::1]::12345\" | stripDomain }}", "[2001:0DB8::1]::12345");
}

fn alert(text: &str) -> Result<String, String> {
    let labels =
        Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "host.example.com:9100")]);
    let external = Labels::from_pairs([("cluster", "c1"), ("region", "eu")]);
    let data = TemplateData {
        labels: &labels,
        external_labels: &external,
        external_url: "http://prom.example:9090/sub/path",
        value: 1.0,
    };
    let up = |_: &str| {
        Ok(vec![
            QuerySample {
                labels: Labels::from_pairs([
                    ("__name__", "up"),
                    ("job", "node"),
                    ("instance", "host.example.com:9100"),
                ]),
                value: 1.0,
            },
            QuerySample {
                labels: Labels::from_pairs([
                    ("__name__", "up"),
                    ("job", "prom"),
                    ("instance", "10.0.0.1:9090"),
                ]),
                value: 0.0,
            },
        ])
    };
    expand("__alert_A", text, &data, &up, 60_000)
}

/// Outputs of the same templates under `promtool test rules` (Prometheus 2.42.0).
#[test]
fn promtool_observed_outputs() {
    let cases: &[(&str, &str)] = &[
        (
            "{{ $labels.__name__ }}|{{ $labels.job }}|{{ $labels.missing }}|{{ $externalLabels.cluster }}|{{ $externalURL }}",
            "up|node||c1|http://prom.example:9090/sub/path",
        ),
        ("{{ 1e21 }} {{ 1e3 }} {{ 0x10 }} {{ 'a' }} {{ 1_000 }}", "1e+21 1000 16 97 1000"),
        ("{{ (query \"up\" | first).Labels }}", "map[__name__:up instance:host.example.com:9100 job:node]"),
        ("{{ query \"up\" | first }}", "{map[__name__:up instance:host.example.com:9100 job:node] 1}"),
        (
            "{{ printf \"%v\" (query \"up\" | first) }}",
            "&{map[__name__:up instance:host.example.com:9100 job:node] 1}",
        ),
        (
            "{{ . }}",
            "{map[__name__:up instance:host.example.com:9100 job:node] map[cluster:c1 region:eu] http://prom.example:9090/sub/path 1}",
        ),
        ("{{ printf \"%.2f %.1f %.0f %.3g %g\" 0.125 0.25 0.5 1234.5 1e-7 }}", "0.12 0.2 0 1.23e+03 1e-07"),
        (
            "{{ toTime 1435065584.128 }}|{{ (toTime 1435065584.128).Format \"Mon Jan 2 15:04:05.000 MST 2006 -0700 Z07:00 pm\" }}",
            "2015-06-23 13:19:44.128 +0000 UTC|Tue Jun 23 13:19:44.128 UTC 2015 +0000 Z pm",
        ),
        (
            "{{ humanize 1234567 }} {{ humanize 0.000012345 }} {{ humanize1024 1048577 }} {{ humanizeDuration 3723.5 }} {{ humanizePercentage 0.12345 }} {{ humanizeTimestamp 1672531200 }}",
            "1.235M 12.35u 1Mi 1h 2m 3s 12.35% 2023-01-01 00:00:00 +0000 UTC",
        ),
        ("{{ args 1 \"2\" 3.5 true }}", "map[arg0:1 arg1:2 arg2:3.5 arg3:true]"),
        ("{{ index \"abc\" 1 }} {{ slice \"abcdef\" 1 3 }} {{ len \"héllo\" }}", "98 bc 6"),
        (
            "{{ html \"<a&b>\\\"'\" }} {{ urlquery \"a b&c=d/é\" }} {{ print 1 2 \"a\" \"b\" 3 nil }} {{ println 1 \"a\" }}",
            "&lt;a&amp;b&gt;&#34;&#39; a+b%26c%3Dd%2F%C3%A9 1 2ab3 <nil> 1 a\n",
        ),
        (
            "{{ eq 1 2 3 1 }} {{ ne \"a\" \"b\" }} {{ eq .Value 1.0 }} {{ eq $value 2.0 }}",
            "true true true false",
        ),
        (
            "{{ with $x := 5 }}{{ $x }}{{ end }} {{ with \"\" }}no{{ else }}else{{ end }} {{ if 0 }}a{{ else if 1 }}b{{ end }}",
            "5 else b",
        ),
        (
            "{{ range $i, $s := query \"up\" }}{{ $i }}={{ $s.Labels.job }}:{{ $s.Value }};{{ end }}|{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}",
            "0=node:1;1=prom:0;|__name__=up,instance=host.example.com:9100,job=node,",
        ),
        (
            "{{ range query \"up\" }}{{ if eq .Labels.job \"node\" }}{{ break }}{{ end }}{{ .Labels.job }}{{ end }}|{{ range query \"up\" }}{{ if eq .Labels.job \"node\" }}{{ continue }}{{ end }}{{ .Labels.job }}{{ end }}",
            "|prom",
        ),
        (
            "{{ define \"t\" }}[{{ . }}]{{ end }}{{ template \"t\" 5 }}{{ template \"t\" }}{{ block \"b\" \"z\" }}<{{ . }}>{{ end }}",
            "[5][<no value>]<z>",
        ),
        (
            "{{ humanizeDuration 0.000001234 }} {{ humanizeDuration -0.5 }} {{ humanizeDuration 1e20 }} {{ humanize -1234.5 }} {{ humanize 1e30 }} {{ humanize1024 -2048 }} {{ humanize 0.5 }} {{ humanize 999.95 }}",
            "1.234us -500ms -106751991167300d -15h -30m -8s -1.234k 1e+06Y -2ki 500m 1000",
        ),
        (
            "{{ stripPort \"[::1]:80\" }} {{ stripPort \"a:b:c\" }} {{ stripDomain \"foo.bar:80\" }} {{ stripDomain \"[fe80::1]:80\" }} {{ stripDomain \"a.b.c\" }}",
            "::1 a:b:c foo:80 [fe80::1]:80 a",
        ),
        (
            "{{ args }} {{ (args 1 2).arg1 }} {{ (args 1).arg5 }} {{ index (args 1) \"nope\" }}",
            "map[] 2 <no value> <no value>",
        ),
        ("{{ printf \"%s\" (args 1).arg5 }}", "%!s(<nil>)"),
        (
            "{{ sortByLabel \"job\" (query \"up\") | len }} {{ (query \"up\" | sortByLabel \"job\" | first).Labels.job }}",
            "2 node",
        ),
        (
            "{{ (toTime 1e9).Year }} {{ (toTime 1e9).Month }} {{ (toTime 1e9).Weekday }} {{ (toTime 1e9).Unix }} {{ (toTime 1e9).YearDay }} {{ (toTime 1e9).UTC }}",
            "2001 September Sunday 1000000000 252 2001-09-09 01:46:40 +0000 UTC",
        ),
        ("{{ js \"é\\u0001\\u2028x\" }}", "é\\u0001\\u2028x"),
        (
            "{{ title \"ǆemal\" }} {{ toUpper \"straße ǆ ᾳ\" }} {{ toLower \"İSTANBUL ΣΑΣ\" }}",
            "ǅemal STRAßE Ǆ ᾼ istanbul σασ",
        ),
        ("{{ printf \"%s %d\" (toTime 0) (toTime 0) }}", "1970-01-01 00:00:00 +0000 UTC &{0 62135596800 0}"),
        (
            "{{ printf \"%d %s\" (args 1 \"a\") (args 1 \"a\") }}",
            "map[%!d(string=arg0):1 %!d(string=arg1):%!d(string=a)] map[arg0:%!s(int=1) arg1:a]",
        ),
        (
            "{{ printf \"%s\" (query \"up\") }}",
            "[%!s(*template.sample=&{map[__name__:up instance:host.example.com:9100 job:node] 1}) %!s(*template.sample=&{map[__name__:up instance:10.0.0.1:9090 job:prom] 0})]",
        ),
        (
            "{{ 0.1 }} {{ -5 }} {{ +5 }} {{ 0o17 }} {{ 0b101 }} {{ 017 }} {{ 1.5e3 }} {{ 0x1p-2 }} {{ .5 }} {{ 1. }}",
            "0.1 -5 5 15 5 15 1500 0.25 0.5 1",
        ),
        (
            "{{ match \"^a\\\\d$\" \"a٣\" }} {{ match \"\\\\w\" \"é\" }} {{ match \"[[:alpha:]]\" \"é\" }} {{ match \"\\\\s\" \"\\u00a0\" }}",
            "false false false false",
        ),
        ("a {{- \" b \" -}} c {{/* comment */}}d{{- /* trimmed */ -}} e", "a b c de"),
    ];
    for (text, want) in cases {
        assert_eq!(alert(text).as_deref(), Ok(*want), "{text}");
    }
}

/// Execution and parse errors as Prometheus renders them in the annotation.
#[test]
fn promtool_observed_errors() {
    let e = |pos: &str, at: &str, msg: &str| {
        format!(
            "<error expanding template: error executing template __alert_A: template: __alert_A:1:{pos}: executing \"__alert_A\" at <{at}>: {msg}>"
        )
    };
    let root = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }";
    let cases: Vec<(&str, String)> = vec![
        ("{{ .Nope }}", e("115", ".Nope", &format!("can't evaluate field Nope in type {root}"))),
        (
            "{{ index \"abc\" 3 }}",
            e("115", "index \"abc\" 3", "error calling index: reflect: string index out of range"),
        ),
        ("{{ eq \"a\" 1 }}", e("115", "eq \"a\" 1", "error calling eq: incompatible types for comparison")),
        (
            "{{ index $labels \"job\" }} {{ index $labels 1 }}",
            e("141", "index $labels 1", "error calling index: value has type int; should be string"),
        ),
        ("{{ template \"x\" }}", e("124", "{{template \"x\"}}", "template \"x\" not defined")),
        ("{{ $value.foo }}", e("121", "$value.foo", "can't evaluate field foo in type float64")),
        ("{{ $labels.job.foo }}", e("122", "$labels.job.foo", "can't evaluate field foo in type string")),
        (
            "{{ len nil }}",
            e("115", "len nil", "error calling len: reflect: call of reflect.Value.Type on zero Value"),
        ),
        ("{{ len 3 }}", e("115", "len 3", "error calling len: len of type int")),
        (
            "{{ reReplaceAll \"(\" \"x\" \"y\" }}",
            e(
                "115",
                "reReplaceAll \"(\" \"x\" \"y\"",
                "error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`",
            ),
        ),
        (
            "{{ match \"(\" \"y\" }}",
            e(
                "115",
                "match \"(\" \"y\"",
                "error calling match: error parsing regexp: missing closing ): `(`",
            ),
        ),
        (
            "{{ humanize \"1e400\" }}",
            e(
                "115",
                "humanize \"1e400\"",
                "error calling humanize: strconv.ParseFloat: parsing \"1e400\": value out of range",
            ),
        ),
        (
            "{{ humanize true }}",
            e("115", "humanize true", "error calling humanize: can't convert bool to float"),
        ),
        ("{{ toUpper 1 }}", e("123", "1", "expected string; found 1")),
        ("{{ toUpper .Value }}", e("123", ".Value", "wrong type for value; expected string; got float64")),
        ("{{ humanize 1 2 }}", e("115", "humanize", "wrong number of args for humanize: want 1 got 2")),
        (
            "{{ label \"x\" nil }}",
            e(
                "115",
                "label \"x\" nil",
                "error calling label: runtime error: invalid memory address or nil pointer dereference",
            ),
        ),
        (
            "{{ first nil }}",
            e("115", "first nil", "error calling first: first() called on vector with no elements"),
        ),
        ("{{ range 5 }}x{{ end }}", e("121", "5", "range can't iterate over 5")),
        ("{{ range \"abc\" }}x{{ end }}", e("121", "\"abc\"", "range can't iterate over abc")),
        (
            "{{ and 1 0 \"x\" }} {{ or 0 \"\" \"y\" }} {{ not 0 }} {{ and }}",
            e("163", "and", "wrong number of args for and: want at least 1 got 0"),
        ),
        ("{{ eq 1 1.0 }}", e("115", "eq 1 1.0", "error calling eq: incompatible types for comparison")),
        (
            "{{ eq $labels $labels }}",
            e(
                "115",
                "eq $labels $labels",
                "error calling eq: non-comparable type map[__name__:up instance:host.example.com:9100 job:node]: map[string]string",
            ),
        ),
        (
            "{{ lt \"a\" \"b\" }} {{ gt 2 1 }} {{ le 2.5 2.5 }} {{ ge true false }}",
            e("162", "ge true false", "error calling ge: invalid type for comparison"),
        ),
        ("{{ call 1 }}", e("115", "call 1", "error calling call: non-function of type int")),
        ("{{ nil }}", e("115", "nil", "nil is not a command")),
        (
            "{{ 18446744073709551615 }}",
            e("115", "18446744073709551615", "18446744073709551615 overflows int"),
        ),
        ("{{ $x := 1 }}{{ $y = 2 }}", e("133", "2", "undefined variable: $y")),
        ("{{ .Labels 1 }}", e("115", ".Labels", "Labels has arguments but cannot be invoked as function")),
        ("{{ $labels.job 1 }}", e("122", "$labels.job", "job is not a method but has arguments")),
        ("{{ \"x\" | $labels.job }}", e("128", "$labels.job", "job is not a method but has arguments")),
        (
            "{{ (query \"up\").banana }}",
            e("122", "\"up\"", "can't evaluate field banana in type template.queryResult"),
        ),
        ("{{ toTime \"NaN\" }}", e("115", "toTime \"NaN\"", "error calling toTime: value is NaN or Inf")),
        (
            "{{ parseDuration \"x\" }}",
            e(
                "115",
                "parseDuration \"x\"",
                "error calling parseDuration: not a valid duration string: \"x\"",
            ),
        ),
        (
            "{{ parseDuration \"\" }}",
            e("115", "parseDuration \"\"", "error calling parseDuration: empty duration string"),
        ),
        (
            "{{ toUpper (safeHtml \"x\") }}",
            e("133", "\"x\"", "wrong type for value; expected string; got template.HTML"),
        ),
        ("{{ (args 1).arg5.foo }}", e("121", "1", "nil pointer evaluating interface {}.foo")),
        (
            "{{ toUpper (args 1).arg5 }}",
            e("129", "1", "wrong type for value; expected string; got interface {}"),
        ),
        ("{{ (toTime 1e9).Date }}", e("123", "1e9", "can't call method/function \"Date\" with 3 results")),
        ("{{ (toTime 1e9).Nope }}", e("123", "1e9", "can't evaluate field Nope in type *time.Time")),
        (
            "{{ query \"up\" | first | humanize }}",
            e("136", "humanize", "error calling humanize: can't convert *template.sample to float"),
        ),
        (
            "{{ index (query \"up\") 2 }}",
            e("115", "index (query \"up\") 2", "error calling index: reflect: slice index out of range"),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(alert(text), Err(want), "{text}");
    }
    let d = "{{ define \"t\" }}{{ .nope.foo }}{{ end }}{{ template \"t\" (args 1) }}";
    assert_eq!(
        alert(d),
        Err("<error expanding template: error executing template __alert_A: template: __alert_A:1:136: executing \"t\" at <.nope.foo>: nil pointer evaluating interface {}.foo>".to_string())
    );
}

#[test]
fn parse_errors_match_promtool_check_rules() {
    let cases: &[(&str, &str)] = &[
        ("{{", "unclosed action"),
        ("{{ foo }}", "function \"foo\" not defined"),
        ("{{ $x }}", "undefined variable \"$x\""),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ if }}", "missing value for if"),
        ("{{ if true }}", "unexpected EOF"),
        ("{{ ) }}", "unexpected \")\" in command"),
        ("{{ (1 }}", "unclosed left paren"),
        ("{{ 1 | 2 }}", "non executable command in pipeline stage 2"),
        ("{{ \"abc }}", "unterminated quoted string"),
        ("{{ 'ab' }}", "malformed character constant: 'ab'"),
        ("{{ 99999999999999999999 }}", "integer overflow: \"99999999999999999999\""),
        ("{{ break }}", "{{break}} outside {{range}}"),
        ("{{ range . }}{{ else }}{{ else }}{{ end }}", "expected end; found {{else}}"),
        ("{{ template x }}", "unexpected \"x\" in template clause"),
        ("{{/* c */ }}", "comment ends before closing delimiter"),
        ("{{ 3.x }}", "bad number syntax: \"3.x\""),
        ("{{ \"x\".y }}", "unexpected . after term \"\\\"x\\\"\""),
        ("{{ @ }}", "unexpected \"@\" in command"),
        ("{{ .a! }}", "bad character U+0021 '!'"),
        ("{{ $a, $b := 1 }}", "too many declarations in command"),
        ("{{ range $a, $b, $c := . }}{{end}}", "too many declarations in range"),
        ("{{ with $x := 1 }}{{ end }}{{ $x }}", "undefined variable \"$x\""),
        ("{{ ( }}", "unclosed left paren"),
        ("{{ 0x }}", "illegal number syntax: \"0x\""),
        ("{{ - 3 }}", "illegal number syntax: \"-\""),
        ("{{ . | nil }}", "non executable command in pipeline stage 2"),
    ];
    for (text, want) in cases {
        assert_eq!(check("__alert_A", text), Err(format!("template: __alert_A:1: {want}")), "{text}");
    }
    for ok in [
        "{{ $x := 1 }}{{ $x = 2 }}{{ $y = 3 }}",
        "{{ define \"a\" }}{{ end }}{{ define \"a\" }}x{{ end }}",
        "{{- 3 -}}",
        "{{-3}}",
        "{{ nil }}",
        "{{ .x.y | printf \"%s\" }}",
    ] {
        assert_eq!(check("__alert_A", ok), Ok(()), "{ok}");
    }
    assert_eq!(
        check("__alert_A", "{{ if true }}\n\nfoo {{ bar }}{{ end }}"),
        Err("template: __alert_A:3: function \"bar\" not defined".into())
    );
    assert_eq!(
        check("__alert_A", "{{ if true\n }}\n{{ foo\n }}"),
        Err("template: __alert_A:3: function \"foo\" not defined".into())
    );
    assert_eq!(
        check("__alert_A", "{{ 1 \n 2"),
        Err("template: __alert_A:2: unclosed action started at __alert_A:1".into())
    );
    assert!(check("__alert_A", "{{ 1+2i }}").is_err_and(|e| e.contains("unsupported")));
    assert_eq!(
        alert("{{ foo }}"),
        Err("<error expanding template: error parsing template __alert_A: template: __alert_A:1: function \"foo\" not defined>".to_string())
    );
}

#[test]
fn hostile_templates_fail_cleanly() {
    let deep = format!("{}x{}", "{{ if 1 }}".repeat(600), "{{ end }}".repeat(600));
    assert!(check("__alert_A", &deep).is_err());
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(600), ")".repeat(600));
    assert!(check("__alert_A", &parens).is_err());
    let rec = "{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}";
    assert!(alert(rec).is_err_and(|e| e.contains("exceeded maximum template depth")));
    assert!(alert("{{ query \"up\" }}").is_err_and(|e| e.contains("unsupported by obsd's template engine")));
}
