#!/usr/bin/python3
"""Planned switchover through vipproxy vs HAProxy + keepalived, same lab, same
settings (3 etcd members, the guide's Patroni timings unless --fast-dcs,
asynchronous replication unless --synchronous): brings the lab up with each
frontend in turn, runs N switchovers (back and forth) with the writer and an
old idle session, prints one JSON object per switchover and a summary table.
Not a CTest test (it measures; tests/e2e/RESULTS.md records its output).

  tests/e2e/compare_switchover.py [--rounds 3] [--fast-dcs] [--synchronous] [--frontends vipproxy,haproxy-keepalived]
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lab.d"))
import scenarios as S  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fast-dcs", action="store_true")
    ap.add_argument("--synchronous", action="store_true")
    ap.add_argument("--frontends", default="vipproxy,haproxy-keepalived")
    a = ap.parse_args()
    summary = {}
    for fe in a.frontends.split(","):
        lab = S.Lab()
        tl = S.Timeline()
        rows = []
        try:
            lab.up("--frontend", fe, "--etcd-members", "3", *(["--fast-dcs"] if a.fast_dcs else []),
                   *(["--synchronous"] if a.synchronous else []))
            for i in range(a.rounds):
                leader, _ = lab.wait_steady(sync=a.synchronous)
                other = [h for h in S.CATALOGS if h != leader][0]
                res = S.run_scenario(lab, tl, f"{fe} switchover {i + 1}", f"cmp_{i}",
                                     lambda: lab.switchover(leader, other),
                                     check=lambda: lab.sessions_on(leader))
                row = {"frontend": fe, "round": i + 1, "outage": res["outage"], "missing": len(res["missing"] or []),
                       "read_only_errors": res["read_only_errors"], "left_on_demoted": res["check"],
                       "probe": S.describe_probe(res["probe"]), "errors": res["error_kinds"]}
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            lab.down()
        summary[fe] = rows
    print("\nfrontend              outages (s)                 median   read-only errors  missing")
    for fe, rows in summary.items():
        outs = [r["outage"] for r in rows if r["outage"] is not None]
        print(f"{fe:20}  {', '.join(f'{o:.2f}' for o in outs):26}  {statistics.median(outs) if outs else float('nan'):6.2f}"
              f"   {sum(r['read_only_errors'] for r in rows):16}  {sum(r['missing'] for r in rows):7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
