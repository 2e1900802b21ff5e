"""Addresses with their IFA_PROTO mark (Linux 5.18+), over rtnetlink, from a
lab node's namespace (netns.in_netns). vipproxy marks every VIP it adds with
IFA_PROTO 112 (vrrp/vips.h kVipAddressProtocol) and, at start, removes an
address already on the VIP's device only when it carries that mark; the
iproute2 of Debian 12 (6.1) can neither set nor show the mark, so the tests
do both here.

    add(ns, "10.88.84.160/28", "eth0", proto=112, label="eth0:old")
    entries(ns, "10.88.84.160", "eth0")  ->  [(28, 112)]
"""
import ipaddress
import socket
import struct

from netns import in_netns

RTM_NEWADDR, RTM_GETADDR = 20, 22
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_PROTO = 1, 2, 3, 11
IFA_F_NODAD = 0x02


def _attr(kind, data):
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def _attrs(buf):
    off = 0
    while off + 4 <= len(buf):
        n, kind = struct.unpack_from("=HH", buf, off)
        if n < 4:
            break
        yield kind & 0x3FFF, buf[off + 4:off + n]
        off += (n + 3) & ~3


def _talk(msg_type, flags, payload):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        s.bind((0, 0))
        s.send(struct.pack("=IHHII", 16 + len(payload), msg_type, flags, 1, 0) + payload)
        out = []
        while True:
            data = s.recv(1 << 16)
            off = 0
            while off + 16 <= len(data):
                n, kind, _, _, _ = struct.unpack_from("=IHHII", data, off)
                body = data[off + 16:off + n]
                if kind == NLMSG_ERROR:
                    err = struct.unpack_from("=i", body)[0]
                    if err:
                        raise OSError(-err, f"rtnetlink: {msg_type}")
                    return out
                if kind == NLMSG_DONE:
                    return out
                out.append(body)
                off += (n + 3) & ~3
    finally:
        s.close()


def add(ns, cidr, dev, proto, label=None):
    """`ip address add CIDR dev DEV [label LABEL]` with IFA_PROTO `proto`."""
    iface = ipaddress.ip_interface(cidr)
    fam = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    with in_netns(ns):
        index = socket.if_nametoindex(dev)
        body = struct.pack("=BBBBI", fam, iface.network.prefixlen, IFA_F_NODAD if fam == socket.AF_INET6 else 0,
                           0, index)
        body += _attr(IFA_LOCAL, iface.ip.packed) + _attr(IFA_ADDRESS, iface.ip.packed) + _attr(IFA_PROTO, bytes([proto]))
        if label:
            body += _attr(IFA_LABEL, label.encode() + b"\0")
        _talk(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)


def entries(ns, addr, dev):
    """Every entry of `addr` on `dev`: [(prefix length, IFA_PROTO or 0)]."""
    ip = ipaddress.ip_address(addr)
    fam = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    with in_netns(ns):
        index = socket.if_nametoindex(dev)
        out = []
        for body in _talk(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, struct.pack("=BBBBI", fam, 0, 0, 0, 0)):
            family, plen, _, _, ifindex = struct.unpack_from("=BBBBI", body)
            if family != fam or ifindex != index:
                continue
            a = dict(_attrs(body[8:]))
            local = a.get(IFA_LOCAL, a.get(IFA_ADDRESS))
            if local == ip.packed:
                out.append((plen, a[IFA_PROTO][0] if IFA_PROTO in a else 0))
        return out


# Run as a script (scripts/kernel-vm --vip-owner-tests, on each kernel our
# users run): does this kernel keep the mark the owner rules rely on? In a
# namespace of its own (netns.Lab, 10.88.131.0/24), as root; skips (77)
# without root or `ip netns`.
if __name__ == "__main__":
    import os
    import sys
    import unittest

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import netns  # noqa: E402
    import testmain  # noqa: E402

    class KernelKeepsTheMark(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.lab = netns.Lab(third_octet=131, ipv6=True)
            cls.ns = cls.lab.add_node("a", 151)

        @classmethod
        def tearDownClass(cls):
            cls.lab.close()

        def test_1_ipv4_with_a_label(self):
            add(self.ns, "10.88.131.160/28", "eth0", proto=112, label="eth0:vip")
            self.assertEqual(entries(self.ns, "10.88.131.160", "eth0"), [(28, 112)])
            # The node's own address, added by `ip address add`: no mark.
            self.assertEqual(entries(self.ns, "10.88.131.151", "eth0"), [(24, 0)])
            # An IPv4 address stays through a link down and up: so does its mark.
            self.lab.sh("a", ["ip", "link", "set", "eth0", "down"])
            self.lab.sh("a", ["ip", "link", "set", "eth0", "up"])
            self.assertEqual(entries(self.ns, "10.88.131.160", "eth0"), [(28, 112)])

        def test_2_ipv6(self):
            add(self.ns, "fd88:131::160/64", "eth0", proto=112)
            self.assertEqual(entries(self.ns, "fd88:131::160", "eth0"), [(64, 112)])

    testmain.main()
