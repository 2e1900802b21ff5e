#!/usr/bin/python3
"""scripts/demo's picture (scripts/lab.d/timeline_plot.py) drawn from run
records without the lab: a synthetic run whose numbers are known, and the
records of real demo runs kept in tests/fixtures/demo/ (demo-vipproxy.json:
`scripts/demo` on 2026-12-02, the guide's Patroni timings and VRRPv2 1 s, on
the 2-core development machine). Asserted: the SVG
is written and parses; it has one writes line per node, a fault line per
scenario, one shaded window per outage, the VIP holder bars of each node and
a band where nobody held the VIP; the per-second rates are what the
acknowledgements say; several runs (as for vipproxy beside
haproxy-keepalived) draw into one picture with the same elements each.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
sys.path.insert(0, os.path.join(SOURCE_DIR, "scripts", "lab.d"))
FIXTURES = os.path.join(SOURCE_DIR, "tests", "fixtures", "demo")

try:
    import matplotlib  # noqa: F401
    HAVE_MPL = True
except ImportError:
    HAVE_MPL = False

import scenarios as S  # noqa: E402  (imports nothing of the lab's on import)
import timeline_plot as T  # noqa: E402  (imports matplotlib only when drawing)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testmain  # noqa: E402


def synthetic_run():
    """Two scenarios at 20 writes/s: a switchover (catalog01 -> catalog02,
    1.5 s outage, VIP follows after a 0.8 s gap with no holder) and a fault
    from which writes never resume."""
    acks = {"catalog01": [], "catalog02": []}
    t = 10.0
    while t < 20.0:                       # scenario 1, before the fault
        acks["catalog01"].append(round(t, 3))
        t += 0.05
    t = 21.5
    while t < 30.0:                       # after the 1.5 s outage
        acks["catalog02"].append(round(t, 3))
        t += 0.05
    t = 40.0
    while t < 45.0:                       # scenario 2 until its fault
        acks["catalog02"].append(round(t, 3))
        t += 0.05
    return {
        "version": 1, "frontend": "vipproxy", "title": "synthetic", "started": "2025-01-01 00:00", "end": 60.0,
        "scenarios": [
            {"name": "1. planned switchover", "fault": 20.0, "writer": [10.0, 30.0],
             "outages": [[20.0, 21.5]], "outage_s": 1.5, "missing": 0},
            {"name": "2. something fatal", "fault": 45.0, "writer": [40.0, 55.0],
             "outages": [[45.0, None]], "outage_s": None, "missing": None},
        ],
        "acks": acks,
        "vip": [[0.0, ["catalog01"]], [20.4, []], [21.2, ["catalog02"]], [50.0, ["catalog01", "catalog02"]]],
        "events": [[20.0, "fault: planned switchover"]],
    }


def ids(svg_path):
    root = ET.parse(svg_path).getroot()
    return [e.get("id") for e in root.iter() if e.get("id")]


class RateSeries(unittest.TestCase):
    def test_rates_inside_windows_only(self):
        run = synthetic_run()
        xs, ys = T.rate_series(run["acks"]["catalog01"], [(10.0, 30.0)])
        rates = dict(zip(xs, ys))
        self.assertEqual(rates[10.0], 20)       # 20 writes in [10, 11)
        self.assertEqual(rates[19.0], 20)
        self.assertEqual(rates[20.0], 0)        # the outage and after: nothing on catalog01
        self.assertTrue(ys[-1] != ys[-1])       # NaN: the line stops at the window's end
        xs, ys = T.rate_series(run["acks"]["catalog02"], [(10.0, 30.0), (40.0, 55.0)])
        self.assertIn(40.0, xs)
        nan_at = [x for x, y in zip(xs, ys) if y != y]
        self.assertEqual(nan_at, [30.0, 55.0])  # no line between the writer's runs

    def test_vip_spans(self):
        spans = T.vip_spans(synthetic_run())
        self.assertEqual(spans[0], (0.0, 20.4, ["catalog01"]))
        self.assertEqual(spans[1], (20.4, 21.2, []))
        self.assertEqual(spans[-1], (50.0, 60.0, ["catalog01", "catalog02"]))


class Record(unittest.TestCase):
    def test_demo_record_from_scenario_results(self):
        """What run_scenario() returns (writer.py's JSON inside) becomes the
        record: times relative to t0, servers named by node, outages closed."""
        t0 = 1000.0
        writer = {"t0": 1010.0, "t_end": 20.0, "outages": [{"start": 9.9, "seconds": 1.4, "from": "10.88.1.151/32",
                                                             "to": "10.88.1.152/32"}],
                  "acks_by_server": {"10.88.1.151/32": [0.05, 9.9], "10.88.1.152/32": [11.3, 11.35]}}
        results = [{"name": "1. planned switchover", "fault_at": 1020.0, "outage": 1.4, "missing": [],
                    "writer": writer, "outages": writer["outages"]},
                   {"name": "3. primary node death", "fault_at": 1050.0, "outage": None, "missing": None,
                    "missing_after_rejoin": [7, 8],
                    "writer": {"t0": 1045.0, "t_end": 9.0, "acks_by_server": {}},
                    "outages": [{"start": 5.0, "seconds": None}]}]
        vip = [(990.0, ["catalog01"]), (1021.0, []), (1021.5, ["catalog02"])]
        rec = S.demo_record("vipproxy", t0, 1100.0, results, vip, [(995.0, "before"), (1020.0, "fault")])
        self.assertEqual(rec["version"], 1)
        self.assertEqual(rec["end"], 100.0)
        self.assertEqual(rec["acks"], {"catalog01": [10.05, 19.9], "catalog02": [21.3, 21.35]})
        s1, s3 = rec["scenarios"]
        self.assertEqual(s1["fault"], 20.0)
        self.assertEqual(s1["writer"], [10.0, 30.0])
        self.assertEqual(s1["outages"], [[19.9, 21.3]])
        self.assertEqual(s1["missing"], 0)
        self.assertEqual(s3["outages"], [[50.0, None]])
        self.assertIsNone(s3["missing"])
        self.assertEqual(s3["missing_after_rejoin"], 2)
        self.assertEqual(rec["vip"], [[0.0, ["catalog01"]], [21.0, []], [21.5, ["catalog02"]]])
        self.assertEqual(rec["events"], [[20.0, "fault"]])


@unittest.skipUnless(HAVE_MPL, "python3-matplotlib is not installed (scripts/deps installs it)")
class Draw(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vipproxy-timeline-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def check_elements(self, found, run, prefix=""):
        nodes = T.nodes_of(run)
        for n in nodes:
            if run["acks"].get(n):
                self.assertIn(f"{prefix}writes-{n}", found)
        for k, s in enumerate(run["scenarios"], 1):
            self.assertIn(f"{prefix}fault-{k}", found, s["name"])
            for m in range(1, len(s["outages"]) + 1):
                self.assertIn(f"{prefix}outage-{k}-{m}", found)
        holders = {h for _, hs in run["vip"] for h in hs}
        for h in holders:
            self.assertIn(f"{prefix}vip-{h}", found)

    def test_synthetic(self):
        run = synthetic_run()
        out = T.draw(run, os.path.join(self.dir, "synthetic.svg"))
        self.assertTrue(os.path.getsize(out) > 10000)
        found = ids(out)
        self.check_elements(found, run)
        self.assertIn("vip-none-1", found)          # the 0.8 s with no VIP holder
        self.assertNotIn("outage-1-2", found)
        self.assertIn("outage-2-1", found)           # the unresolved one is drawn too
        with open(out) as f:
            text = f.read()
        self.assertIn("1.50 s", text)                # the outage is labelled with its length
        self.assertIn("writes did not resume", text)
        self.assertIn("1. planned switchover", text)

    def test_recorded_runs_side_by_side(self):
        recorded = sorted(glob.glob(os.path.join(FIXTURES, "demo-*.json")))
        self.assertTrue(recorded, f"no recorded demo run in {FIXTURES}")
        runs = []
        for p in recorded:
            with open(p) as f:
                runs.append(json.load(f))
            self.assertEqual(runs[-1]["version"], 1)
            self.assertGreaterEqual(len(runs[-1]["scenarios"]), 4, p)
        for p, run in zip(recorded, runs):
            out = T.draw(run, os.path.join(self.dir, os.path.basename(p) + ".svg"))
            self.check_elements(ids(out), run)
        # Side by side with the synthetic run (as a person puts the vipproxy
        # and haproxy-keepalived runs together), through the CLI.
        synth = os.path.join(self.dir, "synthetic.json")
        with open(synth, "w") as f:
            json.dump(synthetic_run(), f)
        both = os.path.join(self.dir, "both.svg")
        r = subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "scripts", "lab.d", "timeline_plot.py"),
                            recorded[0], synth, "-o", both], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), both)
        found = ids(both)
        self.check_elements(found, runs[0], prefix="r1-")
        self.check_elements(found, synthetic_run(), prefix="r2-")
        self.assertEqual(len(found), len(set(found)), "duplicate ids in the SVG")

if __name__ == "__main__":
    testmain.main()
