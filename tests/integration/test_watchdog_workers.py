#!/usr/bin/python3
"""The systemd watchdog covers the worker threads, not only the control
thread (daemon/worker_watch.h), all on loopback:

- a worker whose event loop is blocked (VIPPROXY_TEST_STALL_WORKER=1, then
  SIGUSR1: a handler that never returns) stops the WATCHDOG=1 pings within
  about a WatchdogSec, and the log names the worker, once; the old daemon
  went on pinging while that worker's share of clients hung;
- without it, a flood of client connections (every worker busy) does not
  stop the pings: busy is not stuck;
- SIGTERM still stops the daemon cleanly (the blocked worker is released).

NOTIFY_SOCKET is a datagram socket this test reads; WATCHDOG_USEC 2 s: a
ping every second, a worker is stuck once its heartbeat waited 1 s.

Without WATCHDOG_USEC (`vipproxy run` by hand, a unit without WatchdogSec)
the heartbeats go every 5 s (daemon/worker_watch.h kWorkerWatchPeriod): a
blocked worker is logged once at error, shown in /status (workers.stuck)
and /metrics (vipproxy_workers_stuck), and its recovery (the test hook
released by SIGUSR2) is logged and shown too; the daemon is neither stopped
nor restarted. The old daemon posted no heartbeat without WATCHDOG_USEC: the
blocked worker went unnoticed.

Environment: VIPPROXY_BIN (the built binary), VIPPROXY_SOURCE_DIR.
"""
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402

WATCHDOG_USEC = 2_000_000
PING = WATCHDOG_USEC / 2e6  # seconds between pings
STUCK = "its event loop has not turned for"


class WatchdogWorkers(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-watchdog")
        self.addCleanup(self.lab.close)
        self.path, self.sock = L.notify_socket(self.lab, blocking=False)
        self.messages = []  # (monotonic time, datagram)
        self.rest = L.Standin(self.lab, "rest", "primary")
        self.echo_port = L.echo_backend(self.lab)
        self.port, self.admin = L.free_port(), L.free_port()
        self.vp = L.Vipproxy(self.lab, L.proxy_yaml("p", self.port, [("e", self.echo_port)], [self.rest.port],
                                                    self.admin, threads=2),
                             env={"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(WATCHDOG_USEC),
                                  "VIPPROXY_TEST_STALL_WORKER": "1"})
        L.wait_until(lambda: self.read() or self.has("READY=1"), 20, "READY=1")
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"] == "e", 20, "backend up")
        L.wait_until(lambda: self.read() or self.has("WATCHDOG=1"), 5 * PING, "a first WATCHDOG=1")

    def read(self):
        """Takes every datagram queued now (returns None: for wait_until's `or`)."""
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return None
            self.messages.append((time.monotonic(), data.decode()))

    def has(self, prefix):
        return any(m.startswith(prefix) for _, m in self.messages)

    def pings(self, since=0.0):
        return [t for t, m in self.messages if m == "WATCHDOG=1" and t >= since]

    def log(self):
        return self.vp.log(100000)

    def test_stuck_worker_stops_the_pings(self):
        self.assertEqual(L.echo(self.port), b"ping")
        self.assertIn("VIPPROXY_TEST_STALL_WORKER=1", self.log())
        self.vp.proc.send_signal(signal.SIGUSR1)
        L.wait_until(lambda: "worker 1 blocks" in self.log(), 5, "the stall taken")
        # Detected at the second ping after the stall at the latest (the
        # heartbeat posted at the first is the one not answered).
        L.wait_until(lambda: f"worker 1: {STUCK}" in self.log(), 6 * PING, "the stuck worker logged")
        self.read()
        seen = time.monotonic()
        # Pings have stopped: none for three ping periods (systemd would have
        # aborted the daemon after two).
        L.labkit.hold(lambda: (self.read(), not self.pings(since=seen))[1], 3 * PING, "no WATCHDOG=1 after the stall")
        self.assertEqual(self.log().count(STUCK), 1, self.log())
        # The control thread is fine (admin answers); only the pings stopped.
        self.assertEqual(L.status(self.admin)["proxies"][0]["current_backend"], "e")
        self.vp.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.vp.proc.wait(20), 0, self.log())
        self.read()
        self.assertTrue(self.has("STOPPING=1"))

    def test_flood_does_not_stop_the_pings(self):
        stop = threading.Event()
        done = [0]
        lock = threading.Lock()

        def client():
            while not stop.is_set():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                        s.sendall(b"x")
                        s.recv(16)
                except OSError:
                    continue
                with lock:
                    done[0] += 1

        threads = [threading.Thread(target=client, daemon=True) for _ in range(16)]
        start = time.monotonic()
        for t in threads:
            t.start()
        try:
            L.labkit.hold(lambda: (self.read(), self.vp.alive())[1], 6 * PING, "the daemon alive under the flood")
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.read()
        L.log(f"{done[0]} sessions in {6 * PING:.0f} s; {len(self.pings(since=start))} pings")
        self.assertGreater(done[0], 100, "no flood")
        self.assertNotIn(STUCK, self.log())
        # A ping every PING seconds: 6 due; a few may be late on a loaded machine.
        self.assertGreaterEqual(len(self.pings(since=start)), 4)
        L.wait_until(lambda: self.read() or len(self.pings(since=time.monotonic() - 2 * PING)) > 0, 3 * PING,
                     "pings after the flood")


class WorkerWatchWithoutSystemd(unittest.TestCase):
    PERIOD = 5  # seconds: kWorkerWatchPeriod

    def setUp(self):
        self.lab = L.Lab("vipproxy-worker-watch")
        self.addCleanup(self.lab.close)
        self.rest = L.Standin(self.lab, "rest", "primary")
        self.echo_port = L.free_port()
        self.lab.spawn("echo", [L.PY, os.path.join(L.HERE, "echo_server.py"), str(self.echo_port)])
        self.port, self.admin = L.free_port(), L.free_port()
        env = {"VIPPROXY_TEST_STALL_WORKER": "1"}
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env[k] = ""  # as by hand: nothing from systemd (an empty WATCHDOG_USEC is no watchdog)
        self.vp = L.Vipproxy(self.lab, L.proxy_yaml("p", self.port, [("e", self.echo_port)], [self.rest.port],
                                                    self.admin, threads=2), env=env)
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"] == "e", 20, "backend up")

    def log(self):
        return self.vp.log(100000)

    def stuck_metric(self):
        for line in L.metrics(self.admin).splitlines():
            if line.startswith("vipproxy_workers_stuck "):
                return int(float(line.split()[1]))
        return None

    def test_stuck_worker_is_logged_and_shown_then_its_recovery(self):
        self.assertEqual(L.echo(self.port), b"ping")
        self.vp.proc.send_signal(signal.SIGUSR1)
        L.wait_until(lambda: "worker 1 blocks" in self.log(), 5, "the stall taken")
        # Found at the second watch after the stall at the latest.
        L.wait_until(lambda: f"worker 1: {STUCK}" in self.log(), 3 * self.PERIOD + 5, "the stuck worker logged")
        line = next(l for l in self.log().splitlines() if STUCK in l)
        L.log(line)
        self.assertIn("[error]", line)
        self.assertIn("no systemd watchdog", line)
        self.assertEqual(L.status(self.admin)["workers"]["stuck"], [1])
        self.assertEqual(self.stuck_metric(), 1)
        # Once: the next watch finds it still stuck and says nothing more.
        L.labkit.hold(lambda: self.log().count(STUCK) == 1, self.PERIOD + 1, "one line per stuck worker")
        self.assertTrue(self.vp.alive())
        # Released: its loop turns again, and the next watch says so.
        self.vp.proc.send_signal(signal.SIGUSR2)
        L.wait_until(lambda: "worker 1: its event loop turns again" in self.log(), 2 * self.PERIOD + 5,
                     "the recovery logged")
        self.assertEqual(L.status(self.admin)["workers"], {"threads": 2, "stuck": []})
        self.assertEqual(self.stuck_metric(), 0)
        self.assertEqual(self.log().count(STUCK), 1, self.log())
        for _ in range(4):  # both workers serve again
            self.assertEqual(L.echo(self.port), b"ping")
        self.vp.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.vp.proc.wait(20), 0, self.log())


if __name__ == "__main__":
    testmain.main()
