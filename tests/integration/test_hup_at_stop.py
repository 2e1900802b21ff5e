#!/usr/bin/python3
"""A SIGHUP that arrives with a SIGTERM is not applied once the stop began.

The control thread takes signals from asio: the two handlers (SIGTERM's and
SIGHUP's) can be queued together when both signals arrive while the thread
is busy. stop() cancels the SIGHUP wait, but a wait already completed is not
cancelled, and the reload ran after the stop had begun: a proxy added (its
checks started) while the daemon drained, RELOADING=1 and READY=1 sent to
systemd after STOPPING=1, and a VRRP instance the file adds or restarts
launched after the instances had sent priority 0 (it kept the control loop,
and so the daemon, alive until the unit's TimeoutStopSec).

Made deterministic here: the file is replaced by a FIFO, so a first SIGHUP
holds the control thread in its read; SIGTERM then SIGHUP are sent and seen
delivered; the FIFO gets a file that adds proxy "two" (the first reload,
applied before the stop) while the path already holds a file that adds
"three". Asserted: the daemon exits 0, "three" is never applied and no
SIGHUP line follows "stopping" in its log (before: "SIGHUP: proxy three
added" after "stopping").
"""
import os
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


def pending(pid, sig):
    """Whether `sig` is pending for the process or one of its threads."""
    bit = 1 << (sig - 1)
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & bit:
                        return True
        except OSError:
            pass
    return False


def holds_open(pid, path):
    """Whether the process has `path` open, compared as a file (device and
    inode), not by the name /proc/PID/fd shows: that name is the file's path
    seen from the reader's root, and for a process in another mount namespace
    (`ip netns exec` makes one) under a chroot it is not `path`: in
    scripts/kernel-vm's guest, chrooted into the shared root, it read
    /newroot/tmp/..., and test_hup_at_stop_netns waited for 10 s for a FIFO
    the daemon had open all along."""
    want = os.stat(path)
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
            return True
    return False


class HupAtStop(unittest.TestCase):
    def test_sighup_queued_behind_sigterm_is_not_applied(self):
        lab = L.Lab("vipproxy-hupstop")
        self.addCleanup(lab.close)
        rest = L.Standin(lab, "echo", "primary")
        echo_port, listen, admin = L.free_port(), L.free_port(), L.free_port()
        y = L.proxy_yaml("echo", listen, [("e1", echo_port)], [rest.port], admin, interval="100ms")
        vp = L.Vipproxy(lab, y)
        L.wait_until(lambda: vp.status(admin), 20, "admin endpoint")

        def adding(name):
            more = L.proxy_yaml(name, L.free_port(), [("e1", echo_port)], [rest.port], admin, interval="100ms")
            return y + more[more.index(f"  - name: {name}"):]

        fifo = vp.config + ".fifo"
        os.mkfifo(fifo)
        w = os.open(fifo, os.O_RDWR)  # a writer: the daemon's read waits for data instead of reading nothing
        self.addCleanup(lambda: os.close(w) if w is not None else None)
        os.replace(fifo, vp.config)
        pid = vp.proc.pid
        vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: holds_open(pid, vp.config), 10, "the first reload reading the FIFO")
        for sig in (signal.SIGTERM, signal.SIGHUP):
            vp.proc.send_signal(sig)
            L.wait_until(lambda: not pending(pid, sig), 10, f"{sig.name} delivered")
        with open(vp.config + ".tmp", "w") as f:
            f.write(adding("three"))
        os.replace(vp.config + ".tmp", vp.config)
        os.write(w, adding("two").encode())
        os.close(w)
        w = None
        L.wait_until(lambda: vp.proc.poll() is not None, 20, "the daemon exits")
        log = vp.log(200)
        self.assertEqual(vp.proc.returncode, 0, log)
        self.assertIn("SIGHUP: proxy two added", log)
        stopping = log.index("] stopping")
        self.assertNotIn("SIGHUP", log[stopping:], log)
        self.assertNotIn("three", log, log)


if __name__ == "__main__":
    testmain.main()
