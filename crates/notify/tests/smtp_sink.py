#!/usr/bin/env python3
"""A real SMTP server for latchkey-notify's tests, built on aiosmtpd.

Listens on a loopback port (0 = any free one), prints "READY <port>" once it accepts
connections, and writes every message it receives to OUT_DIR as NNNN.eml (raw) and NNNN.json
(envelope plus the parsed parts the tests assert on). Exits when its standard input closes, so
it never outlives the test that started it.

Options:
  --tls-cert/--tls-key   certificate for TLS
  --starttls             offer STARTTLS and refuse mail before it (require_starttls)
  --implicit-tls         TLS from the first byte (SMTPS)
  --fail-first N         answer the first N messages with 451 (temporary failure)
  --idle-timeout S       close a connection idle for S seconds (aiosmtpd's default: 300)
  --connections FILE     keep the count of connections opened and closed so far in FILE (JSON)
  auth: set SMTP_SINK_AUTH=user:password in the environment to require AUTH
"""

import argparse
import asyncio
import email
import json
import os
import ssl
import sys
from email import policy

try:
    from aiosmtpd.smtp import SMTP, AuthResult
except ImportError:
    sys.stderr.write("aiosmtpd is not installed: python3 -m pip install aiosmtpd\n")
    sys.exit(3)


def write_json(path, record):
    # Write then rename, so a reader never sees half a file.
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(record, f)
    os.replace(path + ".tmp", path)


class CountingSMTP(SMTP):
    """aiosmtpd's server, telling the handler when a TCP connection opens and closes (aiosmtpd
    calls these again for the TLS layer after STARTTLS: the client's address tells them apart)."""

    def connection_made(self, transport):
        super().connection_made(transport)
        self.event_handler.connection_event(opened=transport.get_extra_info("peername"))

    def connection_lost(self, exc):
        peer = self.session.peer if self.session is not None else None
        super().connection_lost(exc)
        self.event_handler.connection_event(closed=peer)


class Sink:
    def __init__(self, out_dir, fail_first, connections_file):
        self.out_dir = out_dir
        self.connections_file = connections_file
        self.fail_left = fail_first
        self.count = 0
        self.opened = set()
        self.closed = set()
        self.connection_event()

    def connection_event(self, opened=None, closed=None):
        if opened is not None:
            self.opened.add(tuple(opened))
        if closed is not None:
            self.closed.add(tuple(closed))
        if self.connections_file:
            write_json(self.connections_file,
                       {"opened": len(self.opened), "closed": len(self.closed)})

    async def handle_DATA(self, server, session, envelope):
        if self.fail_left > 0:
            self.fail_left -= 1
            return "451 4.3.0 try again later (test sink)"
        self.count += 1
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        ssl_object = server.transport.get_extra_info("ssl_object")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "subject": str(msg["subject"]),
            "content_type": msg.get_content_type(),
            "auto_submitted": msg["auto-submitted"],
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "tls": ssl_object is not None,
            "tls_version": ssl_object.version() if ssl_object is not None else None,
            "auth_login": session.auth_data if session.authenticated else None,
            # Which connection it came on (the client's port).
            "peer_port": session.peer[1],
        }
        base = os.path.join(self.out_dir, f"{self.count:04d}")
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        write_json(base + ".json", record)
        return "250 2.0.0 OK"


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode() == user and auth_data.password.decode() == password)
        # auth_data becomes session.auth_data: keep the login name for the record.
        if ok:
            return AuthResult(success=True, auth_data=auth_data.login.decode())
        # handled=False: aiosmtpd then answers 535 itself (with the default it stays silent).
        return AuthResult(success=False, handled=False)
    return authenticator


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--idle-timeout", type=float, default=300)
    p.add_argument("--connections")
    args = p.parse_args()

    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)

    handler = Sink(args.out, args.fail_first, args.connections)
    kwargs = {"hostname": "sink.test", "timeout": args.idle_timeout}
    if args.starttls:
        kwargs.update(tls_context=context, require_starttls=True)
    auth = os.environ.get("SMTP_SINK_AUTH")
    if auth:
        user, _, password = auth.partition(":")
        kwargs.update(authenticator=make_authenticator(user, password), auth_required=True,
                      # With implicit TLS aiosmtpd does not see a STARTTLS, but the link is TLS.
                      auth_require_tls=not args.implicit_tls)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: CountingSMTP(handler, **kwargs), args.host, args.port,
        ssl=context if args.implicit_tls else None)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)

    # Stop when the test closes our stdin (or dies).
    stdin_closed = loop.create_future()

    def watch_stdin():
        sys.stdin.read()
        loop.call_soon_threadsafe(stdin_closed.set_result, None)

    loop.run_in_executor(None, watch_stdin)
    await stdin_closed
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
