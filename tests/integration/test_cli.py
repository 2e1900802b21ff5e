#!/usr/bin/python3
"""The daemon's command line and start-up choices. The command line as
operators of keepalived, nginx and HAProxy type it: `-t`/`--check-config`
with FILE, or without it and the file of `-c`/`--config` (`keepalived -t -f
FILE`, `haproxy -c -f FILE`), or alone for
the default file (`nginx -t`). `-t -c FILE` used to check a file named "-c".
The workers of `threads: 0`: one per CPU of the daemon's affinity. On
loopback; needs no privileges.
"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lab as L  # noqa: E402
import testmain  # noqa: E402

VALID = """proxies:
  - name: pg
    listen: 127.0.0.1:5433
    backends: [{name: a, address: 127.0.0.1:5432}]
"""


def run(*args):
    return subprocess.run([L.VIPPROXY, *args], capture_output=True, text=True, timeout=60)


class CheckConfig(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="vipproxy-cli-")
        self.addCleanup(tmp.cleanup)
        d = tmp.name
        self.good, self.bad = os.path.join(d, "good.yaml"), os.path.join(d, "bad.yaml")
        with open(self.good, "w") as f:
            f.write(VALID)
        with open(self.bad, "w") as f:
            f.write(VALID.replace("backends", "backendz"))

    def test_every_spelling_checks_the_file_meant(self):
        for args in (["-t", self.good], ["--check-config", self.good], [f"--check-config={self.good}"],
                     ["-t", "-c", self.good], ["--check-config", "--config", self.good], ["-c", self.good, "-t"],
                     [f"--config={self.good}", "--check-config"]):
            r = run(*args)
            self.assertEqual(r.returncode, 0, f"{args}: {r.stdout}{r.stderr}")
            self.assertIn(f"{self.good}: OK", r.stdout, args)
        for args in (["-t", self.bad], ["-t", "-c", self.bad], ["-c", self.bad, "--check-config"]):
            r = run(*args)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stdout}{r.stderr}")
            self.assertIn(f"{self.bad}:4:", r.stderr, args)
            self.assertIn("backendz", r.stderr, args)

    def test_without_a_file_the_default_is_checked(self):
        r = run("-t")
        if os.path.exists("/etc/vipproxy/vipproxy.yaml"):
            self.skipTest("/etc/vipproxy/vipproxy.yaml exists here: its validity is not this test's to know")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("/etc/vipproxy/vipproxy.yaml", r.stderr)


class WorkerThreads(unittest.TestCase):
    """`threads: 0` starts one worker per CPU the daemon may run on (its
    affinity, as HAProxy's nbthread), not per CPU of the machine: under
    `taskset -c 0` (or systemd's CPUAffinity=, a container's cpuset) it used
    to start a worker per core, all on the one allowed."""

    def test_threads_zero_follows_the_affinity(self):
        if len(os.sched_getaffinity(0)) < 2:
            self.skipTest("one CPU here: the affinity and the machine agree")
        lab = L.Lab("vipproxy-affinity")
        self.addCleanup(lab.close)
        rest = L.Standin(lab, "be", "primary")
        admin = L.free_port()
        y = L.proxy_yaml("p", L.free_port(), [("be", L.free_port())], [rest.port], admin, threads=0)
        config = os.path.join(lab.dir, "vipproxy.yaml")
        with open(config, "w") as f:
            f.write(y)
        cpu = min(os.sched_getaffinity(0))
        lab.spawn("vipproxy", ["taskset", "-c", str(cpu), L.VIPPROXY, "--config", config])
        L.wait_until(lambda: "listening on" in lab.logtail("vipproxy", 50), 20, "the daemon listening")
        self.assertIn("1 threads)", lab.logtail("vipproxy", 50))


if __name__ == "__main__":
    testmain.main()
