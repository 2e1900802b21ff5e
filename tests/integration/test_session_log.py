#!/usr/bin/python3
"""proxies[].log_sessions: one log line per session as it ends (HAProxy's
`option tcplog`), on loopback with a Patroni REST stand-in, an echo server
and the built daemon.

Asserted: the line names the client's address and port as the client sees
its own socket, the backend by name and address, why the session ended, and
the bytes each way (the echo server answers a FIN with "<EOF>"); a client that found no backend within queue_timeout is
logged as such; with the setting off (the default) nothing is logged, and a
reload turning it on logs the sessions that end from then on, also one
opened before the reload. CTest runs it once per data path: the bytes are
exact in each.
"""
import os
import re
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


class SessionLog(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-session-log")
        self.addCleanup(self.lab.close)
        self.echo_port = L.echo_backend(self.lab, "echo-server")
        self.a = L.Standin(self.lab, "a", role="primary")
        self.listen, self.admin = L.free_port(), L.free_port()

    def yaml(self, log_sessions):
        extra = "queue_timeout: 500ms" + ("\nlog_sessions: true" if log_sessions else "")
        return L.proxy_yaml("pg", self.listen, [("a", self.echo_port)], [self.a.port], self.admin, extra=extra)

    def start(self, log_sessions):
        self.vp = L.Vipproxy(self.lab, self.yaml(log_sessions), name="vp")
        self.vp.require_data_path(self.admin)
        L.wait_until(lambda: self.eligible(), 20, "a eligible")

    def eligible(self):
        return L.status(self.admin)["proxies"][0]["backends"][0]["eligible"]

    def log_text(self):
        with open(os.path.join(self.lab.dir, "vp.log"), errors="replace") as f:
            return f.read()

    def line_of(self, client_port):
        """The session log's line for the client on `client_port`, if any."""
        for line in self.log_text().splitlines():
            if f"proxy pg: session 127.0.0.1:{client_port} -> " in line:
                return line
        return None

    def echo_session(self):
        """An open session that has echoed 4 bytes; returns (socket, its port)."""
        c = socket.create_connection(("127.0.0.1", self.listen), timeout=5)
        self.addCleanup(c.close)
        c.sendall(b"ping")
        self.assertEqual(c.recv(4), b"ping")
        return c, c.getsockname()[1]

    def close_and_wait(self, c, remaining=0):
        c.shutdown(socket.SHUT_WR)
        c.settimeout(5)
        got = b""
        while chunk := c.recv(16):
            got += chunk
        self.assertEqual(got, b"<EOF>")  # the echo server's answer to the FIN, then its own FIN
        c.close()
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["sessions_current"] == remaining, 10,
                     "session ended")

    def test_a_line_per_session(self):
        self.start(True)
        c, port = self.echo_session()
        self.close_and_wait(c)
        line = L.wait_until(lambda: self.line_of(port), 10, "the session's log line")
        L.log(line)
        self.assertRegex(line, rf"\[info\] proxy pg: session 127\.0\.0\.1:{port} -> a 127\.0\.0\.1:{self.echo_port} "
                               r"ended: done after \d+\.\d{3} s, client sent 4 B, backend sent 9 B, "
                               r"path (copy|splice|kernel)$")
        # The kernel path may have handed the session back before its end.
        if os.environ.get("VIPPROXY_DATA_PATH") in ("copy", "splice"):
            self.assertTrue(line.endswith("path " + os.environ["VIPPROXY_DATA_PATH"]), line)

        # No eligible backend within queue_timeout (500 ms).
        self.a.set_role("replica")
        L.wait_until(lambda: not self.eligible(), 10, "a not eligible")
        w = socket.create_connection(("127.0.0.1", self.listen), timeout=5)
        self.addCleanup(w.close)
        wport = w.getsockname()[1]
        w.settimeout(5)
        try:
            self.assertEqual(w.recv(16), b"")
        except ConnectionResetError:
            pass
        line = L.wait_until(lambda: self.line_of(wport), 10, "the waiting client's log line")
        L.log(line)
        m = re.search(rf"proxy pg: session 127\.0\.0\.1:{wport} -> \(no backend\) ended: queue_timeout "
                      r"after (\d+\.\d{3}) s$", line)
        self.assertIsNotNone(m, line)
        self.assertGreaterEqual(float(m.group(1)), 0.5)

    def test_off_by_default_and_turned_on_by_a_reload(self):
        self.start(False)
        c1, port1 = self.echo_session()
        c2, port2 = self.echo_session()
        self.close_and_wait(c1, remaining=1)
        self.assertIsNone(self.line_of(port1), "logged with log_sessions off")
        with open(self.vp.config, "w") as f:
            f.write(self.yaml(True))
        applied = L.status(self.admin)["reloads"]["applied"]
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"]["applied"] > applied, 10, "reload applied")
        self.close_and_wait(c2)
        line = L.wait_until(lambda: self.line_of(port2), 10, "the log line of the session opened before the reload")
        L.log(line)
        self.assertIn("ended: done", line)
        self.assertIsNone(self.line_of(port1))


if __name__ == "__main__":
    testmain.main()
