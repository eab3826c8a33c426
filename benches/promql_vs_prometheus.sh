#!/usr/bin/env bash
# PromQL over HTTP: obsd (replica role, release build) vs Prometheus 2.42 on the same data.
#
#   SERIES=20000  benches/promql_vs_prometheus.sh     # a run of a few minutes
#   SERIES=100000 benches/promql_vs_prometheus.sh     # the issue's target size
#
# Data (benches/gen_remote_write.py): SERIES counters `c` (10 jobs), SERIES/10 gauges `g`,
# SERIES/100 classic histograms `h_bucket` (11 buckets), MINUTES (default 60) at 15 s, ending
# now; remote-written into both servers in time order by one generator, so both hold the
# identical samples. Each query runs once to warm up, then REPEAT (default 10) times over HTTP
# (POST form, as Grafana sends); the median wall time of each side and the ratio obsd/Prometheus
# are printed, with the result sizes (which must match) and each process's peak RSS (VmHWM)
# after loading and after the queries.
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES="${SERIES:-20000}"
MINUTES="${MINUTES:-60}"
REPEAT="${REPEAT:-10}"
WORK="${WORK:-$(mktemp -d /var/tmp/obsd-promql-bench.XXXXXX)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
OBSD="${OBSD:-$CARGO_TARGET_DIR/release/obsd}"
PROMETHEUS="${PROMETHEUS:-/usr/bin/prometheus}"

[ -x "$PROMETHEUS" ] || { echo "prometheus not found (apt-get install prometheus)"; exit 1; }
if [ ! -x "$OBSD" ]; then
  cargo build --release --bin obsd
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PPORT=$(free_port)
OPORT=$(free_port)
rm -rf "$WORK/prom" "$WORK/obsd"
mkdir -p "$WORK/prom" "$WORK/obsd"

printf 'global:\n  evaluation_interval: 1m\n' > "$WORK/prom/prometheus.yml"
"$PROMETHEUS" --config.file="$WORK/prom/prometheus.yml" --storage.tsdb.path="$WORK/prom/data" \
  --web.listen-address="127.0.0.1:$PPORT" --web.enable-remote-write-receiver \
  >/dev/null 2>"$WORK/prom/log" &
PPID_=$!
cat > "$WORK/obsd/obsd.toml" <<EOF
[replica]
remote_write_receiver = true
lookback_delta = "5m"
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

hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }  # peak RSS in kB

END=$(date +%s)
echo "loading: SERIES=$SERIES MINUTES=$MINUTES into Prometheus :$PPORT and obsd :$OPORT ($WORK)"
python3 benches/gen_remote_write.py --url "http://127.0.0.1:$PPORT/api/v1/write" --url "http://127.0.0.1:$OPORT/api/v1/write" \
  --series "$SERIES" --minutes "$MINUTES" --end "$END"
P_LOAD_KB=$(hwm $PPID_)
O_LOAD_KB=$(hwm $OPID)

PBASE="http://127.0.0.1:$PPORT" OBASE="http://127.0.0.1:$OPORT" END="$END" MINUTES="$MINUTES" \
REPEAT="$REPEAT" python3 - <<'PY'
import json, os, statistics, sys, time, urllib.error, urllib.parse, urllib.request

pbase, obase = os.environ["PBASE"], os.environ["OBASE"]
end = int(os.environ["END"]) // 15 * 15
start = end - 3600
repeat = int(os.environ["REPEAT"])
queries = [
    ("sum(rate(c[5m]))", "query", {"time": end}),
    ("sum by (job) (rate(c[5m]))", "query", {"time": end}),
    ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))", "query", {"time": end}),
    ("topk(10, g)", "query", {"time": end}),
    ("sum by (job) (rate(c[5m]))", "query_range", {"start": start, "end": end, "step": 15}),
    ('count({__name__=~".+"})', "query", {"time": end}),
]

def run(base, endpoint, params):
    body = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(f"{base}/api/v1/{endpoint}", data=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            data = r.read()
    except urllib.error.HTTPError as e:  # the error envelope is the answer to show
        data = e.read()
    return time.perf_counter() - t0, json.loads(data)

def size(ans):
    if ans.get("status") != "success":
        return f'{ans.get("errorType")}: {ans.get("error")}'
    res = ans["data"]["result"]
    if ans["data"]["resultType"] == "matrix":
        return f'{len(res)}x{sum(len(s["values"]) for s in res)}pts'
    return f"{len(res)} series"

def close(a, b):
    a, b = float(a), float(b)
    return a == b or abs(a - b) <= 1e-6 * max(abs(a), abs(b))

def same(a, b):
    if a.get("status") != "success" or b.get("status") != "success":
        return a.get("errorType") == b.get("errorType")
    ra, rb = a["data"]["result"], b["data"]["result"]
    if len(ra) != len(rb):
        return False
    key = lambda s: json.dumps(s["metric"], sort_keys=True)
    for x, y in zip(sorted(ra, key=key), sorted(rb, key=key)):
        if key(x) != key(y):
            return False
        if "value" in x and not close(x["value"][1], y["value"][1]):
            return False
        if "values" in x and (len(x["values"]) != len(y["values"]) or
                              not all(close(p[1], q[1]) for p, q in zip(x["values"], y["values"]))):
            return False
    return True

print(f"{'query':<62} {'prom ms':>9} {'obsd ms':>9} {'ratio':>6}  result")
for q, endpoint, extra in queries:
    params = dict(extra, query=q)
    times = {}
    answers = {}
    for name, base in (("prom", pbase), ("obsd", obase)):
        _, answers[name] = run(base, endpoint, params)  # warm-up
        times[name] = statistics.median(run(base, endpoint, params)[0] for _ in range(repeat))
    label = q + (" [1h/15s]" if endpoint == "query_range" else "")
    ok = "same" if same(answers["prom"], answers["obsd"]) else "DIFFERENT"
    for name in ("prom", "obsd"):
        if answers[name].get("status") != "success":
            print(f"  {name}: {size(answers[name])}", file=sys.stderr)
    print(f"{label:<62} {times['prom']*1000:>9.1f} {times['obsd']*1000:>9.1f} "
          f"{times['obsd']/times['prom']:>6.2f}  {size(answers['obsd'])}, {ok}")
PY

P_KB=$(hwm $PPID_)
O_KB=$(hwm $OPID)
printf '%-62s %9s %9s %6s\n' "peak RSS after load (MiB)" "$((P_LOAD_KB / 1024))" "$((O_LOAD_KB / 1024))" \
  "$(python3 -c "print(f'{$O_LOAD_KB/$P_LOAD_KB:.2f}')")"
printf '%-62s %9s %9s %6s\n' "peak RSS after queries (MiB)" "$((P_KB / 1024))" "$((O_KB / 1024))" \
  "$(python3 -c "print(f'{$O_KB/$P_KB:.2f}')")"
