#!/usr/bin/python3
"""A retransmitted segment that overlaps bytes already received must reach
the backend once, on the kernel data path too (issue 11).

TCP queues a segment that starts before rcv_nxt and ends after it whole
(the reader skips the old part by sequence number), but the kernel hands
an sk_skb verdict program whole skbs (tcp_read_skb), so without care the
old part is forwarded twice: what made a 1 GiB COPY through the kernel path
hang with bytes the backend never sent (README, "Why the kernel path is
opt-in"). Losses and re-segmented retransmissions are rare on loopback, so
this test makes one: the client is a few lines of TCP written to a TUN
device, which can send any segment it likes.

Topology (netns.Lab, 10.88.77.0/24): node a holds a TUN device vtun0
(10.88.77.1/24) and runs vipproxy (data_path kernel, every session handed
to the kernel after its first exchange) on 10.88.77.1:5433 in front of an
echo server; the test's TCP client is 10.88.77.9 on the TUN's far side.

Asserted, for the kernel path (skipped where it cannot load) and for splice
(the same bytes through userspace, as a reference):
  - after an exchange (the session is in the kernel), the client sends
    bytes 0-9, then a segment carrying bytes 5-19 (5 old, 10 new): the echo
    brings back bytes 0-19 exactly once;
  - the kernel path counts the 5 bytes it cut off
    (kernel_retransmitted_bytes_trimmed in /status);
  - the same when the overlapping segment is the first one the program sees
    for the socket and its old bytes were read in userspace before the
    hand-over;
  - the same on a session the kernel path handed back (held): the client
    first stops acknowledging the echo while it goes on sending, the bytes
    redirected towards it pile up and the session is taken back (a slow
    reader, kernel_takebacks); its sockets stay in the program's maps
    (marked held), where the program still sees every skb, and its
    overlapping retransmission must still reach the backend once;
  - a segment whose repeated head the program cannot cut (made so by
    VIPPROXY_TEST_FAIL_CUTS=1) closes the session with a reset, and none of
    its bytes reaches the backend;
  - a held session's window closes: a client that goes on sending while it
    reads nothing can make the proxy's side take no more than its buffers
    allow (before the take-back made room in the send queues, held bytes
    queued behind the redirected ones, uncounted, and 32 MiB went in).
"""
import fcntl
import json
import os
import random
import select
import socket
import struct
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from netns import in_netns, wait_until  # noqa: E402
import testmain  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
VIPPROXY = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE_DIR, "build", "vipproxy"))
PY = "/usr/bin/python3"

OCTET = 77
NET = f"10.88.{OCTET}"
PROXY_IP, CLIENT_IP = f"{NET}.1", f"{NET}.9"
ECHO_PORT, REST_PORT, ADMIN = 7001, 8009, "127.0.0.1:8405"

BUFFER_MAX = 1 << 20  # tcp_rmem and tcp_wmem maximum in the node
# The proxy's credit: what the program may redirect towards a socket past
# what it took (proxy/session_kernel.cpp, kCredit).
KERNEL_CREDIT = 2 << 20
# The deadline of the 4 MiB echo's wait scales with VIPPROXY_WAIT_SCALE:
# scripts/kernel-vm sets 10, its guest is emulated and this Python TCP client
# there needed more than 30 s. Bounds the test asserts do not scale.
WAIT_SCALE = float(os.environ.get("VIPPROXY_WAIT_SCALE", "1"))

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def packet(src, dst, sport, dport, seq, ack, flags, payload=b"", options=b""):
    """An IPv4 packet carrying one TCP segment (RFC 791, RFC 9293 3.1)."""
    offset = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, 65535, 0, 0) + options + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randrange(65536), 0, 64, socket.IPPROTO_TCP,
                     0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


class TunClient:
    """Just enough of a TCP client over a TUN device: a handshake, segments
    sent with any sequence number within the server's window, the server's
    bytes reassembled in order and acknowledged (or, on request, not), and
    a segment the server has not acknowledged after a second sent again."""

    def __init__(self, fd, dport):
        self.fd, self.dport = fd, dport
        self.sport = random.randrange(20000, 60000)
        self.iss = random.randrange(1 << 32)
        self.snd_nxt = (self.iss + 1) & 0xFFFFFFFF
        self.snd_una, self.snd_wnd = self.snd_nxt, 0
        self.rcv_nxt = None
        self.reset = False  # the server sent a RST
        self.received = b""
        self.out_of_order = {}  # seq -> data received after a hole
        self.stream = bytearray()  # what we sent, by stream offset

    def offset(self, seq):
        return (seq - self.iss - 1) & 0xFFFFFFFF

    def send(self, seq, flags, payload=b"", options=b""):
        os.write(self.fd, packet(CLIENT_IP, PROXY_IP, self.sport, self.dport, seq & 0xFFFFFFFF,
                                 self.rcv_nxt or 0, flags, payload, options))

    def pump(self, until, timeout=10, ack_data=True):
        """Reads the server's segments until until() holds; False at the
        deadline. With ack_data False its data is neither taken nor
        acknowledged (a reader that stopped reading)."""
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if not r:
                unacked = self.offset(self.snd_nxt) - self.offset(self.snd_una)
                if unacked > 0 and time.monotonic() - quiet_since > 1.0:
                    start = self.offset(self.snd_una)
                    self.send(self.snd_una, ACK | PSH, bytes(self.stream[start:start + min(unacked, 1400)]))
                    quiet_since = time.monotonic()
                continue
            p = os.read(self.fd, 65535)
            if len(p) < 40 or p[9] != socket.IPPROTO_TCP:
                continue
            ihl = (p[0] & 0x0F) * 4
            sport, dport, seq, ack, off, flags, wnd = struct.unpack("!HHIIBBH", p[ihl:ihl + 16])
            if sport != self.dport or dport != self.sport:
                continue
            quiet_since = time.monotonic()
            if flags & RST:
                self.reset = True
                continue
            if flags & ACK and self.offset(ack) >= self.offset(self.snd_una):
                self.snd_una, self.snd_wnd = ack, wnd
            data = p[ihl + (off >> 4) * 4:]
            if flags & SYN:
                self.rcv_nxt = (seq + 1) & 0xFFFFFFFF
                self.send(self.snd_nxt, ACK)
            elif data and self.rcv_nxt is not None and ack_data:
                # Kept until the bytes before it arrive (after a loss the
                # server resends the hole only; dropping what follows would
                # cost a retransmission timeout per segment).
                self.out_of_order[seq] = data
                progress = True
                while progress:
                    progress = False
                    for s_seq, s_data in list(self.out_of_order.items()):
                        ahead = (s_seq - self.rcv_nxt) & 0xFFFFFFFF
                        if 0 < ahead < (1 << 31):
                            continue  # a hole before it
                        del self.out_of_order[s_seq]
                        skip = (self.rcv_nxt - s_seq) & 0xFFFFFFFF  # bytes of it we have
                        if skip < len(s_data):
                            self.received += s_data[skip:]
                            self.rcv_nxt = (s_seq + len(s_data)) & 0xFFFFFFFF
                            progress = True
                self.send(self.snd_nxt, ACK)
        return True

    def connect(self):
        self.send(self.iss, SYN, options=struct.pack("!BBH", 2, 4, 1400))  # MSS
        return self.pump(lambda: self.rcv_nxt is not None)

    def write(self, offset, payload):
        """Sends payload as the bytes at stream offset `offset`."""
        self.stream[offset:offset + len(payload)] = payload
        seq = (self.iss + 1 + offset) & 0xFFFFFFFF
        self.send(seq, ACK | PSH, payload)
        end = (seq + len(payload)) & 0xFFFFFFFF
        if ((end - self.snd_nxt) & 0xFFFFFFFF) < (1 << 31):
            self.snd_nxt = end

    def abort(self):
        """Resets the connection. The server takes a RST only at its RCV.NXT
        (RFC 5961 3.2; with its window closed nothing else is in the window):
        the last byte it acknowledged, short of snd_nxt when it dropped
        segments it had no memory for."""
        self.send(self.snd_una, RST)

    def window_left(self):
        return self.offset(self.snd_una) + self.snd_wnd - self.offset(self.snd_nxt)


class KernelOverlapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(VIPPROXY):
            raise RuntimeError(f"vipproxy binary not found at {VIPPROXY} (set VIPPROXY_BIN)")
        cls.lab = netns.Lab(third_octet=OCTET)
        cls.lab.add_node("a", 151)
        ns = cls.lab.ns("a")
        with in_netns(ns):
            cls.tun = os.open("/dev/net/tun", os.O_RDWR)
            fcntl.ioctl(cls.tun, TUNSETIFF, struct.pack("16sH", b"vtun0", IFF_TUN | IFF_NO_PI))
        # /32s: the node's eth0 has the lab's /24 (netns.Lab), the client is
        # reached through the TUN.
        cls.lab.sh("a", ["ip", "addr", "add", f"{PROXY_IP}/32", "dev", "vtun0"])
        cls.lab.sh("a", ["ip", "link", "set", "vtun0", "up"])
        # TCP buffers autotune up to 1 MiB in the node (per namespace; the
        # machine's maximum may be 32 MiB), so what a chain of sockets can
        # hold is known (test_kernel_path_closes_the_window_of_a_held_session).
        cls.lab.sh("a", ["sysctl", "-qw", f"net.ipv4.tcp_rmem=4096 131072 {BUFFER_MAX}"])
        cls.lab.sh("a", ["sysctl", "-qw", f"net.ipv4.tcp_wmem=4096 16384 {BUFFER_MAX}"])
        cls.lab.sh("a", ["ip", "route", "add", f"{CLIENT_IP}/32", "dev", "vtun0"])
        cls.lab.primary_and_echo("a", REST_PORT, ECHO_PORT)
        cls.daemons = {}

    @classmethod
    def tearDownClass(cls):
        os.close(cls.tun)
        cls.lab.close()

    def start(self, data_path, listen_port, admin, tag="", env=None):
        name = f"vipproxy-{data_path}{tag}"
        path = os.path.join(self.lab.dir, f"{name}.yaml")
        with open(path, "w") as f:
            f.write("\n".join([
                "node: overlap", "threads: 1", "admin:", f"  listen: {admin}",
                "proxies:", "  - name: pg", f"    listen: {PROXY_IP}:{listen_port}", f"    data_path: {data_path}",
                "    check: {type: http, path: /primary, interval: 200ms, rise: 1, fall: 1}",
                "    backends:", "      - name: b1", f"        address: 127.0.0.1:{ECHO_PORT}",
                f"        check_port: {REST_PORT}"]) + "\n")
        self.lab.spawn(name, "a", [VIPPROXY, "--config", path],
                       env=dict(os.environ, VIPPROXY_KERNEL_AFTER_EXCHANGES="1", **(env or {})))
        wait_until(lambda: self.status(admin)["proxies"][0]["current_backend"] == "b1", 15, "b1 current")

    def status(self, admin):
        with in_netns(self.lab.ns("a")):
            with urllib.request.urlopen(f"http://{admin}/status", timeout=3) as resp:
                return json.load(resp)

    def counters(self, admin):
        return self.status(admin)["proxies"][0]["counters"]

    def connected(self, data_path, listen_port, admin, tag="", env=None):
        """A TUN client connected through a new vipproxy, after one
        exchange (so, on the kernel path, with its session in the kernel)."""
        self.start(data_path, listen_port, admin, tag, env)
        st = self.status(admin)
        if data_path == "kernel" and not st["kernel_path"]["available"]:
            raise unittest.SkipTest(f"the kernel path is not available here: {st['kernel_path']['why_not']}")
        c = TunClient(self.tun, listen_port)
        self.assertTrue(c.connect(), "no SYN-ACK from vipproxy")
        c.write(0, b"ping\n")
        self.assertTrue(c.pump(lambda: c.received == b"ping\n"), f"no echo of the first exchange: {c.received!r}")
        if data_path == "kernel":
            wait_until(lambda: self.counters(admin)["sessions_kernel"] == 1, 5, "the session in the kernel")
        return c

    def overlap(self, data_path, listen_port, admin):
        c = self.connected(data_path, listen_port, admin)
        c.write(5, b"0123456789")
        self.assertTrue(c.pump(lambda: len(c.received) >= 15), f"no echo of bytes 0-9: {c.received!r}")
        # Bytes 5-19 of the stream in one segment: 5 already received, 10 new.
        c.write(10, b"56789abcdefghij")
        want = b"ping\n0123456789abcdefghij"
        c.pump(lambda: len(c.received) >= len(want) + 5, timeout=2)  # also catches a duplicate
        self.assertEqual(c.received, want)
        c.abort()
        wait_until(lambda: self.status(admin)["proxies"][0]["sessions_current"] == 0, 10, "the session closed")
        return self.counters(admin)

    def test_kernel_path_trims_a_held_session_too(self):
        admin = "127.0.0.1:8407"
        c = self.connected("kernel", 5435, admin, tag="-held")
        counters = lambda: self.counters(admin)  # noqa: E731
        # A reader that stopped reading: the client sends 4 MiB (within the
        # window the proxy offers) and acknowledges none of the echo. The
        # proxy takes the session back once 1-2 MiB it redirected wait for
        # the client (proxy/session_kernel.cpp, kMaxInFlight, kCredit), and
        # reads nothing until those bytes are out.
        sent = self.send_without_reading(c, 5, 4 << 20)
        wait_until(lambda: counters()["kernel_takebacks"] == 1, 10, "the session taken back (a slow reader)")
        self.assertGreater(sent, 1 << 20, "the client could not send enough to slow the session down")
        # The client reads again: the echo of everything arrives, in order,
        # and the session goes on in userspace (copy: held bytes are in the
        # psock's queue, which only recv() reads).
        self.assertTrue(c.pump(lambda: len(c.received) >= sent and c.offset(c.snd_una) == sent,
                               timeout=30 * WAIT_SCALE),
                        f"echo incomplete after the take-back: {len(c.received)} of {sent} bytes, "
                        f"acked {c.offset(c.snd_una)}, window {c.snd_wnd}; {counters()}\n"
                        + self.lab.sh("a", ["ss", "-tinmoe", "state", "all", "sport", "= :5435"]).stdout
                        + self.lab.logtail("vipproxy-kernel-held", 6))
        self.assertEqual(c.received, bytes(c.stream[:sent]), "the echo differs from what was sent")
        wait_until(lambda: counters()["sessions_kernel"] == 0 and counters()["sessions_copy"] == 1, 10,
                   "the session back in userspace on the copy path")
        # The overlap, now on held sockets.
        c.write(sent, b"0123456789")
        self.assertTrue(c.pump(lambda: len(c.received) >= sent + 10), "no echo of the 10 bytes")
        c.write(sent + 5, b"56789abcdefghij")
        c.pump(lambda: len(c.received) >= sent + 25, timeout=2)  # also catches a duplicate
        self.assertEqual(c.received[sent:], b"0123456789abcdefghij")
        self.assertEqual(c.received, bytes(c.stream))
        c.abort()
        wait_until(lambda: self.status(admin)["proxies"][0]["sessions_current"] == 0, 10, "the session closed")
        got = counters()
        self.assertEqual(got["kernel_handovers"], 1)
        self.assertEqual(got["kernel_takebacks"], 1)
        self.assertEqual(got["kernel_retransmitted_bytes_trimmed"], 5)

    def send_without_reading(self, c, sent, limit):
        """Sends stream bytes from offset `sent` until `limit` or until the
        proxy's window stays closed for a second, acknowledging none of the
        echo; returns the offset reached."""
        while sent < limit:
            if c.window_left() < 1400 and not c.pump(lambda: c.window_left() >= 1400, timeout=1.0, ack_data=False):
                break
            chunk = bytes((sent + i) % 251 for i in range(1400))
            c.write(sent, chunk)
            sent += len(chunk)
        return sent

    def test_kernel_path_closes_the_window_of_a_held_session(self):
        admin = "127.0.0.1:8408"
        c = self.connected("kernel", 5436, admin, tag="-window")
        # The client sends up to 64 MiB and reads nothing. Every buffer on
        # the way fills and the session is taken back; then the proxy's
        # window must close: with held bytes uncounted behind the redirected
        # ones it stayed open (64 of 64 MiB went in, README "Why the kernel
        # path is opt-in"). What the chain may hold: five autotuned buffers
        # (the proxy's receive side towards the client, both sides of its
        # backend socket, the echo server's two) of at most BUFFER_MAX each,
        # and the proxy's send buffer towards the client, which the take-back
        # enlarged by what waited for it (at most the credit and one 256 KiB
        # report, twice for skb overhead, plus 256 KiB).
        bound = 5 * BUFFER_MAX + 2 * (BUFFER_MAX + KERNEL_CREDIT + (256 << 10)) + (256 << 10)
        sent = self.send_without_reading(c, 5, 64 << 20)
        print(f"{sent} bytes went in before the window closed (bound {bound})", file=sys.stderr)
        ss = self.lab.sh("a", ["ss", "-tnmH", "state", "established", "sport", "= :5436"]).stdout
        self.assertEqual(self.counters(admin)["kernel_takebacks"], 1, ss)
        self.assertLess(sent, bound, f"the window of a held session stayed open: {sent} bytes in\n{ss}")
        # What waits on the proxy's client socket is charged to its receive
        # buffer (the kernel counts it, so TCP's own limits hold).
        recv_q = int(ss.split()[0])  # -H, one state: Recv-Q comes first
        rmem = int(ss.split("skmem:(r")[1].split(",")[0])
        self.assertGreaterEqual(rmem, recv_q, f"bytes waiting that the socket does not count:\n{ss}")
        unacked = c.offset(c.snd_nxt) - c.offset(c.snd_una)
        c.abort()
        try:
            wait_until(lambda: self.status(admin)["proxies"][0]["sessions_current"] == 0, 10, "the session closed")
        except AssertionError as e:
            ss = self.lab.sh("a", ["ss", "-tnmiH", "sport", "= :5436"]).stdout
            raise AssertionError(f"{e}; {unacked} bytes sent and not acknowledged before the reset; "
                                 f"{self.counters(admin)}\n{ss}") from None

    def test_kernel_path_closes_a_session_whose_retransmission_it_cannot_cut(self):
        admin = "127.0.0.1:8409"
        c = self.connected("kernel", 5437, admin, tag="-nocut", env={"VIPPROXY_TEST_FAIL_CUTS": "1"})
        c.write(5, b"0123456789")
        self.assertTrue(c.pump(lambda: len(c.received) >= 15), f"no echo of bytes 0-9: {c.received!r}")
        c.write(10, b"56789abcdefghij")  # 5 old bytes the program cannot cut
        self.assertTrue(c.pump(lambda: c.reset, timeout=10), "the session was not reset")
        # Nothing of the segment went through: no echo of it, neither the
        # repeated head nor the new bytes.
        self.assertEqual(c.received, b"ping\n0123456789")
        wait_until(lambda: self.status(admin)["proxies"][0]["sessions_current"] == 0, 10, "the session closed")
        self.assertIn("could not trim a retransmitted segment", self.lab.logtail("vipproxy-kernel-nocut", 20))
        self.assertEqual(self.counters(admin)["kernel_lost_sessions"], 1)

    def test_kernel_path_forwards_an_overlapping_retransmission_once(self):
        got = self.overlap("kernel", 5433, ADMIN)
        self.assertEqual(got["kernel_handovers"], 1)
        self.assertEqual(got["kernel_retransmitted_bytes_trimmed"], 5)

    def test_kernel_path_trims_an_overlap_of_bytes_read_before_the_hand_over(self):
        # The first skb the program sees for a socket may start before what
        # userspace read from it before the hand-over: bytes 2-9 after
        # "ping\n" (bytes 0-4, read and echoed by the proxy in userspace), 3
        # old and 5 new. The program knew where a socket's stream stood only
        # from the skbs it had seen, so it passed this one whole: the echo
        # came back as "ping\nng\nABCDE".
        admin = "127.0.0.1:8410"
        c = self.connected("kernel", 5438, admin, tag="-first")
        c.write(2, b"ng\nABCDE")
        want = b"ping\nABCDE"
        c.pump(lambda: len(c.received) >= len(want) + 3, timeout=2)  # also catches a duplicate
        self.assertEqual(c.received, want)
        c.abort()
        wait_until(lambda: self.status(admin)["proxies"][0]["sessions_current"] == 0, 10, "the session closed")
        got = self.counters(admin)
        self.assertEqual(got["kernel_handovers"], 1)
        self.assertEqual(got["kernel_retransmitted_bytes_trimmed"], 3)

    def test_splice_path_forwards_an_overlapping_retransmission_once(self):
        got = self.overlap("splice", 5434, "127.0.0.1:8406")
        self.assertEqual(got["kernel_handovers"], 0)


if __name__ == "__main__":
    testmain.main()
