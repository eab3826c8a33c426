#!/usr/bin/env python3
"""Writes one realistic OpenMetrics backfill file for store benchmarks.

SERIES series (about 60 per instance, node_exporter- and app-like label sets), one sample
every 15 s for HOURS hours ending at END (unix seconds). High entropy on purpose: every
counter moves every scrape (with occasional resets), gauges carry full-precision floats,
classic histograms with 10 buckets. Families are contiguous and each series' samples are
consecutive, as OpenMetrics and promtool's backfill expect.
"""
import os, random, sys

series_target = int(os.environ.get("SERIES", "10000"))
hours = float(os.environ.get("HOURS", "2"))
end = int(os.environ.get("END", "1700006400"))
step = 15
out = sys.argv[1]
rng = random.Random(42)
n_points = int(hours * 3600 / step)
start = end - n_points * step
ts = [f"{start + i * step}" for i in range(n_points)]

per_instance = 16 + 2 + 3 * (3 + 12) + 1  # cpu modes, memory+load, 3 handlers x (3 codes + histogram), rss
instances = max(1, series_target // per_instance)

def series_for(inst):
    host = f"10.{inst // 250 % 250}.{inst % 250}.{inst % 7 + 1}:9100"
    job = "node" if inst % 2 == 0 else "api"
    base = [("instance", host), ("job", job), ("env", ["prod", "staging"][inst % 2]), ("region", ["eu-west-1", "us-east-1", "ap-south-1"][inst % 3])]
    for cpu in range(4):
        for mode in ("idle", "user", "system", "iowait"):
            yield "node_cpu_seconds_total", base + [("cpu", str(cpu)), ("mode", mode)], "counter_float"
    yield "node_memory_MemAvailable_bytes", base, "gauge_bytes"
    yield "node_load1", base, "gauge_load"
    for handler in ("/api/v1/orders", "/api/v1/users", "/healthz"):
        for code in ("200", "404", "500"):
            yield "http_requests_total", base + [("handler", handler), ("method", "GET"), ("code", code)], "counter_int"
        for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"):
            yield "http_request_duration_seconds_bucket", base + [("handler", handler), ("le", le)], "counter_int"
        yield "http_request_duration_seconds_sum", base + [("handler", handler)], "counter_float"
        yield "http_request_duration_seconds_count", base + [("handler", handler)], "counter_int"
    yield "process_resident_memory_bytes", base, "gauge_bytes"

by_family = {}
for inst in range(instances):
    for name, labels, kind in series_for(inst):
        by_family.setdefault(name, []).append((labels, kind))

def esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

def values(kind):
    if kind == "counter_float":
        v = rng.uniform(1e3, 1e6)
        for _ in range(n_points):
            v += rng.uniform(0.01, 15.0)
            if rng.random() < 0.0005:
                v = rng.uniform(0, 10)
            yield f"{v:.2f}"
    elif kind == "counter_int":
        v = rng.randrange(0, 10**6)
        rate = rng.randrange(1, 300)
        for _ in range(n_points):
            v += rng.randrange(0, 2 * rate)
            if rng.random() < 0.0005:
                v = 0
            yield str(v)
    elif kind == "gauge_bytes":
        v = rng.uniform(1e9, 3e10)
        for _ in range(n_points):
            v = max(1e8, v + rng.gauss(0, 5e7))
            yield repr(v)
    else:
        v = rng.uniform(0, 8)
        for _ in range(n_points):
            v = abs(v + rng.gauss(0, 0.2))
            yield repr(v)

count = 0
with open(out, "w", buffering=1 << 22) as f:
    for name in sorted(by_family):
        for labels, kind in by_family[name]:
            lab = "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels) + "}"
            prefix = name + lab + " "
            f.write("".join(f"{prefix}{v} {t}\n" for v, t in zip(values(kind), ts)))
            count += 1
    f.write("# EOF\n")
print(f"{count} series x {n_points} samples = {count * n_points} samples -> {out}", file=sys.stderr)
