#!/usr/bin/env bash
# Debian's HAProxy 2.6 vs obsd's balancer (release build), in one run, on loopback:
# the same two nginx backends, the same wrk load.
#   1. keep-alive, small responses          (req/s, p50, p99, balancer CPU per 100k requests)
#   2. keep-alive, 200 KB responses         (same figures)
#   3. one backend killed mid-run           (failed requests: non-2xx + socket errors)
# and the ratios obsd/HAProxy. Needs: apt-get install haproxy nginx wrk
#
# Env: DURATION (s, default 10), CONNS (default 50), THREADS (wrk, default 2), ROUNDS (default
# 3: a shared or virtual machine swings a single 10 s run by ±20%), OBSD_BIN, LOADS (default
# "small big kill": which of the three to run), OBSD_SERVER_EXTRA (more fields for obsd's
# default_server, e.g. 'observe = "layer4", error_limit = 1, on_error = "mark-down"').
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-50}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-3}"
LOADS="${LOADS:-small big kill}"
OBSD_SERVER_EXTRA="${OBSD_SERVER_EXTRA:+, $OBSD_SERVER_EXTRA}"
for bin in haproxy nginx wrk; do
  command -v "$bin" >/dev/null || { echo "missing $bin: apt-get install haproxy nginx wrk" >&2; exit 1; }
done
# OBSD_BIN skips the build (e.g. a packaged binary).
if [ -z "${OBSD_BIN:-}" ]; then cargo build --release --quiet; fi
OBSD="${OBSD_BIN:-$CARGO_TARGET_DIR/release/obsd}"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  # Each nginx leads its own process group (setsid): the group goes in one signal.
  for p in "${PIDS[@]}"; do kill -9 -- "-$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
[ -n "${DEBUG:-}" ] && trap - EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- backends: two nginx, one worker each --------------------------------------------------
mkdir -p "$WORK/www"
printf 'ok\n' > "$WORK/www/small"
head -c 204800 /dev/urandom > "$WORK/www/big"
# nginx workers run unprivileged; mktemp's directory is private.
chmod 755 "$WORK"; chmod -R a+rX "$WORK/www"
start_nginx() { # $1 = index, $2 = port; prints master pid
  local dir="$WORK/nginx$1"
  mkdir -p "$dir/logs"
  cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server { listen 127.0.0.1:$2 backlog=4096; root $WORK/www; location / { } }
}
EOF
  # Its own process group, so that a kill takes master and workers at once: killing the
  # workers first lets the master fork a new one, and killing the master alone leaves its
  # workers serving on the inherited socket. Either way the backend would live on.
  setsid nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/logs/out.log" 2>&1 &
  echo $!
}
kill_nginx() { # $1 = master pid, leader of its process group: like a crash of the host
  kill -9 -- "-$1" 2>/dev/null || true
}
wait_answers() { # $1 = port, $2 = what it is
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$1/small" && return 0; sleep 0.1; done
  echo "$2 on :$1 never answered" >&2
  tail -5 "$WORK"/nginx*/logs/*.log >&2 2>/dev/null || true
  exit 1
}
B1=$(free_port); B2=$(free_port)
N1=$(start_nginx 1 "$B1"); PIDS+=("$N1")
N2=$(start_nginx 2 "$B2"); PIDS+=("$N2")
wait_answers "$B1" "nginx 1"; wait_answers "$B2" "nginx 2"

# --- the balancers ---------------------------------------------------------------------------
HA_FE=$(free_port); HA_ST=$(free_port)
write_haproxy() { # $1 = extra backend lines
  cat > "$WORK/haproxy.cfg" <<EOF
global
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$HA_FE
  default_backend be
backend be
  balance roundrobin
  option httpchk GET /small
  timeout check 5s
  default-server inter 5s fall 2 rise 3
$1
  server s1 127.0.0.1:$B1 check
  server s2 127.0.0.1:$B2 check
listen stats
  bind 127.0.0.1:$HA_ST
  stats enable
  stats uri /stats
EOF
}
write_obsd() {
  cat > "$WORK/obsd.toml" <<EOF
[global]
log_level = "info"
[balancer.listen]
address = "127.0.0.1:0"
[[balancer.frontends]]
name = "fe"
bind = "127.0.0.1:0"
default_backend = "be"
maxconn = 4000
[[balancer.backends]]
name = "be"
balance = "roundrobin"
httpchk = { method = "GET", path = "/small" }
timeout_check = "5s"
default_server = { inter = "5s", fall = 2, rise = 3$OBSD_SERVER_EXTRA }
[[balancer.backends.servers]]
name = "s1"
address = "127.0.0.1:$B1"
[[balancer.backends.servers]]
name = "s2"
address = "127.0.0.1:$B2"
EOF
}

HA_PID=""; OB_PID=""; OB_FE=""
start_haproxy() {
  haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
  HA_PID=$!; PIDS+=("$HA_PID")
}
start_obsd() {
  "$OBSD" --role balancer --config "$WORK/obsd.toml" >"$WORK/obsd.log" 2>&1 &
  OB_PID=$!; PIDS+=("$OB_PID")
  for _ in $(seq 100); do
    OB_FE=$(grep -o 'listener=frontend.fe address=[0-9.:]*' "$WORK/obsd.log" 2>/dev/null | sed 's/.*address=//' || true)
    [ -n "$OB_FE" ] && break
    sleep 0.1
  done
}
wait_up() { # $1 = url
  for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "balancer at $1 never answered" >&2
  tail -5 "$WORK"/haproxy.log "$WORK"/obsd.log "$WORK"/nginx*/logs/*.log >&2 2>/dev/null || true
  exit 1
}

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# Runs wrk; prints "rps p50_ms p99_ms requests failed cpu_s_per_100k".
measure() { # $1 = pid of balancer, $2 = url, $3 = optional: seconds after which to kill backend 1
  local before after out killer=""
  before=$(cpu_ticks "$1")
  if [ -n "${3:-}" ]; then
    # The run only counts if backend 1 is really gone: checked right after the kill.
    ( sleep "$3"; kill_nginx "$N1"; sleep 0.2
      if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$B1/small"; then touch "$WORK/kill_failed"; fi ) &
    killer=$!
  fi
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$2")
  after=$(cpu_ticks "$1")
  echo "$out" > "$WORK/last_wrk.txt"
  if [ -n "$killer" ]; then wait "$killer"; fi
  if [ -e "$WORK/kill_failed" ]; then echo "backend 1 still answered after the kill" >&2; exit 1; fi
  echo "$out" | awk -v ticks=$((after - before)) -v hz="$HZ" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /requests in/ { reqs = $1 }
    /Non-2xx or 3xx/ { fail += $5 }
    /Socket errors/ { gsub(",", ""); fail += $4 + $6 + $8 + $10 }
    END { printf "%s %.3f %.3f %d %d %.3f\n", rps, p50, p99, reqs, fail, (reqs > 0 ? ticks / hz / reqs * 100000 : 0) }'
}

# One round: HAProxy then obsd, each on fresh processes; appends a line to $WORK/ha.txt and
# $WORK/ob.txt.
run_round() { # $1 = path, $2 = optional kill delay
  write_haproxy ""; start_haproxy; wait_up "http://127.0.0.1:$HA_FE/small"; sleep 1
  measure "$HA_PID" "http://127.0.0.1:$HA_FE$1" "${2:-}" >> "$WORK/ha.txt"
  kill "$HA_PID"; wait "$HA_PID" 2>/dev/null || true
  if [ -n "${2:-}" ]; then N1=$(start_nginx 1 "$B1"); PIDS+=("$N1"); wait_answers "$B1" "nginx 1"; sleep 1; fi
  write_obsd; start_obsd; wait_up "http://$OB_FE/small"; sleep 1
  measure "$OB_PID" "http://$OB_FE$1" "${2:-}" >> "$WORK/ob.txt"
  kill "$OB_PID"; wait "$OB_PID" 2>/dev/null || true
  if [ -n "${2:-}" ]; then N1=$(start_nginx 1 "$B1"); PIDS+=("$N1"); wait_answers "$B1" "nginx 1"; sleep 1; fi
}

# Medians over the rounds of req/s, p50, p99 and CPU; requests and failures summed.
summarize() { # $1 = file
  python3 - "$1" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
print(f"{med(0):.2f} {med(1):.3f} {med(2):.3f} {int(sum(r[3] for r in rows))} {int(sum(r[4] for r in rows))} {med(5):.3f}")
PY
}

run_pair() { # $1 = label, $2 = path, $3 = optional kill delay
  local ha ob
  : > "$WORK/ha.txt"; : > "$WORK/ob.txt"
  for _ in $(seq "$ROUNDS"); do run_round "$2" "${3:-}"; done
  ha=$(summarize "$WORK/ha.txt"); ob=$(summarize "$WORK/ob.txt")
  read -r ha_rps ha_p50 ha_p99 ha_req ha_fail ha_cpu <<<"$ha"
  read -r ob_rps ob_p50 ob_p99 ob_req ob_fail ob_cpu <<<"$ob"
  printf '\n== %s (wrk -t%s -c%s -d%ss, keep-alive; median of %s alternating rounds, requests and failures summed)\n' \
    "$1" "$THREADS" "$CONNS" "$DURATION" "$ROUNDS"
  printf '%-10s %12s %10s %10s %10s %8s %16s\n' "" "req/s" "p50 ms" "p99 ms" "requests" "failed" "CPU s/100k req"
  printf '%-10s %12s %10s %10s %10s %8s %16s\n' "haproxy" "$ha_rps" "$ha_p50" "$ha_p99" "$ha_req" "$ha_fail" "$ha_cpu"
  printf '%-10s %12s %10s %10s %10s %8s %16s\n' "obsd" "$ob_rps" "$ob_p50" "$ob_p99" "$ob_req" "$ob_fail" "$ob_cpu"
  awk -v a="$ob_rps" -v b="$ha_rps" -v c="$ob_p50" -v d="$ha_p50" -v e="$ob_p99" -v f="$ha_p99" -v g="$ob_cpu" -v h="$ha_cpu" \
    'function r(x, y) { return y > 0 ? sprintf("%.2f", x / y) : "n/a" }
     BEGIN { printf "%-10s %12s %10s %10s %10s %8s %16s\n", "obsd/ha", r(a, b), r(c, d), r(e, f), "", "", r(g, h) }'
}

echo "obsd $("$OBSD" --version | head -1) vs $(haproxy -v | head -1)"
echo "backends: 2 x nginx $(nginx -v 2>&1 | sed 's/.*\///'), 1 worker each; $(nproc) cores shared by wrk, balancer and backends"
# Other work on the machine skews both balancers; the ratios from one run are what compare.
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$OBSD_SERVER_EXTRA" ] && echo "obsd default_server adds: ${OBSD_SERVER_EXTRA#, }"
case " $LOADS " in *" small "*) run_pair "small responses (3 B)" /small ;; esac
case " $LOADS " in *" big "*) run_pair "200 KB responses" /big ;; esac
case " $LOADS " in *" kill "*)
  echo
  echo "HAProxy with the seed's settings (retries 3, no redispatch); obsd with its defaults (retries 3, redispatch)."
  run_pair "backend s1 killed (SIGKILL) after 3 s, small responses" /small 3
  ;;
esac
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
