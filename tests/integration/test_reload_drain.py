#!/usr/bin/python3
"""Each reload's drain ends on its own time.

A session whose backend a reload removes drains for `hard_stop_after`, then
is closed. The workers used to keep one timer for it, re-armed by every
reload: a second reload within the first one's drain pushed the first
reload's sessions back to the end of the second one's. Now each session
carries the end of the drain of the reload that removed its backend
(proxy/worker.cpp, mark_orphans).

hard_stop_after 8 s; backends a, b, c behind `first`, each with its echo
server and a Patroni stand-in:
  - session A goes to a; reload 1 (at t=0) removes a, b primary too;
  - session B goes to b; reload 2 (at t=4 s) removes b, c primary too
    (removed nodes stay primary: a demotion would cut their sessions);
  - A is closed by t=10 s (its drain ends at 8 s; the old code: 12 s), and B
    still echoes then; B is closed by t=14 s (its drain ends at 12 s).
The checks take `fall: 3` and a 2 s timeout: the drained nodes' checks go on
for the whole test (60 at lab.proxy_yaml's 200 ms), and with `fall: 1` one
reply later than 1 s on a loaded machine took b down and cut B as
`backend_down` before its drain ended (found in 183 runs under ASan beside
two helper builds: b and c both "layer 4 timeout" within 13 ms, B closed
6.9 s after reload 2).
"""
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402

GRACE = 8.0
SECOND_RELOAD = 4.0


def closed(s):
    """Whether the proxy closed `s` (EOF or reset), without waiting."""
    s.setblocking(False)
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.setblocking(True)


class ReloadDrain(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-reloaddrain")
        self.addCleanup(self.lab.close)
        self.rest = {n: L.Standin(self.lab, n, "primary" if n == "a" else "replica") for n in "abc"}
        self.echo = {}
        for n in "abc":
            self.echo[n] = L.echo_backend(self.lab, "echo-" + n)
        self.port, self.admin = L.free_port(), L.free_port()
        self.config = os.path.join(self.lab.dir, "vipproxy.yaml")
        self.write(["a", "b"])
        self.proc = self.lab.spawn("vipproxy", [L.VIPPROXY, "--config", self.config])
        self.sockets = []

    def tearDown(self):
        for s in self.sockets:
            s.close()

    def write(self, backends):
        text = f"hard_stop_after: {GRACE:.0f}s\n" + L.proxy_yaml(
            "p", self.port, [(n, self.echo[n]) for n in backends], [self.rest[n].port for n in backends], self.admin,
            extra="log_sessions: true", fall=3, check_timeout="2s")
        with open(self.config, "w") as f:
            f.write(text)

    def why(self, what):
        """`what`, with what the daemon said: its session lines name each
        close's reason (a drain's end is `stopping`, a demotion's cut
        `backend_down`), and a daemon that died says so."""
        alive = "running" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
        return f"{what} (daemon {alive}); its log:\n{self.lab.logtail('vipproxy', 60)}"

    def current(self):
        return L.status(self.admin)["proxies"][0]["current_backend"]

    def reload(self, backends, applied):
        self.write(backends)
        self.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"]["applied"] >= applied, 10, f"reload {applied}")

    def session(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.sockets.append(s)
        self.assertEqual(L.echo_on(s), b"ping")
        return s

    def test_each_reload_drains_on_its_own_time(self):
        L.wait_until(lambda: self.current() == "a", 20, "a primary")
        a = self.session()
        # Removed nodes stay primary: a removed backend's check goes on while
        # its sessions drain, and a demotion would cut them (test_drain_demoted).
        self.rest["b"].set_role("primary")
        t0 = time.monotonic()
        self.reload(["b", "c"], 1)
        L.wait_until(lambda: self.current() == "b", 10, "b primary")
        b = self.session()
        self.assertEqual(L.echo_on(a), b"ping", "a's session must drain, not be cut")
        L.wait_until(lambda: time.monotonic() - t0 >= SECOND_RELOAD, SECOND_RELOAD + 1, "the second reload's time")
        self.rest["c"].set_role("primary")
        t2 = time.monotonic()
        self.reload(["c"], 2)
        # A's drain ends GRACE after reload 1; the old code waited until
        # GRACE after reload 2 (4 s later). 2 s either side for a loaded machine.
        L.wait_until(lambda: closed(a), t0 + GRACE + 2 - time.monotonic(), "a's session closed at the end of its drain")
        a_closed = time.monotonic() - t0
        self.assertGreater(a_closed, GRACE - 1, self.why(f"a's session was closed {a_closed:.2f} s after reload 1, "
                                                         "before its drain ended"))
        self.assertEqual(L.echo_on(b), b"ping",
                         self.why("b's session closed with a's: it drains until GRACE after reload 2"))
        L.wait_until(lambda: closed(b), t2 + GRACE + 2 - time.monotonic(), "b's session closed at the end of its drain")
        b_closed = time.monotonic() - t2
        L.log(f"a closed {a_closed:.1f} s after reload 1, b {b_closed:.1f} s after reload 2 (hard_stop_after {GRACE:.0f} s)")
        self.assertGreater(b_closed, GRACE - 1, self.why(f"b's session was closed {b_closed:.2f} s after reload 2"))
        # Each closed by its drain's end, not by a check of its node.
        log = self.lab.logtail("vipproxy", 100000)
        self.assertEqual(log.count("ended: stopping"), 2, self.why("two sessions closed by their drains' ends"))


if __name__ == "__main__":
    testmain.main()
