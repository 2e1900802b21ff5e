#!/usr/bin/python3
"""scripts/demo: the guide's catalog cluster in the namespace lab (etcd x3,
Patroni 3.0 + PostgreSQL 15 on catalog01/catalog02, vipproxy holding the VIP),
a Director stand-in writing a counter through VIP:5433, and four faults:
planned switchover, postmaster crash, primary node death, VIP holder death.
Prints a timeline and a table per scenario, then tears the lab down."""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenarios as S  # noqa: E402
import bacula as B  # noqa: E402


def main():
    ap = argparse.ArgumentParser(prog="scripts/demo")
    ap.add_argument("--keep", action="store_true", help="leave the lab running at the end")
    ap.add_argument("--fast-dcs", action="store_true", help="Patroni ttl 10/loop_wait 2/retry_timeout 3 "
                    "instead of the guide's 30/10/10")
    ap.add_argument("--synchronous", action="store_true", help="Patroni synchronous_mode: true")
    ap.add_argument("--vrrp-v3-fast", action="store_true", help="VRRPv3 with advert_int 0.1 s on both nodes "
                    "(the guide: VRRPv2, 1 s)")
    ap.add_argument("--frontend", choices=["vipproxy", "haproxy-keepalived"], default="vipproxy",
                    help="what holds the VIP and proxies 5433 (default vipproxy)")
    ap.add_argument("--picture-dir", default=os.path.join(S.REPO, "build", "demo"),
                    help="where the run's SVG timeline and its data (JSON) go (default build/demo)")
    a = ap.parse_args()

    def stop(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)

    lab = S.Lab()
    opts = ["--frontend", a.frontend, "--etcd-members", "3"] + (["--fast-dcs"] if a.fast_dcs else []) + \
        (["--synchronous"] if a.synchronous else []) + (["--vrrp-v3-fast"] if a.vrrp_v3_fast else [])
    timing = "ttl 10, loop_wait 2, retry_timeout 3 (--fast-dcs)" if a.fast_dcs else \
        "the guide's ttl 30, loop_wait 10, retry_timeout 10"
    print(f"== scripts/demo: frontend {a.frontend}, 3 etcd members, Patroni {timing}, "
          f"synchronous_mode {'on' if a.synchronous else 'off'}, "
          f"{'VRRPv3 advert_int 0.1 s' if a.vrrp_v3_fast else 'VRRPv2 advert_int 1 s'}\n", flush=True)
    results = []
    ours = False
    t_start = time.monotonic()
    started = time.strftime("%Y-%m-%d %H:%M")
    vip_watch, tl, t_steady = None, None, None
    try:
        lab.up(*opts, keep=a.keep)
        ours = True  # from here on the lab is this run's to tear down
        vip_watch = S.VipWatch(lab)
        vip_watch.start()
        tl = S.Timeline()
        leader, holder = lab.wait_steady(sync=a.synchronous)
        t_steady = time.monotonic()
        tl.add(f"steady: primary {leader}, VIP on {holder}")

        def show(res):
            print(f"\n  [{res['name']}]")
            for line in S.table(res):
                print(line)
            if res.get("check") is not None:
                print(f"    {res['check']}")
            print(flush=True)
            results.append(res)

        # 1. planned switchover
        other = [h for h in S.CATALOGS if h != leader][0]

        def switchover():
            return f"patronictl switchover --force {leader} -> {other}: {lab.switchover(leader, other)}"

        def left_on_demoted():
            n = lab.sessions_on(leader)
            return f"lab client sessions still on the demoted {leader}: {n}"
        show(S.run_scenario(lab, tl, "1. planned switchover", "demo_switchover", switchover, check=left_on_demoted))
        leader, holder = lab.wait_steady(sync=a.synchronous)
        tl.add(f"steady: primary {leader}, VIP on {holder}")

        # 2. postmaster crash
        def crash():
            pid = lab.crash_postmaster(leader)
            return f"kill -9 {pid} (postmaster of {leader}, from its postmaster.pid)"
        show(S.run_scenario(lab, tl, "2. primary's postmaster crash", "demo_crash", crash))
        leader, holder = lab.wait_steady(sync=a.synchronous)
        tl.add(f"steady: primary {leader}, VIP on {holder}")

        # 3. the primary node dies (its cable is pulled: every daemon on it is cut off)
        dead = leader

        def node_death():
            lab.link(dead, False)
            return f"{dead} (primary{', VIP holder' if holder == dead else ''}) cut off: its switch port is down"

        def revive():
            lab.link(dead, True)
            tl.add(f"{dead} reconnected (link up); waiting for it to rejoin as a replica")
        show(S.run_scenario(lab, tl, "3. primary node death", "demo_nodedeath", node_death, restore=revive))
        try:
            leader, holder = lab.wait_steady(timeout=120, sync=a.synchronous)
            tl.add(f"steady: primary {leader}, VIP on {holder}")
            gone = S.missing_now(lab, results[-1])
            results[-1]["missing_after_rejoin"] = gone
            tl.add(f"after {dead} rejoined: {'?' if gone is None else len(gone)} acknowledged writes of scenario 3 "
                   f"missing on the primary {leader}" + (f" ({gone[0]}..{gone[-1]})" if gone else ""))
        except S.LabError as e:
            tl.add(f"not steady after the node came back: {e}")
            leader, holder = lab.primaries()[0], lab.vip_holders()[0]

        # 4. the VIP holder dies while the primary is elsewhere
        if holder == leader:
            other = [h for h in S.CATALOGS if h != leader][0]
            tl.add(f"VIP and primary are both on {leader}: switching the primary to {other} first (not measured)")
            lab.switchover(leader, other)
            leader, holder = lab.wait_steady(sync=a.synchronous)
            tl.add(f"steady: primary {leader}, VIP on {holder}")
        victim = holder
        if victim == leader:
            tl.add(f"the VIP followed the primary to {leader}: this scenario is then a primary node death too")

        def holder_death():
            # A node that dies goes silent at once: its link first, so no FIN
            # or RST from the killed frontend reaches the client (a real power
            # loss sends none; the client learns from its own retransmits).
            lab.link(victim, False)
            killed = []
            for name in (f"vipproxy-{victim}", f"haproxy-{victim}", f"keepalived-{victim}"):
                try:
                    pid = lab.proc_pid(name)
                except S.LabError:
                    continue
                os.kill(pid, 9)
                killed.append(f"{name} {pid}")
            try:
                with open(lab.path(victim, "keepalived-vrrp.pid")) as f:
                    pid = int(f.read().split()[0])
                os.kill(pid, 9)
                killed.append(f"keepalived VRRP child {pid}")
            except (OSError, ValueError):
                pass
            return f"{victim}'s link down, then kill -9 {', '.join(killed)} (primary stays on {leader})"
        show(S.run_scenario(lab, tl, "4. VIP holder death", "demo_vipholder", holder_death))
        holders = lab.vip_holders()
        tl.add(f"VIP configured on {holders}; primary {lab.primaries()}"
               + (f" ({victim} is cut off: the address left on its interface after SIGKILL is unreachable)"
                  if victim in holders else ""))

        # 5. the guide's step 5: the catalog backed up through the VIP (docs/catalog-backup.md)
        print("\n  [5. BackupCatalog through the VIP: client catalog-fd, dump through VIP:5433]", flush=True)
        try:
            bres = B.demo_catalog_backup(lab.state_dir)
            backup, backup_ok = bres["line"], bres["status"] == "T"
        except (B.L.Failure, OSError, subprocess.SubprocessError) as e:
            backup, backup_ok = f"BackupCatalog could not run: {e}", False
        print(f"    {backup}", flush=True)

        print("\n== summary (" + a.frontend + ", " + timing + (", VRRPv3 0.1 s" if a.vrrp_v3_fast else "") + ")")
        print(f"  {'scenario':32} {'outage':>9} {'acked':>6} {'missing':>8}  {'ended on':10} {'old session':28}"
              f" {'read-only errs':>14}")
        for r in results:
            out = f"{r['outage']:.2f}s" if r["outage"] is not None else "none"
            miss = "?" if r["missing"] is None else str(len(r["missing"]))
            if "missing_after_rejoin" in r:
                later = r["missing_after_rejoin"]
                miss += "/" + ("?" if later is None else str(len(later)))
            print(f"  {r['name']:32} {out:>9} {r['acked']:>6} {miss:>8}  {r['ended_on'] or '-':10} "
                  f"{S.describe_probe(r['probe'])[:28]:28} {r['read_only_errors']:>14}")
        if any("missing_after_rejoin" in r for r in results):
            print("  (missing a/b: acknowledged writes missing when writes resumed / once the cut-off node rejoined)")
            # b is Patroni's, not the frontend's: say which defect, from the one table (vipproxy doctor).
            print("  b > 0: the cut-off old primary took the leader key back when it rejoined, and every write the\n"
                  "  new primary had acknowledged meanwhile was lost; no frontend can keep them. vipproxy doctor here:")
            for line in S.patroni_defects(lab) or ["(doctor could not run: see README, 'Which Patroni to run')"]:
                print(f"    {line}")
        print(f"  {backup}")
        print(f"\n  demo took {time.monotonic() - t_start:.0f}s (without install/build)")
        ok = all(r["resumed"] for r in results) and backup_ok
        return 0 if ok else 1
    finally:
        if vip_watch is not None:
            vip_watch.stop()
        if results and t_steady is not None:
            picture(a, timing, started, t_steady, results, vip_watch.samples, tl.events)
        if not ours:
            # `up` failed and cleaned up after itself, or found a lab already
            # running (someone else's): never tear that one down.
            pass
        elif a.keep:
            print("\n--keep: the lab is still running; `scripts/lab status`, `scripts/lab exec NODE CMD`, "
                  "`scripts/lab down` when done", flush=True)
        else:
            print("\n== tearing the lab down", flush=True)
            lab.down()


def picture(a, timing, started, t0, results, vip_samples, events):
    """Writes the run's record (JSON) and its SVG timeline, prints the path."""
    import timeline_plot
    title = (f"scripts/demo, frontend {a.frontend}: Patroni {timing.split(' (')[0]}, "
             f"{'VRRPv3 0.1 s' if a.vrrp_v3_fast else 'VRRPv2 1 s'}"
             f"{', synchronous_mode' if a.synchronous else ''}")
    rec = S.demo_record(a.frontend, t0, time.monotonic(), results, vip_samples, events, title=title,
                        started=started)
    os.makedirs(a.picture_dir, exist_ok=True)
    base = os.path.join(a.picture_dir, f"demo-{a.frontend}-{time.strftime('%Y%m%d-%H%M%S')}")
    with open(base + ".json", "w") as f:
        json.dump(rec, f)
    try:
        timeline_plot.draw(rec, base + ".svg")
    except Exception as e:  # noqa: BLE001 - the demo's own result must still show
        print(f"\n== timeline picture: NOT drawn ({type(e).__name__}: {e}); data in {base}.json", flush=True)
        return
    print(f"\n== timeline picture: {base}.svg\n   (its data: {base}.json; several runs side by side: "
          f"scripts/lab.d/timeline_plot.py A.json B.json -o both.svg)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
