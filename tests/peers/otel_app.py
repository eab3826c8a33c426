"""A small Flask app like the seed's, instrumented with OpenTelemetry, that sends its traces to
obsd and prints what it sent (trace ids by route) as JSON on stdout.

    otel_app.py --exporter otlp-grpc|otlp-http|jaeger-udp|jaeger-http --endpoint ... --service NAME

Requests go through Flask's test client, so no port is opened. Each /checkout request makes a
two-service trace: the app's server span, a client span with typed attributes and an event,
and a server span of "<service>-inventory" that sleeps 300 ms. /fail makes an error span.
"""
import argparse
import json
import time

from flask import Flask
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

parser = argparse.ArgumentParser()
parser.add_argument("--exporter", required=True)
parser.add_argument("--endpoint", required=True)
parser.add_argument("--service", required=True)
parser.add_argument("--requests", type=int, default=3)
args = parser.parse_args()


def make_exporter():
    if args.exporter == "otlp-grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=args.endpoint, insecure=True, timeout=10)
    if args.exporter == "otlp-http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=args.endpoint + "/v1/traces", timeout=10)
    from opentelemetry.exporter.jaeger.thrift import JaegerExporter

    if args.exporter == "jaeger-udp":
        host, port = args.endpoint.rsplit(":", 1)
        return JaegerExporter(agent_host_name=host, agent_port=int(port))
    if args.exporter == "jaeger-http":
        return JaegerExporter(collector_endpoint=args.endpoint + "/api/traces?format=jaeger.thrift")
    raise SystemExit(f"unknown exporter {args.exporter}")


def provider(service):
    p = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "test"}))
    p.add_span_processor(BatchSpanProcessor(make_exporter()))
    return p


app_provider = provider(args.service)
inventory_provider = provider(args.service + "-inventory")
trace.set_tracer_provider(app_provider)
tracer = app_provider.get_tracer("checkout-logic", "1.2.3")
inventory_tracer = inventory_provider.get_tracer("inventory-service")

app = Flask(__name__)
FlaskInstrumentor().instrument_app(app, tracer_provider=app_provider)
sent = {"service": args.service, "checkout": {}, "fail": None, "replay": None}


def trace_id_hex():
    return format(trace.get_current_span().get_span_context().trace_id, "032x")


@app.route("/checkout/<order>")
def checkout(order):
    sent["checkout"][order] = trace_id_hex()
    attributes = {"order.id": order, "items": 3, "price": 9.5, "gift": True}
    with tracer.start_as_current_span("reserve-stock", kind=SpanKind.CLIENT, attributes=attributes) as span:
        span.add_event("cache miss", {"cache.key": "stock:" + order})
        with inventory_tracer.start_as_current_span("inventory.reserve", kind=SpanKind.SERVER):
            # Far above the duration of anything else the app does, even on a loaded machine,
            # so duration searches tell the checkouts apart.
            time.sleep(0.3)
    return "reserved"


@app.route("/fail")
def fail():
    sent["fail"] = trace_id_hex()
    with tracer.start_as_current_span("charge-card") as span:
        span.set_status(Status(StatusCode.ERROR, "card declined"))
    return "declined", 500


client = app.test_client()
for i in range(args.requests):
    assert client.get(f"/checkout/{i}").status_code == 200
assert client.get("/fail").status_code == 500
# A root span linked to a span of the first checkout's trace: Jaeger shows links as FOLLOWS_FROM.
ctx = trace.SpanContext(
    trace_id=int(sent["checkout"]["0"], 16),
    span_id=0x1234,
    is_remote=True,
    trace_flags=trace.TraceFlags(1),
)
with tracer.start_as_current_span("replay", links=[Link(ctx, {"why": "replay"})]):
    sent["replay"] = trace_id_hex()
for p in (app_provider, inventory_provider):
    p.force_flush(10_000)
    p.shutdown()
print(json.dumps(sent))
