#!/usr/bin/python3
"""check.tls.cert_file/key_file: a Patroni whose REST API requires a client
certificate (`restapi: verify_client: required`), on loopback with the built
daemon and a TLS check endpoint in this process that refuses any client
without a certificate of its client CA.

Asserted:
- without cert_file the check fails with a TLS error whose reason says a
  client certificate is wanted; the backend is not eligible;
- with cert_file (certificate and key in one PEM, HAProxy's `crt`) and SIGHUP
  the backend becomes eligible, and the endpoint saw that certificate;
- the certificate renewed in place (same path, same configuration file) and
  SIGHUP: the endpoint sees the new one (as `systemctl reload` after a
  rotation); then removed and SIGHUP: the one loaded before stays, logged;
- a key_file that does not match the certificate: the check fails with a
  reason naming the file, logged once, the daemon alive;
- `vipproxy doctor` asks a TLS check (and GET /patroni) as the daemon does:
  without the client certificate FAIL naming it, with it OK and the
  Patroni version read (before: "TLS check not probed by doctor"); its
  client key readable by every user: WARN.

Before, check.tls had no client certificate: such a cluster could not be
checked at all (every backend down).
"""
import hashlib
import os
import shutil
import signal
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402
from tls_endpoint import TlsEndpoint, openssl, self_signed  # noqa: E402


def client_ca(directory):
    key, cert = os.path.join(directory, "client-ca.key"), os.path.join(directory, "client-ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", cert, "-days", "1", "-subj", "/CN=test client CA")
    return key, cert


def client_cert(directory, name, ca_key, ca_cert):
    """A client certificate of the CA: (key path, cert path, DER fingerprint)."""
    key, csr, cert = (os.path.join(directory, name + ext) for ext in (".key", ".csr", ".pem"))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/CN=" + name)
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", "1", "-extfile", ext)
    with open(cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return key, cert, hashlib.sha256(der).hexdigest()


class CheckTlsClientCert(unittest.TestCase):
    def setUp(self):
        if not shutil.which("openssl"):
            self.skipTest("no openssl command")
        self.lab = L.Lab("vipproxy-check-tls-client-cert")
        self.addCleanup(self.lab.close)
        d = self.lab.dir
        server_key, self.server_cert = self_signed(d, "server")
        ca_key, ca_cert = client_ca(d)
        self.one = client_cert(d, "one", ca_key, ca_cert)
        self.two = client_cert(d, "two", ca_key, ca_cert)
        self.tls = TlsEndpoint(server_key, self.server_cert, client_ca=ca_cert)
        self.addCleanup(self.tls.close)
        self.listen, self.admin = L.free_port(), L.free_port()

    def yaml(self, extra=""):
        text = L.proxy_yaml("pg", self.listen, [("a", L.free_port())], [self.tls.port], self.admin,
                            check_extra=f"tls: {{ca_file: {self.server_cert}, server_name: localhost{extra}}}")
        return text.replace("path: /primary", "path: /replica")

    def backend(self):
        return L.status(self.admin)["proxies"][0]["backends"][0]

    def write_config(self, vp, text):
        with open(vp.config + ".tmp", "w") as f:
            f.write(text)
        os.replace(vp.config + ".tmp", vp.config)

    def combined(self, name, key, cert):
        """HAProxy's crt: the certificate and its key in one PEM, written in place."""
        path = os.path.join(self.lab.dir, name)
        with open(path + ".tmp", "w") as out:
            for part in (cert, key):
                with open(part) as f:
                    out.write(f.read())
        os.chmod(path + ".tmp", 0o600)
        os.replace(path + ".tmp", path)
        return path

    def test_required_client_certificate_and_its_renewal(self):
        vp = L.Vipproxy(self.lab, self.yaml(), name="vp")
        L.wait_until(lambda: self.backend()["check"]["checks"] >= 2, 20, "checks")
        check = self.backend()["check"]
        self.assertEqual(check["last_outcome"], "tls_error", check)
        self.assertIn("client certificate", check["detail"])
        self.assertIn("check.tls.cert_file", check["detail"])
        self.assertFalse(self.backend()["eligible"])

        key, cert, one_fp = self.one
        crt = self.combined("client.pem", key, cert)
        self.write_config(vp, self.yaml(f", cert_file: {crt}"))
        vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: self.backend()["eligible"], 10, "the backend eligible with the client certificate")
        self.assertEqual(self.tls.seen(), one_fp)

        key, cert, two_fp = self.two
        self.combined("client.pem", key, cert)  # renewed in place
        vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: self.tls.seen() == two_fp, 10, "the renewed client certificate presented")
        self.assertTrue(self.backend()["eligible"])

        # Unreadable at a reload with the settings unchanged: the certificate
        # loaded before stays (a reload never makes things worse), logged.
        os.remove(crt)
        vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: "client certificate loaded before stay" in vp.log(200), 10, "the unreadable file logged")
        self.assertIn(f"cannot read cert_file {crt}", vp.log(200))
        checks = self.backend()["check"]["checks"]
        L.wait_until(lambda: self.backend()["check"]["checks"] >= checks + 3, 10, "more checks")
        self.assertTrue(self.backend()["eligible"])
        self.assertEqual(self.backend()["check"]["last_outcome"], "ok")
        self.assertEqual(self.tls.seen(), two_fp)
        self.assertTrue(vp.alive())

    def test_a_key_that_does_not_match_is_refused_clearly(self):
        _, cert, _ = self.one
        wrong_key, _, _ = self.two
        vp = L.Vipproxy(self.lab, self.yaml(f", cert_file: {cert}, key_file: {wrong_key}"), name="vp")
        L.wait_until(lambda: self.backend()["check"]["checks"] >= 3, 20, "checks")
        check = self.backend()["check"]
        self.assertEqual(check["last_outcome"], "tls_error", check)
        self.assertIn(f"the key in {wrong_key} does not match the certificate in {cert}", check["detail"])
        self.assertFalse(self.backend()["eligible"])
        self.assertIsNone(self.tls.seen())
        # The setup error once (and the DOWN transition), not a line per check.
        logged = vp.log(400).count("does not match the certificate")
        self.assertLessEqual(logged, 3, vp.log(400))  # and the start's Patroni version probe
        checks = self.backend()["check"]["checks"]
        L.wait_until(lambda: self.backend()["check"]["checks"] >= checks + 3, 10, "more checks")
        self.assertEqual(vp.log(400).count("does not match the certificate"), logged, vp.log(400))
        self.assertTrue(vp.alive())

    def test_doctor_asks_the_tls_check_as_the_daemon_does(self):
        # Before, `vipproxy doctor` only said "TLS check not probed by
        # doctor" (and the Patroni version unknown) for a TLS check: a
        # Patroni with TLS on its REST API got no preflight at all. It now
        # asks through the daemon's own check code: a missing client
        # certificate fails the same way, and with one the check and the
        # Patroni version are read.
        self.tls.patroni_version = "4.0.4"
        config = os.path.join(self.lab.dir, "doctor.yaml")

        def doctor(extra=""):
            with open(config, "w") as f:
                f.write(self.yaml(extra))
            r = subprocess.run([L.VIPPROXY, "doctor", "--config", config, "--no-adverts", "--etcd", "127.0.0.1:1",
                                "--patroni-config", os.path.join(self.lab.dir, "absent-patroni.yml")],
                               capture_output=True, text=True, timeout=60)
            lines = {x.split(":", 1)[0][5:]: x for x in r.stdout.splitlines() if x[:5] in ("OK   ", "WARN ", "FAIL ")}
            return r, lines

        r, lines = doctor()
        self.assertNotIn("not probed", r.stdout)
        self.assertTrue(lines["check pg/a"].startswith("FAIL "), r.stdout)
        self.assertIn(f"OPTIONS https://127.0.0.1:{self.tls.port}/replica unreachable", lines["check pg/a"])
        self.assertIn("client certificate", lines["check pg/a"])
        self.assertTrue(lines["patroni pg/a"].startswith("WARN "), r.stdout)
        self.assertIn("version unknown", lines["patroni pg/a"])

        key, cert, fp = self.one
        r, lines = doctor(f", cert_file: {cert}, key_file: {key}")
        self.assertNotIn("not probed", r.stdout)
        self.assertRegex(lines["check pg/a"], rf"^OK   check pg/a: OPTIONS https://127\.0\.0\.1:{self.tls.port}/replica "
                                              r"answers 200 \(passes, ", r.stdout)
        self.assertRegex(lines["patroni pg/a"], r"^OK   patroni pg/a: Patroni 4\.0\.4 ", r.stdout)
        self.assertEqual(self.tls.seen(), fp)
        # The client key: readable by every user is a WARN naming it.
        os.chmod(key, 0o600)
        r, lines = doctor(f", cert_file: {cert}, key_file: {key}")
        self.assertTrue(lines["check key pg"].startswith("OK   "), r.stdout)
        os.chmod(key, 0o644)
        r, lines = doctor(f", cert_file: {cert}, key_file: {key}")
        self.assertTrue(lines["check key pg"].startswith("WARN "), r.stdout)
        self.assertIn(f"{key} (the TLS check's client key) is readable by every user of this host (mode 0644)",
                      lines["check key pg"])


if __name__ == "__main__":
    testmain.main()
