#!/usr/bin/python3
"""Loopback demo: vipproxy in front of a PostgreSQL primary and replica.

1. start node1 (primary) and node2 (streaming replica, pg_basebackup),
   a Patroni REST stand-in for each, and vipproxy on 127.0.0.1:<port>;
2. a client writes an increasing counter through vipproxy (~20/s);
3. switchover: node2 is promoted, the REST stand-ins flip, vipproxy cuts the
   sessions to node1 and sends the client to node2;
4. prints the timeline and what the client saw, then stops everything.
"""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import lab as L  # noqa: E402

T0 = time.monotonic()


def say(msg):
    print(f"  {time.monotonic() - T0:7.2f}s  {msg}", flush=True)


def main():
    lab = L.Lab("vipproxy-demo")
    try:
        say("starting PostgreSQL 15: node1 primary, node2 streaming replica")
        n1, n2 = L.pg_pair(lab)
        r1, r2 = L.Standin(lab, "node1", "primary"), L.Standin(lab, "node2", "replica")
        port, admin = L.free_port(), L.free_port()
        vp = L.Vipproxy(lab, L.proxy_yaml("postgres", port, [("node1", n1.port), ("node2", n2.port)],
                                          [r1.port, r2.port], admin, interval="500ms", rise=2, fall=2))
        L.wait_until(lambda: vp.status(admin)["proxies"][0]["current_backend"] == "node1", 20, "first checks")
        say(f"vipproxy listening on 127.0.0.1:{port}, sending sessions to node1 (port {n1.port})")
        n1.psql("create table counter (n bigint primary key, at timestamptz default now())")

        events, acked, stop = [], [], threading.Event()

        def writer():
            # One long-lived session, like the Bacula Director; reconnect on error.
            n, proc = 0, None
            while not stop.is_set():
                if proc is None:
                    proc = subprocess.Popen([f"{L.PGBIN}/psql", "-X", "-q", "-At", "-h", "127.0.0.1", "-p", str(port),
                                             "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True, bufsize=1)
                    events.append((time.monotonic(), "client connected"))
                n += 1
                try:
                    proc.stdin.write(f"insert into counter(n) values ({n}) returning n, inet_server_port();\n")
                    proc.stdin.flush()
                    line = proc.stdout.readline()
                    if not line or "|" not in line:
                        raise BrokenPipeError(line.strip())
                    acked.append((time.monotonic(), n, int(line.split("|")[1])))
                except (BrokenPipeError, OSError) as e:
                    events.append((time.monotonic(), f"client session ended: {str(e) or 'connection closed'}"))
                    proc.kill()
                    proc.wait()
                    proc = None
                    time.sleep(0.05)
                    continue
                time.sleep(0.05)
            if proc:
                proc.stdin.close()
                proc.wait()

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(3)
        say(f"client has written {len(acked)} rows through vipproxy, all on port {acked[-1][2]}")

        # As Patroni does it: the old primary stops being primary first (its
        # REST answer turns 503, vipproxy cuts its sessions and new ones wait),
        # the replica catches up, then it is promoted and answers 200.
        say("switchover: node1 steps down (its REST endpoint answers 503)")
        flip = time.monotonic()
        r1.set_role("replica")
        L.wait_until(lambda: vp.status(admin)["proxies"][0]["current_backend"] is None, 10, "node1 out")
        n1.psql("select pg_switch_wal()")
        lsn = n1.psql("select pg_current_wal_lsn()")
        L.wait_until(lambda: n2.psql(f"select pg_last_wal_replay_lsn() >= '{lsn}'") == "t", 30, "replica caught up")
        say("node2 has replayed everything; promoting it, its REST endpoint answers 200")
        n2.promote()
        r2.set_role("primary")
        L.wait_until(lambda: acked and acked[-1][2] == n2.port, 30, "the client on node2")
        time.sleep(3)
        stop.set()
        t.join()

        before = [a for a in acked if a[0] < flip]
        after = [a for a in acked if a[2] == n2.port]
        gap_start = before[-1][0] if before else flip
        outage = after[0][0] - gap_start if after else float("nan")
        for when, what in events:
            say(f"(t={when - T0:.2f}s) {what}")
        rows = int(n2.psql("select count(*) from counter"))
        print()
        print("  scenario           client-visible outage   writes acked   rows on new primary   old session cut")
        cut = any("ended" in e[1] for e in events if e[0] >= flip)
        print(f"  switchover         {outage:8.2f} s              {len(acked):6d}         {rows:6d}               "
              f"{'yes' if cut else 'no'}")
        st = vp.status(admin)["proxies"][0]
        print(f"\n  vipproxy: current backend {st['current_backend']}, sessions cut on down "
              f"{st['counters']['sessions_cut_on_down']}, sessions total {st['counters']['sessions_total']}")
        present = set(int(x) for x in n2.psql("select n from counter").split())
        missing = sum(1 for a in acked if a[1] not in present)
        say(f"done: {missing} acknowledged writes missing (asynchronous replication may lose the last ones)")
    finally:
        lab.close()
        say("stopped everything")


if __name__ == "__main__":
    main()
