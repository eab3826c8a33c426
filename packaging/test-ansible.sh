#!/usr/bin/env bash
# Ansible checks that need no root and no network (seconds): the playbooks pass
# --syntax-check, and the templates rendered for the seed inventory are exactly the committed
# config/seed/*.toml and packaging/grafana/datasources.yaml, each valid under check-config.
# The playbook's real run against a Debian root is in test-deb.sh.
#   packaging/test-ansible.sh            # uses $CARGO_TARGET_DIR/debug/obsd
set -euo pipefail
root_dir=$(cd "$(dirname "$0")/.." && pwd)
cd "$root_dir/packaging/ansible"
target_dir=${CARGO_TARGET_DIR:-$root_dir/target}
obsd=${OBSD_BINARY:-$target_dir/debug/obsd}
command -v ansible-playbook >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ansible >/dev/null
}
export ANSIBLE_CONFIG=$PWD/ansible.cfg ANSIBLE_NOCOLOR=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== ansible-playbook --syntax-check"
ansible-playbook -i inventory/seed.ini --syntax-check playbook.yml render.yml

echo "== seed inventory rendered = config/seed + grafana/datasources.yaml"
ansible-playbook -i inventory/seed.ini render.yml -e render_dir="$out" >"$out/render.log" 2>&1 \
  || { cat "$out/render.log"; exit 1; }
for host in host1 host2 host3; do
  diff -u "$root_dir/config/seed/$host.toml" "$out/$host.toml"
  "$obsd" check-config "$out/$host.toml" >/dev/null
done
diff -u "$root_dir/packaging/grafana/datasources.yaml" "$out/datasources.yaml"
echo "ansible test: OK"
