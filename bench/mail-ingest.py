#!/usr/bin/env python3
"""Mail ingest benchmark: messages per second through `tend mail-gateway` (one process per
message, as an MTA pipe runs it, writing to the database itself or handing the message to
`tend serve` with --url), through `POST /api/v1/mail/inbound/support`, and, when
the test mail servers of scripts/ensure-mailserver.sh run, through IMAP with
`tend mail poll --once`. SQLite, and PostgreSQL with --postgres.

The messages are a realistic mix built from scratch, each with its own Message-ID and
sender so that neither de-duplication nor the per-sender rate limit skips work:

- 60 % short plain-text requests (0.5 to 3 KB);
- 15 % HTML with a plain-text part and an inline logo (about 20 KB);
- 15 % with one attachment of 50 to 300 KB (a log or a screenshot);
- 7 % replies that thread into an earlier record by its subject tag;
- 3 % with a 2 MB attachment.

Usage (release build):

    bench/mail-ingest.py --tend target/release/tend --messages 2000 [--concurrency 4]
        [--postgres postgres://postgres@127.0.0.1:5432] [--write bench/mail-results.md]

Everything runs on 127.0.0.1; the servers it starts are stopped at the end.
"""

import argparse
import base64
import concurrent.futures
import http.client
import imaplib
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_messages(count, seed, run):
    """Returns `count` raw messages (bytes) and the share of each kind."""
    rng = random.Random(seed)
    words = ("printer vpn laptop password outlook screen network slow error login "
             "share drive update backup access server phone monitor keyboard meeting").split()
    logo = base64.encodebytes(os.urandom(15_000)).decode()
    kinds = []
    messages = []
    for index in range(count):
        roll = rng.random()
        sender = f"user{index}-{run}@example.org"
        subject = " ".join(rng.choice(words) for _ in range(6)).capitalize()
        message_id = f"<bench-{run}-{index}@mail.example.org>"
        text = "\r\n".join(
            " ".join(rng.choice(words) for _ in range(12)) for _ in range(rng.randint(5, 40))
        )
        head = (f"From: User {index} <{sender}>\r\nTo: support@example.com\r\n"
                f"Date: Fri, 04 Dec 2026 09:00:00 +0000\r\nMessage-ID: {message_id}\r\n"
                "MIME-Version: 1.0\r\n")
        if roll < 0.60:
            kinds.append("plain")
            body = (f"Subject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                    f"{text}\r\n")
        elif roll < 0.75:
            kinds.append("html")
            html = "".join(f"<p>{line}</p>" for line in text.split("\r\n"))
            body = (f"Subject: {subject}\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
                    f"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
                    "--alt\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n"
                    f"--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>{html}"
                    "<img src=\"cid:logo@bench\"></body></html>\r\n"
                    "--rel\r\nContent-Type: image/png\r\nContent-ID: <logo@bench>\r\n"
                    "Content-Disposition: inline; filename=\"logo.png\"\r\n"
                    f"Content-Transfer-Encoding: base64\r\n\r\n{logo}--rel--\r\n--alt--\r\n")
        elif roll < 0.90 or roll >= 0.97:
            large = roll >= 0.97
            kinds.append("large attachment" if large else "attachment")
            size = 2_000_000 if large else rng.randint(50_000, 300_000)
            data = base64.encodebytes(os.urandom(size)).decode()
            body = (f"Subject: {subject}\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n"
                    f"--mix\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
                    "--mix\r\nContent-Type: application/octet-stream; name=\"trace.bin\"\r\n"
                    "Content-Disposition: attachment; filename=\"trace.bin\"\r\n"
                    f"Content-Transfer-Encoding: base64\r\n\r\n{data}--mix--\r\n")
        else:
            kinds.append("reply")
            # Replies name the first record (INC0000001), which the first message opens;
            # the sender is a stranger to it, so each reply opens a linked record.
            body = (f"Subject: Re: [INC0000001] {subject}\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                    f"Any news?\r\n\r\n> {text[:200]}\r\n")
        messages.append((head + body).encode())
    # The first message must open INC0000001 for the replies.
    if kinds[0] == "reply":
        kinds[0] = "plain"
        messages[0] = messages[0].replace(b"Re: [INC0000001] ", b"")
    return messages, kinds


def wait_for_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_gateway(tend, store_args, messages, concurrency, env=None):
    def deliver(raw):
        done = subprocess.run(
            [tend, "mail-gateway", "--mailbox", "support", "--definitions", REPO, *store_args],
            input=raw, capture_output=True, check=False, env=env)
        return done.returncode, done.stderr.decode(errors="replace")

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(deliver, messages))
    elapsed = time.perf_counter() - start
    failed = [(code, err) for code, err in results if code != 0]
    if failed:
        print(f"gateway: {len(failed)} deliveries failed, first: {failed[0]}", file=sys.stderr)
    return elapsed, len(failed)


def run_http(port, token, messages, concurrency):
    def deliver(raw):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("POST", "/api/v1/mail/inbound/support", body=raw, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"})
        status = connection.getresponse().status
        connection.close()
        return status

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(deliver, messages))
    elapsed = time.perf_counter() - start
    failed = [status for status in statuses if status not in (200, 201)]
    if failed:
        print(f"http: {len(failed)} deliveries failed, first status {failed[0]}", file=sys.stderr)
    return elapsed, len(failed)


def imap_settings():
    port = int(os.environ.get("TEND_TEST_IMAP_PORT", "1143"))
    password = os.environ.get("TEND_TEST_MAIL_PASSWORD")
    if not password:
        return None
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return None
    return port, password


def run_imap(tend, store_args, definitions, messages, port, password, user):
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.starttls(ssl_context=ssl._create_unverified_context())  # our own test server
    imap.login(user, password)
    for raw in messages:
        imap.append("INBOX", None, None, raw)
    imap.logout()
    start = time.perf_counter()
    done = subprocess.run(
        [tend, "mail", "poll", "--mailbox", "support", "--once", "--definitions", definitions,
         *store_args], capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(f"imap: poll failed: {done.stderr.decode(errors='replace')}", file=sys.stderr)
        return elapsed, len(messages)
    return elapsed, 0


def imap_definitions(work, port, user):
    """Copies the definitions and points their support mailbox at the bench user's IMAP box."""
    target = os.path.join(work, "definitions")
    for name in ("workflows", "rules", "plugins"):
        source = os.path.join(REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, name))
    path = os.path.join(target, "workflows", "mailboxes", "support.yaml")
    with open(path, "a", encoding="utf-8") as mailbox:
        ca = os.environ.get("TEND_TEST_MAIL_CA", "")
        mailbox.write(
            f"\nimap:\n  host: 127.0.0.1\n  port: {port}\n  security: starttls\n"
            f"  username: {user}\n  password_env: TEND_BENCH_IMAP_PASSWORD\n"
            + (f"  ca_file: {ca}\n" if ca else "")
            + "  processed: { move_to: Processed }\n")
    return target


def backend(name, tend, store_args, args, work):
    gateway_messages, kinds = build_messages(args.messages, 1, f"{name}-gw")
    total_bytes = sum(len(raw) for raw in gateway_messages)
    gateway_time, gateway_failed = run_gateway(tend, store_args, gateway_messages, args.concurrency)

    port = free_port()
    log = open(os.path.join(work, f"{name}-serve.log"), "wb")
    server = subprocess.Popen(
        [tend, "serve", "--listen", f"127.0.0.1:{port}", "--definitions", REPO, *store_args],
        stdout=log, stderr=log)
    try:
        wait_for_port(port)
        subprocess.run([tend, "user", "add", "mta", "--role", "mail_gateway", "--password-stdin",
                        *store_args], input=b"bench password\n", check=True, capture_output=True)
        token = subprocess.run([tend, "token", "create", "mta", *store_args], check=True,
                               capture_output=True).stdout.decode().strip()
        relay_messages, _ = build_messages(args.messages, 4, f"{name}-relay")
        env = dict(os.environ, TEND_MAIL_TOKEN=token)
        relay_time, relay_failed = run_gateway(
            tend, ["--url", f"http://127.0.0.1:{port}"], relay_messages, args.concurrency * 2,
            env)
        http_messages, _ = build_messages(args.messages, 2, f"{name}-http")
        http_time, http_failed = run_http(port, token, http_messages, args.concurrency * 2)
    finally:
        server.terminate()
        server.wait()
    rows = [(name, "gateway, database mode (a process per message)", args.concurrency,
             args.messages, gateway_time, gateway_failed),
            (name, "gateway, `--url` mode (a process per message, to `tend serve`)",
             args.concurrency * 2, args.messages, relay_time, relay_failed),
            (name, "HTTP endpoint", args.concurrency * 2, args.messages, http_time, http_failed)]

    imap = imap_settings()
    if imap:
        port, password = imap
        user = f"bench-{name}-{os.getpid()}@example.com"
        definitions = imap_definitions(work, port, user)
        os.environ["TEND_BENCH_IMAP_PASSWORD"] = password
        imap_messages, _ = build_messages(args.messages, 3, f"{name}-imap")
        imap_time, imap_failed = run_imap(tend, store_args, definitions, imap_messages, port,
                                          password, user)
        rows.append((name, "IMAP (`tend mail poll --once`)", 1, args.messages, imap_time,
                     imap_failed))
    else:
        print("IMAP skipped: run scripts/ensure-mailserver.sh and export its variables",
              file=sys.stderr)
    for row in rows:
        # Each row as soon as it is measured, so a run cut short still reports.
        print("measured: " + " | ".join(str(value) for value in row), file=sys.stderr, flush=True)
    return rows, kinds, total_bytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tend", required=True)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--postgres", help="server URL without a database name")
    parser.add_argument("--write", help="write the results as Markdown to this file")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tend-mail-bench-")
    rows = []
    try:
        result, kinds, total_bytes = backend(
            "SQLite", args.tend, ["--data-dir", os.path.join(work, "sqlite")], args, work)
        rows += result
        if args.postgres:
            database = f"tend_mail_bench_{os.getpid()}"
            subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c",
                            f"CREATE DATABASE {database}"], check=True)
            try:
                result, _, _ = backend("PostgreSQL", args.tend,
                                       ["--database-url", f"{args.postgres}/{database}"], args, work)
                rows += result
            finally:
                subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test",
                                "-c", f"DROP DATABASE {database}"], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mix = {kind: kinds.count(kind) for kind in sorted(set(kinds))}
    lines = [
        "## Mail ingest",
        "",
        f"`bench/mail-ingest.py --messages {args.messages} --concurrency {args.concurrency}`, "
        f"release build, 2 cores. Each path takes {args.messages} new messages "
        f"({total_bytes / 1e6:.0f} MB for the SQLite gateway run; mix: "
        + ", ".join(f"{count} {kind}" for kind, count in mix.items())
        + "). Every message is stored raw, parsed, de-duplicated and turned into a record "
        "or a comment with the shipped rules.",
        "",
        "| Store | Path | Concurrency | Messages | Seconds | Messages/s | Failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for store, path, concurrency, count, seconds, failed in rows:
        lines.append(f"| {store} | {path} | {concurrency} | {count} | {seconds:.1f} | "
                     f"{count / seconds:.0f} | {failed} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as out:
            out.write(text)


if __name__ == "__main__":
    main()
