#!/usr/bin/env bash
# Side-by-side: obsd's store vs Prometheus 2.42's TSDB on one realistic data set.
#
#   SERIES=100000 benches/store_vs_prometheus.sh     # the issue's target size
#   SERIES=10000  benches/store_vs_prometheus.sh     # a quicker run
#
# Data: benches/gen_openmetrics.py (SERIES series, 15 s interval, HOURS h (default 2), counters
# with resets, full-precision gauges, classic histograms). Both stores backfill the same
# OpenMetrics file: `obsd store import` and `promtool tsdb create-blocks-from openmetrics`.
# Printed, each with Prometheus's figure and the ratio obsd/Prometheus:
#   - bytes per sample on disk (obsd: store directory incl. WAL and sled; Prometheus: blocks);
#   - samples appended per CPU second (user+sys of the whole import process);
#   - peak resident memory of the import, per series;
#   - select + decode: every series over the last hour, printed in `promtool tsdb dump`'s
#     format to a line counter (both sides pay the same formatting; counts must match).
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES="${SERIES:-100000}"
HOURS="${HOURS:-2}"
END="${END:-1700006400}"
WORK="${WORK:-$(mktemp -d /var/tmp/obsd-bench.XXXXXX)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
OBSD="${OBSD:-$CARGO_TARGET_DIR/release/obsd}"
PROMTOOL="${PROMTOOL:-/usr/bin/promtool}"

if [ ! -x "$OBSD" ]; then
  cargo build --release --bin obsd
fi
command -v "$PROMTOOL" >/dev/null || { echo "promtool not found (apt-get install prometheus)"; exit 1; }

DATA="$WORK/data.om"
if [ ! -s "$DATA" ]; then
  SERIES="$SERIES" HOURS="$HOURS" END="$END" python3 benches/gen_openmetrics.py "$DATA"
fi
rm -rf "$WORK/obsd" "$WORK/prom"

timed() { # timed OUTFILE cmd... -> "wall user sys maxrss_kb" in OUTFILE
  local out="$1"; shift
  /usr/bin/time -f "%e %U %S %M" -o "$out" "$@"
}

echo "== obsd store import"
timed "$WORK/obsd.import" "$OBSD" --data-dir "$WORK/obsd" store import --format openmetrics "$DATA"
echo "== promtool tsdb create-blocks-from openmetrics"
timed "$WORK/prom.import" "$PROMTOOL" tsdb create-blocks-from openmetrics "$DATA" "$WORK/prom" >/dev/null
mkdir -p "$WORK/prom/wal" # promtool tsdb dump wants a WAL directory, even an empty one

# VictoriaMetrics (Debian's victoria-metrics), same data through /api/v1/import/prometheus
# (Prometheus text wants millisecond timestamps), then flushed and force-merged so its
# figure is "after compaction" too. Its CPU is the server process's user+sys.
VM="${VM:-$(command -v victoria-metrics || true)}"
if [ -n "$VM" ]; then
  echo "== victoria-metrics import"
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  VM_PORT=$(free_port)
  SERIES_SEEN=$(grep -v '^#' "$DATA" | cut -d' ' -f1 | uniq | sort -u | wc -l)
  rm -rf "$WORK/vm"
  "$VM" -storageDataPath="$WORK/vm" -httpListenAddr="127.0.0.1:$VM_PORT" -retentionPeriod=100y \
    -loggerLevel=ERROR >"$WORK/vm.log" 2>&1 &
  VM_PID=$!
  trap 'kill $VM_PID 2>/dev/null || true' EXIT
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$VM_PORT/health" >/dev/null && break; sleep 0.1; done
  cpu() { awk '{print ($14 + $15) / 100}' "/proc/$VM_PID/stat"; }
  vm_cpu0=$(cpu); vm_t0=$(date +%s.%N)
  sed -e '/^#/d' -e 's/ \([0-9]*\)$/ \1000/' "$DATA" \
    | curl -fsS -X POST -T - "http://127.0.0.1:$VM_PORT/api/v1/import/prometheus" # streamed, not buffered
  curl -fsS "http://127.0.0.1:$VM_PORT/internal/force_flush" >/dev/null
  # Wait until every sample is searchable, then merge.
  for _ in $(seq 600); do
    n=$(curl -fsS "http://127.0.0.1:$VM_PORT/api/v1/query" --data-urlencode "query=count({__name__=~\".+\"})" \
      --data-urlencode "time=$END" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
    [ "$n" -ge "$SERIES_SEEN" ] 2>/dev/null && break
    sleep 0.5
  done
  vm_wall=$(echo "$(date +%s.%N) - $vm_t0" | bc); vm_cpu=$(echo "$(cpu) - $vm_cpu0" | bc)
  curl -fsS "http://127.0.0.1:$VM_PORT/internal/force_merge" >/dev/null
  sleep 5
  curl -fsS "http://127.0.0.1:$VM_PORT/internal/force_flush" >/dev/null
  vm_rss=$(awk '/VmHWM/ {print $2}' "/proc/$VM_PID/status")
  echo "$vm_wall $vm_cpu 0 $vm_rss" > "$WORK/vm.import"
  kill $VM_PID; wait $VM_PID 2>/dev/null || true
  rm -rf "$WORK/vm/cache" # rebuilt caches, not data
fi

min=$(( (END - 3600) * 1000 )); max=$(( END * 1000 ))
echo "== select + decode, last hour, every series"
timed "$WORK/obsd.select" sh -c "'$OBSD' --data-dir '$WORK/obsd' store dump --match '{__name__=~\".+\"}' --min-time $min --max-time $max 2>/dev/null | wc -l > '$WORK/obsd.lines'"
timed "$WORK/prom.select" sh -c "'$PROMTOOL' tsdb dump --match='{__name__=~\".+\"}' --min-time=$min --max-time=$max '$WORK/prom' 2>/dev/null | wc -l > '$WORK/prom.lines'"

python3 - "$WORK" "$SERIES" <<'PY'
import os, sys, subprocess
work = sys.argv[1]
def t(name):
    wall, user, sys_, rss = open(f"{work}/{name}").read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss) * 1024
def du(path):
    return int(subprocess.check_output(["du", "-s", "--block-size=1", path]).split()[0])
lines = sum(1 for l in open(f"{work}/data.om") if not l.startswith("#"))
series = len({l.rsplit(" ", 2)[0] for l in open(f"{work}/data.om") if not l.startswith("#")})
ob, pb = du(f"{work}/obsd"), du(f"{work}/prom")
oi, pi = t("obsd.import"), t("prom.import")
os_, ps = t("obsd.select"), t("prom.select")
ol, pl = open(f"{work}/obsd.lines").read().strip(), open(f"{work}/prom.lines").read().strip()
rows = [
    ("bytes per sample on disk", ob / lines, pb / lines, "lower is better"),
    ("samples appended per CPU second", lines / oi[1], lines / pi[1], "higher is better"),
    ("import wall time (s)", oi[0], pi[0], "lower is better"),
    ("peak RSS of import per series (bytes)", oi[2] / series, pi[2] / series, "lower is better"),
    ("select+decode last 1h, all series (s)", os_[0], ps[0], "lower is better"),
]
print(f"\n{series} series, {lines} samples; selected samples: obsd {ol}, prometheus {pl}")
if os.path.exists(f"{work}/vm.import"):
    vb, vi = du(f"{work}/vm"), t("vm.import")
    print(f"victoria-metrics: {vb / lines:.3f} bytes/sample on disk (obsd/vm {ob / vb:.3f}), "
          f"{lines / vi[1]:.0f} samples per CPU second, peak RSS {vi[2] / series:.0f} bytes/series")
print(f"{'figure':42} {'obsd':>14} {'prometheus':>14} {'obsd/prom':>10}")
for name, o, p, note in rows:
    print(f"{name:42} {o:14.3f} {p:14.3f} {o / p if p else float('nan'):10.3f}  ({note})")
if ol != pl:
    print("WARNING: sample counts differ between the two selects", file=sys.stderr)
PY
echo "work dir: $WORK"
