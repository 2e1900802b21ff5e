#!/usr/bin/python3
"""The status page (GET / on the admin endpoint, issue 13 item 4) in headless
Chromium (Debian's chromium, DevTools over a pipe: cdp.py), on a live daemon
whose backends change state.

Topology (netns.Lab, 10.88.113.0/24): node a runs vipproxy alone (VRRPv3
VRID 113, so MASTER with the VIP 10.88.113.160), a proxy "pg" on :5433 with
backends b1 and b2 (echo servers 127.0.0.1:7001/7002) whose HTTP checks ask
Patroni REST stand-ins (8009/8010) for /primary; the admin endpoint wants a
token. Chromium runs in a's namespace and opens http://127.0.0.1:8405/.

Asserted:
  - without the token the browser gets 401 with a Basic challenge and the
    page shows no data; with it (answered once, like a person at the login
    prompt) the page shows node, proxy, backends (b1 UP and current, b2 DOWN
    with its last reason, HTTP 503), a session through the proxy and its
    bytes, and the VRRP instance (MASTER, priority, VIP, drop counters);
  - the page is self-contained: every request the page made went to the
    admin endpoint itself, and nothing was blocked by its
    Content-Security-Policy;
  - b1's Patroni turns replica and b2's primary: without a reload, the page
    shows b1 DOWN and b2 UP within a few refreshes, the refreshes carrying
    the browser's cached credentials (no new login prompt is answered);
  - b1 primary again while b2 is: both rows tagged "timeline ?" (these
    stand-ins report none; the title says why), untagged when b1 turns
    replica again;
  - screenshots before and after are kept in the build directory
    (test-artifacts/status-page-*.png).
"""
import json
import os
import socket
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402
import netns  # noqa: E402
from netns import in_netns, log, wait_until  # noqa: E402
import testmain  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
VIPPROXY = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE_DIR, "build", "vipproxy"))
ARTIFACTS = os.path.join(os.path.dirname(VIPPROXY), "test-artifacts")
PY = "/usr/bin/python3"

OCTET = 113
NET = f"10.88.{OCTET}"
VIP = f"{NET}.160"
VRID = 113
ADMIN = "127.0.0.1:8405"
TOKEN = "page-test-3b9d2c71e0"
BACKENDS = {"b1": (7001, 8009, "primary"), "b2": (7002, 8010, "replica")}


class StatusPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(VIPPROXY):
            raise RuntimeError(f"vipproxy binary not found at {VIPPROXY} (set VIPPROXY_BIN)")
        if not cdp.find_chromium():
            raise unittest.SkipTest("chromium is not installed (scripts/deps installs it)")
        cls.lab = netns.Lab(third_octet=OCTET)
        cls.lab.add_node("a", 151)
        cls.roles = {}
        for name, (data_port, rest_port, role) in BACKENDS.items():
            cls.lab.echo_backend("a", data_port, f"echo-{name}")
            role_file = os.path.join(cls.lab.dir, f"role-{name}")
            cls.set_role(role_file, role)
            cls.roles[name] = role_file
            cls.lab.standin("a", rest_port, role_file, os.path.join(cls.lab.dir, f"rest-{name}.json"), f"rest-{name}")
        path = os.path.join(cls.lab.dir, "vipproxy.yaml")
        backends = []
        for name, (data_port, rest_port, _) in BACKENDS.items():
            backends += [f"      - name: {name}", f"        address: 127.0.0.1:{data_port}",
                         f"        check_port: {rest_port}"]
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("\n".join([
                "node: catalog-a", "log_level: info", "threads: 1",
                "admin:", f"  listen: {ADMIN}", f"  token: {TOKEN}",
                "proxies:", "  - name: pg", "    listen: 0.0.0.0:5433", "    check:", "      type: http",
                "      path: /primary", "      interval: 300ms", "      timeout: 1s", "      rise: 1",
                "      fall: 1", "    backends:"] + backends + [
                "vrrp:", "  - name: VI_CATALOG", "    interface: eth0", f"    virtual_router_id: {VRID}",
                "    priority: 120", "    version: 3", "    advert_int: 100ms",
                "    virtual_ipaddresses:", f"      - {VIP}/24"]) + "\n")
        cls.daemon = cls.lab.spawn("vipproxy", "a", [VIPPROXY, "--config", path])
        wait_until(lambda: cls.status()["vrrp"][0]["state"] == "MASTER", 15, "the VRRP instance to be MASTER")
        wait_until(lambda: [b["check"]["state"] for b in cls.status()["proxies"][0]["backends"]] == ["UP", "DOWN"],
                   15, "b1 UP and b2 DOWN")
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.browser = cdp.Browser(netns=cls.lab.ns("a"), log_path=os.path.join(cls.lab.dir, "chromium.log"))
        log(f"lab {cls.lab.dir}, {cls.browser.version.get('product')}")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "browser", None):
            cls.browser.close()
        cls.lab.close()

    @staticmethod
    def set_role(path, role):
        with open(path + ".tmp", "w") as f:
            f.write(role)
        os.replace(path + ".tmp", path)

    @classmethod
    def status(cls):
        req = urllib.request.Request(f"http://{ADMIN}/status", headers={"Authorization": f"Bearer {TOKEN}"})
        with in_netns(cls.lab.ns("a")):
            with urllib.request.urlopen(req, timeout=3) as resp:
                return json.load(resp)

    def test_page(self):
        page = self.browser.new_page()
        requests = []
        self.browser.on("Network.requestWillBeSent", lambda p: requests.append(p["request"]["url"]), page.session)
        self.browser.call("Network.enable", session=page.session)

        # 1. No token: 401, Basic challenge, no data on the page.
        page.auth = None
        page.navigate(f"http://{ADMIN}/")
        self.assertGreaterEqual(page.auth_requests, 1, "no login prompt (WWW-Authenticate: Basic)")
        self.assertIn("token required", page.eval("document.body.innerText"))
        self.assertFalse(page.eval("!!document.querySelector('[data-backend]')"))

        # 2. The token, given once at the prompt (any user name).
        page.auth = lambda: ("operator", TOKEN)
        prompts = page.auth_requests
        # A client session through the proxy, with some bytes, for the page.
        with in_netns(self.lab.ns("a")):
            client = socket.create_connection(("127.0.0.1", 5433), timeout=5)
        client.sendall(b"x" * 1000)
        got = b""
        while len(got) < 1000:
            got += client.recv(4096)
        page.navigate(f"http://{ADMIN}/")
        self.assertEqual(page.auth_requests, prompts + 1)
        page.auth = None  # from here on the browser must carry the credentials itself
        page.wait_for("!!document.querySelector('tr[data-backend=\"pg/b1\"]')", 10, "the backend rows")
        dom = page.eval("""(() => {
            const row = (sel) => { const r = document.querySelector(sel); return r && {
                state: r.dataset.state, cls: r.className,
                cells: [...r.querySelectorAll('td')].map(td => td.textContent) }; };
            return {node: document.getElementById('node').textContent,
                    title: document.title,
                    b1: row('tr[data-backend="pg/b1"]'), b2: row('tr[data-backend="pg/b2"]'),
                    vrrp: row('tr[data-vrrp="VI_CATALOG"]'),
                    totals: document.querySelector('tr[data-proxy-totals="pg"]').textContent,
                    proxy: document.querySelector('table[data-proxy="pg"] tr.proxy').textContent,
                    admin: document.getElementById('admin').textContent,
                    scripts: document.scripts.length,
                    external: [...document.querySelectorAll('[src],link[href]')].map(e => e.src || e.href)};
        })()""")
        log(f"page: {json.dumps(dom)[:1500]}")
        self.assertEqual(dom["node"], "catalog-a")
        self.assertEqual(dom["external"], [], "the page loads external assets")
        self.assertEqual(dom["b1"]["state"], "UP")
        self.assertEqual(dom["b1"]["cls"], "up")
        self.assertIn("current", dom["b1"]["cells"][0])
        self.assertEqual(dom["b2"]["state"], "DOWN")
        self.assertEqual(dom["b2"]["cls"], "down")
        self.assertIn("L7", dom["b2"]["cells"][3])
        self.assertIn("503", dom["b2"]["cells"][3])      # the last result
        self.assertEqual(dom["b1"]["cells"][6], "1")     # the session through the proxy
        self.assertIn("bytes in 1000 B, out 1000 B", dom["totals"])
        self.assertIn("listen 0.0.0.0:5433", dom["proxy"])
        self.assertEqual(dom["vrrp"]["state"], "MASTER")
        cells = dom["vrrp"]["cells"]
        self.assertEqual(cells[3], "MASTER")
        self.assertEqual(cells[4], "120")
        self.assertIn("this node", cells[5])
        self.assertEqual(cells[6], f"{VIP}/24")
        self.assertTrue(cells[10].isdigit(), f"drops cell {cells[10]!r}")
        self.assertIn("admin endpoint:", dom["admin"])
        page.screenshot(os.path.join(ARTIFACTS, "status-page-before.png"))

        # 3. The backends change state; the page follows without a reload.
        refreshes = int(page.eval("document.body.dataset.refreshes || '0'"))
        self.set_role(self.roles["b1"], "replica")
        self.set_role(self.roles["b2"], "primary")
        page.wait_for("document.querySelector('tr[data-backend=\"pg/b1\"]').dataset.state === 'DOWN' && "
                      "document.querySelector('tr[data-backend=\"pg/b2\"]').dataset.state === 'UP'",
                      20, "the page to show b1 DOWN and b2 UP")
        after = page.eval("""(() => ({
            b1: document.querySelector('tr[data-backend="pg/b1"]').textContent,
            b2cur: document.querySelector('tr[data-backend="pg/b2"] td').textContent,
            stale: document.body.dataset.stale, refreshes: Number(document.body.dataset.refreshes),
            banner: document.getElementById('banner').textContent}))()""")
        log(f"after the change: {after}")
        self.assertGreater(after["refreshes"], refreshes)
        self.assertEqual(after["stale"], "0", after["banner"])
        self.assertIn("503", after["b1"])
        self.assertIn("current", after["b2cur"])
        self.assertEqual(page.auth_requests, prompts + 1, "the refreshes needed the login prompt again")
        page.screenshot(os.path.join(ARTIFACTS, "status-page-after.png"))

        # 3b. Both pass at once (b1 primary again): each row says its
        # timeline, here not known (these stand-ins' GET /patroni has none),
        # with why in its title; gone when the overlap ends.
        tags = ("[...document.querySelectorAll('tr[data-backend] .tag.timeline')]"
                ".map(t => t.closest('tr').dataset.backend + ' ' + t.textContent + ' / ' + t.title)")
        self.set_role(self.roles["b1"], "primary")
        page.wait_for(f"{tags}.length === 2 && {tags}.every(t => t.includes('not known: '))", 20,
                      "the page to show both timelines not known")
        shown = page.eval(tags)
        log(f"overlap: {shown}")
        self.assertEqual([t.split(" / ")[0] for t in shown], ["pg/b1 timeline ?", "pg/b2 timeline ?"])
        self.assertIn("current", page.eval("document.querySelector('tr[data-backend=\"pg/b2\"] td').textContent"))
        page.screenshot(os.path.join(ARTIFACTS, "status-page-overlap.png"))
        self.set_role(self.roles["b1"], "replica")
        page.wait_for(f"{tags}.length === 0", 20, "the timelines gone with the overlap")
        client.close()

        # 4. Self-contained and within its CSP.
        others = [u for u in requests if not u.startswith(f"http://{ADMIN}/")]
        self.assertEqual(others, [], "requests outside the admin endpoint")
        self.assertIn(f"http://{ADMIN}/status", requests)
        csp = [t for _, t in page.console if "Content Security Policy" in t or "Refused to" in t]
        self.assertEqual(csp, [], "the page broke its own Content-Security-Policy")
        log(f"screenshots in {ARTIFACTS}")


if __name__ == "__main__":
    testmain.main()
