#!/usr/bin/python3
"""A systemd notify socket that takes nothing does not stop the daemon.

Under Type=notify with WatchdogSec= the control thread sends WATCHDOG=1 to
PID 1's notify socket every half period, and READY=1/RELOADING=1/STOPPING=1
at each change. A datagram to a Unix socket whose receive queue is full
(net.unix.max_dgram_qlen) waits until the receiver reads, and PID 1 reads it
from its one event loop: a PID 1 busy elsewhere (a daemon-reload of a big
system, a boot storm) would stop our control thread at the next ping: no
VRRP advert, no check, no /status. libsystemd's sd_notify() sends that way;
daemon/systemd_notify's SystemdNotifier sends with MSG_DONTWAIT instead,
drops a ping the socket refuses and keeps state changes until it takes them.

With NOTIFY_SOCKET pointing at a datagram socket of this test, filled to the
brim by the test (as a PID 1 that stopped reading): the backend's check
turning replica and back is seen in /status, /status answers within 3 s
throughout, SIGHUP reloads, sessions flow, the refused pings are counted in
/metrics. When the test reads again: RELOADING=1 then READY=1 arrive, in that
order, without anything else happening, and WATCHDOG=1 pings resume; SIGTERM
sends STOPPING=1 and the daemon exits 0. With the old sd_notify() /status
timed out as soon as the socket was full.
"""
import errno
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


class NotifySocketFull(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-notifyfull")
        self.addCleanup(self.lab.close)
        self.path, self.sock = L.notify_socket(self.lab, blocking=False)
        self.messages = []  # every datagram but our filler, in arrival order
        self.rest = L.Standin(self.lab, "rest", "primary")
        self.echo_port = L.echo_backend(self.lab)
        self.port, self.admin = L.free_port(), L.free_port()
        # WATCHDOG_USEC 400 ms: a ping every 200 ms, so the old code blocked
        # within 200 ms of the socket filling up.
        self.vp = L.Vipproxy(self.lab, L.proxy_yaml("p", self.port, [("e", self.echo_port)], [self.rest.port],
                                                    self.admin),
                             env={"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": "400000"})
        self.slowest = 0.0

    def read(self):
        """Takes every datagram queued now; returns how many (filler included)."""
        n = 0
        while True:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return n
            n += 1
            if data != b"FILLER":
                self.messages.append(data.decode())

    def fill_up(self):
        """Sends from a socket of our own until the queue takes no more: every
        sender's next datagram to it would now wait."""
        n = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            while True:
                try:
                    s.sendto(b"FILLER", socket.MSG_DONTWAIT, self.path)
                    n += 1
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        return n
                    raise

    def status(self):
        t0 = time.monotonic()
        st = L.status(self.admin)
        self.slowest = max(self.slowest, time.monotonic() - t0)
        return st

    def backend(self):
        return self.status()["proxies"][0]["current_backend"]

    def dropped(self):
        for line in L.metrics(self.admin).splitlines():
            if line.startswith("vipproxy_systemd_notifications_dropped_total "):
                return int(line.split()[1])
        self.fail("no vipproxy_systemd_notifications_dropped_total in /metrics")

    def test_full_notify_socket(self):
        L.wait_until(lambda: (self.read(), any(m.startswith("READY=1") for m in self.messages))[1], 20, "READY=1")
        L.wait_until(lambda: self.backend() == "e", 20, "backend up")
        L.wait_until(lambda: (self.read(), "WATCHDOG=1" in self.messages)[1], 5, "a first WATCHDOG=1")
        self.read()
        self.messages.clear()
        filled = self.fill_up()
        L.log(f"notify socket filled with {filled} datagrams; no sender can add one now")
        # The control thread goes on while the socket stays full.
        L.wait_until(lambda: self.dropped() >= 2, 5, "refused WATCHDOG=1 pings counted")
        self.rest.set_role("replica")
        L.wait_until(lambda: self.backend() is None, 10, "the check to see the backend turn replica")
        self.rest.set_role("primary")
        L.wait_until(lambda: self.backend() == "e", 10, "the check to see the backend primary again")
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: self.status()["reloads"]["applied"] >= 1, 10, "the SIGHUP reload")
        self.assertEqual(L.echo(self.port), b"ping")
        self.assertIsNone(self.vp.proc.poll(), "the daemon exited")
        # The old sd_notify() held the thread until the socket was read; 3 s
        # leaves room for the CI machine's whole-machine stalls of 600-800 ms.
        self.assertLess(self.slowest, 3.0, "/status was slow while the notify socket was full")
        self.assertEqual(self.messages, [], "nothing can have arrived: the socket was full of ours")
        # PID 1 reads again: the kept state changes arrive by themselves, in
        # order, and the pings resume.
        L.wait_until(lambda: (self.read(), "READY=1" in self.messages and
                              self.messages.count("WATCHDOG=1") >= 2)[1], 5,
                     "the kept RELOADING=1, READY=1 and new pings after the socket was read")
        state = [m for m in self.messages if m != "WATCHDOG=1"]
        self.assertEqual(state, ["RELOADING=1", "READY=1"], f"state changes out of order: {self.messages}")
        dropped = self.dropped()
        self.assertGreaterEqual(dropped, 2)
        log = self.vp.log()
        self.assertIn("notify socket is full", log)
        self.assertIn("takes notifications again", log)
        # STOPPING=1 on SIGTERM, and a clean exit.
        self.vp.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.vp.proc.wait(timeout=10), 0)
        self.read()
        self.assertIn("STOPPING=1", self.messages)


if __name__ == "__main__":
    testmain.main()
