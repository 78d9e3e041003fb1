#!/usr/bin/env python3
"""An IPv6-only network with NAT64 and DNS64, on one machine: three network
namespaces.

usage (as root):
  nat64bed.py up      create a bed, print its description (JSON), keep it
                      until stdin closes or SIGINT/SIGTERM/SIGHUP; then remove it
  nat64bed.py check   create a bed, prove every property below with plain
                      sockets, kdig and rtnetlink, remove it (exit 0 when all
                      hold, 1 otherwise, 77 skip)
  nat64bed.py --cleanup
                      remove stale beds (tnat-<pid>-* whose process is gone)

Also a module: `with nat64bed.Nat64Bed() as bed: subprocess.run(bed.client([...]))`.

Layout (nothing is added to, or routed through, the host's namespace):

  client ns  tnat-<pid>-<n>-c        router ns  tnat-<pid>-<n>-r              server ns  tnat-<pid>-<n>-s
    c0 2001:db8:46:1::2/64 <-veth-> r0 2001:db8:46:1::1/64
    (IPv6 only: no IPv4              r1 10.64.0.1/24            <-veth-> s0 10.64.0.2/24
     address or route)               nat64 (TUN): tayga,                   (IPv4 only)
                                     2001:db8:64::/96 <-> 10.64.255.0/24   listener 10.64.0.2:7101
                                     unbound with dns64 on [2001:db8:46:1::1]:53
                                     an RA sender on r0: PREF64 2001:db8:64::/96

- tayga (Debian's) translates between the Network-Specific Prefix
  2001:db8:64::/96 and IPv4 (the client's IPv6 address is mapped to one of
  10.64.255.0/24). A Network-Specific Prefix because tayga keeps RFC 6052
  §3.1: under the Well-Known Prefix 64:ff9b::/96 it refuses private IPv4
  destinations such as the server's.
- unbound is the client's resolver (/etc/netns/<client>/resolv.conf) with
  its dns64 module (dns64-prefix 2001:db8:64::/96). A second unbound, on the
  router's 127.0.0.1:5353, is authoritative for the bed's names (the
  resolver reaches it as a stub zone, so that dns64 sees the answers):
    v4only.nat64.test     A 10.64.0.2 only: AAAA synthesized 2001:db8:64::a40:2
    dual.nat64.test       A 10.64.0.2 and a real AAAA 2001:db8:46:9::1: not synthesized
    _7101._https.hint.nat64.test
                          HTTPS 1 svc.nat64.test. ipv4hint=10.64.0.2 (the name and its
                          TargetName have no address records: only the hint)
    ipv4only.arpa         A 192.0.0.170, 192.0.0.171 (RFC 7050 §2.2, RFC 8880):
                          AAAA synthesized, so RFC 7050 discovery works
- a third unbound on [2001:db8:46:1::53]:53 without dns64 (the "plain
  resolver", same stub zones): an A-only name has no AAAA there. Tests
  point a loop at it with TAPS_RESOLV_CONF.
- the RA sender (this file, a raw ICMPv6 socket) sends a Router
  Advertisement every second on r0, router lifetime 0 (not a default
  router: the client's default route is static), with the PREF64 option of
  RFC 8781 for 2001:db8:64::/96, lifetime 1800 s. Debian 12's radvd (2.19)
  cannot send that option. The client's kernel hands the option to user
  space as RTM_NEWNDUSEROPT. It answers a Router Solicitation at once.
  `Nat64Bed(ra=False)` builds the bed without it (RFC 7050 alone).

Needs root, `ip`, `tayga`, `unbound` and `kdig` (or `dig`). Without them it exits 77
(skip) with a message, except under CI=true, where that is a failure.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netbed  # noqa: E402
from netbed import BedError, sh  # noqa: E402

PREFIX = "tnat-"
HERE = os.path.abspath(__file__)

C6 = "2001:db8:46:1::2"
R6 = "2001:db8:46:1::1"
R4 = "10.64.0.1"
S4 = "10.64.0.2"
POOL4 = "10.64.255.0/24"
TAYGA4 = "10.64.255.1"
NSP = "2001:db8:64::/96"
NSP_BASE = "2001:db8:64::"
PORT = 7101
DNS_PORT = 53
AUTH_PORT = 5353
DUAL6 = "2001:db8:46:9::1"
PLAIN6 = "2001:db8:46:1::53"
PREF64_LIFETIME = 1800

RTM_NEWNDUSEROPT = 68
RTNLGRP_ND_USEROPT = 20
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1


def synthesized(v4, base=NSP_BASE):
    """The RFC 6052 /96 address of v4 under base."""
    return str(socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, base)[:12]
                                + socket.inet_aton(v4)))


def _dig():
    """The DNS query tool and its timeout options: kdig, else dig."""
    if shutil.which("kdig"):
        return ["kdig", "+short", "+time=2", "+retry=1"]
    if shutil.which("dig"):
        return ["dig", "+short", "+time=2", "+tries=2"]
    return None


def can_run():
    """None when beds can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool, pkg in (("ip", "iproute2"), ("tayga", "tayga"), ("unbound", "unbound")):
        if shutil.which(tool) is None:
            return f"needs `{tool}` ({pkg}; scripts/deps --test installs it)"
    if _dig() is None:
        return "needs `kdig` (knot-dnsutils; scripts/deps --test installs it) or `dig`"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun for tayga"
    return None


def _netns_list():
    p = sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def _remove_ns(ns):
    if ns in _netns_list():
        netbed._kill_ns_processes(ns)
        sh("ip", "netns", "del", ns, check=False)
    shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


def cleanup_stale(everything=False):
    """Remove nat64 beds whose creating process is gone. Returns their names."""
    names = set(_netns_list())
    if os.path.isdir("/etc/netns"):
        names.update(os.listdir("/etc/netns"))
    removed = []
    for ns in sorted(names):
        m = re.fullmatch(re.escape(PREFIX) + r"(\d+)-(\d+)-([crs])", ns)
        if m and (everything or not netbed._pid_alive(int(m.group(1)))):
            _remove_ns(ns)
            removed.append(ns)
    for d in os.listdir(tempfile.gettempdir()):
        m = re.fullmatch(re.escape(PREFIX) + r"(\d+)-(\d+)-\w+", d)
        if m and (everything or not netbed._pid_alive(int(m.group(1)))):
            shutil.rmtree(os.path.join(tempfile.gettempdir(), d), ignore_errors=True)
    return removed


_counter = 0
_live = []


def _on_signal(signum, frame):
    for bed in list(_live):
        bed.down()
    sys.exit(128 + signum)


class Nat64Bed:
    """One bed. `up()` creates it, `down()` removes it; both idempotent."""

    def __init__(self, ra=True):
        """`ra`: run the RA sender (False: the client learns no prefix from
        RAs, only by RFC 7050 from the DNS64)."""
        global _counter
        _counter += 1
        base = f"{PREFIX}{os.getpid()}-{_counter}"
        self.client_ns, self.router_ns, self.server_ns = base + "-c", base + "-r", base + "-s"
        self.tmp = None
        self.procs = []
        self.nsp, self.server_v4, self.port, self.resolver = NSP, S4, PORT, R6
        self.client_if = "c0"
        self.ra = ra
        self.plain_resolver = PLAIN6

    def client(self, argv):
        return ["ip", "netns", "exec", self.client_ns] + list(argv)

    def router(self, argv):
        return ["ip", "netns", "exec", self.router_ns] + list(argv)

    def server(self, argv):
        return ["ip", "netns", "exec", self.server_ns] + list(argv)

    def describe(self):
        return {"client_ns": self.client_ns, "router_ns": self.router_ns, "server_ns": self.server_ns,
                "client": {"interface": "c0", "ipv6": C6, "gateway": R6},
                "nat64": {"translator": "tayga", "prefix": NSP, "pool4": POOL4},
                "dns64": {"resolver": R6, "port": DNS_PORT, "prefix": NSP},
                "plain_resolver": {"resolver": PLAIN6, "port": DNS_PORT},
                "ra": {"interface": "r0", "pref64": NSP, "lifetime_s": PREF64_LIFETIME} if self.ra else None,
                "server": {"ipv4": S4, "port": PORT, "synthesized": synthesized(S4)},
                "names": {"v4only.nat64.test": {"A": S4}, "dual.nat64.test": {"A": S4, "AAAA": DUAL6},
                          "ipv4only.arpa": {"A": ["192.0.0.170", "192.0.0.171"]}}}

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()
        return False

    def up(self):
        why = can_run()
        if why:
            raise BedError(why)
        if not _live:
            import atexit
            atexit.register(lambda: [b.down() for b in list(_live)])
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                try:
                    signal.signal(s, _on_signal)
                except (ValueError, OSError):
                    pass
        cleanup_stale()
        self.down()
        _live.append(self)
        try:
            self._create()
        except BaseException:
            self.down()
            raise
        return self

    def down(self):
        for p in self.procs:
            try:
                if p.stdin:
                    p.stdin.close()
                p.terminate()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        for ns in (self.client_ns, self.router_ns, self.server_ns):
            _remove_ns(ns)
        try:
            os.rmdir("/etc/netns")
        except OSError:
            pass
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if self in _live:
            _live.remove(self)

    # -- construction -------------------------------------------------------
    def _create(self):
        C, R, S = self.client_ns, self.router_ns, self.server_ns
        self.tmp = tempfile.mkdtemp(prefix=f"{C[:-2]}-")
        for ns in (C, R, S):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
               "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        sh("ip", "netns", "exec", R, "sysctl", "-q", "-w",
           "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        sh("ip", "-n", C, "link", "add", "c0", "type", "veth", "peer", "name", "r0", "netns", R)
        sh("ip", "-n", R, "link", "add", "r1", "type", "veth", "peer", "name", "s0", "netns", S)
        sh("ip", "-n", C, "addr", "add", f"{C6}/64", "dev", "c0", "nodad")
        sh("ip", "-n", R, "addr", "add", f"{R6}/64", "dev", "r0", "nodad")
        sh("ip", "-n", R, "addr", "add", f"{PLAIN6}/64", "dev", "r0", "nodad")
        sh("ip", "-n", R, "addr", "add", f"{R4}/24", "dev", "r1")
        sh("ip", "-n", S, "addr", "add", f"{S4}/24", "dev", "s0")
        for ns, dev in ((C, "c0"), (R, "r0"), (R, "r1"), (S, "s0")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", C, "-6", "route", "add", "default", "via", R6, "dev", "c0")
        sh("ip", "-n", S, "route", "add", "default", "via", R4, "dev", "s0")
        self._start_tayga()
        self._start_unbound()
        with open(os.path.join(self._etc(), "resolv.conf"), "w") as f:
            f.write(f"nameserver {R6}\noptions timeout:2 attempts:2\n")
        with open(os.path.join(self._etc(), "hosts"), "w") as f:
            f.write("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
        self._start(self.server([sys.executable, HERE, "_serve"]), "IPv4 server", ready_line=True)
        if self.ra:
            self._start(self.router([sys.executable, HERE, "_ra", "r0", NSP, str(PREF64_LIFETIME)]), "RA sender",
                        ready_line=True)
        self._wait(lambda: self.probe(synthesized(S4), PORT, 1.0) == "connected", "the server through tayga")
        self._wait(lambda: synthesized(S4) in self.dig("AAAA", "v4only.nat64.test"), "unbound's dns64")

    def _etc(self):
        etc = f"/etc/netns/{self.client_ns}"
        os.makedirs(etc, exist_ok=True)
        return etc

    def _start_tayga(self):
        conf = os.path.join(self.tmp, "tayga.conf")
        data = os.path.join(self.tmp, "tayga")
        os.makedirs(data)
        with open(conf, "w") as f:
            f.write(f"tun-device nat64\nipv4-addr {TAYGA4}\nprefix {NSP}\n"
                    f"dynamic-pool {POOL4}\ndata-dir {data}\n")
        R = self.router_ns
        sh(*self.router(["tayga", "--config", conf, "--mktun"]))
        sh("ip", "-n", R, "link", "set", "nat64", "up")
        sh("ip", "-n", R, "route", "add", POOL4, "dev", "nat64")
        sh("ip", "-n", R, "-6", "route", "add", NSP, "dev", "nat64")
        self._start(self.router(["tayga", "--config", conf, "--nodetach"]), "tayga")

    def _start_unbound(self):
        auth = os.path.join(self.tmp, "auth.conf")
        with open(auth, "w") as f:
            f.write(f"""server:
  interface: 127.0.0.1@{AUTH_PORT}
  port: {AUTH_PORT}
  do-ip6: no
  username: ""
  chroot: ""
  directory: "{self.tmp}"
  pidfile: "{self.tmp}/auth.pid"
  use-syslog: no
  logfile: ""
  do-daemonize: no
  local-zone: "nat64.test." static
  local-data: "v4only.nat64.test. 60 IN A {S4}"
  local-data: "dual.nat64.test. 60 IN A {S4}"
  local-data: "dual.nat64.test. 60 IN AAAA {DUAL6}"
  local-data: "_{PORT}._https.hint.nat64.test. 60 IN HTTPS 1 svc.nat64.test. ipv4hint={S4}"
  local-zone: "ipv4only.arpa." static
  local-data: "ipv4only.arpa. 3600 IN A 192.0.0.170"
  local-data: "ipv4only.arpa. 3600 IN A 192.0.0.171"
remote-control:
  control-enable: no
""")
        res = os.path.join(self.tmp, "resolver.conf")
        with open(res, "w") as f:
            f.write(f"""server:
  interface: {R6}
  port: {DNS_PORT}
  access-control: ::/0 allow
  do-not-query-localhost: no
  username: ""
  chroot: ""
  directory: "{self.tmp}"
  pidfile: "{self.tmp}/resolver.pid"
  use-syslog: no
  logfile: ""
  do-daemonize: no
  module-config: "dns64 iterator"
  dns64-prefix: {NSP}
  local-zone: "test." nodefault
  domain-insecure: "nat64.test."
  domain-insecure: "ipv4only.arpa."
stub-zone:
  name: "nat64.test."
  stub-addr: 127.0.0.1@{AUTH_PORT}
stub-zone:
  name: "ipv4only.arpa."
  stub-addr: 127.0.0.1@{AUTH_PORT}
remote-control:
  control-enable: no
""")
        plain = os.path.join(self.tmp, "plain.conf")
        with open(plain, "w") as f:
            f.write(open(res).read().replace(f"interface: {R6}", f"interface: {PLAIN6}")
                    .replace('  module-config: "dns64 iterator"\n', '  module-config: "iterator"\n')
                    .replace(f"  dns64-prefix: {NSP}\n", "")
                    .replace("resolver.pid", "plain.pid"))
        for conf in (auth, res, plain):
            sh(*self.router(["unbound-checkconf", conf]))
            self._start(self.router(["unbound", "-d", "-c", conf]), "unbound")

    def _start(self, argv, what, ready_line=False):
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE if ready_line else subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL if not ready_line else None, text=True)
        self.procs.append(p)
        if ready_line:
            line = p.stdout.readline().strip()
            if line != "ready":
                raise BedError(f"{what} helper failed: {line!r}")
        return p

    def _wait(self, ok, what, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise BedError(f"{p.args[4:]} exited with {p.returncode}")
            if ok():
                return
            time.sleep(0.1)
        raise BedError(f"{what} not ready after {seconds} s")

    # -- probes from the client ---------------------------------------------
    def probe(self, addr, port, timeout=1.0):
        """'connected', 'refused', 'timeout' or an errno name, seen from the client."""
        argv = [sys.executable, netbed.HERE, "_probe", addr, str(port), str(timeout)]
        return sh(*self.client(argv), check=False).stdout.strip()

    def dig(self, rtype, name, server=R6):
        """The client's resolver's answer (kdig/dig +short), one record a line
        (server: PLAIN6 for the resolver without dns64)."""
        p = sh(*self.client(_dig() + [f"@{server}", rtype, name]), check=False)
        return p.stdout.split()


# ---------------------------------------------------------------------------
# Helpers run inside the namespaces.
# ---------------------------------------------------------------------------

def _serve():
    ls = netbed._listener(S4, PORT, 4096)
    threading.Thread(target=netbed._accept_forever, args=(ls,), daemon=True).start()
    return [ls]


def pref64_option(prefix, lifetime_s):
    """The 16 bytes of an RFC 8781 §4 PREF64 option."""
    addr, plen = prefix.split("/")
    plc = {96: 0, 64: 1, 56: 2, 48: 3, 40: 4, 32: 5}[int(plen)]
    scaled = min((lifetime_s + 7) // 8, 8191)
    return struct.pack("!BBH", 38, 2, scaled << 3 | plc) + socket.inet_pton(socket.AF_INET6, addr)[:12]


def router_advertisement(options):
    """An RA (RFC 4861 §4.2): hop limit 64, no flags, router lifetime 0,
    reachable and retransmit times unspecified; the kernel fills the checksum."""
    return struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 0, 0, 0) + options


def _ra(ifname, prefix, lifetime):
    ifindex = socket.if_nametoindex(ifname)
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    ra = router_advertisement(pref64_option(prefix, int(lifetime)))

    def send_forever():
        while True:
            try:
                s.sendto(ra, ("ff02::1", 0, 0, ifindex))
            except OSError:
                pass  # link-local address not there yet
            time.sleep(1.0)

    def answer_solicitations():
        # RFC 4861 §6.2.6: a router answers a Router Solicitation with an
        # RA (here at once, to all nodes). The router namespace forwards,
        # so its kernel listens on ff02::2.
        while True:
            try:
                data, _ = s.recvfrom(1500)
                if data[:1] == b"\x85":  # type 133
                    s.sendto(ra, ("ff02::1", 0, 0, ifindex))
            except OSError:
                time.sleep(0.1)

    threading.Thread(target=send_forever, daemon=True).start()
    threading.Thread(target=answer_solicitations, daemon=True).start()
    return [s]


def read_pref64(timeout):
    """Listen on rtnetlink (RTNLGRP_ND_USEROPT) for an RTM_NEWNDUSEROPT
    carrying a PREF64 option; returns (ifindex, prefix, lifetime_s) or None."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, 0))
    s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_ND_USEROPT)
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            buf = s.recv(65536)
        except socket.timeout:
            return None
        while len(buf) >= 16:
            length, mtype = struct.unpack_from("=IH", buf)
            body = buf[16:length]
            if mtype == RTM_NEWNDUSEROPT and len(body) >= 16:
                _fam, _pad, opts_len, ifindex = struct.unpack_from("=BBHi", body)
                opts = body[16:16 + opts_len]
                while len(opts) >= 16 and opts[1]:
                    if opts[0] == 38 and opts[1] == 2:
                        word = struct.unpack_from("!H", opts, 2)[0]
                        plen = {0: 96, 1: 64, 2: 56, 3: 48, 4: 40, 5: 32}.get(word & 7)
                        if plen is not None:
                            addr = socket.inet_ntop(socket.AF_INET6, opts[4:16] + bytes(4))
                            return ifindex, f"{addr}/{plen}", (word >> 3) * 8
                    opts = opts[opts[1] * 8:]
            buf = buf[(length + 3) & ~3:]
    return None


# ---------------------------------------------------------------------------
# `check`: the bed's properties, with plain tools.
# ---------------------------------------------------------------------------

def self_check(bed, out=sys.stdout):
    results = []

    def check(ok, what):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {what}", file=out, flush=True)

    routes = sh(*bed.client(["ip", "-4", "route", "show", "table", "main"]), check=False).stdout.strip()
    check(routes == "", f"client: no IPv4 route in the main table ({routes!r})")
    got = bed.probe(S4, PORT, 1.0)
    check(got == "ENETUNREACH", f"client: connect to {S4}:{PORT} fails at once: {got}")
    v6 = synthesized(S4)
    got = bed.probe(v6, PORT, 2.0)
    check(got == "connected", f"client: [{v6}]:{PORT} reaches the IPv4 server through tayga: {got}")
    got = bed.probe(synthesized("10.64.0.3"), PORT, 1.0)
    check(got in ("timeout", "EHOSTUNREACH"), f"client: an IPv4 address nobody has, through tayga: {got}")
    ans = bed.dig("AAAA", "v4only.nat64.test")
    check(ans == [v6], f"dns64: AAAA v4only.nat64.test synthesized: {ans}")
    ans = bed.dig("A", "v4only.nat64.test")
    check(ans == [S4], f"dns64: A v4only.nat64.test passed through: {ans}")
    ans = bed.dig("AAAA", "v4only.nat64.test", PLAIN6) + bed.dig("A", "v4only.nat64.test", PLAIN6)
    check(ans == [S4], f"plain resolver {PLAIN6}: v4only.nat64.test has its A and no AAAA (no dns64): {ans}")
    ans = bed.dig("AAAA", "dual.nat64.test")
    check(ans == [DUAL6], f"dns64: AAAA dual.nat64.test is the real one, not synthesized: {ans}")
    ans = sorted(bed.dig("AAAA", "ipv4only.arpa"))
    want = sorted([synthesized("192.0.0.170"), synthesized("192.0.0.171")])
    check(ans == want, f"dns64: AAAA ipv4only.arpa synthesized (RFC 7050 discovery): {ans}")
    code = f"import sys; sys.path.insert(0, {os.path.dirname(HERE)!r}); import nat64bed; " \
           "print(nat64bed.read_pref64(5.0))"
    got = sh(*bed.client([sys.executable, "-c", code]), check=False).stdout.strip()
    ifindex = sh(*bed.client(["cat", "/sys/class/net/c0/ifindex"]), check=False).stdout.strip()
    want = f"({ifindex}, '{NSP}', {PREF64_LIFETIME})"
    check(got == want, f"RA: the client's kernel delivers RTM_NEWNDUSEROPT with PREF64: {got} (want {want})")
    good = sum(results)
    return good, len(results) - good


def main(argv):
    if argv[:1] == ["_serve"]:
        return netbed._helper(_serve)
    if argv[:1] == ["_ra"] and len(argv) == 4:
        return netbed._helper(lambda: _ra(argv[1], argv[2], argv[3]))
    if argv[:1] == ["--cleanup"]:
        if os.geteuid() != 0:
            print("nat64bed: needs root", file=sys.stderr)
            return 1
        for ns in cleanup_stale(everything="--all" in argv):
            print(f"removed {ns}")
        return 0
    if argv[:1] in (["up"], ["check"]):
        why = can_run()
        if why:
            if os.environ.get("CI") == "true":
                print(f"FAIL: nat64bed: {why} (CI=true: the test bed must run)", file=sys.stderr)
                return 1
            print(f"SKIP: nat64bed: {why}", file=sys.stderr)
            return 77
        bed = Nat64Bed()
        try:
            bed.up()
        except BedError as e:
            print(f"nat64bed: {e}", file=sys.stderr)
            bed.down()
            return 1
        try:
            if argv[0] == "check":
                good, bad = self_check(bed)
                print(f"nat64bed_check: {good} passed, {bad} failed")
                return 1 if bad else 0
            print(json.dumps(bed.describe(), indent=2), flush=True)
            print(f"# bed up; run commands with: ip netns exec {bed.client_ns} CMD "
                  "(close stdin or Ctrl-C to remove the bed)", file=sys.stderr, flush=True)
            sys.stdin.read()
            return 0
        finally:
            bed.down()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
