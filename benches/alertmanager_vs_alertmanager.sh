#!/usr/bin/env bash
# Alert handling: obsd (alertmanager role, release build) vs Alertmanager 0.25, the same
# alertmanager.yml and the same alert stream, in one run.
#
#   benches/alertmanager_vs_alertmanager.sh                 # SHAPE=narrow, DURATION=120
#   SHAPE=wide DURATION=300 benches/alertmanager_vs_alertmanager.sh
#   KEEP=1 benches/alertmanager_vs_alertmanager.sh          # keep $WORK (configs, logs)
#
# Workload (the issue's): ALERTS (default 10000) active alerts in ALERTS/10 groups of
# {alertname, cluster} (100 alertnames x ALERTS/1000 clusters, 10 instances each), routed
# through a 100-route tree: 90 routes on `team="team-N"` (every tenth with `continue: true`),
# and a regex route with 9 nested children; with the `continue`s that is ~1,080 aggregation
# groups. group_wait 1s, group_interval 10s, repeat_interval 1h; one webhook receiver, pointing
# at a local Python sink per system that answers 200 and counts requests and alerts.
# SHAPE picks the alerts' labels: `narrow` (5 labels) or `wide` (20 labels, 3 annotations).
# One Python client posts the same pre-encoded batches of BATCH (default 500) alerts to
# POST /api/v2/alerts on both, concurrently, then re-posts the whole set every 15 s for
# DURATION seconds (default 120), as Prometheus re-sends firing alerts (no endsAt: they stay
# active). Measured per process: CPU (utime+stime from /proc/<pid>/stat, from just before the
# first post to the end) per 1,000 received alerts, peak RSS (VmHWM), mean wall time of one
# round of posts; per sink: notifications and alerts in them, each logged to
# $WORK/{am,obsd}/notifications (only the first flush of each group should notify: later
# re-posts change nothing until repeat_interval); at the end, the alerts GET /api/v2/alerts
# shows (both should show ALERTS). Figures only: nothing asserts speed.
set -euo pipefail
cd "$(dirname "$0")/.."
SHAPE="${SHAPE:-narrow}"
ALERTS="${ALERTS:-10000}"
BATCH="${BATCH:-500}"
DURATION="${DURATION:-120}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
OBSD="${OBSD:-$CARGO_TARGET_DIR/release/obsd}"
ALERTMANAGER="${ALERTMANAGER:-/usr/bin/prometheus-alertmanager}"

case "$SHAPE" in narrow|wide) ;; *) echo "SHAPE must be narrow or wide"; exit 1;; esac
[ -x "$ALERTMANAGER" ] || { echo "alertmanager not found (apt-get install prometheus-alertmanager)"; exit 1; }
[ -x "$OBSD" ] || cargo build --release --bin obsd
WORK="${WORK:-$(mktemp -d /var/tmp/obsd-am-bench.XXXXXX)}"
mkdir -p "$WORK/am" "$WORK/obsd"

PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
APORT=$(free_port); OPORT=$(free_port); ASINK=$(free_port); OSINK=$(free_port)

# The webhook sink: its own process (its CPU is not in either figure); GET /count reads it.
cat > "$WORK/sink.py" <<'PY'
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
lock, counts = threading.Lock(), {"requests": 0, "alerts": 0}
log = open(sys.argv[2], "w", buffering=1)  # one line per notification, to explain a difference
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with lock:
            counts["requests"] += 1
            counts["alerts"] += len(body.get("alerts", []))
            log.write(f'{time.time():.3f} {len(body.get("alerts", []))} {body.get("status")} {body.get("groupKey")}\n')
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        with lock:
            out = json.dumps(counts).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(out))); self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
# ~1,000 groups flush within the same second: the default backlog (5) would refuse most of
# them and the retries would be counted as the systems' CPU.
class Server(ThreadingHTTPServer):
    request_queue_size = 4096
Server(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/sink.py" "$ASINK" "$WORK/am/notifications" & PIDS="$PIDS $!"
python3 "$WORK/sink.py" "$OSINK" "$WORK/obsd/notifications" & PIDS="$PIDS $!"

# alertmanager.yml: identical for both but for the sink's URL (one sink per system).
python3 - > "$WORK/alertmanager.yml.in" <<'PY'
print("""route:
  receiver: sink
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 10s
  repeat_interval: 1h
  routes:""")
for n in range(90):
    print(f"    - matchers: ['team=\"team-{n}\"']")
    if n % 10 == 0:  # teams 10..80 also reach the regex route below: a second group each
        print("      continue: true")
# Teams 90-98 have a nested route each; team-99 and the `continue`d team-N0 stay on the parent.
print("    - matchers: ['team=~\"team-9.|team-.0\"']\n      routes:")
for n in range(90, 99):
    print(f"        - matchers: ['team=\"team-{n}\"', 'severity=~\"critical|warning\"']")
print("""receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:SINK_PORT/
        send_resolved: true""")
PY
sed "s/SINK_PORT/$ASINK/" "$WORK/alertmanager.yml.in" > "$WORK/am/alertmanager.yml"
sed "s/SINK_PORT/$OSINK/" "$WORK/alertmanager.yml.in" > "$WORK/obsd/alertmanager.yml"

"$ALERTMANAGER" --config.file="$WORK/am/alertmanager.yml" --storage.path="$WORK/am/data" \
  --web.listen-address="127.0.0.1:$APORT" --cluster.listen-address= \
  >/dev/null 2>"$WORK/am/log" &
APID=$!; PIDS="$PIDS $APID"
cat > "$WORK/obsd/obsd.toml" <<EOF
[alertmanager]
config = "$WORK/obsd/alertmanager.yml"
[alertmanager.listen]
address = "127.0.0.1:$OPORT"
EOF
"$OBSD" --role alertmanager --config "$WORK/obsd/obsd.toml" --data-dir "$WORK/obsd/data" \
  >/dev/null 2>"$WORK/obsd/log" &
OPID=$!; PIDS="$PIDS $OPID"

wait_ready() { # URL
  for _ in $(seq 300); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "not ready: $1"; exit 1
}
wait_ready "http://127.0.0.1:$APORT/-/ready"
wait_ready "http://127.0.0.1:$OPORT/-/ready"
wait_ready "http://127.0.0.1:$ASINK/count"
wait_ready "http://127.0.0.1:$OSINK/count"

echo "alerts: $ALERTS ($SHAPE) in batches of $BATCH, re-posted every 15 s for ${DURATION}s ($WORK)"
APID="$APID" OPID="$OPID" APORT="$APORT" OPORT="$OPORT" ASINK="$ASINK" OSINK="$OSINK" \
SHAPE="$SHAPE" ALERTS="$ALERTS" BATCH="$BATCH" DURATION="$DURATION" python3 - <<'PY'
import datetime, json, os, threading, time, urllib.error, urllib.request

env = os.environ
n, batch, shape = int(env["ALERTS"]), int(env["BATCH"]), env["SHAPE"]
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def hwm(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0
def get(url):
    return json.load(urllib.request.urlopen(url, timeout=120))

# Alert i is in group g = i // 10: alertname and team follow g % 100, cluster g // 100, so a
# group's 10 alerts are in one batch and reach one route (or two, through a `continue`).
starts = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
def alert(i):
    g, a = i // 10, (i // 10) % 100
    labels = {"alertname": f"BenchAlert{a}", "cluster": f"cluster-{g // 100}", "team": f"team-{a}",
              "instance": f"host-{i}:9100", "severity": "critical" if a % 3 == 0 else "warning"}
    ann = {"summary": f"BenchAlert{a} on host-{i}"}
    if shape == "wide":
        for k in ["job", "region", "zone", "env", "datacenter", "rack", "service", "namespace",
                  "pod", "container", "image", "version", "owner", "tier", "runbook_id"]:
            labels[k] = f"{k}-{i % 97}-{g % 13}" if k in ("pod", "container") else f"{k}-{g % 17}"
        ann["description"] = f"BenchAlert{a} has been firing on host-{i} in cluster-{g // 100}; " * 3
        ann["runbook_url"] = f"https://runbooks.example.com/BenchAlert{a}"
    return {"labels": labels, "annotations": ann, "startsAt": starts,
            "generatorURL": f"http://prometheus.example.com/graph?g0.expr=bench{a}"}
# Encoded once: both get the same bytes, and the client's cost is out of the loop.
bodies = [json.dumps([alert(i) for i in range(s, min(s + batch, n))]).encode()
          for s in range(0, n, batch)]

sides = {"alertmanager": (int(env["APID"]), env["APORT"], env["ASINK"]),
         "obsd": (int(env["OPID"]), env["OPORT"], env["OSINK"])}
errors = {k: [] for k in sides}
post_s = {k: [] for k in sides}
def post_all(side, port):
    t = time.time()
    for b in bodies:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/alerts", data=b,
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=120).read()
        except (urllib.error.URLError, OSError) as e:  # HTTPError is a URLError: non-2xx
            errors[side].append(str(e))
    post_s[side].append(time.time() - t)

cpu0 = {k: cpu(p) for k, (p, _, _) in sides.items()}
t0, rounds = time.time(), 0
while time.time() - t0 < int(env["DURATION"]):
    # Concurrently, so neither side waits on the other's answers.
    threads = [threading.Thread(target=post_all, args=(k, port)) for k, (_, port, _) in sides.items()]
    for t in threads: t.start()
    for t in threads: t.join()
    rounds += 1
    time.sleep(max(0.0, t0 + 15 * rounds - time.time()))
time.sleep(max(0.0, t0 + int(env["DURATION"]) - time.time()))

rows = {}
for k, (pid, port, sink) in sides.items():
    c = get(f"http://127.0.0.1:{sink}/count")
    rows[k] = {
        "cpu_ms_per_1k_alerts": (cpu(pid) - cpu0[k]) * 1000 / (n * rounds / 1000),
        "peak_rss_mib": hwm(pid),
        "post_s_per_round": sum(post_s[k]) / len(post_s[k]),
        "post_errors": len(errors[k]),
        "notifications": c["requests"],
        "notified_alerts": c["alerts"],
        "alerts_shown": len(get(f"http://127.0.0.1:{port}/api/v2/alerts")),
    }
print(f"rounds: {rounds} x {n} alerts")
print(f"{'':25}{'alertmanager':>14}{'obsd':>12}{'obsd/am':>10}")
for key in rows["obsd"]:
    a, o = rows["alertmanager"][key], rows["obsd"][key]
    ratio = f"{o / a:.2f}" if a else "-"
    fmt = (lambda v, w: f"{v:{w}d}") if isinstance(a, int) else (lambda v, w: f"{v:{w}.2f}")
    print(f"{key:25}{fmt(a, 14)}{fmt(o, 12)}{ratio:>10}")
for k, e in errors.items():
    if e:
        print(f"{k}: {len(e)} failed posts, first: {e[0]}")
PY

# Not an assertion: what either logged at error level, for the reader to judge.
for side in am obsd; do
  errs=$(grep -ciE 'level=error|\bERROR\b' "$WORK/$side/log" || true)
  [ "$errs" = 0 ] || { echo "$side: $errs error lines in its log, last:"; grep -iE 'level=error|\bERROR\b' "$WORK/$side/log" | tail -3; }
done
