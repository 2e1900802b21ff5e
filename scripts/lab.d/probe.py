#!/usr/bin/python3
"""An idle "old session" (like a Director's long-lived catalog connection):
connects through HOST:PORT (the VIP), then sits idle and notices at once if
the proxy closes it (the socket turns readable: FIN or RST). When a line
arrives on stdin (the caller's "the fault is over"), it runs one INSERT on the
same session and prints one JSON line:

  {"server": first server, "cut_at": CLOCK_MONOTONIC when the idle session was
   closed under it or null, "result": "ok" | "read-only" | "connection" | "other",
   "error": first line of the error, "elapsed": seconds the INSERT took}

"read-only" means the session was left on the demoted primary; "connection"
means it had been cut (the right outcome after a switchover). Run inside the
dirtoha namespace (scripts/lab exec dirtoha /usr/bin/python3 .../probe.py).
"""
import argparse
import json
import select
import sys
import time

import psycopg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="10.88.1.160")
    ap.add_argument("--port", type=int, default=5433)
    ap.add_argument("--password", default="password")
    a = ap.parse_args()
    dsn = (f"host={a.host} port={a.port} user=postgres password={a.password} dbname=postgres "
           "connect_timeout=2 tcp_user_timeout=3000 keepalives=1 keepalives_idle=2 keepalives_interval=1 "
           "keepalives_count=2 application_name=lab-probe")
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("create table if not exists lab_probe (at timestamptz default now(), server inet "
                 "default inet_server_addr())")
    server = conn.execute("select inet_server_addr()::text").fetchone()[0]
    print(f"{time.monotonic():.3f} ready {server}", file=sys.stderr, flush=True)
    cut_at = None
    fd = conn.fileno()
    while True:
        r, _, _ = select.select([sys.stdin, fd] if cut_at is None else [sys.stdin], [], [], 1.0)
        if fd in r and cut_at is None:
            cut_at = time.monotonic()
            print(f"{cut_at:.3f} idle session closed under us", file=sys.stderr, flush=True)
        if sys.stdin in r:
            sys.stdin.readline()
            break
    t = time.monotonic()
    result, error = "ok", None
    try:
        conn.execute("insert into lab_probe default values")
    except psycopg.errors.ReadOnlySqlTransaction as e:
        result, error = "read-only", str(e).strip().splitlines()[0]
    except psycopg.OperationalError as e:
        result, error = "connection", (str(e).strip().splitlines() or ["connection lost"])[0]
    except psycopg.Error as e:
        result, error = "other", (str(e).strip().splitlines() or [type(e).__name__])[0]
    print(json.dumps({"server": server, "cut_at": cut_at, "result": result, "error": error,
                      "elapsed": round(time.monotonic() - t, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
