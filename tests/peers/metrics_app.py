"""A Flask app like the seed's python-metrics-app: prometheus_client metrics on /metrics.

Usage: metrics_app.py PORT [--load RPS] [--host ADDRESS]
Serves GET / (counts a request and observes its latency) and GET /metrics. With --load the
app sends itself RPS requests per second, for steady rate() panels. --host is the address to
listen on (127.0.0.1 unless given; the seed-topology test serves other namespaces).
"""
import random
import sys
import threading
import time
import urllib.request

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OM_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest

REQUESTS = Counter("python_app_requests_total", "Total requests", ["method", "endpoint"])
LATENCY = Histogram("python_app_request_latency_seconds", "Request latency", ["endpoint"])
IN_FLIGHT = Gauge("python_app_in_flight", "Requests in flight")

app = Flask(__name__)


@app.route("/")
def index():
    start = time.time()
    IN_FLIGHT.inc()
    time.sleep(random.uniform(0.001, 0.02))
    REQUESTS.labels(method="GET", endpoint="/").inc()
    LATENCY.labels(endpoint="/").observe(time.time() - start)
    IN_FLIGHT.dec()
    return "hello\n"


@app.route("/metrics")
def metrics():
    from flask import request

    if "application/openmetrics-text" in request.headers.get("Accept", ""):
        return Response(om_generate_latest(REGISTRY), headers={"Content-Type": OM_CONTENT_TYPE})
    return Response(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def load(port, rps):
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        except Exception:
            pass
        time.sleep(1.0 / rps)


if __name__ == "__main__":
    port = int(sys.argv[1])
    if "--load" in sys.argv:
        rps = float(sys.argv[sys.argv.index("--load") + 1])
        threading.Thread(target=load, args=(port, rps), daemon=True).start()
    print(f"listening on {port}", flush=True)
    host = sys.argv[sys.argv.index("--host") + 1] if "--host" in sys.argv else "127.0.0.1"
    app.run(host=host, port=port, threaded=True)
