#!/usr/bin/env bash
# Rule evaluation: obsd (replica role, release build) vs Prometheus 2.42, the same rule file over
# the same data, in one run.
#
#   benches/rules_vs_prometheus.sh                      # SERIES=20000, a few minutes
#   SERIES=100000 DURATION=300 benches/rules_vs_prometheus.sh   # the issue's size
#
# Data (benches/gen_remote_write.py): SERIES counters `c` over 10 jobs, SERIES/10 gauges `g`,
# SERIES/100 histograms `h_bucket`, MINUTES (default 15) at 15 s ending now, remote-written into
# both. Rules (written here): RECORDING (default 1000) recording rules and ALERTING (default 500)
# alerting rules in RULE_GROUPS (default 10) groups at INTERVAL (default 15s): per-job rates, sums,
# averages, quantiles, and alerts on them with `for` and templated annotations. After a warm-up,
# both are watched for DURATION seconds (default 120): CPU seconds of the process per group
# evaluation, the mean group duration (`prometheus_rule_group_last_duration_seconds`), peak RSS,
# each with the ratio obsd/Prometheus. Both must report the same number of rules and no failures.
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES="${SERIES:-20000}"
MINUTES="${MINUTES:-15}"
RECORDING="${RECORDING:-1000}"
ALERTING="${ALERTING:-500}"
GROUPS_N="${RULE_GROUPS:-10}"
INTERVAL="${INTERVAL:-15s}"
DURATION="${DURATION:-120}"
WORK="${WORK:-$(mktemp -d /var/tmp/obsd-rules-bench.XXXXXX)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
OBSD="${OBSD:-$CARGO_TARGET_DIR/release/obsd}"
PROMETHEUS="${PROMETHEUS:-/usr/bin/prometheus}"

[ -x "$PROMETHEUS" ] || { echo "prometheus not found (apt-get install prometheus)"; exit 1; }
[ -x "$OBSD" ] || cargo build --release --bin obsd

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PPORT=$(free_port)
OPORT=$(free_port)
rm -rf "$WORK/prom" "$WORK/obsd"
mkdir -p "$WORK/prom" "$WORK/obsd"

RECORDING="$RECORDING" ALERTING="$ALERTING" GROUPS_N="$GROUPS_N" INTERVAL="$INTERVAL" python3 - > "$WORK/rules.yml" <<'PY'
import os
rec, alerting, groups, interval = (int(os.environ["RECORDING"]), int(os.environ["ALERTING"]),
                                   int(os.environ["GROUPS_N"]), os.environ["INTERVAL"])
shapes = [
    'sum by (job) (rate(c{{job="job{j}"}}[5m])) * {k}',
    'avg by (job) (g{{job="job{j}"}}) + {k}',
    'histogram_quantile(0.{q}, sum by (job, le) (rate(h_bucket{{job="job{j}"}}[5m])))',
    'count by (job) (c{{job="job{j}"}} > {k})',
    'max by (instance) (g{{job="job{j}"}}) - {k}',
]
rules = []
for n in range(rec):
    expr = shapes[n % len(shapes)].format(j=n % 10, k=n, q=50 + n % 49)
    rules.append(f"      - record: bench:rec{n}\n        expr: {expr!r}\n")
for n in range(alerting):
    expr = f'sum by (job) (rate(c{{job="job{n % 10}"}}[5m])) > {n % 7}'
    rules.append(
        f"      - alert: Bench{n}\n        expr: {expr!r}\n        for: 1m\n"
        f"        labels: {{severity: page}}\n"
        f"        annotations: {{summary: '{{{{ $labels.job }}}} at {{{{ $value | humanize }}}}'}}\n")
print("groups:")
for g in range(groups):
    print(f"  - name: bench{g}\n    interval: {interval}\n    rules:")
    for r in rules[g::groups]:
        print(r, end="")
PY

printf 'global:\n  evaluation_interval: %s\nrule_files: ["%s"]\n' "$INTERVAL" "$WORK/rules.yml" > "$WORK/prometheus.yml"
"$PROMETHEUS" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom/data" \
  --web.listen-address="127.0.0.1:$PPORT" --web.enable-remote-write-receiver \
  >/dev/null 2>"$WORK/prom/log" &
PPID_=$!
cat > "$WORK/obsd/obsd.toml" <<EOF
[replica]
remote_write_receiver = true
prometheus_config = "$WORK/prometheus.yml"
[replica.listen]
address = "127.0.0.1:$OPORT"
EOF
"$OBSD" --role replica --config "$WORK/obsd/obsd.toml" --data-dir "$WORK/obsd/data" \
  >/dev/null 2>"$WORK/obsd/log" &
OPID=$!
trap 'kill $PPID_ $OPID 2>/dev/null || true' EXIT

wait_ready() { # URL
  for _ in $(seq 300); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "not ready: $1"; exit 1
}
wait_ready "http://127.0.0.1:$PPORT/-/ready"
wait_ready "http://127.0.0.1:$OPORT/api/v1/status/buildinfo"

END=$(date +%s)
echo "loading: SERIES=$SERIES MINUTES=$MINUTES; rules: $RECORDING recording + $ALERTING alerting in $GROUPS_N groups every $INTERVAL ($WORK)"
python3 benches/gen_remote_write.py --url "http://127.0.0.1:$PPORT/api/v1/write" --url "http://127.0.0.1:$OPORT/api/v1/write" \
  --series "$SERIES" --minutes "$MINUTES" --end "$END"

PPID_="$PPID_" OPID="$OPID" PBASE="http://127.0.0.1:$PPORT" OBASE="http://127.0.0.1:$OPORT" \
DURATION="$DURATION" python3 - <<'PY'
import os, re, time, urllib.request

tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def hwm(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0

def metrics(base):
    text = urllib.request.urlopen(f"{base}/metrics", timeout=60).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(prometheus_rule_[a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if m:
            out.setdefault(m.group(1), []).append(float(m.group(3)))
    return out

def total(m, name):
    return sum(m.get(name, []))

sides = {"prometheus": (int(os.environ["PPID_"]), os.environ["PBASE"]),
         "obsd": (int(os.environ["OPID"]), os.environ["OBASE"])}
# Warm-up: every group evaluated at least twice (restore done, caches filled).
deadline = time.time() + 600
while time.time() < deadline:
    if all(min(metrics(b).get("prometheus_rule_group_iterations_total", [0])) >= 2 for _, b in sides.values()):
        break
    time.sleep(2)
start = {k: (cpu(p), total(metrics(b), "prometheus_rule_group_iterations_total")) for k, (p, b) in sides.items()}
durations = {k: [] for k in sides}
t_end = time.time() + int(os.environ["DURATION"])
while time.time() < t_end:
    for k, (_, b) in sides.items():
        d = metrics(b).get("prometheus_rule_group_last_duration_seconds", [])
        if d:
            durations[k].append(sum(d) / len(d))
    time.sleep(5)
rows = {}
for k, (p, b) in sides.items():
    m = metrics(b)
    c, it = cpu(p), total(m, "prometheus_rule_group_iterations_total")
    evals = max(it - start[k][1], 1)
    rows[k] = {
        "cpu_per_group_eval_ms": (c - start[k][0]) / evals * 1000,
        "mean_group_duration_ms": sum(durations[k]) / max(len(durations[k]), 1) * 1000,
        "peak_rss_mib": hwm(p),
        "rules": total(m, "prometheus_rule_group_rules"),
        "failures": total(m, "prometheus_rule_evaluation_failures_total"),
        "missed": total(m, "prometheus_rule_group_iterations_missed_total"),
        "group_evals": evals,
    }
print(f"{'':28}{'prometheus':>14}{'obsd':>14}{'obsd/prom':>12}")
for key in ["cpu_per_group_eval_ms", "mean_group_duration_ms", "peak_rss_mib", "rules", "failures", "missed", "group_evals"]:
    p, o = rows["prometheus"][key], rows["obsd"][key]
    ratio = f"{o / p:.2f}" if p else "-"
    print(f"{key:28}{p:14.2f}{o:14.2f}{ratio:>12}")
PY
