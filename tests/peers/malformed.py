"""Sends malformed input over the protocols the Rust side cannot easily speak raw, and prints the
outcome of each as JSON: gRPC bytes that are not an ExportTraceServiceRequest, a gRPC message
over the size limit, and garbage datagrams to the Jaeger UDP ports.

    malformed.py --grpc HOST:PORT --compact HOST:PORT --binary HOST:PORT --oversize BYTES
"""
import argparse
import json
import socket

import grpc

parser = argparse.ArgumentParser()
parser.add_argument("--grpc", required=True)
parser.add_argument("--compact", required=True)
parser.add_argument("--binary", required=True)
parser.add_argument("--oversize", type=int, required=True)
args = parser.parse_args()

out = {}
channel = grpc.insecure_channel(args.grpc, options=[("grpc.max_send_message_length", 64 << 20)])
export = channel.unary_unary(
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    request_serializer=lambda b: b,
    response_deserializer=lambda b: b,
)
for name, payload in [("grpc_garbage", b"\xff\xff\xff\xff not protobuf"), ("grpc_oversize", b"\x0a" + b"\x00" * args.oversize)]:
    try:
        export(payload, timeout=10)
        out[name] = "OK"
    except grpc.RpcError as e:
        out[name] = e.code().name
# An empty request is valid protobuf: it must be accepted.
out["grpc_empty"] = "OK" if export(b"", timeout=10) is not None else "?"

for name, target in [("compact", args.compact), ("binary", args.binary)]:
    host, port = target.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"\x82\x81\x01\x09emitBatch\x1c\xff\xff\xff", (host, int(port)))
    s.sendto(b"definitely not thrift", (host, int(port)))
    s.close()
    out["udp_" + name] = "sent"
print(json.dumps(out))
