#!/usr/bin/python3
"""vipproxy in front of the guide's cluster with Patroni synchronous_mode: true
(3 etcd members, --fast-dcs so that a failover fits the CI budget): each fault
of scripts/demo, asserting what a Bacula Director needs from its catalog:
writes resume, no acknowledged write is lost, no session is left on a demoted
primary, and the VIP is on exactly one node at steady state. One exception is
shown rather than asserted: Patroni 3.0.2 itself losing writes when a cut-off
old primary rejoins (test_3, patroni#2689).

One lab for the whole file (setUpClass/tearDownClass); the tests run in order
(test_0 ... test_4) and each starts from a steady cluster."""
import json
import os
import re
import time
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import LabCase, S, testmain  # noqa: E402


class VipproxySynchronous(LabCase):
    LAB_OPTS = ["--frontend", "vipproxy", "--etcd-members", "3", "--synchronous", "--fast-dcs"]

    def steady(self):
        # Every etcd member healthy too: the node deaths below leave two of
        # three, and a member still rejoining after the previous scenario
        # would make that one (CI once saw the survivor's DCS gone for 60 s,
        # back only when the cut node came back).
        leader, holder = self.lab.wait_steady(timeout=120, sync=True, etcd=True)
        self.assertEqual(self.lab.vip_holders(), [holder], "VIP on exactly one node at steady state")
        return leader, holder

    def assert_no_loss(self, res):
        self.report(res)
        self.assertTrue(res["resumed"], f"writes did not resume after {res['name']}")
        self.assertIsNotNone(res["missing"], "could not read the table back through the VIP")
        self.assertEqual(res["missing"], [], "acknowledged writes missing with synchronous_mode")
        self.assertGreater(res["acked"], 20)

    def survivor_logs(self, node, lines=40):
        """The tails of node's Patroni and vipproxy logs, for a failure message."""
        out = []
        for name in (f"patroni-{node}", f"vipproxy-{node}"):
            try:
                with open(self.lab.path("logs", name + ".log"), errors="replace") as f:
                    tail = f.read().splitlines()[-lines:]
            except OSError as e:
                tail = [str(e)]
            out.append(f"--- {name}.log (last {lines} lines)\n" + "\n".join(tail))
        return "\n".join(out)

    def test_0_status_and_doctor(self):
        """`vipproxy status` and `vipproxy doctor` on the running catalog nodes, as an operator runs them."""
        leader, holder = self.steady()
        binary = os.environ["VIPPROXY_BIN"]
        states = {}
        for node in S.CATALOGS:
            cfg = self.lab.path(node, "vipproxy.yaml")
            r = self.lab.run(node, [binary, "status", "--config", cfg, "--json"])
            self.assertEqual(r.returncode, 0, r.stderr)
            doc = json.loads(r.stdout)
            proxy = doc["proxies"][0]
            self.assertEqual(proxy["current_backend"], leader, f"{node}: new sessions go to the leader")
            roles = {b["name"]: b["eligible"] for b in proxy["backends"]}
            self.assertEqual(roles, {h: h == leader for h in S.CATALOGS}, f"{node}: only the leader is eligible")
            states[node] = doc["vrrp"][0]["state"]
            r = self.lab.run(node, [binary, "status", "--config", cfg])
            self.assertEqual(r.returncode, 0, r.stderr)
            print(f"\n  vipproxy status on {node}:\n" + "\n".join("    " + l for l in r.stdout.splitlines()))
            for name in list(S.CATALOGS) + [states[node]]:
                self.assertIn(name, r.stdout)
        self.assertEqual(states[holder], "MASTER")
        self.assertEqual(sorted(states.values()), ["BACKUP", "MASTER"], "exactly one VRRP master")
        # On the BACKUP node: only a master sends adverts, so that is where the peer is heard.
        backup = [h for h in S.CATALOGS if h != holder][0]
        r = self.lab.run(backup, [binary, "doctor", "--config", self.lab.path(backup, "vipproxy.yaml"),
                                  "--patroni-config", self.lab.path(backup, "patroni.yml"), "--advert-seconds", "3"])
        print(f"\n  vipproxy doctor on {backup}:\n" + "\n".join("    " + l for l in r.stdout.splitlines()))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"OK\b.*etcd members.*3 members")
        self.assertRegex(r.stdout, r"OK\b.*heard ")  # the peer's adverts
        self.check_patroni_version_warnings(r.stdout)

    def check_patroni_version_warnings(self, doctor_out):
        """The lab runs Debian 12's Patroni on etcd3: doctor (DCS from patroni.yml) and each
        daemon's log at start name patroni#2689 and the fixed version when it applies."""
        r = self.lab.run("dirtoha", ["curl", "-s", "-m", "3", f"http://{S.CATALOGS['catalog01']}:8008/patroni"])
        version = json.loads(r.stdout)["patroni"]["version"]
        affected = tuple(int(x) for x in version.split(".")[:3]) < (3, 0, 3)
        for node in S.CATALOGS:
            line = rf"patroni postgres/{node}: Patroni {re.escape(version)}"
            if affected:
                self.assertRegex(doctor_out, rf"WARN\s+{line} with etcd3 has patroni#2689: .*acknowledged.*"
                                             rf"fixed in Patroni 3\.0\.3.*DCS etcd3 from ")
            else:
                self.assertRegex(doctor_out, rf"OK\s+{line} .*no known acknowledged-write-loss defect")
        for node in S.CATALOGS:
            with open(self.lab.path("logs", f"vipproxy-{node}.log")) as f:
                log = f.read()
            for backend in S.CATALOGS:
                if affected:
                    self.assertRegex(log, rf"\[warning\] backend postgres/{backend}: Patroni {re.escape(version)} has "
                                          r"patroni#2689 if its DCS is etcd3: .*fixed in Patroni 3\.0\.3",
                                     f"vipproxy on {node} did not warn about {backend}'s Patroni at start")
                else:
                    self.assertRegex(log, rf"backend postgres/{backend}: Patroni {re.escape(version)} .*no known")

    def test_0_steady_state(self):
        leader, holder = self.steady()
        self.assertIn(leader, S.CATALOGS)
        self.assertEqual(self.lab.primaries(), [leader])
        answer = self.lab.psql("select inet_server_addr()")
        self.assertEqual(S.node_of(answer), leader, "the VIP leads to the primary")

    def test_1_switchover(self):
        leader, _ = self.steady()
        other = [h for h in S.CATALOGS if h != leader][0]
        res = S.run_scenario(self.lab, self.tl, "planned switchover", "e2e_switchover",
                             lambda: self.lab.switchover(leader, other),
                             check=lambda: self.lab.sessions_on(leader))
        self.assert_no_loss(res)
        self.assertEqual(res["ended_on"], other)
        self.assertEqual(res["check"], 0, f"lab sessions left on the demoted {leader}")
        self.assertEqual(res["read_only_errors"], 0,
                         f"a session reached the demoted primary: {res['error_kinds']}")
        p = res["probe"]
        self.assertIsNotNone(p)
        self.assertEqual(p["result"], "connection",
                         f"the old session must fail with a connection error, not: {p}")
        self.assertLess(p["elapsed"], 2.0, "the old session's next query must fail at once")
        new_leader, _ = self.steady()
        self.assertEqual(new_leader, other)

    def test_2_postmaster_crash(self):
        leader, _ = self.steady()

        def crash():
            return f"kill -9 {self.lab.crash_postmaster(leader)}"
        res = S.run_scenario(self.lab, self.tl, "postmaster crash", "e2e_crash", crash)
        self.assert_no_loss(res)
        self.assertEqual(res["probe"]["result"], "connection")
        # Patroni keeps answering 200 on /primary while it restarts PostgreSQL
        # read-only; vipproxy reads its JSON and holds clients until the node
        # is a running primary again (check.expect_role: auto).
        self.assertEqual(res["read_only_errors"], 0,
                         f"a session reached the primary while it was read-only: {res['error_kinds']}")
        self.steady()

    def test_3_primary_node_death(self):
        leader, _ = self.steady()
        other = [h for h in S.CATALOGS if h != leader][0]

        def cut():
            self.lab.link(leader, False)
            return f"{leader}'s switch port down"
        try:
            res = S.run_scenario(self.lab, self.tl, "primary node death", "e2e_nodedeath", cut,
                                 resume_timeout=60)
        finally:
            self.lab.link(leader, True)
        self.assert_no_loss(res)
        self.assertEqual(res["ended_on"], other)
        # The old primary rejoins and the cluster heals by itself. Documented,
        # not asserted: Patroni 3.0.2 (the guide's, etcd3) lets the old leader
        # overwrite the new leader key when it comes back (update_leader puts
        # it without a compare; fixed upstream by patroni#2689). It then takes
        # the primary role back and the writes the new primary acknowledged
        # meanwhile are lost, synchronous_mode or not (non-strict synchronous
        # mode drops the unreachable standby). No frontend can prevent that, so
        # this test, like test_etcd2_quorum, shows it instead of failing on it;
        # any other loss after the rejoin still fails.
        new_leader, _ = self.steady()
        gone = S.missing_now(self.lab, res)
        if new_leader != other:
            self.tl.add(f"PATRONI 3.0.2 DEFECT (patroni#2689): {leader} took the leader key back when it "
                        f"rejoined; {'?' if gone is None else len(gone)} acknowledged writes lost")
            print(f"\n  NOTE: {leader} took the primary role back on rejoining and "
                  f"{'?' if gone is None else len(gone)} acknowledged writes were lost: Patroni 3.0.2 "
                  "etcd3 update_leader (patroni#2689), see tests/e2e/RESULTS.md", flush=True)
        else:
            self.assertEqual(gone, [], f"acknowledged writes lost once {leader} rejoined as a replica")

    def test_4_vip_holder_death(self):
        leader, holder = self.steady()
        if holder == leader:
            other = [h for h in S.CATALOGS if h != leader][0]
            self.lab.switchover(leader, other)
            leader, holder = self.steady()
        self.assertNotEqual(holder, leader)

        def kill():
            # The node goes silent first (no FIN from the killed frontend gets out), as a real node death.
            self.lab.link(holder, False)
            pid = self.lab.proc_pid(f"vipproxy-{holder}")
            os.kill(pid, 9)
            return f"{holder}'s link down, then kill -9 vipproxy {pid}"
        # The outage is the VIP's move (~3 s: the writer's tcp_user_timeout
        # and the backup's Master_Down_Interval) plus Patroni's: the dead node
        # was the synchronous standby, so commits on the leader wait until
        # Patroni drops it, once its member key expires (ttl 10 s, refreshed
        # every loop_wait 2 s) and the next HA loop runs; the dead node may
        # also have been etcd's leader. 3.5-13.3 s in 5 runs on 2026-12-03;
        # CI once saw more than the 30 s given then: the same budget as
        # test_3's node death, and on a miss the message says where each
        # side stood.
        patroni_log = self.lab.path("logs", f"patroni-{leader}.log")
        mark = os.path.getsize(patroni_log) if os.path.exists(patroni_log) else 0
        try:
            res = S.run_scenario(self.lab, self.tl, "VIP holder death", "e2e_vipholder", kill, resume_timeout=60)
            if not res["resumed"]:
                health = self.lab.etcd_health()
                if self.patroni_kept_the_dead_etcd_member(leader, holder, health, patroni_log, mark):
                    # What the frontend owns still holds: the VIP moved to the
                    # survivor. The rest is asserted once the node is back.
                    self.assertIn(leader, self.lab.vip_holders(), "the VIP did not move to the survivor")
                    self.lab.link(holder, True)
                    self.assertEqual(self.missing_on_the_primary(res, 120), [],
                                     "acknowledged writes lost once the cut node came back")
                    return
                self.fail(f"writes did not resume after VIP holder death; primaries now {self.lab.primaries()}, "
                          f"VIP on {self.lab.vip_holders()}, etcd /health {health}\n" + self.survivor_logs(leader))
            self.assert_no_loss(res)
            self.assertEqual(res["ended_on"], leader)
            # The survivor holds the VIP (the dead node's interface keeps a stale copy, unreachable).
            self.assertIn(leader, self.lab.vip_holders())
        finally:
            self.lab.link(holder, True)

    def missing_on_the_primary(self, res, timeout):
        """The scenario's acknowledged writes the primary does not have, read
        from the primary itself (the killed frontend's node keeps a stale copy
        of the VIP), once there is exactly one; None if there is none within
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            prim = self.lab.primaries()
            if len(prim) == 1:
                rows = self.lab.psql(f"select n from {res['table']}", host=S.CATALOGS[prim[0]], port=5432)
                if rows is not None:
                    return sorted(set(res["acked_values"]) - set(int(x) for x in rows.split()))
            time.sleep(1)
        return None

    def patroni_kept_the_dead_etcd_member(self, leader, dead, health, patroni_log, mark):
        """Documented, not asserted: Patroni's etcd3 client can keep asking
        the etcd member that went away with its node instead of the others
        (patroni#3118, reported on 3.2.2 and 3.3.0; patroni#3335, fixed by
        #3338 in 2025), and the primary demotes itself ("DCS is not
        accessible") until that member is back. Seen here and in CI with
        Patroni 3.0.2 (the guide's): the two other etcd members answered
        healthy the whole time, writes came back only with the cut node.
        True when that is what happened: every member but the dead node's
        healthy and the survivor's Patroni saying, since the fault (its log
        from offset `mark`), the DCS is not accessible."""
        if not all(S.etcd_says_healthy(a) for h, a in health.items() if h != dead):
            return False
        try:
            with open(patroni_log, errors="replace") as f:
                f.seek(mark)
                since = f.read()
        except OSError:
            return False
        if "DCS is not accessible" not in since:
            return False
        self.tl.add(f"PATRONI DEFECT (patroni#3118): {leader}'s Patroni lost the DCS with two healthy etcd "
                    f"members ({health}); writes wait for {dead}'s etcd member to come back")
        print(f"\n  NOTE: {leader}'s Patroni kept asking {dead}'s unreachable etcd member and demoted itself "
              "while the other two were healthy (patroni#3118); see tests/e2e/RESULTS.md", flush=True)
        return True


if __name__ == "__main__":
    testmain.main()
