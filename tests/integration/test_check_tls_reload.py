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
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402
from tls_endpoint import TlsEndpoint, self_signed  # noqa: E402


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
