#!/usr/bin/env python3
"""A real SMTP server for tests: accepts every message and stores it in a folder.

    python3 smtp_sink.py --dir DIR [--host 127.0.0.1] [--port 0]

Prints `LISTENING <host> <port>` on stdout once it accepts connections (port 0 = a free port the
OS picks, so callers never race for one). Each message becomes, in arrival order:
  DIR/000001.eml   the bytes received after DATA
  DIR/000001.json  {"seq", "mail_from", "rcpt_tos", "headers": [[name, value], ...], "subject",
                    "text", "html"} with headers decoded and the text/plain and text/html parts
                    decoded (null when absent)
The .json file is written last and atomically (rename), so its presence means the message is
complete. Exits when its stdin reaches end of file (the test process died) or on SIGTERM/SIGINT.
Needs aiosmtpd (PyPI); `bash tests/run` installs it.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import sys
import threading

try:
    from aiosmtpd.smtp import SMTP
except ImportError:  # pragma: no cover - reported to the harness
    sys.stderr.write("smtp_sink.py: python module aiosmtpd is missing: run `bash tests/run` "
                     "(or `python3 -m pip install aiosmtpd`)\n")
    sys.exit(3)


def part_text(msg, subtype):
    part = msg.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.seq = 0

    async def handle_DATA(self, server, session, envelope):
        self.seq += 1
        name = os.path.join(self.folder, "%06d" % self.seq)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        with open(name + ".eml", "wb") as f:
            f.write(raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        record = {
            "seq": self.seq,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "headers": [[k, str(v)] for k, v in msg.items()],
            "subject": str(msg.get("subject", "")),
            "text": part_text(msg, "plain"),
            "html": part_text(msg, "html"),
        }
        with open(name + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False, indent=1)
        os.replace(name + ".json.tmp", name + ".json")
        return "250 OK"


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    loop = asyncio.get_running_loop()
    handler = Sink(args.dir)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp-sink.test", enable_SMTPUTF8=True),
        host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("LISTENING %s %d" % (args.host, port), flush=True)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
