"""Shared fixture of the e2e tests: one namespace lab per test module
(scripts/lab up in setUpClass, scripts/lab down in tearDownClass, also on
failure, SIGTERM and exit), and the scenario driver scripts/lab.d/scenarios.py."""
import atexit
import os
import signal
import sys
import unittest

SOURCE = os.environ.get("VIPPROXY_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "scripts", "lab.d"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import scenarios as S  # noqa: E402,F401
import testmain  # noqa: E402,F401  (skips show as skipped in CTest)


def _sigterm(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


class LabCase(unittest.TestCase):
    """Subclasses set LAB_OPTS; tests are numbered (unittest runs them by name)."""
    LAB_OPTS = []
    lab = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("the lab needs root (network namespaces)")
        if "--frontend" not in cls.LAB_OPTS or "vipproxy" in cls.LAB_OPTS:
            binary = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE, "build", "vipproxy"))
            if not os.access(binary, os.X_OK):
                raise unittest.SkipTest(f"{binary} is not built")
            os.environ["VIPPROXY_BIN"] = os.path.abspath(binary)
        signal.signal(signal.SIGTERM, _sigterm)
        signal.signal(signal.SIGHUP, _sigterm)  # a closed terminal: the lab goes down too
        cls.lab = S.Lab()
        cls.tl = S.Timeline()
        atexit.register(cls._down)
        try:
            cls.lab.up(*cls.LAB_OPTS)
        except BaseException:
            # `scripts/lab up` stops what it started when it fails; a failure
            # may also mean another lab is running (someone else's): leave it.
            cls.lab = None
            raise

    @classmethod
    def _down(cls):
        if cls.lab is not None:
            lab, cls.lab = cls.lab, None
            lab.down()

    @classmethod
    def tearDownClass(cls):
        cls._down()

    def report(self, res):
        print(f"\n  [{res['name']}]")
        for line in S.table(res):
            print(line)
        if res.get("check") is not None:
            print(f"    {res['check']}")
        sys.stdout.flush()
