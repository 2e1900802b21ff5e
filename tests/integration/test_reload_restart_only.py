#!/usr/bin/python3
"""A SIGHUP that changes what only a restart applies keeps the running value.

`threads`, `node`, `vrrp_rt_priority` and `admin.listen` are set once at
start (README, "SIGHUP"). A reload that changes them applies the rest of the
file, logs a warning per key, and leaves the running value in place, also in
`/status`; the next SIGHUP with the same file warns again, because the
running value still differs from the file's. vrrp_rt_priority used to be
taken into the running configuration: `/status` showed a priority the
control thread did not run with, and the next reload said "unchanged".

The kernel data path is loaded at start or never: a reload that sets
`data_path: kernel` on a daemon that did not load it is applied, and its
sessions use splice with the reason logged and in `/status`.
"""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402

RESTART_ONLY = ("threads", "node", "vrrp_rt_priority", "admin.listen")


class ReloadRestartOnly(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-reloadrestart")
        self.addCleanup(self.lab.close)
        self.rest = L.Standin(self.lab, "node1", "primary")
        self.port, self.admin, self.other_admin = L.free_port(), L.free_port(), L.free_port()
        self.good = L.proxy_yaml("p", self.port, [("node1", self.rest.port)], [self.rest.port], self.admin)
        self.vp = L.Vipproxy(self.lab, self.good)
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"] == "node1", 20, "backend up")

    def hup(self, applied):
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"] == {"applied": applied, "failed": 0}, 10,
                     f"reload {applied} applied")

    def warnings(self, key):
        return self.vp.log(400).count(f"SIGHUP: {key} changed; it takes effect at the next restart")

    def test_restart_only_keys_keep_the_running_value(self):
        before = L.status(self.admin)
        self.assertEqual(before["node"], "it")
        self.assertEqual(before["control_thread"]["vrrp_rt_priority"], 0)
        changed = (self.good.replace("node: it", "node: other").replace("threads: 2", "threads: 3")
                   .replace(f"127.0.0.1:{self.admin}", f"127.0.0.1:{self.other_admin}")
                   .replace("rise: 1", "rise: 2"))
        changed = "vrrp_rt_priority: 10\n" + changed
        with open(self.vp.config, "w") as f:
            f.write(changed)
        self.hup(1)
        after = L.status(self.admin)
        self.assertEqual(after["node"], "it")
        self.assertEqual(after["control_thread"]["vrrp_rt_priority"], 0,
                         "the control thread still runs with the priority it started with")
        self.assertIn("check.rise 1 -> 2", self.vp.log(100), "the rest of the file is applied")
        for key in RESTART_ONLY:
            self.assertEqual(self.warnings(key), 1, key)
        # The same file again: the running values still differ from it.
        self.hup(2)
        for key in RESTART_ONLY:
            self.assertEqual(self.warnings(key), 2, key)
        self.assertEqual(L.status(self.admin)["control_thread"]["vrrp_rt_priority"], 0)

    def test_data_path_kernel_without_the_kernel_path(self):
        # The kernel path is loaded at start only, and only for a proxy set
        # to kernel then: a reload that sets data_path kernel is applied (the
        # rest of the file with it), its sessions use splice, and the log and
        # /status say why. Before, the reload was refused whole ("needs
        # cap_net_admin ... restart to apply") for a capability the proxy
        # could not use; with a vrrp section (which keeps cap_net_admin) it
        # was applied and the proxy went on with splice without a word.
        self.assertFalse(L.status(self.admin)["kernel_path"]["available"])
        changed = (self.good.replace("    backends:", "    data_path: kernel\n    backends:")
                   .replace("rise: 1", "rise: 2"))
        with open(self.vp.config, "w") as f:
            f.write(changed)
        self.hup(1)
        st = L.status(self.admin)
        self.assertIn("check.rise 1 -> 2", self.vp.log(100), "the rest of the file is applied")
        self.assertEqual(st["proxies"][0]["data_path"], "kernel")
        why = st["kernel_path"]["why_not"]
        self.assertIn("no proxy had data_path kernel at start", why)
        self.assertIn(f"SIGHUP: proxy p: data_path kernel: the kernel path is not available ({why}); its sessions "
                      "use splice", self.vp.log(100))


class SecretsReadableWarning(unittest.TestCase):
    """A file holding the admin token or a VRRP password that every user can
    read is warned about at start and, since a reload reads it anew (it may
    have been replaced with the wrong mode), at every SIGHUP; a chmod o-r
    silences the next one. The warning used to be given at start only."""

    WARNING = "holds a password or token and is readable by every user"

    def test_warned_at_start_and_at_each_reload(self):
        lab = L.Lab("vipproxy-reloadsecrets")
        self.addCleanup(lab.close)
        rest = L.Standin(lab, "node1", "primary")
        y = L.proxy_yaml("p", L.free_port(), [("node1", rest.port)], [rest.port], L.free_port())
        y = y.replace("admin:\n", "admin:\n  token: s3cret-token\n")
        umask = os.umask(0o022)  # the file is written 0644
        try:
            vp = L.Vipproxy(lab, y)
        finally:
            os.umask(umask)
        count = lambda: vp.log(400).count(self.WARNING)  # noqa: E731
        unchanged = lambda: vp.log(400).count("unchanged")  # noqa: E731
        L.wait_until(lambda: count() == 1 and "ready:" in vp.log(400), 20, "the warning at start")
        vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: unchanged() == 1, 10, "the first SIGHUP")
        self.assertEqual(count(), 2, "warned again at the reload")
        os.chmod(vp.config, 0o640)
        vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: unchanged() == 2, 10, "the second SIGHUP")
        self.assertEqual(count(), 2, "no warning once the file is not readable by others")


if __name__ == "__main__":
    testmain.main()
