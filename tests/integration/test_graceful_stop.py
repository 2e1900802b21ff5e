#!/usr/bin/python3
"""SIGTERM stops vipproxy gracefully: no new connections are accepted,
established sessions keep working until they end, and sessions still open
after hard_stop_after are closed, then the process exits."""
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


def echo(s, payload=b"ping"):
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(4096)
        if not chunk:
            return None
        got += chunk
    return got


class GracefulStop(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-stop")
        self.rest = L.Standin(self.lab, "rest", "primary")
        self.echo_port = L.echo_backend(self.lab)
        self.port, self.admin = L.free_port(), L.free_port()
        y = L.proxy_yaml("p", self.port, [("e", self.echo_port)], [self.rest.port], self.admin)
        self.vp = L.Vipproxy(self.lab, "hard_stop_after: 3s\n" + y)
        L.wait_until(lambda: self.vp.status(self.admin)["proxies"][0]["current_backend"] == "e", 20, "backend up")

    def tearDown(self):
        self.lab.close()

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def test_sessions_finish_then_exit(self):
        s = self.connect()
        self.assertEqual(echo(s), b"ping")
        self.vp.proc.send_signal(signal.SIGTERM)
        # The listener closes: new clients are refused...
        L.wait_until(lambda: self._refused(), 5, "the listener to close")
        # ...while the established session still works.
        self.assertEqual(echo(s, b"still here"), b"still here")
        self.assertIsNone(self.vp.proc.poll())
        s.close()  # the last session ends: the daemon exits without waiting for the bound
        t0 = time.monotonic()
        self.assertEqual(self.vp.proc.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - t0, 2.5)

    def test_sessions_left_are_closed_after_hard_stop_after(self):
        s = self.connect()
        self.assertEqual(echo(s), b"ping")
        t0 = time.monotonic()
        self.vp.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.vp.proc.wait(timeout=15), 0)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 2.5)  # hard_stop_after: 3s
        self.assertLess(elapsed, 8)
        s.settimeout(5)
        try:
            self.assertIn(s.recv(100), (b"",))  # closed by the proxy
        except ConnectionResetError:
            pass
        s.close()
        self.assertIn("draining 1 sessions", self.vp.log())

    def test_admin_answers_while_sessions_drain(self):
        """The admin endpoint stays while established sessions drain (it
        used to close at SIGTERM): `/status` says stopping and shows what is
        left, `vipproxy status` says so; it closes with the last session."""
        s = self.connect()
        self.assertEqual(echo(s), b"ping")
        self.vp.proc.send_signal(signal.SIGTERM)
        L.wait_until(lambda: self._refused(), 5, "the listener to close")
        st = self.vp.status(self.admin)
        self.assertTrue(st["stopping"])
        self.assertEqual(st["proxies"][0]["sessions_current"], 1)
        r = subprocess.run([L.VIPPROXY, "status", "--admin", f"127.0.0.1:{self.admin}", "--config",
                            os.path.join(self.lab.dir, "absent.yaml")], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Stopping: established sessions drain", r.stdout)
        s.close()
        self.assertEqual(self.vp.proc.wait(timeout=10), 0)

    def test_keepalived_and_haproxy_signals_are_not_fatal(self):
        """SIGUSR1 and SIGUSR2 are what keepalived's operators send for a
        data or stats dump (HAProxy's: soft stop, reload). Their default
        action ends the process at once: as VRRP master that left the VIP on
        the interface with no priority 0 advert. They are logged and ignored."""
        s = self.connect()
        for sig in (signal.SIGUSR1, signal.SIGUSR2):
            self.vp.proc.send_signal(sig)
            L.wait_until(lambda: f"{sig.name} ignored" in self.vp.log(), 5, f"{sig.name} logged")
        self.assertTrue(self.vp.alive(), self.vp.log())
        self.assertEqual(echo(s), b"ping")
        s.close()

    def test_a_check_server_that_does_not_close_does_not_hold_the_stop(self):
        """A check endpoint that answers, then ignores `Connection: close`
        (keeps the connection open): the check's wait for its close, and the
        Patroni version read's, end at SIGTERM. Before, the daemon exited only
        once the check timeout (30 s here) had passed, hard_stop_after 0s or
        not."""
        rest = L.Standin(self.lab, "linger", "linger")
        port, admin = L.free_port(), L.free_port()
        y = L.proxy_yaml("p", port, [("e", self.echo_port)], [rest.port], admin, interval="1s",
                         check_timeout="30s")
        vp = L.Vipproxy(self.lab, "hard_stop_after: 0s\n" + y, name="vp-linger")
        L.wait_until(lambda: vp.status(admin)["proxies"][0]["current_backend"] == "e", 20, "backend up")
        # The check and GET /patroni answered; their connections stay open.
        L.wait_until(lambda: rest.stats()["requests"] >= 2, 10, "two requests answered")
        self.assertEqual(rest.stats()["connections"], 0, "the stand-in closed a connection")
        t0 = time.monotonic()
        vp.proc.send_signal(signal.SIGTERM)
        self.assertEqual(vp.proc.wait(timeout=25), 0)
        self.assertLess(time.monotonic() - t0, 10, "the stop waited for the check timeout (30 s)")
        # Closed with a FIN, nothing left unread: no traceback in Patroni's log.
        L.wait_until(lambda: rest.stats()["connections"] >= 2, 10, "the stand-in saw the closes")
        st = rest.stats()
        self.assertEqual(st["clean_close"], st["connections"], st)

    def _refused(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return False
        except ConnectionRefusedError:
            return True


class InheritedProcessState(unittest.TestCase):
    """What a parent other than systemd may leave to the daemon across exec
    (systemd resets both; a shell, cron or a supervisor may not): a signal
    mask, closed standard descriptors."""

    def setUp(self):
        self.lab = L.Lab("vipproxy-sigmask")
        self.rest = L.Standin(self.lab, "rest", "primary")
        self.echo_port = L.echo_backend(self.lab)
        self.port, self.admin = L.free_port(), L.free_port()
        self.config = os.path.join(self.lab.dir, "vipproxy.yaml")
        with open(self.config, "w") as f:
            f.write(L.proxy_yaml("p", self.port, [("e", self.echo_port)], [self.rest.port], self.admin))

    def tearDown(self):
        self.lab.close()

    def start(self, preexec_fn):
        self.proc = self.lab.spawn("vipproxy", [L.VIPPROXY, "--config", self.config], preexec_fn=preexec_fn)
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"] == "e", 20, "backend up")

    def test_sighup_reloads_and_sigterm_stops(self):
        """Blocked signals (a script that waits in sigwait(), Python's
        pthread_sigmask) stay blocked in the daemon unless it unblocks them."""
        blocked = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGRTMIN + 5}
        self.start(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, blocked))
        self.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"]["applied"] == 1, 10, "the SIGHUP reload")
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=10), 0)

    def test_closed_standard_descriptors_are_not_reused(self):
        """Started with 0, 1 and 2 closed (`>&- 2>&-`, a supervisor that
        closes them): the first sockets the daemon opens must not take those
        numbers, or log lines go into a socket and every script and hook
        inherits it as its stdout or stderr."""
        self.start(lambda: [os.close(fd) for fd in (0, 1, 2)])
        for fd in (0, 1, 2):
            self.assertEqual(os.readlink(f"/proc/{self.proc.pid}/fd/{fd}"), "/dev/null", fd)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=10), 0)


class SignalsWhileStarting(unittest.TestCase):
    """SIGHUP, SIGUSR1 and SIGUSR2 sent while the daemon still reads its file
    (before its handlers exist) used to end it at once, their default
    action. The file is a FIFO the test writes in two halves, so the signals
    surely arrive while it is read. They are held and acted on once the
    daemon runs; the held SIGHUP's reload, before the first check round, does
    not tell systemd READY=1 early: the first READY=1 is the one with the
    check round's STATUS line."""

    def setUp(self):
        self.lab = L.Lab("vipproxy-early-signals")
        self.addCleanup(self.lab.close)
        self.rest = L.Standin(self.lab, "rest", "primary")
        self.echo_port = L.echo_backend(self.lab)
        self.port, self.admin = L.free_port(), L.free_port()
        self.notify_path, self.notify = L.notify_socket(self.lab)

    @staticmethod
    def open_files(pid):
        out = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
        return out

    def test_signals_during_the_config_read_are_acted_on_later(self):
        fifo = os.path.join(self.lab.dir, "vipproxy.yaml")
        os.mkfifo(fifo)
        text = L.proxy_yaml("p", self.port, [("e", self.echo_port)], [self.rest.port], self.admin).encode()
        # Opened read-write (Linux), so it never blocks and the daemon finds
        # a writer whenever it opens the file: its reads wait for the text.
        w = os.open(fifo, os.O_RDWR)
        try:
            proc = self.lab.spawn("vipproxy", [L.VIPPROXY, "--config", fifo],
                                  env=dict(os.environ, NOTIFY_SOCKET=self.notify_path))
            os.write(w, text[:len(text) // 2])
            L.wait_until(lambda: fifo in self.open_files(proc.pid), 10, "the daemon reading its file")
            for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
                proc.send_signal(sig)
            os.write(w, text[len(text) // 2:])
        finally:
            os.close(w)
        L.wait_until(lambda: proc.poll() is not None or "SIGUSR2 ignored" in self.lab.logtail("vipproxy", 100),
                     20, "the held signals acted on")
        self.assertIsNone(proc.poll(), self.lab.logtail("vipproxy"))
        log = self.lab.logtail("vipproxy", 100)
        self.assertIn("SIGUSR1 ignored", log)
        # The held SIGHUP reloads the file: the FIFO, with no writer now,
        # reads as empty, and the reload fails keeping what runs.
        L.wait_until(lambda: sum(L.status(self.admin)["reloads"].values()) == 1, 20, "the held SIGHUP's reload")
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"] == "e", 20, "backend up")
        self.notify.settimeout(10)
        while True:
            msg = self.notify.recv(4096).decode()
            if "READY=1" in msg:
                break
        self.assertIn("STATUS=", msg, "the first READY=1 is the check round's, not the reload's")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=10), 0)


if __name__ == "__main__":
    testmain.main()
