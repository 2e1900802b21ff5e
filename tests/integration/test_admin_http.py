#!/usr/bin/python3
"""The admin endpoint's HTTP and its clients, on loopback (no namespace, no
root): what a client sends besides one plain GET, what /metrics looks like to
a strict reader of the text format 0.0.4, and what `vipproxy status` and
`vipproxy doctor` make of the endpoint. Hostile floods against the control
thread are test_admin_hostile_netns.py's.

The daemon: one proxy with BACKENDS backends (TCP checks against ports where
nobody listens, so /metrics is some 50 KiB), admin on a free loopback port
with a token.

  1. A pipelined second request (sent once the first answer began to
     arrive) by a client with a small receive buffer: the whole /metrics
     answer arrives, then the close. Before, the daemon closed with the
     second request unread, Linux reset the connection and dropped what of
     the answer it still held: 3,945 of 50,000 bytes, then ECONNRESET.
     A client that goes on sending the rest of a 6 KiB header after its
     431: no reset comes back (before: the reset within milliseconds of the
     FIN, the client's next write EPIPE).
  2. The absolute form of the request target (RFC 9112 §3.2.2) is answered
     like its path (was 404).
     Nothing but GET and HEAD is served (405 with Allow for POST, PUT,
     DELETE, PATCH, an unknown method): the endpoint has no write
     operation. HEAD gives GET's length, HTTP/1.0 is answered in 1.0.
  3. /metrics read strictly: HELP and TYPE once per family, before its
     samples, every sample in its family's block, no series twice, counters
     ending in _total, label values unescaped to the configured names; the
     same through prometheus_client's parser where Debian's
     python3-prometheus-client is installed; consistent with /status (whose
     numbers are JSON integers, booleans, a float latency); after
     a reload that removes backends, their series are gone. The node name
     (free text in the config) with markup in it stays text in the status
     page: JSON-escaped with '<' as \u003c in the embedded document.
  4. `vipproxy status --json` against something that is not the endpoint
     (another HTTP service on the port): exit 1 and a message, not exit 0
     with that service's page on stdout; a service answering no HTTP or a
     cut answer is said as such, not as "cannot reach (is vipproxy
     running?)".
  5. `vipproxy doctor --token-file F` with a config without the token: the
     foreign-routers line reads the daemon's counters with the same token as
     the admin endpoint line. Before, it used admin.token and
     $VIPPROXY_TOKEN only and said "vipproxy does not answer ... (HTTP 401)"
     right under "OK admin endpoint ... answers"; with --admin naming the
     daemon, it read admin.listen of the config instead.
"""
import http.server
import json
import os
import re
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

TOKEN = "admin-http-test-5b0c2f"
BACKENDS = 80
# The one name of the config free of a name's character set (cfg/load.cpp:
# no spaces, nothing else): markup in it must stay text on the status page.
NODE = 'http-test</script><svg/onload="x">\\<!--'


def config(listen, admin, backend_ports, token=TOKEN):
    lines = [f"node: {json.dumps(NODE)}", "threads: 1", "admin:", f"  listen: 127.0.0.1:{admin}"]
    if token:
        lines.append(f"  token: {token}")
    lines += ["proxies:", "  - name: pg", f"    listen: 127.0.0.1:{listen}",
              "    check: {type: tcp, interval: 1s, timeout: 200ms}", "    backends:"]
    for i, port in enumerate(backend_ports):
        lines += [f"      - name: node-{i:02d}.db@site:a", f"        address: 127.0.0.1:{port}"]
    return "\n".join(lines) + "\n"


def read_all(s):
    """Everything until the peer closes: (bytes, the error that ended it or None)."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except OSError as e:
        return data, e
    return data, None


TCP_CLOSE = 7  # include/net/tcp_states.h


def tcp_state(s):
    """tcpi_state of a socket (struct tcp_info's first byte)."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def split_reply(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], fields, body


# A sample line of the text format 0.0.4: name, optional {labels}, value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def strict_parse(text):
    """The exposition format 0.0.4 read strictly: {family: {"type", "help",
    "samples": {(name, labels): value}}}; raises AssertionError on any
    departure (a second HELP/TYPE, a sample outside its family's block, a
    series twice, a bad escape, a counter not ending in _total)."""
    families, current, closed = {}, None, set()
    assert text.endswith("\n"), "the text does not end with a line feed"
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {n}: {line!r}"
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            if current and name != current:
                closed.add(current)
            assert name not in closed, f"{where}: family {name} again after other families"
            f = families.setdefault(name, {"samples": {}})
            key = "help" if kind == "HELP" else "type"
            assert key not in f, f"{where}: a second {kind} for {name}"
            if kind == "TYPE":
                assert not f["samples"], f"{where}: TYPE after samples"
                assert rest in ("counter", "gauge"), where
                if rest == "counter":
                    assert name.endswith("_total"), f"{where}: a counter not named *_total"
            f[key] = rest
            current = name
            continue
        assert not line.startswith("#") and line, f"{where}: unexpected line"
        m = SAMPLE.match(line)
        assert m, f"{where}: not a sample"
        name, labels_text, value = m.group(1), m.group(3), m.group(4)
        assert name == current, f"{where}: sample outside its family's block ({current})"
        labels = []
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = LABEL.match(labels_text, pos)
                assert lm, f"{where}: bad label at {labels_text[pos:]!r}"
                raw = lm.group(2)
                labels.append((lm.group(1), re.sub(r'\\(.)', lambda e: "\n" if e.group(1) == "n" else e.group(1), raw)))
                pos = lm.end()
        key = (name, tuple(sorted(labels)))
        f = families[current]
        assert key not in f["samples"], f"{where}: series twice"
        f["samples"][key] = float(value)
    for name, f in families.items():
        assert "type" in f and "help" in f, f"{name}: no HELP or TYPE"
    return families


def series(families, name):
    """{labels dict as a frozenset: value} of one family."""
    return {frozenset(k[1]): v for k, v in families[name]["samples"].items()}


class AdminHttp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = L.Lab("vipproxy-admin-http")
        cls.listen, cls.admin = L.free_port(), L.free_port()
        cls.backend_ports = [L.free_port() for _ in range(BACKENDS)]  # nobody listens: DOWN
        cls.vp = L.Vipproxy(cls.lab, config(cls.listen, cls.admin, cls.backend_ports), name="vp")
        cls.token_file = os.path.join(cls.lab.dir, "token")
        with open(os.open(cls.token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(TOKEN + "\n")
        L.wait_until(lambda: cls.get("/status")[0].endswith("200 OK"), 20, "the admin endpoint")

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    @classmethod
    def get(cls, target, extra=b""):
        """One request (the token sent), read to the close: (status line, fields, body)."""
        try:
            with socket.create_connection(("127.0.0.1", cls.admin), timeout=5) as s:
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n".encode() +
                          extra + b"\r\n")
                data, err = read_all(s)
        except OSError:
            return "", {}, b""
        return split_reply(data)

    def status(self):
        line, _, body = self.get("/status")
        self.assertTrue(line.endswith("200 OK"), line)
        return json.loads(body)

    def metrics_text(self):
        line, fields, body = self.get("/metrics")
        self.assertTrue(line.endswith("200 OK"), line)
        self.assertEqual(fields["content-type"], "text/plain; version=0.0.4")
        return body.decode("utf-8")

    def cli(self, *args, env=None):
        e = {k: v for k, v in os.environ.items() if k != "VIPPROXY_TOKEN"}
        e.update(env or {})
        return subprocess.run([L.VIPPROXY, *args], capture_output=True, text=True, timeout=60, env=e)

    # ---- 1 ----
    def test_1_pipelined_request_does_not_cut_the_answer(self):
        for attempt in range(3):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(10)
            with s:
                s.connect(("127.0.0.1", self.admin))
                req = f"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
                s.sendall(req)
                # The answer began: the daemon has read the first request,
                # so the second stays in its socket, unread.
                self.assertTrue(s.recv(1, socket.MSG_PEEK))
                s.sendall(req)
                data, err = read_all(s)
            line, fields, body = split_reply(data)
            self.assertTrue(line.endswith("200 OK"), line)
            want = int(fields["content-length"])
            self.assertGreater(want, 40000, "the answer must exceed what the sockets hold")
            self.assertIsNone(err, f"attempt {attempt}: {err} after {len(body)} of {want} bytes")
            self.assertEqual(len(body), want, f"attempt {attempt}")

    def test_1b_a_client_still_sending_after_the_431(self):
        # A 6 KiB header: answered 431 while reading (4 KiB). The client has
        # its answer and the daemon's FIN, and goes on sending the rest of
        # its request, as a client that writes before it reads does: the
        # daemon still reads and drops it, so no reset comes back. Before,
        # it had closed with those bytes unread: a reset, and the client's
        # next write failed (EPIPE).
        with socket.create_connection(("127.0.0.1", self.admin), timeout=10) as s:
            s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 6000)
            data, err = read_all(s)
            self.assertTrue(data.startswith(b"HTTP/1.1 431"), data[:100])
            self.assertIsNone(err)
            # The old daemon's reset followed its FIN within milliseconds
            # (the socket went CLOSE_WAIT -> CLOSE); nothing is to happen
            # here: a window, not a wait for an event.
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                self.assertNotEqual(tcp_state(s), TCP_CLOSE, "the daemon reset the connection after its 431")
                time.sleep(0.01)
            try:
                for _ in range(4):
                    s.sendall(b"a" * 500)
                s.sendall(b"\r\n\r\n")
            except OSError as e:
                self.fail(f"the daemon reset the connection after its 431: {e!r}")

    # ---- 2 ----
    def test_2_absolute_form(self):
        line, fields, body = self.get(f"http://127.0.0.1:{self.admin}/status?x=1")
        self.assertTrue(line.endswith("200 OK"), line)
        self.assertEqual(json.loads(body)["node"], NODE)
        line, _, _ = self.get(f"HTTP://127.0.0.1:{self.admin}/nothing")
        self.assertTrue(line.endswith("404 Not Found"), line)

    def test_2b_read_only(self):
        # Nothing but GET and HEAD: no write operation behind any method or
        # path, and a typo changes nothing.
        for method in ("POST", "PUT", "DELETE", "PATCH", "RELOAD"):
            with socket.create_connection(("127.0.0.1", self.admin), timeout=5) as s:
                s.sendall(f"{method} /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
                line, fields, _ = split_reply(read_all(s)[0])
            self.assertTrue(line.endswith("405 Method Not Allowed"), f"{method}: {line}")
            self.assertEqual(fields["allow"], "GET, HEAD")
        _, get_fields, get_body = self.get("/status")
        with socket.create_connection(("127.0.0.1", self.admin), timeout=5) as s:
            s.sendall(f"HEAD /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
            line, fields, body = split_reply(read_all(s)[0])
        self.assertTrue(line.endswith("200 OK"), line)
        self.assertEqual(body, b"")
        self.assertEqual(int(fields["content-length"]), int(get_fields["content-length"]))
        # HTTP/1.0: answered in 1.0, closed.
        with socket.create_connection(("127.0.0.1", self.admin), timeout=5) as s:
            s.sendall(f"GET /metrics HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
            line, fields, body = split_reply(read_all(s)[0])
        self.assertEqual(line, "HTTP/1.0 200 OK")
        self.assertEqual(len(body), int(fields["content-length"]))

    def test_2c_http11_needs_one_host(self):
        # RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request
        # without Host or with more than one (it was 200). 1.0 needs none.
        for head in ("", "Host: a\r\nHost: b\r\n"):
            with socket.create_connection(("127.0.0.1", self.admin), timeout=5) as s:
                s.sendall(f"GET /status HTTP/1.1\r\n{head}Authorization: Bearer {TOKEN}\r\n\r\n".encode())
                line, _, body = split_reply(read_all(s)[0])
            self.assertTrue(line.endswith("400 Bad Request"), f"{head!r}: {line}")
            self.assertIn(b"Host", body)

    # ---- 3 ----
    def test_3_metrics_read_strictly(self):
        fams = strict_parse(self.metrics_text())
        st = self.status()
        backends = st["proxies"][0]["backends"]
        self.assertEqual(len(backends), BACKENDS)
        # Label values come back as configured; one series per backend.
        up = series(fams, "vipproxy_backend_up")
        self.assertEqual(len(up), BACKENDS)
        for b in backends:
            key = frozenset({("proxy", "pg"), ("backend", b["name"])})
            self.assertIn(key, up)
            self.assertEqual(up[key], 1.0 if b["eligible"] else 0.0)
            self.assertEqual(series(fams, "vipproxy_backend_connect_errors_total")[key], b["connect_errors"])
        self.assertEqual(series(fams, "vipproxy_proxy_sessions_total")[frozenset({("proxy", "pg")})],
                         st["proxies"][0]["counters"]["sessions_total"])
        # Numbers are JSON numbers of the right kind.
        b = backends[0]
        self.assertIs(type(b["eligible"]), bool)
        for k in ("sessions", "sessions_total", "connect_errors"):
            self.assertIs(type(b[k]), int, k)
        for k in ("checks", "failures", "transitions", "http_status"):
            self.assertIs(type(b["check"][k]), int, k)
        self.assertIn(type(b["check"]["latency_ms"]), (int, float))
        self.assertTrue(all(type(v) is int for v in st["admin"].values()), st["admin"])
        results = series(fams, "vipproxy_admin_connections_total")
        self.assertEqual({dict(k)["result"] for k in results},
                         {"served", "unauthorized", "bad_requests", "too_large", "timeouts", "evicted", "refused",
                          "client_closed"})

    def test_3b_metrics_through_prometheus_client(self):
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            self.skipTest("python3-prometheus-client is not installed (scripts/deps installs it)")
        text = self.metrics_text()
        names = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                self.assertNotIn(key, names, f"series twice: {key}")
                names[key] = s.value
        self.assertEqual(len([k for k in names if k[0] == "vipproxy_backend_up"]), BACKENDS)
        self.assertIn(("vipproxy_backend_up", (("backend", "node-07.db@site:a"), ("proxy", "pg"))), names)

    def test_3c_removed_backends_leave_the_metrics(self):
        applied = self.status()["reloads"]["applied"]
        keep = self.backend_ports[:3]
        with open(self.vp.config, "w") as f:
            f.write(config(self.listen, self.admin, keep))
        try:
            self.vp.proc.send_signal(signal.SIGHUP)
            L.wait_until(lambda: self.status()["reloads"]["applied"] == applied + 1, 20, "the reload")
            fams = strict_parse(self.metrics_text())
            self.assertEqual({dict(k)["backend"] for k in series(fams, "vipproxy_backend_up")},
                             {f"node-{i:02d}.db@site:a" for i in range(3)})
            self.assertEqual(series(fams, "vipproxy_reloads_total")[frozenset({("result", "applied")})], applied + 1)
        finally:
            with open(self.vp.config, "w") as f:
                f.write(config(self.listen, self.admin, self.backend_ports))
            self.vp.proc.send_signal(signal.SIGHUP)
            L.wait_until(lambda: self.status()["reloads"]["applied"] == applied + 2, 20, "the reload back")

    def test_3d_status_page_keeps_names_as_text(self):
        line, fields, body = self.get("/")
        self.assertTrue(line.endswith("200 OK"), line)
        page = body.decode("utf-8")
        self.assertIn("script-src 'nonce-", fields["content-security-policy"])
        # The node name rides in the embedded /status with every '<' as
        # \u003c: only the page's own two scripts end.
        self.assertEqual(page.count("</script>"), 2, "a name from the config ended a script element")
        self.assertNotIn("<svg", page)
        embedded = re.search(r'<script type="application/json" id="initial-status">(.*?)</script>', page, re.S)
        self.assertEqual(json.loads(embedded.group(1))["node"], NODE)

    # ---- 4 ----
    def test_4_status_json_wants_the_status_document(self):
        class Other(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"<html>another service</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        srv = http.server.HTTPServer(("127.0.0.1", 0), Other)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            port = srv.server_address[1]
            nocfg = os.path.join(self.lab.dir, "absent.yaml")
            for extra in (["--json"], []):
                r = self.cli("status", "--admin", f"127.0.0.1:{port}", "--config", nocfg, *extra)
                self.assertEqual(r.returncode, 1, f"{extra}: {r.stdout!r} {r.stderr!r}")
                self.assertEqual(r.stdout, "", extra)
                self.assertIn(f"http://127.0.0.1:{port}/status is not the /status JSON", r.stderr)
        finally:
            srv.shutdown()
            srv.server_close()
        # Something that accepts and answers no HTTP, or cuts its answer:
        # said as such, not as "cannot reach ... is vipproxy running?".
        for reply in (b"SSH-2.0-OpenSSH_9.2\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"node\":"):
            ls = socket.create_server(("127.0.0.1", 0))
            port = ls.getsockname()[1]

            def answer(ls=ls, reply=reply):
                c, _ = ls.accept()
                with c:
                    c.recv(65536)
                    c.sendall(reply)
            t = threading.Thread(target=answer, daemon=True)
            t.start()
            try:
                r = self.cli("status", "--json", "--admin", f"127.0.0.1:{port}", "--config",
                             os.path.join(self.lab.dir, "absent.yaml"))
            finally:
                t.join(10)
                ls.close()
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertIn(f"http://127.0.0.1:{port}/status accepted the connection but gave no complete HTTP answer",
                          r.stderr)
        r = self.cli("status", "--json", "--admin", f"127.0.0.1:{self.admin}", "--token-file", self.token_file,
                     "--config", os.path.join(self.lab.dir, "absent.yaml"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["node"], NODE)

    def test_4b_status_while_the_file_is_being_edited(self):
        """The file does not load (a typo not yet reloaded): the daemon runs on
        the one it loaded, and `vipproxy status` shows it, the file's error a
        warning, the admin endpoint and token from its admin section as
        written. It used to print the error only and exit 1."""
        broken = os.path.join(self.lab.dir, "broken.yaml")
        with open(self.vp.config) as f:
            text = f.read()
        with open(broken, "w") as f:
            f.write(text + "threadz: 2\n")
        env = {"VIPPROXY_TOKEN": ""}
        r = self.cli("status", "--json", "--config", broken, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["node"], NODE)
        self.assertIn("threadz", r.stderr)
        self.assertIn("admin section as written", r.stderr)

    # ---- 5 ----
    def test_5_doctor_foreign_routers_use_the_token_file(self):
        # doctor's config: the same admin.listen without the token, and a
        # VRRP instance the running daemon does not have.
        cfg = os.path.join(self.lab.dir, "doctor.yaml")
        with open(cfg, "w") as f:
            f.write(config(self.listen, self.admin, self.backend_ports[:1], token=None) +
                    "vrrp:\n  - name: VI_9\n    interface: lo\n    virtual_router_id: 99\n    priority: 100\n"
                    "    virtual_ipaddresses: [10.88.99.160/24]\n")
        r = self.cli("doctor", "--config", cfg, "--no-adverts", "--etcd", "127.0.0.1:1",
                     "--patroni-config", os.path.join(self.lab.dir, "absent-patroni.yml"),
                     "--token-file", self.token_file)
        self.assertRegex(r.stdout, rf"(?m)^OK   admin endpoint: http://127\.0\.0\.1:{self.admin}/status answers ")
        line = [x for x in r.stdout.splitlines() if "foreign routers VI_9" in x]
        self.assertEqual(len(line), 1, r.stdout)
        self.assertNotIn("does not answer", line[0])
        self.assertIn("runs no instance VI_9", line[0])
        # The same with the daemon named by --admin, the config's admin.listen
        # elsewhere (nobody there): both lines read the daemon at --admin.
        with open(cfg, "w") as f:
            f.write(config(self.listen, L.free_port(), self.backend_ports[:1], token=None) +
                    "vrrp:\n  - name: VI_9\n    interface: lo\n    virtual_router_id: 99\n    priority: 100\n"
                    "    virtual_ipaddresses: [10.88.99.160/24]\n")
        r = self.cli("doctor", "--config", cfg, "--no-adverts", "--etcd", "127.0.0.1:1",
                     "--patroni-config", os.path.join(self.lab.dir, "absent-patroni.yml"),
                     "--admin", f"127.0.0.1:{self.admin}", "--token-file", self.token_file)
        self.assertRegex(r.stdout, rf"(?m)^OK   admin endpoint: http://127\.0\.0\.1:{self.admin}/status answers ")
        line = [x for x in r.stdout.splitlines() if "foreign routers VI_9" in x]
        self.assertEqual(len(line), 1, r.stdout)
        self.assertIn(f"http://127.0.0.1:{self.admin}/status runs no instance VI_9", line[0])


if __name__ == "__main__":
    testmain.main()
