#!/usr/bin/python3
"""A real SMTP server for hu-red's mail tests (aiosmtpd, Debian package python3-aiosmtpd).

    smtp_server.py --port PORT --dir DIR [--tls-cert CERT --tls-key KEY]

Listens on 127.0.0.1:PORT (0 = any free port) and writes every accepted message to
DIR/NNNN.eml (the DATA exactly as received) with DIR/NNNN.json next to it (envelope sender,
recipients, whether the session was TLS-protected). With --tls-cert/--tls-key it offers
STARTTLS and refuses mail before it (require_starttls). Prints "READY <port>" on stdout once
listening and runs until killed.
"""

import argparse
import json
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class Saver:
    def __init__(self, folder):
        self.folder = folder
        self.lock = threading.Lock()
        # a restarted server goes on numbering after the messages already in the folder
        self.n = len([f for f in os.listdir(folder) if f.endswith(".eml")])

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        base = os.path.join(self.folder, f"{n:04d}")
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(base + ".eml.part", "wb") as f:
            f.write(data)
        with open(base + ".json", "w") as f:
            json.dump(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "tls": session.ssl is not None,
                },
                f,
            )
        os.rename(base + ".eml.part", base + ".eml")
        return "250 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    kwargs = {}
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        kwargs = {"tls_context": ctx, "require_starttls": True}
    port = a.port
    if port == 0:
        # aiosmtpd 1.4 cannot listen on port 0 (its readiness check connects to the port)
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    controller = Controller(
        Saver(a.dir), hostname="127.0.0.1", port=port, ready_timeout=30, **kwargs
    )
    controller.start()
    print(f"READY {port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
