#!/usr/bin/env bash
# Side-by-side: obsd's federation vs a Prometheus 2.42 federation of the same two replicas.
#
#   SERIES=100000 benches/federation.sh          # the issue's size
#   SERIES=10000 DURATION=60 benches/federation.sh   # a quicker run
#
# Setup (all on loopback): one target exposing SERIES series (a python text exposition whose
# counters move every scrape, plus `bench_tick_total`), two obsd replicas scraping it every
# INTERVAL with different `prometheus_instance`, then two federations scraping /federate of
# both replicas every INTERVAL: obsd (fan-out, HA dedup on) and Prometheus 2.42 (honor_labels,
# as the seed; it keeps both copies). Printed for each, and the ratio obsd/Prometheus:
#   - CPU seconds (user+sys of the federation process over DURATION after a warm-up) per
#     federated sample (samples read from /federate: sum of scrape_samples_scraped);
#   - freshness: every second, now − timestamp of the newest `bench_tick_total` sample the
#     federation answers (replica scrape → visible in a federation query), mean and p95.
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES="${SERIES:-100000}"
INTERVAL="${INTERVAL:-15}"
DURATION="${DURATION:-120}"
WORK="${WORK:-$(mktemp -d /var/tmp/obsd-fedbench.XXXXXX)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
OBSD="${OBSD:-$CARGO_TARGET_DIR/release/obsd}"
PROMETHEUS="${PROMETHEUS:-/usr/bin/prometheus}"
[ -x "$OBSD" ] || cargo build --release --bin obsd
command -v "$PROMETHEUS" >/dev/null || { echo "prometheus not found (apt-get install prometheus)"; exit 1; }

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened"; exit 1; }

T=$(port); R1=$(port); R2=$(port); F=$(port); P=$(port)
cat > "$WORK/target.py" <<'PY'
import sys, time, http.server
n = int(sys.argv[2]); hits = [0]
names = [f'bench_series_total{{shard="{i % 100}",id="{i}"}}' for i in range(n)]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        hits[0] += 1
        h = hits[0]
        body = "# TYPE bench_series_total counter\n" + "".join(f"{s} {h + i % 7}\n" for i, s in enumerate(names))
        body += f"# TYPE bench_tick_total counter\nbench_tick_total {time.time():.3f}\n"
        data = body.encode()
        self.send_response(200); self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/target.py" "$T" "$SERIES" & PIDS+=($!)
wait_port "$T"

for i in 1 2; do
  rp=$([ $i = 1 ] && echo "$R1" || echo "$R2")
  cat > "$WORK/replica$i.toml" <<TOML
[replica]
[replica.listen]
address = "127.0.0.1:$rp"
[replica.global]
scrape_interval = "${INTERVAL}s"
external_labels = { prometheus_instance = "replica-$i" }
[[replica.scrape_configs]]
job_name = "bench"
static_configs = [{ targets = ["127.0.0.1:$T"] }]
TOML
  "$OBSD" --role replica --config "$WORK/replica$i.toml" --data-dir "$WORK/r$i" --log-level warn & PIDS+=($!)
  wait_port "$rp"
done

cat > "$WORK/federation.toml" <<TOML
[federation]
fan_out = { replicas = ["127.0.0.1:$R1", "127.0.0.1:$R2"], scrape_interval = "${INTERVAL}s", scrape_timeout = "${INTERVAL}s" }
[federation.listen]
address = "127.0.0.1:$F"
TOML
"$OBSD" --role federation --config "$WORK/federation.toml" --data-dir "$WORK/f" --log-level warn & FED=$!; PIDS+=($FED)
cat > "$WORK/prometheus.yml" <<YML
global: { scrape_interval: ${INTERVAL}s, scrape_timeout: ${INTERVAL}s }
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params: { 'match[]': ['{__name__=~".+"}'] }
    static_configs: [{ targets: ['127.0.0.1:$R1', '127.0.0.1:$R2'] }]
YML
"$PROMETHEUS" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --web.listen-address="127.0.0.1:$P" --log.level=warn >/dev/null 2>&1 & PROM=$!; PIDS+=($PROM)
wait_port "$F"; wait_port "$P"

echo "== warm-up: $((3 * INTERVAL))s ($SERIES series, interval ${INTERVAL}s)"
sleep $((3 * INTERVAL))
python3 - "$FED" "$PROM" "$F" "$P" "$DURATION" <<'PY'
import json, os, sys, time, urllib.parse, urllib.request
fed, prom, fport, pport, duration = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
tck = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck
def q(port, expr, t=None):
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(expr)}" + (f"&time={t}" if t else "")
    r = json.load(urllib.request.urlopen(url, timeout=30))["data"]["result"]
    return [float(s["value"][1]) for s in r]
c0 = {fed: cpu(fed), prom: cpu(prom)}; start = time.time()
ages = {fport: [], pport: []}
while time.time() - start < duration:
    for port in (fport, pport):
        v = q(port, "max(timestamp(bench_tick_total))")
        if v: ages[port].append(time.time() - v[0])
    time.sleep(1)
end = time.time()
used = {fed: cpu(fed) - c0[fed], prom: cpu(prom) - c0[prom]}
def scraped(port):
    v = q(port, f'sum(sum_over_time(scrape_samples_scraped{{job="federate"}}[{int(end - start)}s]))', end)
    return v[0] if v else float("nan")
rows = []
for name, pid, port in (("obsd", fed, fport), ("prometheus", prom, pport)):
    n = scraped(port); a = sorted(ages[port]) or [float("nan")]
    rows.append((name, used[pid], n, used[pid] / n * 1e6 if n else float("nan"), sum(a) / len(a), a[int(len(a) * 0.95) - 1 if len(a) > 1 else 0]))
print(f"{'':12}{'cpu s':>10}{'samples':>14}{'cpu µs/sample':>16}{'fresh mean s':>14}{'fresh p95 s':>13}")
for r in rows:
    print(f"{r[0]:12}{r[1]:10.2f}{r[2]:14.0f}{r[3]:16.3f}{r[4]:14.2f}{r[5]:13.2f}")
o, p = rows
print(f"{'obsd/prom':12}{o[1]/p[1] if p[1] else float('nan'):10.2f}{'':14}{o[3]/p[3] if p[3] else float('nan'):16.2f}{o[4]/p[4] if p[4] else float('nan'):14.2f}{o[5]/p[5] if p[5] else float('nan'):13.2f}")
PY
