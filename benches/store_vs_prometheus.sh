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
print(f"{'figure':42} {'obsd':>14} {'prometheus':>14} {'obsd/prom':>10}")
for name, o, p, note in rows:
    print(f"{name:42} {o:14.3f} {p:14.3f} {o / p if p else float('nan'):10.3f}  ({note})")
if ol != pl:
    print("WARNING: sample counts differ between the two selects", file=sys.stderr)
PY
echo "work dir: $WORK"
