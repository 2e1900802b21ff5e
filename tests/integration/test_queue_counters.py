#!/usr/bin/python3
"""queued_total counts connections, not waits, on loopback with a Patroni
REST stand-in and the built daemon.

The backend's check passes (Patroni says primary) while its own port
refuses connections (PostgreSQL down): one client's connect is refused
every 200 ms until its queue_timeout (2 s). Asserted: the proxy counts one
connection accepted, one queue timeout and at most one queued connection
("Connections that had to wait for an eligible backend"), however many
connects failed. Before, every failed connect put the session back in the
waiting list and counted it again: queued_total 10 for one client.
"""
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


class QueueCounters(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-queue-counters")
        self.addCleanup(self.lab.close)
        self.a = L.Standin(self.lab, "a", role="primary")
        self.listen, self.admin = L.free_port(), L.free_port()
        refused = L.free_port()  # nobody listens there
        self.vp = L.Vipproxy(self.lab, L.proxy_yaml("pg", self.listen, [("a", refused)], [self.a.port], self.admin,
                                                    extra="queue_timeout: 2s"), name="vp")
        L.wait_until(lambda: self.proxy()["backends"][0]["eligible"], 20, "a eligible")

    def proxy(self):
        return L.status(self.admin)["proxies"][0]

    def test_one_client_is_queued_once(self):
        c = socket.create_connection(("127.0.0.1", self.listen), timeout=5)
        self.addCleanup(c.close)
        c.settimeout(10)
        try:
            self.assertEqual(c.recv(1), b"", "closed at queue_timeout")
        except ConnectionResetError:
            pass
        L.wait_until(lambda: self.proxy()["sessions_current"] == 0, 5, "session closed")
        counters = self.proxy()["counters"]
        L.log(f"counters: {counters}")
        self.assertGreaterEqual(counters["connect_errors"], 2, "the connect was retried")
        self.assertEqual(counters["sessions_total"], 1)
        self.assertEqual(counters["queue_timeouts"], 1)
        self.assertLessEqual(counters["queued_total"], 1, "one connection counted as queued more than once")


if __name__ == "__main__":
    testmain.main()
