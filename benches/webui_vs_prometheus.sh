#!/usr/bin/env bash
# obsd's web UI vs Prometheus 2.42's graph page (Debian ships the classic UI) over the same data
# in one run, in headless Chromium: first contentful paint, and time from navigation until the
# graph of 1,000 series is drawn, then mouse-move frame times over that graph. Prints both and
# the obsd/Prometheus ratios. Needs chromium, chromium-driver and the webui venv
# (tests/peers/setup_python.sh).
# Usage: benches/webui_vs_prometheus.sh   (OBSD=path/to/obsd to skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
if [ -z "${OBSD:-}" ]; then
  cargo build --release --quiet
  OBSD="$CARGO_TARGET_DIR/release/obsd"
fi
PY="${OBSD_VENV_DIR:-/var/tmp/obsd-venvs}/webui/bin/python"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_PROM=$(port); P_OBSD=$(port)
printf 'global: {scrape_interval: 15s}\nscrape_configs: []\n' > "$work/prometheus.yml"
printf '[replica]\nremote_write_receiver = true\n[replica.listen]\naddress = "127.0.0.1:%s"\n' "$P_OBSD" > "$work/obsd.toml"
/usr/bin/prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$P_PROM" --web.enable-remote-write-receiver >/dev/null 2>&1 &
"$OBSD" --role replica --config "$work/obsd.toml" --data-dir "$work/obsd" >/dev/null 2>&1 &
for p in $P_PROM $P_OBSD; do
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.2; done
done
# 1,000 counters, 30 minutes at 15 s, the same samples to both.
python3 benches/gen_remote_write.py --url "http://127.0.0.1:$P_PROM/api/v1/write" \
  --url "http://127.0.0.1:$P_OBSD/api/v1/write" --series 1000 --minutes 30 >/dev/null

"$PY" - "$P_OBSD" "$P_PROM" <<'PY'
import sys, tempfile, urllib.parse
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
obsd, prom = sys.argv[1], sys.argv[2]
expr = "rate(c[1m])"
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for f in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1400,1000"]:
    opts.add_argument(f)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
d.set_script_timeout(120)
WAIT = """
const [sel, n] = [arguments[0], arguments[1]], done = arguments[arguments.length - 1];
(function poll() {
  if (document.querySelectorAll(sel).length >= n) {
    const p = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
    done({fcp: p ? p.startTime : null, drawn: performance.now()});
  } else requestAnimationFrame(poll);
})();
"""
HOVER = """
const o = document.querySelector(arguments[0]), done = arguments[arguments.length - 1];
const r = o.getBoundingClientRect(), times = [];
(async () => {
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    o.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + 5 + i * (r.width - 10) / 30, clientY: r.top + r.height / 2, bubbles: true}));
    await new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 0)));
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  done({p50: times[15], p90: times[27], max: times[29]});
})();
"""
def run(url, sel, n, over):
    best = None
    for _ in range(3):
        d.get("about:blank")
        d.get(url)
        r = d.execute_async_script(WAIT, sel, n)
        r.update(d.execute_async_script(HOVER, over))
        best = r if best is None or r["drawn"] < best["drawn"] else best
    return best
q = urllib.parse.urlencode({"expr": expr, "tab": "graph", "range": "30m"})
o = run(f"http://127.0.0.1:{obsd}/#/query?{q}", "#chart[data-series] canvas", 1, "#chart .u-over")
q = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": "30m"})
p = run(f"http://127.0.0.1:{prom}/classic/graph?{q}", ".graph svg path", 1000, ".graph")
d.quit()
print(f"{'':24}{'obsd':>12}{'prometheus':>12}{'ratio':>8}")
for k, label in [("fcp", "first paint ms"), ("drawn", "1,000-series graph ms"),
                 ("p50", "hover frame p50 ms"), ("p90", "hover frame p90 ms"), ("max", "hover frame max ms")]:
    a, b = o[k], p[k]
    print(f"{label:24}{a:12.0f}{b:12.0f}{(a / b if b else float('nan')):8.2f}")
PY
