#!/usr/bin/python3
"""A local SMTP server for the alertmanager receiver tests (aiosmtpd, Debian's python3-aiosmtpd).

usage: smtp_sink.py PORT OUTFILE [--tls CERT KEY] [--auth USER PASSWORD]

Every message is appended to OUTFILE as one JSON line: envelope, whether the session was
encrypted and authenticated, and the raw message. With --tls the server offers STARTTLS and
requires it before MAIL; with --auth it requires AUTH (PLAIN only, after TLS).
"""
import json
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, outfile = int(sys.argv[1]), sys.argv[2]
rest = sys.argv[3:]
tls_context = None
user = password = None
while rest:
    flag = rest.pop(0)
    if flag == "--tls":
        cert, key = rest.pop(0), rest.pop(0)
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(cert, key)
    elif flag == "--auth":
        user, password = rest.pop(0), rest.pop(0)
    else:
        sys.exit(f"unknown flag {flag}")

lock = threading.Lock()


class Handler:
    async def handle_DATA(self, server, session, envelope):
        record = {
            "tls": session.ssl is not None,
            "authenticated": bool(getattr(session, "authenticated", False)),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "raw": envelope.original_content.decode("utf-8", "replace"),
        }
        with lock, open(outfile, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    return AuthResult(success=ok)


options = dict(hostname="127.0.0.1", port=port, server_hostname="sink.test")
if tls_context:
    options.update(tls_context=tls_context, require_starttls=True)
if user:
    options.update(authenticator=authenticator, auth_required=True, auth_exclude_mechanism=["LOGIN"])
controller = Controller(Handler(), **options)
controller.start()
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
