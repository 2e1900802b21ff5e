#!/usr/bin/python3
"""A SIGHUP while the file is still being written changes nothing.

An editor or tool that writes the file in place (truncate, then write; nano,
`cat >`, many configuration tools) leaves a prefix on disk until it is done.
A SIGHUP that came meanwhile (a `systemctl reload` from another shell, a tool
that reloads on its own) read that prefix, and a prefix cut at the end of a
line is a valid file: before, the daemon applied it, here removing a backend
(with another cut: a proxy, or the whole vrrp section and its VIPs). The
reload now fails while a process holds the file open for writing, says why,
and the running configuration stays; once the file is saved, the next SIGHUP
reads all of it.
"""
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


class ReloadHalfWritten(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-reloadhalf")
        self.addCleanup(self.lab.close)
        self.rest = [L.Standin(self.lab, "node1", "primary"), L.Standin(self.lab, "node2", "replica")]
        self.port, self.admin = L.free_port(), L.free_port()
        self.whole = L.proxy_yaml("p", self.port, [("node1", self.rest[0].port), ("node2", self.rest[1].port)],
                                  [r.port for r in self.rest], self.admin)
        self.vp = L.Vipproxy(self.lab, self.whole)
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"] == "node1", 20, "backend up")

    def backends(self):
        return [b["name"] for b in L.status(self.admin)["proxies"][0]["backends"]]

    def hup(self, applied, failed):
        """SIGHUP, wait for its outcome, and check it was the one expected."""
        before = L.status(self.admin)["reloads"]
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"] != before, 10, "the reload's outcome")
        self.assertEqual(L.status(self.admin)["reloads"], {"applied": applied, "failed": failed},
                         f"reload outcome; daemon log:\n{self.vp.log(10)}")

    def test_a_file_open_for_writing_is_not_applied(self):
        self.assertEqual(self.backends(), ["node1", "node2"])
        # The prefix up to the second backend is a valid file of one backend.
        cut = self.whole.index("      - name: node2")
        prefix, rest = self.whole[:cut], self.whole[cut:]
        part = os.path.join(self.lab.dir, "part.yaml")
        with open(part, "w") as f:
            f.write(prefix)
        out = subprocess.run([L.VIPPROXY, "--check-config", part], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(self.vp.config, "r+") as writer:
            writer.truncate(0)
            writer.write(prefix)
            writer.flush()
            self.hup(applied=0, failed=1)
            self.assertEqual(self.backends(), ["node1", "node2"], "the half-written file was applied")
            log = self.vp.log(20)
            self.assertIn("reload failed, keeping the running configuration", log)
            self.assertIn(f"{self.vp.config}: the file is open for writing by another process", log)
            writer.write(rest)
        # Saved: read whole (the same file as the running one).
        self.hup(applied=1, failed=1)
        self.assertEqual(self.backends(), ["node1", "node2"])
        self.assertIn(f"SIGHUP: {self.vp.config} unchanged", self.vp.log(20))


if __name__ == "__main__":
    testmain.main()
