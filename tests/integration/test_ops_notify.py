#!/usr/bin/python3
"""The daemon under a systemd-like supervisor, and the tools people use on it,
all on loopback (no PID-1 systemd needed, docs/lab-notes.md "systemd"):

- Type=notify: with NOTIFY_SOCKET pointing at a datagram socket this test
  listens on, READY=1 arrives only once the proxy listener accepts and every
  backend has had its first check (one check endpoint answers slowly, so a
  READY sent too early would be caught), with a STATUS= line; WATCHDOG=1
  follows when WATCHDOG_USEC is set; STOPPING=1 on SIGTERM.
- `vipproxy status` against the running daemon shows both backends with their
  role and check result; --json is the /status document; an unreachable
  endpoint exits 1 with a clear message.
- `vipproxy doctor` on the same config: verdict lines, etcd member count from
  an etcd members-API stand-in (two members: WARN), exit status.

Environment: VIPPROXY_BIN (the built binary), VIPPROXY_SOURCE_DIR.
"""
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402

SLOW_CHECK = 0.6  # seconds the slow REST endpoint takes to answer (check timeout: 1s)


class SlowRest:
    """A Patroni REST endpoint that answers 200 after SLOW_CHECK seconds."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.first_reply_at = None
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, c):
        try:
            c.settimeout(5)
            c.recv(4096)
            time.sleep(SLOW_CHECK)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            if self.first_reply_at is None:
                self.first_reply_at = time.monotonic()
            c.shutdown(socket.SHUT_WR)
            c.recv(1)
        except OSError:
            pass
        finally:
            c.close()


class EtcdStandin(http.server.BaseHTTPRequestHandler):
    """etcd's v3 gateway: POST /v3/cluster/member/list with two members."""
    members = 2

    def do_POST(self):  # noqa: N802
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        if self.path != "/v3/cluster/member/list":
            self.send_error(404)
            return
        body = json.dumps({"header": {"cluster_id": "1"}, "members": [
            {"ID": str(i), "name": f"db{i}", "clientURLs": [f"http://192.168.1.15{i}:2379"]}
            for i in range(1, self.members + 1)]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def run(*args, timeout=60):
    return subprocess.run([L.VIPPROXY, *args], capture_output=True, text=True, timeout=timeout)


class OpsNotify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = L.Lab("vipproxy-ops")
        cls.sock_path = os.path.join(cls.lab.dir, "notify.sock")
        cls.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        cls.notify.bind(cls.sock_path)
        cls.messages = []  # (monotonic time, {key: value})
        cls.r2 = L.Standin(cls.lab, "node2", "replica")
        cls.slow = SlowRest()
        cls.port, cls.admin = L.free_port(), L.free_port()
        # Data ports need not exist: status and notify only look at checks.
        cls.pg1, cls.pg2 = L.free_port(), L.free_port()
        y = L.proxy_yaml("postgres", cls.port, [("node1", cls.pg1), ("node2", cls.pg2)],
                         [cls.slow.port, cls.r2.port], cls.admin, interval="300ms")
        cls.t0 = time.monotonic()
        cls.vp = L.Vipproxy(cls.lab, y, env={"NOTIFY_SOCKET": cls.sock_path, "WATCHDOG_USEC": "400000"})
        try:
            cls.ready_at, cls.ready_probe = cls.wait_message("READY", 20, probe=True)
            cls.ready_error = None
        except AssertionError as e:  # reported by the READY tests; status/doctor still run
            cls.ready_at = cls.ready_probe = None
            cls.ready_error = str(e)
        L.wait_until(lambda: all(b["check"]["checks"] > 0 for b in cls.vp.status(cls.admin)["proxies"][0]["backends"]),
                     20, "first checks")

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()
        cls.notify.close()

    @classmethod
    def wait_message(cls, key, timeout, probe=False):
        """Reads datagrams until one carries `key`; with probe=True, checks at
        once (before anything else can change) what READY promises."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cls.notify.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = cls.notify.recv(4096)
            except socket.timeout:
                break
            now = time.monotonic()
            kv = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            cls.messages.append((now, kv))
            if key in kv:
                result = None
                if probe:
                    c = socket.create_connection(("127.0.0.1", cls.port), timeout=2)
                    c.close()
                    result = cls.vp.status(cls.admin)
                return now, result
        raise AssertionError(f"no {key}= within {timeout}s; got {cls.messages}\n{cls.vp.log()}")

    def require_ready(self):
        if self.ready_error:
            self.fail("READY=1 never arrived on NOTIFY_SOCKET (is Daemon::notify_when_ready() called "
                      "from Daemon::run()?): " + self.ready_error)

    def test_01_ready_after_listener_and_first_check_round(self):
        self.require_ready()
        st = self.ready_probe
        checks = {b["name"]: b["check"] for b in st["proxies"][0]["backends"]}
        for name, c in checks.items():
            self.assertGreaterEqual(c["checks"], 1, f"READY before {name}'s first check: {c}")
            self.assertNotEqual(c["last_outcome"], "none")
        # The slow endpoint takes SLOW_CHECK s: READY cannot come earlier.
        self.assertGreaterEqual(self.ready_at - self.t0, SLOW_CHECK * 0.9,
                                "READY=1 arrived before the slow check could have answered")
        self.assertIsNotNone(self.slow.first_reply_at)
        self.assertGreaterEqual(self.ready_at, self.slow.first_reply_at)

    def test_02_status_line(self):
        self.require_ready()
        ready = [kv for _, kv in self.messages if "READY" in kv]
        self.assertTrue(ready)
        status = [kv["STATUS"] for _, kv in self.messages if "STATUS" in kv]
        self.assertTrue(status, self.messages)
        self.assertIn("backends eligible", status[0])

    def test_03_watchdog_pings(self):
        self.require_ready()
        self.wait_message("WATCHDOG", 5)

    def test_10_status_table(self):
        r = run("status", "--admin", f"127.0.0.1:{self.admin}")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        print(out)
        self.assertIn("Node: it", out)
        lines = out.splitlines()
        row1 = next(line for line in lines if "node1" in line and f"127.0.0.1:{self.pg1}" in line)
        row2 = next(line for line in lines if "node2" in line and f"127.0.0.1:{self.pg2}" in line)
        self.assertIn("primary", row1)
        self.assertIn("UP", row1)
        self.assertIn("L7 OK 200", row1)
        self.assertIn(" ms", row1)
        self.assertIn("—", row2)
        self.assertIn("DOWN", row2)
        self.assertIn("L7 wrong status 503", row2)
        prow = next(line for line in lines if line.startswith("| postgres ") and f"127.0.0.1:{self.port}" in line)
        self.assertIn("node1", prow)
        self.assertIn("VRRP: no instances configured", out)

    def test_11_status_json_and_config(self):
        r = run("status", "--admin", f"127.0.0.1:{self.admin}", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["node"], "it")
        self.assertEqual([b["name"] for b in doc["proxies"][0]["backends"]], ["node1", "node2"])
        # Without --admin the address comes from the config's admin.listen.
        r = run("status", "--config", self.vp.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("node2", r.stdout)

    def test_12_status_unreachable(self):
        r = run("status", "--admin", f"127.0.0.1:{L.free_port()}")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach the admin endpoint", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_20_doctor(self):
        EtcdStandin.members = 2
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EtcdStandin)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            etcd = f"127.0.0.1:{srv.server_address[1]}"
            r = run("doctor", "--config", self.vp.config, "--etcd", etcd)
            print(r.stdout, r.stderr)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            out = r.stdout
            self.assertRegex(out, r"(?m)^OK   config: .* is valid")
            self.assertRegex(out, r"(?m)^OK   check postgres/node1: OPTIONS http://127\.0\.0\.1:\d+/primary answers 200")
            self.assertRegex(out, r"(?m)^OK   check postgres/node2: .* answers 503 \(reachable")
            self.assertRegex(out, r"(?m)^WARN etcd members: 2 member\(s\)")
            # The running daemon's admin endpoint (no token configured here).
            self.assertRegex(out, rf"(?m)^OK   admin endpoint: http://127\.0\.0\.1:{self.admin}/status answers "
                                  r"\(vipproxy .*, node ")
            EtcdStandin.members = 3
            r = run("doctor", "--config", self.vp.config, "--etcd", etcd)
            self.assertRegex(r.stdout, r"(?m)^OK   etcd members: 3 members")
        finally:
            srv.shutdown()
            srv.server_close()
        # No etcd to ask: "unknown", still not a failure.
        patroni = os.path.join(self.lab.dir, "patroni.yml")
        with open(patroni, "w") as f:
            f.write(f"scope: x\netcd3:\n  hosts:\n  - 127.0.0.1:{L.free_port()}\n  - 127.0.0.1:{L.free_port()}\n")
        r = run("doctor", "--config", self.vp.config, "--patroni-config", patroni)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout, r"(?m)^WARN etcd members: unknown .* lists 2 host")

    def test_21_doctor_fails(self):
        bad = os.path.join(self.lab.dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write("node: x\nproxies: [\n")
        r = run("doctor", "--config", bad)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"(?m)^FAIL config: ")
        # A check endpoint nobody listens on is a FAIL.
        y = L.proxy_yaml("p", L.free_port(), [("gone", L.free_port())], [L.free_port()], L.free_port())
        path = os.path.join(self.lab.dir, "gone.yaml")
        with open(path, "w") as f:
            f.write(y)
        r = run("doctor", "--config", path, "--etcd", f"127.0.0.1:{L.free_port()}")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertRegex(r.stdout, r"(?m)^FAIL check p/gone: .* unreachable: connect: Connection refused")
        # No daemon behind that config's admin.listen: a warning, not a failure.
        self.assertRegex(r.stdout, r"(?m)^WARN admin endpoint: http://127\.0\.0\.1:\d+/status does not answer")

    def test_99_stopping_on_sigterm(self):
        self.vp.proc.send_signal(signal.SIGTERM)
        self.wait_message("STOPPING", 10)
        self.assertEqual(self.vp.proc.wait(15), 0, self.vp.log())


if __name__ == "__main__":
    testmain.main()
