#!/usr/bin/python3
"""A SIGHUP reads check.tls.ca_file again, on loopback with the built daemon
and a TLS check endpoint in this process.

The endpoint's certificate is signed by a CA the bundle does not hold yet:
the check fails (TLS error). The bundle is then renewed in place (same path,
same configuration file) and the daemon gets SIGHUP, as `systemctl reload`
after a certificate rotation. Asserted: the backend becomes eligible. Then
the bundle is removed and SIGHUP again: the CA loaded before stays, the
backend stays eligible, and the log says why.

Before, ca_file was read once, when the backend's checker was made: an
unchanged file was not even looked at by a reload, and only a restart
trusted the new CA.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


def self_signed(directory, name):
    key, cert = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


class TlsEndpoint:
    """Answers every request with 200 over TLS, then closes (like Patroni)."""

    def __init__(self, key, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        conn.settimeout(5)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as s:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                s.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.stopped = True
        self.sock.close()


class CheckTlsReload(unittest.TestCase):
    def setUp(self):
        if not shutil.which("openssl"):
            self.skipTest("no openssl command")
        self.lab = L.Lab("vipproxy-check-tls-reload")
        self.addCleanup(self.lab.close)
        _, old_cert = self_signed(self.lab.dir, "old")
        self.new_key, self.new_cert = self_signed(self.lab.dir, "new")
        self.bundle = os.path.join(self.lab.dir, "ca.pem")
        shutil.copy(old_cert, self.bundle)
        self.tls = TlsEndpoint(self.new_key, self.new_cert)
        self.addCleanup(self.tls.close)
        self.listen, self.admin = L.free_port(), L.free_port()
        yaml = L.proxy_yaml("pg", self.listen, [("a", L.free_port())], [self.tls.port], self.admin,
                            check_extra=f"tls: {{ca_file: {self.bundle}, server_name: localhost}}")
        self.vp = L.Vipproxy(self.lab, yaml.replace("path: /primary", "path: /replica"), name="vp")

    def backend(self):
        return L.status(self.admin)["proxies"][0]["backends"][0]

    def test_sighup_reads_a_renewed_ca_bundle(self):
        L.wait_until(lambda: self.backend()["check"]["checks"] >= 2, 20, "checks")
        self.assertEqual(self.backend()["check"]["last_outcome"], "tls_error")
        self.assertFalse(self.backend()["eligible"])

        shutil.copy(self.new_cert, self.bundle + ".tmp")
        os.replace(self.bundle + ".tmp", self.bundle)
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: self.backend()["eligible"], 10, "the backend eligible with the renewed CA bundle")

        os.remove(self.bundle)
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: "the CA loaded before stays" in self.vp.log(200), 10, "the unreadable bundle logged")
        checks = self.backend()["check"]["checks"]
        L.wait_until(lambda: self.backend()["check"]["checks"] >= checks + 3, 10, "more checks")
        self.assertTrue(self.backend()["eligible"])
        self.assertEqual(self.backend()["check"]["last_outcome"], "ok")
        self.assertTrue(self.vp.alive())


if __name__ == "__main__":
    testmain.main()
