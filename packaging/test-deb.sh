#!/usr/bin/env bash
# Packaging test: builds two revisions of the .deb, runs lintian, and in a fresh Debian 12
# root (packaging/debian-root.sh: debootstrap, cached under /var/tmp) installs obsd from the local apt repository,
# checks files, user, unit and conffile, upgrades with an edited conffile (the maintainer
# scripts' systemd calls recorded by a stand-in systemctl), removes and purges, then lets the
# Ansible playbook install the seed's host1 into the purged root.
#
#   packaging/test-deb.sh            # packages $CARGO_TARGET_DIR/debug/obsd (built by cargo test)
#   OBSD_BINARY=path packaging/test-deb.sh
# Needs root (chroot), and the Debian packages dpkg-dev binutils lintian debootstrap apt-utils
# ansible systemd (installed here when missing). The first run downloads the root (~1 min);
# later runs extract the cached tarball.
set -euo pipefail
root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir"
export DEBIAN_FRONTEND=noninteractive
target_dir=${CARGO_TARGET_DIR:-$root_dir/target}

need=()
for tool_pkg in dpkg-shlibdeps:dpkg-dev strip:binutils lintian:lintian debootstrap:debootstrap \
                apt-ftparchive:apt-utils ansible-playbook:ansible systemd-analyze:systemd; do
  command -v "${tool_pkg%%:*}" >/dev/null || need+=("${tool_pkg##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

binary=${OBSD_BINARY:-$target_dir/debug/obsd}
if [ ! -x "$binary" ]; then
  cargo build --bin obsd
fi

work=$(mktemp -d /var/tmp/obsd-test-deb.XXXXXX)
chroot_root=$work/root
cleanup() {
  # Nothing is mounted outside the unshared mount namespaces below, so removal is safe.
  if [ -n "${OBSD_TEST_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "build obsd 1 and 2"
export DEB_COMPRESSION=gzip
build() {
  OBSD_BINARY=$binary DEB_REVISION=$1 OUT_DIR=$work/debs packaging/build-deb.sh 2>"$work/build.log" | tail -1
  [ "${PIPESTATUS[0]}" -eq 0 ] || { cat "$work/build.log" >&2; fail "build-deb.sh"; }
}
deb1=$(build 1)
deb2=$(build 2)

step "lintian"
lintian --allow-root --fail-on error,warning --display-info "$deb1" || fail "lintian reported problems"

step "Debian 12 root"
packaging/debian-root.sh "$chroot_root"
# Offline from here on: the only apt source is the obsd repository.
rm -f "$chroot_root/etc/apt/sources.list" "$chroot_root/etc/apt/sources.list.d/"*
echo 'deb [trusted=yes] file:/srv/obsd-apt ./' > "$chroot_root/etc/apt/sources.list.d/obsd.list"
# As in any chroot: no daemon may start during package installation.
printf '#!/bin/sh\nexit 101\n' > "$chroot_root/usr/sbin/policy-rc.d"
chmod 0755 "$chroot_root/usr/sbin/policy-rc.d"

# Runs a shell command in the root, with /proc, /dev and /sys mounted in a private mount
# namespace that vanishes with the command.
in_root() {
  unshare --mount --fork sh -euc '
    r=$1; shift
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    mount --rbind /sys "$r/sys"
    exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive HOME=/root sh -euc "$1"
  ' sh "$chroot_root" "$1"
}

step "install obsd 1 from the apt repository"
packaging/make-apt-repo.sh "$chroot_root/srv/obsd-apt" "$deb1" >/dev/null
in_root 'apt-get update -qq && apt-get install -y -qq obsd >/dev/null'

step "files, user, unit, conffile"
in_root '
  test -x /usr/bin/obsd
  obsd --version | grep -q "^obsd 0\."
  obsd --version
  test -f /lib/systemd/system/obsd@.service
  test -f /lib/systemd/system/obsd@exporter.service.d/clock.conf
  test -f /lib/systemd/system/obsd@all.service.d/clock.conf
  test -f /usr/share/doc/obsd/copyright
  test -f /usr/share/doc/obsd/examples/seed/host1.toml
  test -f /usr/share/man/man1/obsd.1.gz
  test -f /usr/share/man/man1/obsd-store-import.1.gz
  test -f /usr/share/bash-completion/completions/obsd
  getent passwd obsd | grep -q ":/var/lib/obsd:/usr/sbin/nologin$"
  getent group obsd >/dev/null
  test "$(stat -c "%U:%G %a" /var/lib/obsd)" = "obsd:obsd 750"
  test "$(stat -c "%U:%G" /var/lib/obsd/textfile)" = "obsd:obsd"
  # The config holds credentials.
  test "$(stat -c "%U:%G %a" /etc/obsd/obsd.toml)" = "root:obsd 640"
  ! dpkg-query -W -f="\${Homepage}" obsd | grep -q prometheus-ha-federation
  dpkg-query -W -f="\${Conffiles}\n" obsd | grep -q "^ /etc/obsd/obsd.toml "
  obsd check-config /etc/obsd/obsd.toml >/dev/null
  # Warnings do not change the exit status, so any output fails. --man=no: no man-db here.
  out=$(systemd-analyze verify --man=no /lib/systemd/system/obsd@exporter.service 2>&1)
  [ -z "$out" ] || { echo "$out"; exit 1; }
  test "$(zcat /usr/share/man/man1/obsd.1.gz | head -1 | cut -c1-8)" = ".TH OBSD"
  systemctl enable obsd@exporter obsd@replica
  test -L /etc/systemd/system/multi-user.target.wants/obsd@exporter.service
'

step "obsd runs as its user on the packaged config"
in_root '
  setpriv --reuid=obsd --regid=obsd --clear-groups sh -c "
    obsd --role exporter --config /etc/obsd/obsd.toml 2>/tmp/obsd.log &
    pid=\$!
    for i in \$(seq 50); do grep -q \"obsd started\" /tmp/obsd.log && break; sleep 0.1; done
    kill -TERM \$pid; wait \$pid
  "
  grep -q "obsd started" /tmp/obsd.log || { cat /tmp/obsd.log; exit 1; }
'

step "maintainer scripts drive systemd (a stand-in systemctl records the calls)"
# No systemd runs in a chroot; this stand-in answers as if obsd@exporter were enabled and
# running, so postinst/prerm/postrm take their systemd branches and deb-systemd-invoke acts.
# It goes in /usr/sbin, ahead of the real /usr/bin/systemctl in the PATH apt gives dpkg.
mkdir -p "$chroot_root/run/systemd/system"
cat > "$chroot_root/usr/sbin/systemctl" <<'FAKE'
#!/bin/sh
echo "$*" >> /tmp/systemctl.log
case "$*" in
  *list-units*) echo "obsd@exporter.service loaded active running obsd exporter role" ;;
  *is-enabled*) echo enabled ;;
esac
exit 0
FAKE
chmod 0755 "$chroot_root/usr/sbin/systemctl"
mv "$chroot_root/usr/sbin/policy-rc.d" "$work/policy-rc.d"

step "upgrade to obsd 2 keeps an edited conffile"
in_root 'sed -i "s/^log_level = \"info\"/log_level = \"debug\"  # edited by the admin/" /etc/obsd/obsd.toml'
packaging/make-apt-repo.sh "$chroot_root/srv/obsd-apt" "$deb2" >/dev/null
in_root '
  apt-get update -qq && apt-get upgrade -y -qq >/dev/null
  test "$(dpkg-query -W -f="\${Version}" obsd)" = "0.1.0-2"
  grep -q "^log_level = \"debug\"  # edited by the admin" /etc/obsd/obsd.toml
  test ! -e /etc/obsd/obsd.toml.dpkg-new && test ! -e /etc/obsd/obsd.toml.dpkg-old
  getent passwd obsd >/dev/null
  grep -q "restart obsd@exporter.service" /tmp/systemctl.log || { cat /tmp/systemctl.log; exit 1; }
  grep -q "daemon-reload" /tmp/systemctl.log
'

step "remove keeps config and data, purge removes them and keeps the user (as Debian's prometheus)"
in_root '
  apt-get remove -y -qq obsd >/dev/null
  grep -q "stop obsd@exporter.service" /tmp/systemctl.log || { cat /tmp/systemctl.log; exit 1; }
  test ! -e /usr/bin/obsd
  test -f /etc/obsd/obsd.toml
  getent passwd obsd >/dev/null
  apt-get purge -y -qq obsd >/dev/null
  test ! -e /etc/obsd/obsd.toml
  test ! -e /var/lib/obsd
  getent passwd obsd >/dev/null
  getent group obsd >/dev/null
  test -z "$(find /etc/systemd/system -name "obsd@*")"
'
rm -rf "$chroot_root/usr/sbin/systemctl" "$chroot_root/run/systemd/system"
mv "$work/policy-rc.d" "$chroot_root/usr/sbin/policy-rc.d"

step "ansible: the seed host1 play installs into the purged root, then a check-mode rerun changes nothing"
ansible_dir=$root_dir/packaging/ansible
cat > "$work/inventory.ini" <<INV
[exporter]
host1 ansible_connection=community.general.chroot ansible_host=$chroot_root ansible_become=false obsd_address=127.0.0.1
[replica]
host1 obsd_replica_label=replica-1
[balancer_replicas]
host1
[balancer:children]
balancer_replicas
[collector]
host1
INV
ansible_env=(ANSIBLE_CONFIG="$ansible_dir/ansible.cfg" ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_NOCOLOR=1)
run_playbook() {
  # The chroot connection needs /proc in the root for apt and systemctl; the namespace keeps
  # the mounts private to this run.
  unshare --mount --fork sh -euc '
    r=$1; shift
    mount -t proc proc "$r/proc"
    exec "$@"
  ' sh "$chroot_root" env "${ansible_env[@]}" ansible-playbook -i "$work/inventory.ini" \
    "$ansible_dir/playbook.yml" -e obsd_apt_repo_url=file:/srv/obsd-apt "$@"
}
run_playbook >"$work/ansible.log" 2>&1 || { cat "$work/ansible.log"; fail "ansible-playbook"; }
grep -q "failed=0" "$work/ansible.log" || { cat "$work/ansible.log"; fail "ansible-playbook"; }
in_root '
  grep -q "prometheus_instance = \"replica-1\"" /etc/obsd/obsd.toml
  test "$(stat -c "%U:%G %a" /etc/obsd/obsd.toml)" = "root:obsd 640"
  for role in exporter replica balancer collector; do
    test -L /etc/systemd/system/multi-user.target.wants/obsd@$role.service
  done
'
run_playbook --check >"$work/ansible-check.log" 2>&1 || { cat "$work/ansible-check.log"; fail "ansible-playbook --check"; }
grep -Eq "host1 +: ok=[0-9]+ +changed=0 .*failed=0" "$work/ansible-check.log" \
  || { cat "$work/ansible-check.log"; fail "a second run would still change things"; }

echo "packaging test: OK"
