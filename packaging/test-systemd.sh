#!/usr/bin/env bash
# obsd@.service under a real systemd: boots the packaging tests' Debian root with
# systemd-nspawn (private network), installs the .deb, and checks that
#   - `systemctl start obsd@exporter` returns with the unit active: Type=notify, so systemd
#     waited for obsd's READY=1;
#   - it runs as user obsd, with the hardening in effect, and serves /metrics;
#   - `systemctl reload` (SIGHUP) keeps the same process and applies an edited config;
#   - a killed obsd is restarted (Restart=on-failure).
#   packaging/test-systemd.sh            # packages $CARGO_TARGET_DIR/debug/obsd
# Needs root and systemd-nspawn (Debian package systemd-container, installed when missing).
set -euo pipefail
root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir"
export DEBIAN_FRONTEND=noninteractive
target_dir=${CARGO_TARGET_DIR:-$root_dir/target}
command -v systemd-nspawn >/dev/null || {
  apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd-container >/dev/null
}
binary=${OBSD_BINARY:-$target_dir/debug/obsd}
[ -x "$binary" ] || cargo build --bin obsd

work=$(mktemp -d /var/tmp/obsd-test-systemd.XXXXXX)
root=$work/root
nspawn_pid=
cleanup() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    # SIGTERM asks the container's systemd to halt; the second one ends it at once.
    kill -TERM "$nspawn_pid"
    for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  if [ -n "${OBSD_TEST_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; [ -f "$work/nspawn.log" ] && tail -30 "$work/nspawn.log" >&2; exit 1; }

step "Debian 12 root with obsd installed"
packaging/debian-root.sh "$root"
deb=$(OBSD_BINARY=$binary DEB_COMPRESSION=gzip OUT_DIR=$work packaging/build-deb.sh 2>"$work/build.log" | tail -1) \
  || { cat "$work/build.log" >&2; fail "build-deb.sh"; }
cp "$deb" "$root/tmp/obsd.deb"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
unshare --mount --fork sh -euc 'mount -t proc proc "$1/proc"; chroot "$1" dpkg -i /tmp/obsd.deb >/dev/null' sh "$root"
rm "$root/usr/sbin/policy-rc.d" "$root/tmp/obsd.deb"

step "boot it with systemd-nspawn"
# --keep-unit and --register=no: no systemd or machined is needed on the host (CI machines
# and containers often have none); --private-network: the exporter's :9100 cannot clash.
# --system-call-filter: nspawn denies the @clock calls to a container without CAP_SYS_TIME,
# even the read-only adjtimex(2) that a host allows every process; the exporter's timex
# collector makes that call, and the unit, not the container, must be what decides it.
systemd-nspawn -D "$root" --register=no --keep-unit --private-network \
  --system-call-filter='adjtimex clock_adjtime' --boot >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
leader=
for _ in $(seq 300); do
  leader=$(pgrep -P "$nspawn_pid" | head -1 || true)
  [ -n "$leader" ] && nsenter -t "$leader" -a true 2>/dev/null && break
  kill -0 "$nspawn_pid" 2>/dev/null || fail "systemd-nspawn exited"
  sleep 0.1
done
[ -n "$leader" ] || fail "no container"
in_ct() { nsenter -t "$leader" -a /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -euc "$1"; }
# "offline" until the container's systemd has its control socket, then --wait holds until
# the boot is over.
for _ in $(seq 600); do
  state=$(in_ct 'timeout 120 systemctl is-system-running --wait' 2>/dev/null || true)
  [ "$state" != offline ] && [ -n "$state" ] && break
  sleep 0.2
done
case "$state" in
  running|degraded) echo "container systemd: $state" ;;
  *) fail "the container's systemd did not finish booting: $state" ;;
esac
show() { in_ct "systemctl show -p $1 --value obsd@exporter"; }
metrics() { in_ct 'python3 -c "import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:9100/metrics\", timeout=5).read().decode())"'; }
# Captured before grepping: `grep -q` exits at the first match, and under pipefail the
# writer's broken pipe then failed the check (seen once in CI).

step "systemctl start obsd@exporter waits for READY=1"
in_ct 'timeout 60 systemctl start obsd@exporter' || { in_ct 'journalctl -u obsd@exporter --no-pager' >&2; fail "start"; }
test "$(show Type)" = notify || fail "Type is $(show Type)"
test "$(show ActiveState)/$(show SubState)" = active/running \
  || { in_ct 'journalctl -u obsd@exporter --no-pager' >&2; fail "not active/running"; }
pid=$(show MainPID)
test "$(in_ct "ps -o user= -p $pid")" = obsd || fail "MainPID $pid does not run as obsd"
# The hardening is applied: no capabilities, and no way to gain privileges.
in_ct "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$pid/status" || fail "NoNewPrivileges not in effect"
in_ct "grep -q '^CapBnd:[[:space:]]*0000000000000000' /proc/$pid/status" || fail "capability bounding set not empty"
grep -q '^node_load1 ' <<<"$(metrics)" || fail "no node_load1 on :9100/metrics"
grep -q 'obsd started' <<<"$(in_ct 'journalctl -u obsd@exporter --no-pager')" || fail "no 'obsd started' in the journal"

step "every collector that works without the unit's sandbox works under it"
# The same binary as root in a bare unit on another port: a collector the hardening breaks
# (timex under ProtectClock=, before the package's clock.conf drop-in) reports 0 only here.
in_ct 'printf "[exporter.listen]\naddress = \"127.0.0.1:9109\"\n" > /etc/obsd/bare.toml
  printf "[Service]\nExecStart=/usr/bin/obsd --role exporter --config /etc/obsd/bare.toml\n" \
    > /etc/systemd/system/obsd-bare.service
  systemctl daemon-reload && timeout 30 systemctl start obsd-bare'
collectors() {
  local body
  for _ in $(seq 50); do
    body=$(in_ct "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$1/metrics', timeout=5).read().decode())\"" 2>/dev/null) && break
    sleep 0.2
  done
  grep -E '^node_scrape_collector_success' <<<"$body" | sort
}
bare=$(collectors 9109)
unit=$(collectors 9100)
grep -q 'collector="timex"} 1' <<<"$bare" || fail "timex fails even outside the unit: $bare"
while read -r line; do
  case "$line" in
    *' 1') grep -qxF "$line" <<<"$unit" || fail "under obsd@exporter: ${line% 1} is not 1 ($(grep -F "${line% 1}" <<<"$unit"))" ;;
  esac
done <<<"$bare"
echo "$(grep -c ' 1$' <<<"$unit") collectors succeed under the unit, as outside it"
in_ct 'systemctl stop obsd-bare'

step "systemctl reload obsd@exporter applies the edited config in the same process"
in_ct 'printf "\n[exporter.collectors]\nloadavg = false\n" >> /etc/obsd/obsd.toml'
in_ct 'timeout 30 systemctl reload obsd@exporter' || fail "reload"
for _ in $(seq 50); do grep -q '^node_load1 ' <<<"$(metrics)" || break; sleep 0.2; done
grep -q '^node_load1 ' <<<"$(metrics)" && fail "loadavg collector still on after reload"
test "$(show MainPID)" = "$pid" || fail "reload replaced the process"
test "$(show ActiveState)" = active || fail "not active after reload"
grep -q 'configuration reloaded' <<<"$(in_ct 'journalctl -u obsd@exporter --no-pager')" || fail "no 'configuration reloaded' in the journal"

step "the journal keeps each line's severity and one timestamp"
# A reload of a broken file is an ERROR: journald must store it at priority err (obsd writes
# sd-daemon prefixes when stderr is the journal) and INFO lines below warning.
in_ct 'cp /etc/obsd/obsd.toml /tmp/obsd.toml.good && printf "[exporter\n" >> /etc/obsd/obsd.toml'
in_ct 'timeout 30 systemctl reload obsd@exporter' || fail "reload of a broken file"
for _ in $(seq 50); do
  grep -q 'reload failed' <<<"$(in_ct 'journalctl -u obsd@exporter -p err --no-pager')" && break
  sleep 0.2
done
grep -q 'reload failed' <<<"$(in_ct 'journalctl -u obsd@exporter -p err --no-pager')" \
  || { in_ct 'journalctl -u obsd@exporter -o verbose --no-pager' >&2; fail "the failed reload is not at priority err"; }
grep -q 'obsd started' <<<"$(in_ct 'journalctl -u obsd@exporter -p warning --no-pager')" \
  && fail "an INFO line was stored at warning or above"
grep -Eq '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:' <<<"$(in_ct 'journalctl -u obsd@exporter -o cat --no-pager')" \
  && fail "journal messages carry a timestamp of their own"
in_ct 'cp /tmp/obsd.toml.good /etc/obsd/obsd.toml && timeout 30 systemctl reload obsd@exporter' \
  || fail "reload of the restored file"

step "a killed obsd is restarted"
in_ct "kill -KILL $pid"
for _ in $(seq 150); do
  new=$(show MainPID)
  [ "$new" != 0 ] && [ "$new" != "$pid" ] && [ "$(show ActiveState)" = active ] && break
  sleep 0.1
done
[ "$new" != 0 ] && [ "$new" != "$pid" ] || fail "not restarted after SIGKILL"
test "$(show NRestarts)" = 1 || fail "NRestarts is $(show NRestarts)"

echo "systemd test: OK"
