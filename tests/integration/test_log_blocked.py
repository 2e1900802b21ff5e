#!/usr/bin/python3
"""A standard error that takes nothing does not stop the daemon.

systemd connects a service's stderr to journald through a stream socket; a
stalled journald (a slow disk, a rotation), a pipe whose reader stopped or a
terminal on hold leave that stream full. vipproxy's control thread sends the
VRRP adverts, runs the health checks and answers the admin endpoint: a log
line written there with a blocking write would stop all three until the
reader came back (the backup takes the VIP, and the proxy keeps sending
clients to a backend nobody checks any more). Before daemon/logging's
NonBlockingWriter it did: /status timed out as soon as the stream was full
and a reload logged.

For a FIFO and for a Unix stream socket (the journal's kind), filled to the
brim by this test: the backend's check turning 503 and back is seen in
/status within a few seconds, /status answers within 3 s throughout, SIGHUP
reloads, sessions flow; the lines held back come out, in order and none lost,
within a few seconds of the reader coming back, with nothing else logged
(the control thread writes what waits every second). Dropping and its
notice are tested in tests/unit/logging_test.cpp.
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


class StderrFull(unittest.TestCase):
    def start(self, kind):
        self.lab = L.Lab("vipproxy-logfull")
        self.rest = L.Standin(self.lab, "rest", "primary")
        self.echo_port = L.echo_backend(self.lab)
        self.port, self.admin = L.free_port(), L.free_port()
        config = os.path.join(self.lab.dir, "vipproxy.yaml")
        with open(config, "w") as f:
            f.write(L.proxy_yaml("p", self.port, [("e", self.echo_port)], [self.rest.port], self.admin))
        argv = [L.VIPPROXY, "--config", config]
        if kind == "fifo":
            path = os.path.join(self.lab.dir, "stderr.fifo")
            os.mkfifo(path)
            # Our reading end first, so the daemon's open does not wait; our
            # own writing end (a description of its own) fills the FIFO.
            self.reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            self.filler = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            self.proc = self.lab.spawn("vipproxy", ["/bin/sh", "-c", 'exec "$@" 2>"$0"', path] + argv)
            self.read = lambda: os.read(self.reader, 65536)
            self.fill = lambda chunk: os.write(self.filler, chunk)
        else:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.addCleanup(ours.close)
            self.addCleanup(theirs.close)
            ours.setblocking(False)
            fd = theirs.fileno()
            self.proc = self.lab.spawn("vipproxy", ["/bin/sh", "-c", f'exec "$@" 2>&{fd}', "sh"] + argv,
                                       pass_fds=(fd,))
            self.read = lambda: ours.recv(65536)
            # Sent on the daemon's end (kept open here): fills our receive
            # queue and its send buffer, as a journald that stopped reading.
            self.fill = lambda chunk: theirs.send(chunk, socket.MSG_DONTWAIT)
        self.addCleanup(self.lab.close)
        self.got = b""
        self.slowest = 0.0

    def drain(self):
        """Reads what the daemon wrote (and our filler)."""
        while True:
            try:
                b = self.read()
            except (BlockingIOError, InterruptedError):
                return
            if not b:
                return
            self.got += b

    def fill_up(self):
        n, chunk = 0, b"F" * 4096
        while True:
            try:
                n += self.fill(chunk)
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

    def run_case(self, kind):
        self.start(kind)
        L.wait_until(lambda: self.backend() == "e", 20, "backend up")
        self.slowest = 0.0
        self.drain()
        self.got = b""
        filled = self.fill_up()
        self.assertGreater(filled, 0)
        L.log(f"{kind}: standard error filled with {filled} bytes; the daemon now cannot write a byte")
        # The control thread goes on: checks see the backend go and come back,
        # a reload is applied, /status answers throughout.
        self.rest.set_role("replica")
        L.wait_until(lambda: self.backend() is None, 10, "the check to see the backend turn replica")
        self.rest.set_role("primary")
        L.wait_until(lambda: self.backend() == "e", 10, "the check to see the backend primary again")
        self.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: self.status()["reloads"]["applied"] >= 1, 10, "the SIGHUP reload")
        self.assertEqual(L.echo(self.port), b"ping")
        self.assertIsNone(self.proc.poll(), "the daemon exited")
        # The old sink held the thread until the stream was read; 3 s leaves
        # room for the whole-machine stalls of 600-800 ms seen on the CI machine.
        self.assertLess(self.slowest, 3.0, "/status was slow while standard error was full")
        # Nothing of it reached the stream yet (it is still full of ours).
        # The reader comes back: the held lines come out by themselves.
        self.drain()
        try:
            L.wait_until(lambda: (self.drain(), b"SIGHUP" in self.got)[1], 10,
                         "the held-back lines after the reader came back")
        finally:
            L.log(f"{kind}: written after the reader came back:\n"
                  f"{self.got.replace(b'F', b'').decode(errors='replace')}")
        text = self.got.replace(b"F", b"").decode(errors="replace")
        at = [text.find(s) for s in ("backend p/e is DOWN", "backend p/e is UP", "SIGHUP:")]
        self.assertTrue(0 <= at[0] < at[1] < at[2], f"lines out of order or missing:\n{text}")
        self.assertNotIn("dropped", text)
        metrics = L.metrics(self.admin)
        self.assertIn("vipproxy_log_messages_dropped_total 0", metrics)

    def test_fifo(self):
        self.run_case("fifo")

    def test_stream_socket(self):
        self.run_case("socket")


if __name__ == "__main__":
    testmain.main()
