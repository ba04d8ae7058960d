"""A real SMTP server for Fleet's tests, on aiosmtpd: STARTTLS (required before AUTH and MAIL)
with a self-signed certificate made at start, AUTH PLAIN/LOGIN (required), every accepted
message recorded, and faults scripted by the recipient's local part.

    python server.py PORT STATE_DIR      (PORT 0: any free port)

Environment: SMTP_USER, SMTP_PASSWORD (the one account it accepts).

Writes into STATE_DIR:
- cert.pem: the certificate (for 127.0.0.1, ::1 and localhost), to trust as a root CA;
- dropped.jsonl: one JSON line per connection dropped mid-DATA: at, to;
- accepted.jsonl: one JSON line per accepted message: at (epoch seconds), from, to, event_id
  (the X-Fleet-Event-Id header), message_id, subject, has_html, queue_id;
- ready: the port it listens on, once it listens.

Faults, by recipient local part, counted per recipient address across connections:
- fault-421-N+x@...   the first N DATA attempts get 421, and the connection is closed;
- fault-451-N+x@...   the first N DATA attempts get 451;
- fault-drop-N+x@...  the first N attempts have the connection closed with no reply at RCPT,
                      before the message is sent (a drop after the final dot is RFC 1047's
                      window: the client cannot know whether the message was taken);
- fault-stall-N+x@... the first N DATA attempts wait 10 s before answering (then accept,
                      unless the client has gone);
- fault-middata-N+x@... the first N DATA attempts have the connection closed after part of the
                      body arrived, before the final dot (so before any reply): nothing was
                      taken, and the client sees its connection fail mid-send; each drop is a
                      line of dropped.jsonl;
- fault-550+x@...     RCPT always gets `550 5.1.1 <address>: Recipient address rejected`.

It runs until killed, and exits by itself when its parent process goes away.
"""

import asyncio
import datetime
import email
import email.policy
import ipaddress
import json
import logging
import os
import re
import secrets
import ssl
import sys
import time
from pathlib import Path

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    print(
        "aiosmtpd not found: run ./scripts/test, which installs it into .venv",
        file=sys.stderr,
    )
    sys.exit(3)

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

STALL_SECONDS = 10.0
COUNTED = re.compile(r"^fault-(421|451|drop|stall|middata)-(\d+)\+", re.IGNORECASE)
# Body lines a mid-DATA drop reads before closing: the headers' first lines, never the final dot.
MID_DATA_LINES = 3
REJECTED = re.compile(r"^fault-550\+", re.IGNORECASE)


def make_certificate(state: Path) -> ssl.SSLContext:
    """A self-signed certificate for this host; cert.pem is what clients trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = state / "cert.pem"
    key_path = state / "key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tmp = state / "cert.pem.tmp"
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp.rename(cert_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


class Authenticator:
    """Accepts the one account of SMTP_USER / SMTP_PASSWORD."""

    def __init__(self, user: str, password: str):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


class Handler:
    """Records accepted messages and plays the scripted faults."""

    def __init__(self, state: Path):
        self.accepted = state / "accepted.jsonl"
        self.dropped = state / "dropped.jsonl"
        self.attempts = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if REJECTED.match(local):
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        match = COUNTED.match(local)
        if match and match.group(1).lower() == "drop":
            key = address.lower()
            self.attempts[key] = self.attempts.get(key, 0) + 1
            if self.attempts[key] <= int(match.group(2)):
                server.transport.abort()
                await asyncio.sleep(3600)  # cancelled when the connection is lost
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            match = COUNTED.match(rcpt.split("@", 1)[0])
            if not match or match.group(1).lower() in ("drop", "middata"):
                continue
            key = rcpt.lower()
            self.attempts[key] = self.attempts.get(key, 0) + 1
            if self.attempts[key] > int(match.group(2)):
                continue
            fault = match.group(1).lower()
            if fault == "421":
                await server.push("421 4.3.2 Service shutting down, closing channel")
                server.transport.close()
                await asyncio.sleep(3600)  # cancelled when the connection is lost
            if fault == "451":
                return "451 4.3.0 Error: queue file write error, try again later"
            if fault == "stall":
                await asyncio.sleep(STALL_SECONDS)
        return self.record(envelope)

    def drop_mid_data(self, envelope) -> bool:
        """Whether this DATA attempt is one a fault-middata recipient has dropped (counted)."""
        drop = False
        for rcpt in envelope.rcpt_tos:
            match = COUNTED.match(rcpt.split("@", 1)[0])
            if not match or match.group(1).lower() != "middata":
                continue
            key = rcpt.lower()
            self.attempts[key] = self.attempts.get(key, 0) + 1
            drop = drop or self.attempts[key] <= int(match.group(2))
        return drop

    def record_drop(self, envelope):
        line = {"at": time.time(), "to": list(envelope.rcpt_tos)}
        with self.dropped.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()

    def record(self, envelope) -> str:
        message = email.message_from_bytes(
            envelope.original_content, policy=email.policy.default
        )
        queue_id = secrets.token_hex(5).upper()
        line = {
            "at": time.time(),
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "event_id": str(message.get("X-Fleet-Event-Id", "")).strip() or None,
            "message_id": str(message.get("Message-ID", "")).strip() or None,
            "subject": str(message.get("Subject", "")),
            "has_html": any(
                part.get_content_type() == "text/html" for part in message.walk()
            ),
            "queue_id": queue_id,
        }
        with self.accepted.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
            f.flush()
        return f"250 2.0.0 Ok: queued as {queue_id}"


class FaultySMTP(SMTP):
    """aiosmtpd's server, with the one fault its handler hooks cannot play: a connection
    dropped mid-DATA (handle_DATA runs only once the final dot has arrived)."""

    async def smtp_DATA(self, arg: str) -> None:
        envelope = self.envelope
        ready = (
            envelope is not None
            and envelope.rcpt_tos
            and not arg
            and self.session is not None
            and self.session.host_name
            and self.session.authenticated
        )
        if not ready or not self.event_handler.drop_mid_data(envelope):
            return await super().smtp_DATA(arg)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        for _ in range(MID_DATA_LINES):
            line = await self._reader.readuntil(b"\r\n")
            if line == b".\r\n":
                break
        self.event_handler.record_drop(envelope)
        self.transport.abort()
        await asyncio.sleep(3600)  # cancelled when the connection is lost


async def watch_parent():
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    os._exit(0)


async def main(port: int, state: Path):
    # aiosmtpd warns on every successful AUTH that Session.login_data is deprecated.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    state.mkdir(parents=True, exist_ok=True)
    tls = make_certificate(state)
    handler = Handler(state)
    authenticator = Authenticator(
        os.environ.get("SMTP_USER", "fleet"), os.environ.get("SMTP_PASSWORD", "")
    )
    loop = asyncio.get_running_loop()

    def protocol():
        return FaultySMTP(
            handler,
            hostname="localhost",
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticator,
            loop=loop,
        )

    server = await loop.create_server(protocol, host="127.0.0.1", port=port)
    bound = server.sockets[0].getsockname()[1]
    tmp = state / "ready.tmp"
    tmp.write_text(str(bound))
    tmp.rename(state / "ready")
    asyncio.ensure_future(watch_parent())
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
