"""unittest.main for CTest: a test that cannot run here must show as skipped,
never as passed (README, "Tests"), and CI must not skip at all.

- every test passed: exit 0;
- a failure or an error: exit 1;
- nothing failed but something was skipped (no root, no namespaces, a package
  missing): exit SKIP_RETURN_CODE, which tests/CMakeLists.txt declares, so
  CTest reports the test as skipped with the reasons printed here;
- VIPPROXY_NO_SKIP=1 (set by scripts/test when run as root, i.e. on CI):
  a skip is a failure;
- no test ran at all: a failure (a file that asserts nothing is a defect).

Used by tests/integration/test_*.py and tests/e2e/test_*.py.
"""
import os
import sys
import unittest

SKIP_RETURN_CODE = 77  # the automake convention; tests/CMakeLists.txt says the same


def exit_code(result, no_skip=None):
    """The process exit code for a unittest result (see the module doc)."""
    if no_skip is None:
        no_skip = os.environ.get("VIPPROXY_NO_SKIP") == "1"
    if not result.wasSuccessful():
        return 1
    if result.skipped:
        return 1 if no_skip else SKIP_RETURN_CODE
    if result.testsRun == 0:
        return 1
    return 0


def main():
    prog = unittest.main(verbosity=2, exit=False)
    r = prog.result
    code = exit_code(r)
    for test, why in r.skipped:
        print(f"SKIPPED {test.id()}: {why}", file=sys.stderr)
    if r.skipped and code == 1 and r.wasSuccessful():
        print("VIPPROXY_NO_SKIP=1: a skipped test fails this run (CI must run every test)", file=sys.stderr)
    if r.testsRun == 0 and not r.skipped:
        print("no test ran", file=sys.stderr)
    sys.stdout.flush()
    sys.exit(code)


def skip_exit(reason):
    """For a script that is not a unittest module: skip it (or fail under
    VIPPROXY_NO_SKIP=1) with `reason`."""
    print(f"SKIPPED: {reason}", file=sys.stderr)
    if os.environ.get("VIPPROXY_NO_SKIP") == "1":
        print("VIPPROXY_NO_SKIP=1: a skipped test fails this run (CI must run every test)", file=sys.stderr)
        sys.exit(1)
    sys.exit(SKIP_RETURN_CODE)
