#!/usr/bin/python3
"""A Director-like client for outage measurements: writes an increasing
counter through HOST:PORT (the VIP) every INTERVAL, reconnecting after any
error, and prints each outage (last good write -> next good write) and which
server answered. Run it inside the dirtoha namespace:

  scripts/lab exec dirtoha /usr/bin/python3 scripts/lab.d/writer.py --duration 30

Ends after --duration seconds or on SIGTERM/SIGINT, then prints one JSON line
{"writes":..., "errors":..., "outages":[{"start":..,"seconds":..,"from":..,"to":..}],
 "lost":[counter values whose commit was not confirmed], "error_kinds":{first line: count},
 "acked":[counter values whose INSERT was acknowledged], "t0": CLOCK_MONOTONIC at start,
 "t_end": seconds after t0 when it stopped, "acks_by_server": {server: [seconds after t0 of
 each acknowledged write it answered]}}.
Outage "start" is relative to t0 (seconds); "t0" lets a caller in another
process (same machine, same monotonic clock) place outages on its own timeline.
On stderr: "ready <server>" after the first acknowledged write, then a line per
first error and per outage end, each prefixed with the monotonic time.
"""
import argparse
import json
import signal
import sys
import time

import psycopg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="10.88.1.160")
    ap.add_argument("--port", type=int, default=5433)
    ap.add_argument("--password", default="password")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--table", default="lab_counter")
    a = ap.parse_args()

    stop = []
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.append(1))
    dsn = (f"host={a.host} port={a.port} user=postgres password={a.password} dbname=postgres "
           "connect_timeout=2 tcp_user_timeout=3000 keepalives=1 keepalives_idle=2 keepalives_interval=1 "
           "keepalives_count=2 application_name=lab-writer")
    t0 = time.monotonic()
    end = t0 + a.duration
    conn, server = None, None
    counter, writes, errors = 0, 0, 0
    last_ok, down_since, down_server = None, None, None
    outages, lost = [], []
    created = False
    kinds = {}
    acked = []
    acks_by_server = {}  # where each acknowledged write landed, and when (scripts/demo's picture)
    while time.monotonic() < end and not stop:
        try:
            if conn is None:
                conn = psycopg.connect(dsn, autocommit=True)
                server = conn.execute("select inet_server_addr()::text").fetchone()[0]
                if not created:
                    conn.execute(f"create table if not exists {a.table} (n bigint primary key, at timestamptz "
                                 "default now(), server inet default inet_server_addr())")
                    created = True
            counter += 1
            conn.execute(f"insert into {a.table} (n) values (%s) on conflict do nothing", (counter,))
            writes += 1
            acked.append(counter)
            now = time.monotonic()
            acks_by_server.setdefault(server, []).append(round(now - t0, 3))
            if writes == 1:
                print(f"{now:.3f} ready {server}", file=sys.stderr, flush=True)
            if down_since is not None:
                outages.append({"start": round(down_since - t0, 3), "seconds": round(now - down_since, 3),
                                "from": down_server, "to": server})
                print(f"{now:.3f} outage {now - down_since:.3f}s ({down_server} -> {server})", file=sys.stderr,
                      flush=True)
                down_since = None
            last_ok = now
        except psycopg.Error as e:
            errors += 1
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
            kinds[msg] = kinds.get(msg, 0) + 1
            if counter and (not lost or lost[-1] != counter):
                lost.append(counter)  # commit not confirmed (may or may not be in the table)
            if down_since is None:
                down_since = last_ok if last_ok is not None else time.monotonic()
                down_server = server
                print(f"{time.monotonic():.3f} error at +{time.monotonic() - t0:.3f}s: {msg}", file=sys.stderr,
                      flush=True)
            try:
                if conn is not None:
                    conn.close()
            except psycopg.Error:
                pass
            conn = None
        time.sleep(a.interval)
    if down_since is not None:
        outages.append({"start": round(down_since - t0, 3), "seconds": None, "from": down_server, "to": None})
    print(json.dumps({"writes": writes, "errors": errors, "outages": outages, "lost": lost, "error_kinds": kinds,
                      "last_server": server, "acked": acked, "t0": t0, "t_end": round(time.monotonic() - t0, 3),
                      "acks_by_server": acks_by_server}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
