#!/usr/bin/python3
"""Two backends of a `first` proxy passing the check at once (a stale old
primary still answering 200 during a failover, or a Patroni split brain):
new sessions go to the one on the newer PostgreSQL timeline, read from each
node's GET /patroni, on loopback with Patroni REST stand-ins, echo backends
and the built daemon.

Before, new sessions stayed on the backend already in use, whose writes
pg_rewind throws away when it rejoins as a replica. Asserted through
/status (current_backend, each backend's sessions_total) and the echo
backends:
- a (in use) on timeline 6, b promoted on 7: new sessions go to b, one
  warning names both; a session opened on a before stays open; when the
  overlap ends and a later one starts with a on 8, a is taken again (the
  timelines are read again, not remembered);
  while the overlap lasts each backend's timeline is in /status
  ("overlap"), in `vipproxy status` and in /metrics (backend_timeline);
- equal timelines: new sessions stay on a;
- b's /patroni answering garbage: new sessions stay on a, it is logged,
  the daemon stays up; when b's Patroni then answers its timeline (7), the
  read tried again sees it and new sessions go to b;
- a reload while b's read is held: with b's check where it was, the read
  goes on (not cancelled under the stand-in); with b's check moved to
  another Patroni, that one is read; SIGTERM with a read held: exit 0;
- an overlap's end, or a reload removing b, while a read of b's /patroni
  (a timeline, the version read at start) or b's check waits for its
  reply: the request is left to finish, never cut under Patroni.
"""
import os
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402

WARN = "backends pass the check at once"


class OverlapTimeline(unittest.TestCase):
    def start(self, a_timeline, b_timeline, check_timeout="1s"):
        self.lab = L.Lab("vipproxy-timeline")
        self.addCleanup(self.lab.close)
        self.a = L.Standin(self.lab, "a", role="primary", timeline=a_timeline)
        self.b = L.Standin(self.lab, "b", role="replica", timeline=b_timeline)
        self.ports = {"a": L.echo_backend(self.lab, "echo-a"), "b": L.echo_backend(self.lab, "echo-b")}
        self.listen, self.admin = L.free_port(), L.free_port()
        config = os.path.join(self.lab.dir, "vp.yaml")
        with open(config, "w") as f:
            f.write(L.proxy_yaml("pg", self.listen, [("a", self.ports["a"]), ("b", self.ports["b"])],
                                 [self.a.port, self.b.port], self.admin, check_timeout=check_timeout))
        self.config, self.check_timeout = config, check_timeout
        self.p = self.lab.spawn("vp", [L.VIPPROXY, "--config", config])
        L.wait_until(lambda: self.current() == "a", 20, "a in use")

    def log(self):
        return self.lab.logtail("vp", 100000)

    def proxy(self):
        return L.status(self.admin)["proxies"][0]

    def current(self):
        return self.proxy()["current_backend"]

    def sessions_total(self):
        return {b["name"]: b["sessions_total"] for b in self.proxy()["backends"]}

    def session_goes_to(self):
        """Opens one session through the proxy; returns the backend it went to."""
        before = self.sessions_total()
        self.assertEqual(L.echo(self.listen), b"ping")
        after = self.sessions_total()
        went = [n for n in after if after[n] > before[n]]
        self.assertEqual(len(went), 1, (before, after))
        return went[0]

    def last_outcome(self, backend):
        return next(b["check"]["last_outcome"] for b in self.proxy()["backends"] if b["name"] == backend)

    def overlap_status(self):
        """Each backend's "overlap" object of /status (None: not in one)."""
        return {b["name"]: b.get("overlap") for b in self.proxy()["backends"]}

    def cli_status(self):
        r = subprocess.run([L.VIPPROXY, "status", "--admin", f"127.0.0.1:{self.admin}", "--config",
                            os.path.join(self.lab.dir, "absent.yaml")], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def timeline_gauge(self, backend):
        for line in L.metrics(self.admin).splitlines():
            if line.startswith("vipproxy_backend_timeline{") and f'backend="{backend}"' in line:
                return int(line.rsplit(" ", 1)[1])
        return None

    def overlap(self, nth=1):
        self.b.set_role("primary")
        L.wait_until(lambda: self.log().count(WARN) >= nth, 20, "the overlap")

    def test_newer_timeline_takes_new_sessions(self):
        self.start(6, 7)
        self.assertEqual(self.session_goes_to(), "a")
        held = socket.create_connection(("127.0.0.1", self.listen), timeout=5)
        self.addCleanup(held.close)
        self.assertEqual(L.echo_on(held, b"old"), b"old")
        self.overlap()
        L.wait_until(lambda: self.current() == "b", 20, "new sessions on b")
        self.assertIn("proxy pg: b is on timeline 7, a on 6: new sessions now go to b", self.log())
        self.assertEqual(self.session_goes_to(), "b")
        # The timelines are shown, not only logged: /status, vipproxy status, /metrics.
        st = self.overlap_status()
        self.assertEqual(st["a"]["timeline"], 6, st)
        self.assertEqual(st["b"]["timeline"], 7, st)
        self.assertIn("Overlap on pg: a on timeline 6, b on timeline 7; new sessions go to b", self.cli_status())
        self.assertEqual((self.timeline_gauge("a"), self.timeline_gauge("b")), (6, 7))
        # The session on a is left as it was (cut only when a's check fails).
        self.assertEqual(L.echo_on(held, b"still"), b"still")

        # The overlap ends (b's check keeps passing); a later one reads the
        # timelines again: a was promoted once more, to 8.
        self.a.set_role("replica")
        L.wait_until(lambda: "backends no longer pass the check at once" in self.log(), 20, "the overlap's end")
        self.assertEqual(self.overlap_status(), {"a": None, "b": None})
        self.assertNotIn("Overlap on", self.cli_status())
        self.assertEqual((self.timeline_gauge("a"), self.timeline_gauge("b")), (0, 0))
        self.a.set_timeline(8)
        self.a.set_role("primary")
        L.wait_until(lambda: self.current() == "a", 20, "new sessions on a again")
        self.assertIn("proxy pg: a is on timeline 8, b on 7: new sessions now go to a", self.log())
        self.assertEqual(self.session_goes_to(), "a")
        self.assertIsNone(self.p.poll(), self.log())

    def test_equal_timelines_stay(self):
        self.start(7, 7)
        self.overlap()
        L.wait_until(lambda: "a on timeline 7, b on timeline 7: new sessions stay on a" in self.log(), 20,
                     "the timelines read")
        self.assertEqual(self.current(), "a")
        self.assertEqual(self.session_goes_to(), "a")
        self.assertNotIn("new sessions now go to b", self.log())

    def test_garbage_patroni_reply_stays(self):
        self.start(6, "garbage")
        self.overlap()
        L.wait_until(lambda: "b not read (the reply is not a JSON object): new sessions stay on a" in self.log(),
                     20, "the failed read logged")
        self.assertEqual(self.current(), "a")
        self.assertEqual(self.session_goes_to(), "a")
        self.assertNotIn("new sessions now go to b", self.log())
        st = self.overlap_status()
        self.assertEqual(st["a"]["timeline"], 6, st)
        self.assertIsNone(st["b"]["timeline"], st)
        self.assertEqual(st["b"]["error"], "the reply is not a JSON object", st)
        self.assertIn("b not read (the reply is not a JSON object)", self.cli_status())
        self.assertEqual(self.timeline_gauge("b"), 0)
        self.assertIsNone(self.p.poll(), self.log())

    def test_failed_read_is_retried_within_the_overlap(self):
        # b's Patroni answers garbage when the overlap starts, then its
        # timeline: the read is tried again while the overlap lasts (before,
        # new sessions stayed on a until the overlap changed or ended).
        self.start(6, "garbage")
        self.overlap()
        L.wait_until(lambda: "b not read (the reply is not a JSON object): new sessions stay on a" in self.log(),
                     20, "the failed read logged")
        self.assertEqual(self.current(), "a")
        requests = self.b.stats()["requests"]
        self.b.set_timeline(7)
        L.wait_until(lambda: self.current() == "b", 30, "new sessions on b")
        self.assertIn("proxy pg: b is on timeline 7, a on 6: new sessions now go to b", self.log())
        self.assertEqual(self.session_goes_to(), "b")
        self.assertGreater(self.b.stats()["requests"], requests)
        self.assertIsNone(self.p.poll(), self.log())

    def test_promoted_again_within_the_overlap(self):
        # b (7) takes new sessions; during the same overlap a is promoted
        # once more (9): the timelines are read again (every 10 s here) and
        # new sessions go back to a. Before, a's new timeline was not seen
        # until the overlap changed or ended.
        self.start(6, 7)
        self.overlap()
        L.wait_until(lambda: self.current() == "b", 20, "new sessions on b")
        self.a.set_timeline(9)
        L.wait_until(lambda: self.current() == "a", 30, "new sessions back on a")
        self.assertIn("proxy pg: a is on timeline 9, b on 7: new sessions now go to a", self.log())
        self.assertEqual(self.session_goes_to(), "a")
        self.assertEqual(self.log().count(WARN), 1, self.log())  # the same overlap
        self.assertIsNone(self.p.poll(), self.log())

    def reload(self, b_check_port, nth, interval):
        with open(self.config + ".tmp", "w") as f:
            f.write(L.proxy_yaml("pg", self.listen, [("a", self.ports["a"]), ("b", self.ports["b"])],
                                 [self.a.port, b_check_port], self.admin, interval=interval,
                                 check_timeout=self.check_timeout))
        os.replace(self.config + ".tmp", self.config)
        self.p.send_signal(signal.SIGHUP)
        L.wait_until(lambda: self.log().count("SIGHUP: " + self.config + " applied") >= nth, 20,
                     f"reload {nth} applied")

    def held(self, standin):
        return standin.stats().get("patroni_held", 0)

    def assert_b_never_cut(self):
        """Once every request to b's stand-in has ended: none by a reset
        (a read cut under Patroni, which logs a traceback: patroni#2278)."""
        def ended():
            st = self.b.stats()
            return st["clean_close"] + st.get("reset", 0) >= st["requests"]
        L.wait_until(ended, 20, "b's requests ended")
        self.assertEqual(self.b.stats().get("reset", 0), 0, self.b.stats())

    def test_overlap_ending_with_a_read_in_flight_lets_it_finish(self):
        # An overlap often ends within milliseconds (one node's check sees the
        # promotion before the other's sees the demotion; test_proxy_postgres
        # makes one): a read still waiting for Patroni's reply then was cut,
        # and Patroni logs a traceback for a client that leaves so
        # (patroni#2278). It is left to finish, its reply ignored.
        self.start(6, 7, check_timeout="20s")
        self.b.set_timeline("hold")
        self.overlap()
        L.wait_until(lambda: self.held(self.b) >= 1, 20, "b's timeline read held")
        self.a.set_role("replica")
        L.wait_until(lambda: "backends no longer pass the check at once" in self.log(), 20, "the overlap's end")
        self.b.set_timeline(7)
        self.assert_b_never_cut()
        self.assertEqual(self.current(), "b")
        self.assertIsNone(self.p.poll(), self.log())

    def test_reload_removing_a_backend_lets_its_requests_finish(self):
        # At start the daemon reads each Patroni's version (GET /patroni, the
        # same request as a timeline read). A removed backend's check (and
        # its URL) lasts while its sessions drain, at most hard_stop_after
        # (1 s here); when the drain ended, the version read and the check
        # still waiting for their replies were closed under Patroni
        # (patroni#2278's traceback). Both are left to finish now, like a
        # timeline read at an overlap's end. Here b's stand-in holds every
        # reply until the drain has ended.
        self.start(6, "hold", check_timeout="20s")
        L.wait_until(lambda: self.held(self.b) >= 1, 20, "b's version read held")
        self.b.set_role("hold")
        L.wait_until(lambda: self.b.stats().get("held", 0) >= 1, 20, "b's check held")
        with open(self.config + ".tmp", "w") as f:
            f.write(L.proxy_yaml("pg", self.listen, [("a", self.ports["a"])], [self.a.port], self.admin,
                                 check_timeout=self.check_timeout).replace(
                                     "node: it\n", "node: it\nhard_stop_after: 1s\nlog_level: debug\n"))
        os.replace(self.config + ".tmp", self.config)
        self.p.send_signal(signal.SIGHUP)
        L.wait_until(lambda: "SIGHUP: " + self.config + " applied" in self.log(), 20, "the reload applied")
        self.assertEqual([b["name"] for b in self.proxy()["backends"]], ["a"])
        L.wait_until(lambda: "Patroni version records of 1 URL(s) no longer checked dropped" in self.log(), 20,
                     "b's drain ended")
        self.assertEqual((self.held(self.b), self.b.stats().get("held", 0)), (1, 1))
        self.b.set_timeline(7)
        self.b.set_role("replica")
        self.assert_b_never_cut()
        self.assertEqual(self.session_goes_to(), "a")
        self.assertIsNone(self.p.poll(), self.log())

    def test_reload_and_stop_with_reads_in_flight(self):
        # The reads' timeout is the check's (at least 2 s): long enough here
        # for a reload to come while one is held.
        self.start(6, 7, check_timeout="20s")
        self.b.set_timeline("hold")
        self.overlap()
        L.wait_until(lambda: self.held(self.b) >= 1, 20, "b's timeline read held")
        # A reload that leaves the backends where they are: the read goes on
        # (it is not cancelled under the stand-in, nor made again).
        self.reload(self.b.port, 1, "250ms")
        self.assertEqual(self.current(), "a")
        self.b.set_timeline(7)
        L.wait_until(lambda: self.current() == "b", 20, "new sessions on b")
        self.assertEqual(self.log().count("b is on timeline 7, a on 6: new sessions now go to b"), 1, self.log())
        self.assertEqual(self.log().count(WARN), 1, self.log())  # the reload did not warn again
        self.assertEqual(self.held(self.b), 1)
        L.wait_until(lambda: self.b.stats()["clean_close"] >= self.b.stats()["requests"], 20, "b's requests closed")
        self.assertEqual(self.b.stats().get("reset", 0), 0, self.b.stats())

        # A reload that moves b's check to another Patroni (b2: timeline 5)
        # while b's read is held: b2 is read, and a (6) is newer.
        self.b.set_timeline("hold")
        self.a.set_role("replica")
        L.wait_until(lambda: "backends no longer pass the check at once" in self.log(), 20, "the overlap's end")
        self.a.set_role("primary")
        L.wait_until(lambda: self.held(self.b) >= 2, 20, "b's timeline read held again")
        b2 = L.Standin(self.lab, "b2", role="primary", timeline=5)
        self.reload(b2.port, 2, "200ms")
        L.wait_until(lambda: self.current() == "a", 20, "new sessions on a")
        self.assertIn("a is on timeline 6, b on 5: new sessions now go to a", self.log())

        # A new overlap with b2's read held, and SIGTERM meanwhile.
        b2.set_timeline("hold")
        self.a.set_role("replica")
        L.wait_until(lambda: self.log().count("backends no longer pass the check at once") >= 2, 20,
                     "the overlap's end")
        self.a.set_role("primary")
        L.wait_until(lambda: self.held(b2) >= 1, 20, "b2's timeline read held")
        self.p.send_signal(signal.SIGTERM)
        self.assertEqual(self.p.wait(timeout=15), 0, self.log())


if __name__ == "__main__":
    testmain.main()
