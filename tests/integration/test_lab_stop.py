#!/usr/bin/python3
"""A test that is stopped leaves nothing behind (README, "How it is built":
stopping scripts/test stops what it started). SIGTERM or SIGHUP to a test
process unwinds it as SIGINT does (`stop_on_signals`,
scripts/lab.d/labkit.py),
so its labs' close() runs: the namespace lab (netns.py) stops its processes
and deletes its namespaces, the loopback lab (lab.py) stops its processes
and removes its directory. Before, SIGTERM killed a namespace test outright
and left its five namespaces behind.

Each case runs a child program that builds a lab, starts a process in it,
prints what it made and waits to be stopped; the test sends the child (its
PID only, not its group: the lab must stop its own processes) the signal
and checks that the child exits, and that the namespaces, the process and
the directory are gone.

    /usr/bin/python3 tests/integration/test_lab_stop.py
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netns  # noqa: E402
from netns import wait_until  # noqa: E402
import testmain  # noqa: E402

OCTET = 97  # 10.88.97.0/24: no other test uses it (grep tests/ scripts/ for 10.88.)

CHILD = r"""
import json, sys, threading
sys.path.insert(0, sys.argv[1])
import lab, netns
if sys.argv[2] == "netns":
    l = netns.Lab(third_octet=int(sys.argv[3]))
    l.add_node("a", 2)
    p = l.spawn("idle", "a", ["sleep", "600"])
    made = {"namespaces": list(l.namespaces), "pid": p.pid, "dir": l.dir}
else:
    l = lab.Lab("vipproxy-labstop")
    p = l.spawn("idle", ["sleep", "600"])
    made = {"namespaces": [], "pid": p.pid, "dir": l.dir}
print(json.dumps(made), flush=True)
threading.Event().wait()  # until a signal stops this program
"""


def namespaces():
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in r.stdout.splitlines() if line.strip()}


def is_our_sleep(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read() == b"sleep\x00600\x00"
    except OSError:
        return False


class StoppedTestLeavesNothing(unittest.TestCase):
    def run_and_stop(self, kind, sig):
        child = subprocess.Popen([sys.executable, "-c", CHILD, HERE, kind, str(OCTET)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # If this test fails before its signal, the child is still stopped
        # the way that lets it clean up.
        self.addCleanup(netns.labkit.stop_process, child, signal.SIGTERM, 30)
        line = child.stdout.readline()
        self.assertTrue(line, f"the child built no lab: {child.stderr.read() if child.poll() is not None else ''}")
        made = json.loads(line)
        self.addCleanup(self.remove_leftovers, made)
        # What the child made is there before the signal (`ip netns exec`
        # execs sleep a moment after the child printed its PID).
        wait_until(lambda: is_our_sleep(made["pid"]), 10, f"sleep 600 as PID {made['pid']}")
        self.assertTrue(os.path.isdir(made["dir"]), made)
        self.assertTrue(set(made["namespaces"]) <= namespaces(), made)
        if kind == "netns":
            self.assertGreaterEqual(len(made["namespaces"]), 2, made)  # the bridge's and node a's

        child.send_signal(sig)
        try:
            rc = child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail(f"{kind} lab: still running 30 s after {sig.name}")
        err = child.stderr.read()
        left = set(made["namespaces"]) & namespaces()
        self.assertFalse(left, f"namespaces left after {sig.name}: {sorted(left)}")
        wait_until(lambda: not is_our_sleep(made["pid"]), 10, f"the lab's process {made['pid']} to be gone")
        self.assertFalse(os.path.exists(made["dir"]), f"directory left after {sig.name}: {made['dir']}")
        self.assertNotEqual(rc, 0, f"a stopped test must not pass: {err}")
        self.assertIn(f"stopped by {sig.name}", err)

    @staticmethod
    def remove_leftovers(made):
        """What a lab that failed to clean up left (this test failed then):
        by the names and PID it printed, not by pattern."""
        if is_our_sleep(made["pid"]):
            os.kill(made["pid"], signal.SIGKILL)
        for ns in set(made["namespaces"]) & namespaces():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(made["dir"], ignore_errors=True)

    def test_1_sigterm_stops_a_namespace_lab(self):
        netns.check_ip_netns()
        self.run_and_stop("netns", signal.SIGTERM)

    def test_2_sighup_stops_a_namespace_lab(self):
        netns.check_ip_netns()
        self.run_and_stop("netns", signal.SIGHUP)

    def test_3_sigterm_stops_a_loopback_lab(self):
        self.run_and_stop("loopback", signal.SIGTERM)


if __name__ == "__main__":
    testmain.main()
