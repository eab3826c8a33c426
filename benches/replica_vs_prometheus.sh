#!/usr/bin/env bash
# obsd replica vs Prometheus 2.42 scraping the same targets in one run: CPU-seconds per
# million samples ingested and peak RSS, printed with obsd/Prometheus ratios.
# Usage: benches/replica_vs_prometheus.sh [TARGETS=50] [SERIES=2000] [DURATION=60] [INTERVAL=1s]
# (DURATION, not SECONDS: bash keeps its own SECONDS, the shell's age, which a caller may pass on)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS="${TARGETS:-50}"; SERIES="${SERIES:-2000}"; SECONDS_RUN="${DURATION:-60}"; INTERVAL="${INTERVAL:-1s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
# OBSD=path measures a binary already built (e.g. under perf) instead of building one.
if [ -z "${OBSD:-}" ]; then
  cargo build --release --quiet
  OBSD="$CARGO_TARGET_DIR/release/obsd"
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One Python process serves every target; each answer carries SERIES samples whose values move.
python3 - "$TARGETS" "$SERIES" > "$work/ports" <<'PY' &
import http.server, random, socketserver, sys, threading
targets, series = int(sys.argv[1]), int(sys.argv[2])
def bodies(t):
    out = []
    for variant in range(4):
        lines = ["# TYPE bench_requests_total counter"]
        for j in range(series):
            lines.append(f'bench_requests_total{{target="t{t}",path="/p{j % 50}",code="{200 + j % 5}",shard="{j}"}} {j * 10 + variant * 3 + random.random():.6f}')
        out.append(("\n".join(lines) + "\n").encode())
    return out
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.bodies[self.server.n % 4]
        self.server.n += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
ports = []
for t in range(targets):
    s = S(("127.0.0.1", 0), H)
    s.bodies, s.n = bodies(t), 0
    ports.append(s.server_address[1])
    threading.Thread(target=s.serve_forever, daemon=True).start()
print(" ".join(map(str, ports)), flush=True)
threading.Event().wait()
PY
for _ in $(seq 100); do [ -s "$work/ports" ] && break; sleep 0.2; done
targets_yaml=$(for p in $(cat "$work/ports"); do printf "'127.0.0.1:%s'," "$p"; done)
P_PROM=$(port); P_OBSD=$(port)
cat > "$work/prometheus.yml" <<YML
global: {scrape_interval: $INTERVAL, scrape_timeout: 1s}
scrape_configs:
  - job_name: bench
    static_configs: [{targets: [${targets_yaml%,}]}]
YML
printf '[replica]\nprometheus_config = "%s"\n[replica.listen]\naddress = "127.0.0.1:%s"\n' "$work/prometheus.yml" "$P_OBSD" > "$work/obsd.toml"
/usr/bin/prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$P_PROM" >/dev/null 2>&1 &
PROM_PID=$!
"$OBSD" --role replica --config "$work/obsd.toml" --data-dir "$work/obsd" 2>/dev/null &
OBSD_PID=$!
sleep 10   # warm-up: targets discovered, first scrapes in, heads created
python3 - "$SECONDS_RUN" "$PROM_PID" "$P_PROM" "$OBSD_PID" "$P_OBSD" "$TARGETS" "$SERIES" <<'PY'
import os, re, sys, time, urllib.request
run, prom_pid, prom_port, obsd_pid, obsd_port = map(int, sys.argv[1:6])
targets, series = int(sys.argv[6]), int(sys.argv[7])
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def hwm(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
def counter(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")
procs = {"obsd": (obsd_pid, obsd_port, "obsd_store_samples_appended_total"),
         "prometheus": (prom_pid, prom_port, "prometheus_tsdb_head_samples_appended_total")}
start = {k: (cpu(p), counter(port, c)) for k, (p, port, c) in procs.items()}
time.sleep(run)
res = {}
for k, (p, port, c) in procs.items():
    c0, s0 = start[k]
    dcpu, dsamples = cpu(p) - c0, counter(port, c) - s0
    res[k] = {"samples": dsamples, "cpu": dcpu, "cpu_per_m": dcpu / (dsamples / 1e6) if dsamples else float("nan"), "rss": hwm(p) / 2**20}
o, p = res["obsd"], res["prometheus"]
print(f"{targets} targets x {series} series, {run}s measured")
print(f"{'metric':<34}{'obsd':>14}{'prometheus':>14}{'ratio':>8}")
for key, label in [("samples", "samples ingested"), ("cpu", "CPU seconds"), ("cpu_per_m", "CPU-s per million samples"), ("rss", "peak RSS MiB")]:
    print(f"{label:<34}{o[key]:>14.2f}{p[key]:>14.2f}{o[key] / p[key] if p[key] else float('nan'):>8.2f}")
PY
