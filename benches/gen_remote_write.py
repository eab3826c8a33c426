#!/usr/bin/env python3
"""Remote-write data generator for benches/promql_vs_prometheus.sh.

    gen_remote_write.py --url URL [--url URL ...] [--series 20000] [--minutes 60] [--end S]

Sends the same deterministic samples to every URL in time order (one step of every series,
then the next step), so neither Prometheus nor obsd refuses any as out of order. Series:
`c` counters (--series of them, 10 jobs, with resets), `g` gauges (a tenth), `h_bucket`
classic histograms (a hundredth, 11 buckets incl. +Inf), 15 s apart, ending at --end.

Standard library only: protobuf is written by hand, and the snappy body is one literal
(valid snappy, just not compressed), which every snappy decoder accepts.
"""
import argparse
import concurrent.futures
import struct
import time
import urllib.request

STEP_MS = 15_000
BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data


def labels_bytes(pairs):
    # Sorted by name, as Prometheus's TSDB requires.
    return b"".join(field(1, field(1, n.encode()) + field(2, v.encode())) for n, v in sorted(pairs))


def snappy_literal(raw):
    out = bytearray(varint(len(raw)))
    pos = 0
    while pos < len(raw):
        chunk = raw[pos:pos + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        else:
            out.append(61 << 2)  # literal, length-1 in the next 2 bytes
            out += struct.pack("<H", n)
        out += chunk
        pos += len(chunk)
    return bytes(out)


def mix(x):
    x &= 0xFFFFFFFFFFFFFFFF
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 33)


def series(n):
    out = []  # (labels bytes, kind, param)
    for i in range(n):
        out.append((labels_bytes([("__name__", "c"), ("instance", f"i{i}"), ("job", f"job{i % 10}")]),
                    "c", 1.0 + (mix(i) % 100) / 10.0))
    for i in range(max(n // 10, 1)):
        out.append((labels_bytes([("__name__", "g"), ("instance", f"i{i}"), ("job", f"job{i % 10}")]), "g", 0))
    for i in range(max(n // 100, 1)):
        for b, le in enumerate(BUCKETS):
            out.append((labels_bytes([("__name__", "h_bucket"), ("instance", f"i{i}"), ("job", f"job{i % 10}"),
                                      ("le", le)]), "h", (b + 1) / len(BUCKETS)))
    return out


def value(idx, kind, param, step):
    if kind == "c":
        # Resets about every 500 steps, at a series-specific phase.
        since = (step + mix(idx) % 500) % 500
        return since * param * 15.0 + (mix(idx * 7919 + step) % 7)
    if kind == "g":
        return (mix(idx * 7919 + step) % 1_000_000) / 1000.0
    return float(int(step * 20.0 * param))  # cumulative buckets: never decreasing with le


def post(url, body):
    req = urllib.request.Request(url, data=body, headers={
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    })
    with urllib.request.urlopen(req, timeout=300) as r:
        if r.status // 100 != 2:
            raise SystemExit(f"remote write to {url}: {r.status} {r.read()!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", action="append", required=True)
    ap.add_argument("--series", type=int, default=20000)
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--end", type=int, default=int(time.time()))
    ap.add_argument("--batch", type=int, default=10000)
    a = ap.parse_args()
    end_ms = a.end * 1000 // STEP_MS * STEP_MS
    steps = a.minutes * 60_000 // STEP_MS
    all_series = series(a.series)
    started = time.time()
    sent = 0
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(a.url))
    for step in range(steps + 1):
        t = end_ms - (steps - step) * STEP_MS
        ts_tail = b"\x10" + varint(t)
        for lo in range(0, len(all_series), a.batch):
            parts = []
            for idx in range(lo, min(lo + a.batch, len(all_series))):
                lb, kind, param = all_series[idx]
                sample = b"\x09" + struct.pack("<d", value(idx, kind, param, step)) + ts_tail
                parts.append(field(1, lb + field(2, sample)))
            body = snappy_literal(b"".join(parts))
            # Every server gets the batch at once; the next batch waits for all of them, so
            # each series still arrives in time order everywhere.
            for f in [pool.submit(post, url, body) for url in a.url]:
                f.result()
            sent += len(parts)
    print(f"series={len(all_series)} samples={sent} end={end_ms // 1000} seconds={time.time() - started:.1f}")


if __name__ == "__main__":
    main()
