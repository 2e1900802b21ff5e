#!/usr/bin/python3
"""`vipproxy import` as users run it: the guide's haproxy.cfg and
keepalived.conf in, YAML on stdout, notes on stderr; the YAML must pass
`vipproxy --check-config`. Needs no privileges and no network.

Environment: VIPPROXY_BIN (the built binary), VIPPROXY_SOURCE_DIR (repo root).
"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import testmain  # noqa: E402

ROOT = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BIN = os.environ.get("VIPPROXY_BIN", os.path.join(ROOT, "build", "vipproxy"))
GUIDE = os.path.join(ROOT, "tests", "fixtures", "guide")
IMPORT = os.path.join(ROOT, "tests", "fixtures", "import")


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)


class ImporterCli(unittest.TestCase):
    def import_and_check(self, haproxy=None, keepalived=None, node=None):
        args = ["import"]
        if haproxy:
            args += ["--haproxy", haproxy]
        if keepalived:
            args += ["--keepalived", keepalived]
        if node:
            args += ["--node", node]
        r = run(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(r.stdout)
            path = f.name
        try:
            c = run("--check-config", path)
            self.assertEqual(c.returncode, 0, f"{c.stdout}{c.stderr}\n--- yaml:\n{r.stdout}")
        finally:
            os.unlink(path)
        return r

    def test_guide_catalog01(self):
        hap = os.path.join(GUIDE, "haproxy.cfg")
        r = self.import_and_check(hap, os.path.join(GUIDE, "keepalived-catalog01.conf"), "catalog01")
        self.assertIn("node: catalog01", r.stdout)
        self.assertIn("proxies: [postgres]", r.stdout)
        self.assertIn(f"{hap}:12: 'timeout server 30s' not translated", r.stderr)
        for line in r.stderr.splitlines():  # one item per line, each "file:line: ..."
            self.assertRegex(line, r"^\S+:\d+: ")

    def test_guide_catalog02(self):
        r = self.import_and_check(os.path.join(GUIDE, "haproxy.cfg"),
                                  os.path.join(GUIDE, "keepalived-catalog02.conf"), "catalog02")
        self.assertIn("priority: 50", r.stdout)
        self.assertIn("state: backup", r.stdout)

    def test_other_shapes(self):
        self.import_and_check(os.path.join(IMPORT, "patroni-haproxy.cfg"),
                              os.path.join(IMPORT, "unicast-keepalived.conf"))
        self.import_and_check(os.path.join(IMPORT, "modern-haproxy.cfg"))
        self.import_and_check(keepalived=os.path.join(GUIDE, "keepalived-catalog01.conf"))

    def test_unreadable_and_unparseable(self):
        r = run("import", "--haproxy", "/nonexistent/haproxy.cfg")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/haproxy.cfg", r.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("vrrp_instance VI_1 {\n    state MASTER\n")
            path = f.name
        try:
            r = run("import", "--keepalived", path)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"{path}:1: ", r.stderr)
        finally:
            os.unlink(path)
        self.assertEqual(run("import").returncode, 2)


if __name__ == "__main__":
    testmain.main()
