#!/usr/bin/python3
"""The rules every test and lab script of this repository keeps (README,
"How it is built"), checked in the sources, so that a new test cannot
quietly break them:

1. every tests/integration/test_*.py and tests/e2e/test_*.py runs through
   testmain (testmain.main() or testmain.skip_exit()): a test that cannot
   run here exits 77 and CTest shows it as skipped, CI (VIPPROXY_NO_SKIP=1)
   fails it, and a run of no test fails. Plain unittest.main() exits 0 with
   "OK (skipped=1)": passed, run directly; failed, under CTest.
2. no script or test stops processes by name or pattern (pkill, killall):
   on a shared machine that kills other people's daemons. Processes are
   stopped by the PID recorded when they were started.
3. no test turns SIGTERM or SIGHUP into SystemExit (sys.exit in a signal
   handler): unittest records a SystemExit raised in a case as that case's
   error and goes on with the next cases, so a stopped test ran on until
   scripts/test SIGKILLed it and its clean-ups never ran. A stopped test
   raises a KeyboardInterrupt (labkit.stop_on_signals), which unittest
   passes on.

Reads files only; needs nothing.
"""
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import testmain  # noqa: E402

SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def test_modules():
    out = []
    for d in ("tests/integration", "tests/e2e"):
        for name in sorted(os.listdir(os.path.join(SOURCE_DIR, d))):
            if name.startswith("test_") and name.endswith(".py"):
                out.append(os.path.join(d, name))
    return out


def lab_sources():
    """Every script and Python file that starts or stops processes."""
    out = []
    for d in ("scripts", "scripts/lab.d", "tests/integration", "tests/e2e"):
        full = os.path.join(SOURCE_DIR, d)
        for name in sorted(os.listdir(full)):
            path = os.path.join(full, name)
            if os.path.isfile(path) and (name.endswith((".py", ".sh")) or "." not in name):
                out.append(os.path.join(d, name))
    return out


class SuiteRules(unittest.TestCase):
    def test_1_every_test_runs_through_testmain(self):
        modules = test_modules()
        self.assertGreater(len(modules), 30, modules)
        bad = []
        for m in modules:
            text = read(os.path.join(SOURCE_DIR, m))
            main = text.split('if __name__ == "__main__":', 1)
            if len(main) != 2 or not re.search(r"testmain\.(main|skip_exit)\(", main[1]):
                bad.append(m)
            elif re.search(r"unittest\.main\(", main[1]):
                bad.append(m)
        self.assertEqual(bad, [], "tests that do not end in testmain.main() (a skip would not show as skipped)")

    def test_2_nothing_stops_processes_by_name(self):
        # A command: pkill/killall with an argument after it, in a shell
        # line or an argv list ("pkill", ...); prose that names them is fine.
        pattern = re.compile(r"(?<![\w-])(pkill|killall)(\s+[-\w]|[\"']\s*,)")
        bad = []
        for path in lab_sources():
            if path == "tests/integration/test_suite_rules.py":
                continue
            for n, line in enumerate(read(os.path.join(SOURCE_DIR, path)).splitlines(), 1):
                if pattern.search(line.split("#", 1)[0]):
                    bad.append(f"{path}:{n}: {line.strip()}")
        self.assertEqual(bad, [], "processes are stopped by recorded PID, never by name")


    def test_3_no_signal_handler_exits_through_systemexit(self):
        handler = re.compile(r"signal\.signal\(\s*signal\.SIG(TERM|HUP|INT)\s*,\s*lambda[^:]*:\s*(sys\.)?exit\(")
        bad = []
        for path in lab_sources():
            for n, line in enumerate(read(os.path.join(SOURCE_DIR, path)).splitlines(), 1):
                if handler.search(line):
                    bad.append(f"{path}:{n}: {line.strip()}")
        self.assertEqual(bad, [], "a stopped test must raise KeyboardInterrupt (labkit.stop_on_signals)")


if __name__ == "__main__":
    testmain.main()
