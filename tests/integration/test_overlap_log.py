#!/usr/bin/python3
"""Two backends passing the check at once (a Patroni split brain, or a stale
node) is logged once when it starts and once when it ends, on loopback with
Patroni REST stand-ins and the built daemon.

Before, the warning came again at every election: every check change of any
backend of the proxy and every SIGHUP reload, which buried it. Asserted:
with a and b both answering 200, the warning is written once, and stays
once through two reloads (each elects again) and through a third backend
flapping between replica and down (each flip elects again); b stepping down
writes one "no longer" line; b coming back is a new overlap, warned once
more.
"""
import json
import os
import signal
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402

WARN = "backends pass the check at once"
ENDED = "backends no longer pass the check at once"


class OverlapLog(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-overlap")
        self.a = L.Standin(self.lab, "a", role="primary")
        self.b = L.Standin(self.lab, "b", role="primary")
        self.c = L.Standin(self.lab, "c", role="replica")
        self.config = os.path.join(self.lab.dir, "vp.yaml")
        self.listen, self.admin = L.free_port(), L.free_port()
        # The backends' own ports are never connected to: only checks run.
        # Kept across reloads (a new address would be a new backend).
        self.backend_ports = [L.free_port() for _ in range(3)]
        self.write_config("200ms")
        self.p = self.lab.spawn("vp", [L.VIPPROXY, "--config", self.config])

    def tearDown(self):
        self.lab.close()

    def write_config(self, interval):
        y = L.proxy_yaml("pg", self.listen, list(zip("abc", self.backend_ports)),
                         [self.a.port, self.b.port, self.c.port], self.admin, interval=interval)
        with open(self.config + ".tmp", "w") as f:
            f.write(y)
        os.replace(self.config + ".tmp", self.config)

    def log(self):
        return self.lab.logtail("vp", 100000)

    def count(self, text):
        return self.log().count(text)

    def wait_count(self, text, n, what, timeout=20):
        L.wait_until(lambda: self.count(text) >= n, timeout, what)

    def last_outcome(self, backend):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/status", timeout=5) as r:
            for p in json.load(r)["proxies"]:
                for b in p["backends"]:
                    if b["name"] == backend:
                        return b["check"]["last_outcome"]
        return None

    def reload(self, interval, nth):
        self.write_config(interval)
        self.p.send_signal(signal.SIGHUP)
        self.wait_count("SIGHUP: " + self.config + " applied", nth, f"reload {nth} applied")

    def test_overlap_is_logged_when_it_starts_and_ends(self):
        self.wait_count(WARN, 1, "the overlap warning")
        self.assertIn("2 backends pass the check at once (a, b)", self.log())
        # Elections that change nothing about the overlap: two reloads...
        self.reload("250ms", 1)
        self.reload("200ms", 2)
        # ...and a third backend flapping between 503 (reachable) and a
        # refused connection (unreachable): each flip is a check change.
        # /status is served on the control thread, after the election the
        # check result caused.
        for i in range(3):
            self.c.set_role("down")
            L.wait_until(lambda: self.last_outcome("c") == "l4_refused", 20, f"c refused ({i})")
            self.c.set_role("replica")
            L.wait_until(lambda: self.last_outcome("c") == "l7_status", 20, f"c answering 503 again ({i})")
        self.assertEqual(self.count(WARN), 1, self.log())
        self.assertEqual(self.count(ENDED), 0, self.log())

        self.b.set_role("replica")
        self.wait_count(ENDED, 1, "the end of the overlap")
        self.assertIn("(a, b before, a now)", self.log())
        self.b.set_role("primary")
        self.wait_count(WARN, 2, "a new overlap")
        self.assertEqual(self.count(ENDED), 1, self.log())
        self.assertIsNone(self.p.poll(), self.log())


if __name__ == "__main__":
    testmain.main()
