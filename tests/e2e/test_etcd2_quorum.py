#!/usr/bin/python3
"""The guide exactly: two etcd members, one per catalog node (--etcd-members 2).
Documents what happens when a catalog node dies: etcd loses quorum, so there
is NO failover, and the surviving primary demotes itself ("DCS is not
accessible"): the catalog is unwritable until the node comes back, whatever
the frontend does. This is why the lab (and vipproxy's docs) put a third etcd
member on the Director host. The test asserts the outage rather than
pretending the two-member layout survives it."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import LabCase, S, testmain  # noqa: E402


class TwoEtcdMembers(LabCase):
    LAB_OPTS = ["--frontend", "vipproxy", "--etcd-members", "2", "--fast-dcs"]

    def test_0_doctor_warns_about_two_members(self):
        leader, _ = self.lab.wait_steady(timeout=120)
        r = self.lab.run(leader, [os.environ["VIPPROXY_BIN"], "doctor", "--config",
                                  self.lab.path(leader, "vipproxy.yaml"), "--patroni-config",
                                  self.lab.path(leader, "patroni.yml"), "--no-adverts"])
        print(f"\n  vipproxy doctor on {leader}:\n" + "\n".join("    " + l for l in r.stdout.splitlines()))
        self.assertRegex(r.stdout, r"WARN\b.*etcd members.*2 member\(s\).*losing either node loses quorum")

    def test_replica_node_death_loses_quorum(self):
        leader, holder = self.lab.wait_steady(timeout=120)
        replica = [h for h in S.CATALOGS if h != leader][0]
        m = S.Measure(self.lab, self.tl, "e2e_quorum", probe=False)
        self.tl.add("--- two etcd members: the replica node dies")
        m.start()
        t_fault = time.monotonic()
        self.lab.link(replica, False)
        self.tl.add(f"fault: {replica} (replica, etcd member) cut off; {leader} stays up with 1 of 2 etcd members")
        try:
            # ttl 10 / retry_timeout 3: the primary gives up its role well within 25 s.
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline and self.lab.primaries():
                time.sleep(0.5)
            self.assertEqual(self.lab.primaries(), [], "with etcd quorum lost no node may stay primary")
            self.tl.add(f"no primary any more ({leader} demoted itself: DCS not accessible)")
            self.assertTrue(any(t > t_fault for t in m.first_errors), "the writer must be failing")
            time.sleep(5)
            self.assertFalse(any(t > t_fault for t in m.outage_ends), "writes must not resume without quorum")
            self.assertEqual(self.lab.primaries(), [], "no failover without quorum")
        finally:
            self.lab.link(replica, True)
            self.tl.add(f"{replica} back: quorum restored")
        # Once the member is back, the cluster recovers by itself.
        self.assertTrue(m.wait_resumed(t_fault, 90), "writes must resume once quorum is back")
        self.tl.add("writes resumed after quorum came back")
        w, _ = m.stop()
        outs = [o for o in w["outages"] if w["t0"] + o["start"] >= t_fault - 1]
        print(f"\n  two etcd members, replica node cut off: outage {sum(o['seconds'] for o in outs):.1f}s "
              f"(the whole time the node was away); errors {w['error_kinds']}")


if __name__ == "__main__":
    testmain.main()
