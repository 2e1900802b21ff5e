"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol
on a pipe (--remote-debugging-pipe: commands on fd 3, replies and events on
fd 4, each JSON message ended by a NUL byte), so no WebSocket client, no
chromedriver and nothing from PyPI is needed.

    with Browser(netns="vpt123-a", artifacts_dir=...) as b:
        page = b.new_page()
        page.on_auth(lambda: ("operator", "s3cret"))   # answer HTTP auth prompts
        page.navigate("http://127.0.0.1:8405/")
        page.eval("document.title")
        page.screenshot("/path/page.png")

Chromium runs as root here, so with --no-sandbox; its profile is a new empty
directory, deleted at close(). The process is started with `ip netns exec`
when netns is given (the page is then served from that namespace's
loopback), recorded by PID and killed by that PID.
"""
import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

# The binary itself rather than /usr/bin/chromium, the launcher script, which
# adds flags of its own (remote extensions, GPU rasterization).
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def find_chromium():
    for c in CHROMIUM_CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    return shutil.which("chromium")


class CdpError(RuntimeError):
    pass


class Browser:
    def __init__(self, netns=None, width=1280, height=900, log_path=None):
        self.binary = find_chromium()
        if not self.binary:
            raise FileNotFoundError("chromium is not installed (apt-get install chromium; scripts/deps does)")
        self.profile = tempfile.mkdtemp(prefix="vipproxy-chromium-")
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        self._cmd_w, self._res_r = cmd_w, res_r
        # The child's ends above 20, so moving them onto 3 and 4 can never
        # close one of them (os.pipe may well return 3 or 4 itself).
        cmd_r, res_w = _above(cmd_r, 20), _above(res_w, 20)
        argv = [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--no-default-browser-check",
                f"--window-size={width},{height}", f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe", "about:blank"]
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        # Chromium reads commands on fd 3 and writes on fd 4: bash moves the
        # pipe ends there, closes the originals, then execs (ip netns exec
        # and chromium keep 3 and 4).
        wire = f"exec 3<&{cmd_r} 4>&{res_w} {cmd_r}<&- {res_w}>&-; exec \"$0\" \"$@\""
        self.log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(["/bin/bash", "-c", wire] + argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, pass_fds=(cmd_r, res_w), start_new_session=True)
        os.close(cmd_r)
        os.close(res_w)
        self._next_id = 0
        self._pending = {}       # id -> [Event, reply]
        self._handlers = []      # (method, sessionId or None, callable(params))
        self._lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.version = self.call("Browser.getVersion", timeout=60)

    # ---- transport ----
    def _read_loop(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._res_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                self._dispatch(msg)
        with self._lock:
            for slot in self._pending.values():
                slot[1] = {"error": {"message": "chromium closed the pipe"}}
                slot[0].set()

    def _dispatch(self, msg):
        if "id" in msg:
            with self._lock:
                slot = self._pending.pop(msg["id"], None)
            if slot:
                slot[1] = msg
                slot[0].set()
            return
        method, sid = msg.get("method"), msg.get("sessionId")
        for m, s, fn in list(self._handlers):
            if m == method and (s is None or s == sid):
                try:
                    fn(msg.get("params", {}))
                except Exception as e:  # noqa: BLE001 - a handler must not kill the reader
                    print(f"cdp handler for {method} failed: {e}", flush=True)

    def send(self, method, params=None, session=None):
        """Sends without waiting (for use inside event handlers)."""
        with self._lock:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        return mid

    def call(self, method, params=None, session=None, timeout=30):
        with self._lock:
            self._next_id += 1
            mid = self._next_id
            slot = [threading.Event(), None]
            self._pending[mid] = slot
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        if not slot[0].wait(timeout):
            raise CdpError(f"{method}: no answer in {timeout}s")
        reply = slot[1]
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def on(self, method, fn, session=None):
        self._handlers.append((method, session, fn))

    # ---- pages ----
    def new_page(self):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, session)

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.call("Browser.close", timeout=5)
        except (CdpError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self._cmd_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.log is not subprocess.DEVNULL:
            self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _above(fd, floor):
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    os.close(fd)
    return high


class Page:
    def __init__(self, browser, session):
        self.b, self.session = browser, session
        self.auth = None              # callable -> (user, password), or None to cancel
        self.auth_requests = 0
        self.console = []             # (level, text) from the page and the browser's log
        self._loaded = threading.Event()
        b = browser
        b.on("Page.loadEventFired", lambda p: self._loaded.set(), session)
        b.on("Fetch.requestPaused", self._paused, session)
        b.on("Fetch.authRequired", self._auth, session)
        b.on("Runtime.consoleAPICalled", lambda p: self.console.append(
            (p.get("type"), " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))),
            session)
        b.on("Log.entryAdded", lambda p: self.console.append(
            (p["entry"].get("level"), p["entry"].get("text", ""))), session)
        for m in ("Page.enable", "Runtime.enable", "Log.enable"):
            b.call(m, session=session)
        # Every request pauses so HTTP auth challenges reach _auth (the way a
        # person answers the browser's login prompt).
        b.call("Fetch.enable", {"handleAuthRequests": True, "patterns": [{"urlPattern": "*"}]}, session=session)

    def _paused(self, p):
        self.b.send("Fetch.continueRequest", {"requestId": p["requestId"]}, self.session)

    def _auth(self, p):
        self.auth_requests += 1
        creds = self.auth() if self.auth else None
        resp = {"response": "CancelAuth"} if not creds else \
            {"response": "ProvideCredentials", "username": creds[0], "password": creds[1]}
        self.b.send("Fetch.continueWithAuth", {"requestId": p["requestId"], "authChallengeResponse": resp},
                    self.session)

    def navigate(self, url, timeout=30):
        self._loaded.clear()
        r = self.b.call("Page.navigate", {"url": url}, session=self.session, timeout=timeout)
        if r.get("errorText"):
            raise CdpError(f"navigate {url}: {r['errorText']}")
        if not self._loaded.wait(timeout):
            raise CdpError(f"navigate {url}: no load event in {timeout}s")

    def eval(self, expression, timeout=30):
        r = self.b.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session=self.session, timeout=timeout)
        if r.get("exceptionDetails"):
            raise CdpError(f"{expression}: {r['exceptionDetails'].get('text')} "
                           f"{r['exceptionDetails'].get('exception', {}).get('description', '')}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout, what, interval=0.2):
        """Polls a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.eval(expression)
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value {last!r})")

    def screenshot(self, path):
        data = self.b.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                           session=self.session, timeout=60)["data"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
