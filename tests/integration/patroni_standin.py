#!/usr/bin/python3
"""A stand-in for Patroni's REST API (port 8008) for loopback tests.

Answers 200 on /primary while the role file says "primary", 503 otherwise;
/replica the reverse; any method (GET/HEAD/OPTIONS). The role file can also
say "down" (connections are refused: the listener is closed) or "garbage"
(a reply that is not HTTP), or "hold" (the request is read and the reply
waits, at most 60 s, until the file says something else, which decides it:
a check that has not finished yet), or "linger" (answers as the primary, then
ignores `Connection: close`: keeps the connection open, at most 60 s, until
the client closes it).

It also records how each client left, which is what Patroni's log would show:
a clean FIN after the reply is fine, a reset (RST, or closing with our reply
unread) is what makes Patroni log tracebacks (patroni#2278). Counters are
written to <stats file> as JSON after every connection.

With a TIMELINE_FILE, GET /patroni answers like Patroni's status:
{"role": ROLE, "timeline": N, "patroni": {"version": "4.0.4"}} with N read
from that file (a number; "hold": the reply waits, at most 60 s, until the
file says something else; anything else, e.g. "garbage", is sent as the
whole body instead: a reply that is not JSON). Without one, every reply is
as before.

usage: patroni_standin.py PORT ROLE_FILE STATS_FILE [TIMELINE_FILE]
"""
import json
import os
import socket
import sys
import threading
import time

port, role_file, stats_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
timeline_file = sys.argv[4] if len(sys.argv) > 4 else None
stats = {"connections": 0, "requests": 0, "clean_close": 0, "reset": 0, "methods": {}}
lock = threading.Lock()


def role():
    try:
        with open(role_file) as f:
            return f.read().strip()
    except OSError:
        return "replica"


def timeline_text():
    try:
        with open(timeline_file) as f:
            return f.read().strip()
    except OSError:
        return ""


def held_while_hold(read, counter):
    """read()'s value; while it is "hold" (counted once in stats[counter]),
    the reply waits, at most 60 s, until it says something else."""
    value = read()
    if value == "hold":
        with lock:
            stats[counter] = stats.get(counter, 0) + 1
            save()
        give_up = time.monotonic() + 60
        while value == "hold" and time.monotonic() < give_up:
            threading.Event().wait(0.02)
            value = read()
    return value


def patroni_body(r):
    """GET /patroni's body with a timeline file; "hold" there holds the
    reply, at most 60 s, until the file says something else."""
    text = held_while_hold(timeline_text, "patroni_held")
    if not text.isdigit():
        return text.encode()
    return json.dumps({"role": r, "state": "running", "timeline": int(text),
                       "patroni": {"version": "4.0.4", "scope": "standin"}}).encode()


def save():
    tmp = stats_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(stats, f)
    os.replace(tmp, stats_file)


def handle(conn):
    conn.settimeout(5)
    outcome = "reset"
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        if b"\r\n\r\n" in data:
            line = data.split(b"\r\n", 1)[0].decode("latin1")
            method, path = (line.split(" ") + ["", ""])[:2]
            r = held_while_hold(role, "held")
            with lock:
                stats["requests"] += 1
                stats["methods"][method] = stats["methods"].get(method, 0) + 1
                save()
            lingering = r == "linger"
            if lingering:
                r = "primary"
            if r == "garbage":
                conn.sendall(b"this is not HTTP at all\r\n\r\n")
            else:
                want = "primary" if path.startswith("/primary") or path.startswith("/master") \
                    else "replica" if path.startswith("/replica") else None
                ok = want is None or r == want
                if timeline_file and path.split("?")[0] == "/patroni":
                    body = patroni_body(r)
                else:
                    body = json.dumps({"role": r, "state": "running"}).encode()
                status = b"200 OK" if ok else b"503 Service Unavailable"
                head = (b"HTTP/1.0 " + status + b"\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
                conn.sendall(head + (b"" if method == "HEAD" else body))
        # Like Patroni (BaseHTTPServer with HTTP/1.0): close our side after the
        # reply, then see how the client leaves.
        if b"\r\n\r\n" in data and lingering:
            conn.settimeout(60)
        else:
            conn.shutdown(socket.SHUT_WR)
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                outcome = "clean_close"
                break
    except (ConnectionResetError, BrokenPipeError):
        outcome = "reset"
    except socket.timeout:
        outcome = "timeout"
    finally:
        conn.close()
        with lock:
            stats["connections"] += 1
            stats[outcome] = stats.get(outcome, 0) + 1
            save()


def main():
    # The stats file appears once the stand-in listens (or, started "down",
    # once it has decided not to): lab.Standin waits for the file, and a
    # test that starts the daemon right after must not have its first check
    # refused by a stand-in that was not listening yet.
    listener = None
    saved = False
    while True:
        if role() == "down":
            if listener:
                listener.close()
                listener = None
            if not saved:
                save()
                saved = True
            threading.Event().wait(0.05)
            continue
        if listener is None:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(64)
            listener.settimeout(0.05)
            if not saved:
                save()
                saved = True
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
