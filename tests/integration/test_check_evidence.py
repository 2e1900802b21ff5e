#!/usr/bin/python3
"""Failed connects to a backend speed its check up; they do not storm
Patroni's REST API. On loopback with a Patroni REST stand-in and the built
daemon.

The backend's check passes (Patroni says primary) while its own port refuses
connections (PostgreSQL not listening there: a wrong listen_addresses, a
firewall on 5432 alone). 20 clients wait for it, each retrying its connect
every 200 ms until queue_timeout (3 s), and every refused connect asks for a
check "now" (health/checker.h, check_soon). Asserted: over those 3 s the
stand-in sees a handful of checks (one at once, then at most one per
fast_interval, 1 s here), not one per refused connect; the backend stays
eligible, and the log says, once the refusals have lasted 2 s (then at most
every 10 s), that it passes its check while its connects are refused; a
moment of refusals (one client, 2 connects) says nothing.

Before, each refused connect ran a check at once whenever none was in flight:
checks back to back for as long as clients kept trying, 50 GET /primary in
3 s against this stand-in (320 refused connects), more against a faster
REST API; Patroni runs an SQL query for each. And nothing in the log at the
default level said why every client waited and was closed (a debug line per
refused connect, the connect_errors counter).
"""
import os
import signal
import socket
import struct
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402

CLIENTS = 20


class CheckEvidence(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-check-evidence")
        self.addCleanup(self.lab.close)
        self.a = L.Standin(self.lab, "a", role="primary")
        self.listen, self.admin = L.free_port(), L.free_port()
        refused = L.free_port()  # nobody listens there
        yaml = L.proxy_yaml("pg", self.listen, [("a", refused)], [self.a.port], self.admin,
                            extra="queue_timeout: 3s", interval="30s", rise=2, fall=3)
        # proxy_yaml sets fast_interval to the interval; 1 s here.
        yaml = yaml.replace("fast_interval: 30s", "fast_interval: 1s")
        self.vp = L.Vipproxy(self.lab, yaml, name="vp")
        L.wait_until(lambda: self.proxy()["backends"][0]["eligible"], 20, "a eligible")

    def proxy(self):
        return L.status(self.admin)["proxies"][0]

    def warnings(self):
        return [line for line in self.vp.log(2000).splitlines() if "its connects fail" in line]

    def test_refused_connects_do_not_storm_the_check(self):
        # A moment of refused connects (what a switchover's old primary does
        # until its check takes it out) is not worth a warning.
        with socket.create_connection(("127.0.0.1", self.listen), timeout=5) as c:
            L.wait_until(lambda: self.proxy()["counters"]["connect_errors"] >= 2, 5, "refused connects")
            # Reset, not FIN: a waiting client's FIN is kept for the backend
            # (HAProxy without abortonclose does the same), so it would wait on.
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        L.wait_until(lambda: self.proxy()["sessions_current"] == 0, 5, "the client gone")
        self.assertEqual(self.warnings(), [])

        before = self.a.stats()["requests"]

        def client():
            try:
                with socket.create_connection(("127.0.0.1", self.listen), timeout=5) as c:
                    c.settimeout(10)
                    c.recv(1)  # closed at queue_timeout
            except OSError:
                pass

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        L.wait_until(lambda: self.proxy()["sessions_current"] == 0, 10, "sessions closed")
        p = self.proxy()
        refused = p["counters"]["connect_errors"]
        checks = self.a.stats()["requests"] - before
        L.log(f"{refused} refused connects, {checks} checks meanwhile")
        self.assertGreaterEqual(refused, CLIENTS * 5, "the clients retried their connects")
        self.assertGreaterEqual(checks, 1, "the refused connects brought a check forward (interval 30 s)")
        # 3 s at most one per fast_interval (1 s), plus the one at once and slack.
        self.assertLessEqual(checks, 8, "a check per refused connect")
        self.assertTrue(p["backends"][0]["eligible"], "Patroni still says primary")
        self.assertTrue(self.vp.alive())
        # The backend stays eligible (Patroni says primary, no other node
        # does), but the operator is told, once per 10 s with a count; before,
        # only a debug line and the connect_errors counter said so.
        warned = self.warnings()
        L.log(f"warnings: {warned}")
        self.assertTrue(warned, "no warning that the backend refuses connections")
        self.assertIn("backend a (127.0.0.1:", warned[0])
        self.assertIn("connection refused", warned[0])
        self.assertLessEqual(len(warned), 2, "one warning per refused connect")


class ConnectFailureRecords(unittest.TestCase):
    """The daemon keeps a record of failed connects per "proxy/backend" name
    (for the warning above). A reload that renames or removes a backend
    drops that name's record: before, every name ever configured stayed for
    the process's life (and a name configured again later started from the
    old record). The debug log of the reload says what was dropped."""

    def setUp(self):
        self.lab = L.Lab("vipproxy-connect-records")
        self.addCleanup(self.lab.close)
        self.a = L.Standin(self.lab, "a", role="primary")
        self.listen, self.admin = L.free_port(), L.free_port()
        self.refused = L.free_port()  # nobody listens there
        self.vp = L.Vipproxy(self.lab, self.yaml("a"), name="vp")
        L.wait_until(lambda: self.proxy()["backends"][0]["eligible"], 20, "a eligible")

    def yaml(self, backend):
        return "log_level: debug\n" + L.proxy_yaml("pg", self.listen, [(backend, self.refused)], [self.a.port],
                                                   self.admin, extra="queue_timeout: 1s", interval="30s")

    def proxy(self):
        return L.status(self.admin)["proxies"][0]

    def reload(self, yaml):
        applied = L.status(self.admin)["reloads"]["applied"]
        with open(self.vp.config, "w") as f:
            f.write(yaml)
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"]["applied"] > applied, 20, "the reload applied")

    def dropped(self):
        return [line for line in self.vp.log(4000).splitlines() if "failed-connect records" in line]

    def test_a_renamed_backend_leaves_no_record(self):
        # A refused connect to a backend that passes its check: a record for pg/a.
        with socket.create_connection(("127.0.0.1", self.listen), timeout=5) as c:
            L.wait_until(lambda: self.proxy()["counters"]["connect_errors"] >= 1, 5, "a refused connect")
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        L.wait_until(lambda: self.proxy()["sessions_current"] == 0, 5, "the client gone")
        # The same node, renamed: pg/a is no longer configured.
        self.reload(self.yaml("b"))
        L.wait_until(lambda: self.dropped(), 5, "the reload's debug line about the dropped records")
        line = self.dropped()[0]
        L.log(line)
        self.assertIn("of 1 backend(s) no longer configured dropped (pg/a); 0 kept", line)
        self.assertTrue(self.vp.alive())


class PatroniVersionRecords(unittest.TestCase):
    """The daemon reads each backend's Patroni version (GET /patroni on its
    check port) and keeps a record per URL. A reload that removes the
    backend (or moves its check) drops that URL's record and cancels its
    request: before, every URL ever configured stayed for the process's
    life, with its request. Here the Patroni of the removed backend answers,
    then keeps the connection open (it ignores `Connection: close`), with a
    check timeout of 30 s: the old daemon held that connection until then."""

    def setUp(self):
        self.lab = L.Lab("vipproxy-patroni-records")
        self.addCleanup(self.lab.close)
        self.a = L.Standin(self.lab, "a", role="linger")
        self.b = L.Standin(self.lab, "b", role="primary")
        self.echo_port = L.free_port()
        self.lab.spawn("echo", [L.PY, os.path.join(L.HERE, "echo_server.py"), str(self.echo_port)])
        self.listen, self.admin = L.free_port(), L.free_port()
        self.vp = L.Vipproxy(self.lab, self.yaml("a", self.a), name="vp")
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"] == "a", 20, "a eligible")

    def yaml(self, backend, standin):
        return "log_level: debug\nhard_stop_after: 0s\n" + L.proxy_yaml(
            "pg", self.listen, [(backend, self.echo_port)], [standin.port], self.admin, interval="30s",
            check_timeout="30s")

    def reload(self, yaml):
        applied = L.status(self.admin)["reloads"]["applied"]
        with open(self.vp.config, "w") as f:
            f.write(yaml)
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"]["applied"] > applied, 20, "the reload applied")

    def dropped(self):
        return [line for line in self.vp.log(4000).splitlines() if "Patroni version records" in line]

    def test_a_removed_backend_leaves_no_record_nor_request(self):
        # The check and GET /patroni answered; a keeps both connections open.
        L.wait_until(lambda: self.a.stats()["requests"] >= 2, 10, "a's check and version read answered")
        L.wait_until(lambda: "Patroni version not read" in self.vp.log(4000) or "backend pg/a: Patroni" in
                     self.vp.log(4000), 10, "the version read's reply")
        self.assertEqual(self.a.stats()["connections"], 0, "the stand-in closed a connection")
        # Backend a replaced by b (another node, another check port); a's
        # check ends at once (hard_stop_after 0s), and with it a's record.
        self.reload(self.yaml("b", self.b))
        L.wait_until(lambda: self.dropped(), 5, "the reload's debug line about the dropped records")
        line = self.dropped()[0]
        L.log(line)
        url = f"http://127.0.0.1:{self.a.port}/patroni"
        self.assertIn(f"of 1 URL(s) no longer checked dropped ({url};", line)
        # Both of a's connections end now (the check's as the drain ends,
        # hard_stop_after 0s; the version read's as its record goes), with a
        # FIN, not at the check timeout 30 s later.
        L.wait_until(lambda: self.a.stats()["connections"] >= 2, 10, "a's connections closed")
        st = self.a.stats()
        self.assertEqual(st["clean_close"], st["connections"], st)
        self.assertTrue(self.vp.alive())

    def test_a_check_moved_to_another_port_leaves_no_record(self):
        """The same backend, its check now on another port (b's): the old
        URL goes at the reload itself (no drain: the backend is kept)."""
        L.wait_until(lambda: self.a.stats()["requests"] >= 2, 10, "a's check and version read answered")
        L.wait_until(lambda: "Patroni version not read" in self.vp.log(4000), 10, "the version read's reply")
        y = self.yaml("a", self.b).replace("hard_stop_after: 0s\n", "hard_stop_after: 1h\n")
        self.reload(y)
        L.wait_until(lambda: self.dropped(), 5, "the reload's debug line about the dropped records")
        line = self.dropped()[0]
        L.log(line)
        self.assertIn(f"of 1 URL(s) no longer checked dropped (http://127.0.0.1:{self.a.port}/patroni;", line)
        # The version read's connection to the old port ends now, with a FIN.
        L.wait_until(lambda: self.a.stats()["connections"] >= 1, 10, "the read's connection closed")
        st = self.a.stats()
        self.assertEqual(st["clean_close"], st["connections"], st)
        self.assertTrue(self.vp.alive())


if __name__ == "__main__":
    testmain.main()
