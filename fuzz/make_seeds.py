#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/ that come from real peers.

    /var/tmp/obsd-venvs/otlp/bin/python fuzz/make_seeds.py otlp
    /var/tmp/obsd-venvs/jaeger/bin/python fuzz/make_seeds.py jaeger
    python3 fuzz/make_seeds.py text

`otlp`: spans from the OpenTelemetry Python SDK, encoded by its OTLP exporter (protobuf) and
written as OTLP/JSON. `jaeger`: the same spans through the SDK's Jaeger thrift exporter, as a
collector Batch (binary protocol) and an agent emitBatch (compact and binary). `text`: the
hand-written seeds (exposition, HTTP heads, chunked bodies, PromQL from the differential
corpus, the shipped configs). The virtualenvs are the tests' (tests/peers/setup_python.sh).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def sdk_spans():
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link, Status, StatusCode

    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "fuzz-seed", "host.name": "h1"}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("seed", "1.0")
    with tracer.start_as_current_span("GET /api", attributes={"http.method": "GET", "http.status_code": 200}) as root:
        root.add_event("cache miss", {"key": "a", "n": 3, "ratio": 0.5, "ok": True, "list": [1, 2]})
        with tracer.start_as_current_span("db query", links=[Link(root.get_span_context(), {"l": "x"})]) as child:
            child.set_status(Status(StatusCode.ERROR, "timeout"))
            child.set_attribute("db.rows", 12)
    return mem.get_finished_spans()


def otlp():
    from google.protobuf import json_format
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    req = encode_spans(sdk_spans())
    put("otlp_protobuf", "sdk-spans", req.SerializeToString())
    # OTLP/JSON carries ids as hex, not protobuf JSON's base64.
    doc = json_format.MessageToDict(req, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in sp:
                        sp[k] = __import__("base64").b64decode(sp[k]).hex()
                for link in sp.get("links", []):
                    for k in ("traceId", "spanId"):
                        link[k] = __import__("base64").b64decode(link[k]).hex()
    put("otlp_json", "sdk-spans.json", json.dumps(doc))


def jaeger():
    from opentelemetry.exporter.jaeger.thrift.gen.agent import Agent
    from opentelemetry.exporter.jaeger.thrift.gen.jaeger import ttypes as jt
    from opentelemetry.exporter.jaeger.thrift.translate import ThriftTranslator, Translate
    from thrift.protocol import TBinaryProtocol, TCompactProtocol
    from thrift.transport import TTransport

    spans = Translate(sdk_spans())._translate(ThriftTranslator(max_tag_value_length=None))
    batch = jt.Batch(process=jt.Process(serviceName="fuzz-seed", tags=[jt.Tag(key="ip", vType=jt.TagType.STRING, vStr="10.0.0.1")]), spans=spans)
    for name, proto, target in [
        ("binary", TBinaryProtocol.TBinaryProtocol, "jaeger_thrift_binary"),
        ("compact", TCompactProtocol.TCompactProtocol, "jaeger_thrift_compact"),
    ]:
        buf = TTransport.TMemoryBuffer()
        batch.write(proto(buf))
        put(target, "collector-batch", buf.getvalue())
        buf = TTransport.TMemoryBuffer()
        Agent.Client(proto(buf)).send_emitBatch(batch)
        put(target, "agent-emit-batch", buf.getvalue())


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(n, wire, payload):
    if wire == 2:
        return varint(n << 3 | 2) + varint(len(payload)) + payload
    return varint(n << 3 | wire) + payload


def snappy_literal(raw):
    """One snappy literal: a valid snappy block every decoder accepts."""
    n = len(raw) - 1
    if n < 60:
        tag = bytes([n << 2])
    else:
        tag = bytes([61 << 2]) + n.to_bytes(2, "little") if n < 65536 else bytes([63 << 2]) + n.to_bytes(4, "little")
    return varint(len(raw)) + tag + raw


def remote_write():
    import struct

    def series(labels, samples):
        body = b"".join(field(1, 2, field(1, 2, k.encode()) + field(2, 2, v.encode())) for k, v in labels)
        body += b"".join(field(2, 2, field(1, 1, struct.pack("<d", v)) + field(2, 0, varint(t))) for v, t in samples)
        return field(1, 2, body)

    raw = series([("__name__", "up"), ("instance", "h1:9100"), ("job", "node")], [(1.0, 1700000000000), (0.0, 1700000015000)])
    raw += series([("__name__", "http_requests_total"), ("code", "200")], [(1027.5, 1700000000000)])
    raw += field(3, 2, field(1, 0, varint(1)) + field(2, 2, b"up") + field(4, 2, b"Target is up."))
    put("remote_write", "snappy-request", snappy_literal(raw))
    put("remote_write", "protobuf-request", raw)


def text():
    remote_write()
    put("exposition_text", "families", """# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000
# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# TYPE untyped_thing untyped
untyped_thing NaN
""")
    put("exposition_openmetrics", "families", """# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
# TYPE foo histogram
foo_bucket{le="0.0"} 0
foo_bucket{le="1e-05"} 0 # {trace_id="KOO5S4vxi0o"} 0.67
foo_bucket{le="+Inf"} 17 # {trace_id="oHg5SJYRHA0"} 9.8 1520879607.789
foo_count 17
foo_sum 324789.3
# TYPE go_goroutines gauge
go_goroutines 69 1520879607.789
# TYPE c counter
c_total 1.0e3
# TYPE s stateset
s{s="a"} 1
# TYPE i info
i_info{version="1"} 1
# EOF
""")
    put("balancer_response_head", "ok", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\n")
    put("balancer_response_head", "chunked", "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\nKeep-Alive: timeout=5\r\n\r\n")
    put("balancer_response_head", "http10", "HTTP/1.0 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
    put("balancer_chunked", "body", "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT")
    put("balancer_chunked", "empty", "0\r\n\r\n")
    with open(os.path.join(ROOT, "tests", "promql", "corpus.txt")) as f:
        queries = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    for i in range(0, len(queries), 8):
        put("promql", f"corpus-{i:03d}", queries[i])
    for name in sorted(os.listdir(os.path.join(ROOT, "config"))):
        p = os.path.join(ROOT, "config", name)
        if name.endswith(".toml"):
            put("config_toml", name, open(p, "rb").read())
    put("prometheus_yaml", "prometheus.yml", """global:
  scrape_interval: 15s
  external_labels: {replica: a}
scrape_configs:
  - job_name: node
    basic_auth: {username: u, password: p}
    static_configs:
      - targets: ['127.0.0.1:9100', 'h2:9100']
        labels: {env: prod}
    relabel_configs:
      - source_labels: [__address__]
        regex: '(.*):\\\\d+'
        target_label: host
        replacement: '$1'
    metric_relabel_configs:
      - action: labeldrop
        regex: 'tmp_.*'
  - job_name: files
    file_sd_configs: [{files: ['/etc/obsd/targets/*.yml'], refresh_interval: 1m}]
    scheme: https
    tls_config: {insecure_skip_verify: true}
""")


if __name__ == "__main__":
    {"otlp": otlp, "jaeger": jaeger, "text": text}[sys.argv[1]]()
