#!/usr/bin/env bash
# obsd collector benchmark: N spans (default 1,000,000; env N) over OTLP/gRPC in batches of 512,
# then trace-by-id and search latency with them stored, bytes on disk per span and RSS.
# The load generator (benches/otlp_loadgen.rs) speaks plain OTLP/gRPC and the Jaeger query API,
# so the same two commands measure a Jaeger (<= v2.20) given its endpoints.
# Usage: N=200000 CONCURRENCY=4 benches/collector.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-1000000}"
CONCURRENCY="${CONCURRENCY:-4}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/obsd-target}"
cargo build --release --quiet --bin obsd
cargo bench --quiet --no-run --bench otlp_loadgen 2>/dev/null
OBSD="$CARGO_TARGET_DIR/release/obsd"
LOADGEN=$(ls -t "$CARGO_TARGET_DIR"/release/deps/otlp_loadgen-* | grep -v '\.d$' | head -1)
work=$(mktemp -d)
trap 'kill $OBSD_PID 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/obsd.toml" <<TOML
[collector]
jaeger_compact_udp = ""
jaeger_binary_udp = ""
[collector.listen]
address = "127.0.0.1:0"
[collector.otlp_grpc]
address = "127.0.0.1:0"
[collector.otlp_http]
address = "127.0.0.1:0"
[collector.jaeger_thrift_http]
address = "127.0.0.1:0"
TOML
"$OBSD" --role collector --config "$work/obsd.toml" --data-dir "$work/data" 2> "$work/log" &
OBSD_PID=$!
for _ in $(seq 100); do grep -q "obsd started" "$work/log" && break; sleep 0.1; done
addr() { grep -o "listener=\"\?$1\"\? address=[0-9.:]*" "$work/log" | head -1 | sed 's/.*address=//'; }
GRPC=$(addr collector-otlp-grpc); QUERY=$(addr collector)
cpu() { awk '{print $14 + $15}' "/proc/$OBSD_PID/stat"; }
TICK=$(getconf CLK_TCK)
before=$(cpu)
"$LOADGEN" load --endpoint "http://$GRPC" --spans "$N" --batch 512 --concurrency "$CONCURRENCY" | tee "$work/load"
after=$(cpu)
sent=$(awk '/spans_sent/ {print $2}' "$work/load")
echo "obsd_cpu_seconds $(echo "scale=2; ($after - $before) / $TICK" | bc)"
echo "spans_per_cpu_second $(echo "$sent * $TICK / ($after - $before)" | bc)"
"$LOADGEN" query --query "http://$QUERY" --spans "$N" --samples 200
sleep 2 # let sled flush before measuring the disk
bytes=$(du -sb "$work/data/collector" | cut -f1)
echo "disk_bytes $bytes"
echo "disk_bytes_per_span $(echo "$bytes / $sent" | bc)"
grep -E '^(VmRSS|VmHWM)' "/proc/$OBSD_PID/status"
