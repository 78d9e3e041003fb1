#!/usr/bin/env python3
"""Dual-stack races in a network namespace, through the taps_race program.

usage: dualstack_netns.py PATH/TO/taps_race

Creates a network namespace of its own (removed at exit, also on failure),
brings lo up, maps the name dual.test to both ::1 and 127.0.0.1 through
/etc/netns/<ns>/hosts, starts listeners inside the namespace and runs
`ip netns exec <ns> taps_race --json --attempt-delay 250 dual.test PORT`:

  (a) IPv6 blackholed ([::1]:PORT listens with backlog 0 and a full accept
      queue, so SYNs are dropped; 127.0.0.1:PORT listens): IPv4 wins, the
      median elapsed_ms is within 2 ms of 250 and every run within 10 ms;
  (b) IPv6 refused (only 127.0.0.1:PORT listens): IPv4 wins, median
      elapsed_ms under 2 ms;
  (c) both listen: IPv6 (::1) wins.

Needs root and `ip` (iproute2). Without them it exits 77 (skip) with a
message, except under CI=true, where that is a failure.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HOST = "dual.test"
DELAY_MS = 250
RUNS_BLACKHOLE = 7
RUNS_REFUSED = 7
RUNS_BOTH = 3

failures = []
passed = 0


def check(cond, what):
    global passed
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if cond:
        passed += 1
    else:
        failures.append(what)


def skip_or_fail(msg):
    if os.environ.get("CI") == "true":
        print(f"FAIL: {msg} (CI=true: this test must run)", file=sys.stderr)
        sys.exit(1)
    print(f"SKIP: {msg}", file=sys.stderr)
    sys.exit(77)


# --------------------------------------------------------------------------
# The listener helper, run inside the namespace: `--serve MODE`.
# --------------------------------------------------------------------------

def accept_forever(listener):
    while True:
        try:
            c, _ = listener.accept()
            c.close()
        except OSError:
            return


def serve(mode):
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    v4.bind(("127.0.0.1", 0))
    v4.listen(128)
    port = v4.getsockname()[1]
    threading.Thread(target=accept_forever, args=(v4,), daemon=True).start()
    keep = [v4]
    if mode in ("blackhole", "both"):
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        v6.bind(("::1", port))
        keep.append(v6)
        if mode == "both":
            v6.listen(128)
            threading.Thread(target=accept_forever, args=(v6,), daemon=True).start()
        else:
            # backlog 0: the accept queue holds one connection; fill it and
            # never accept, so every later SYN is dropped silently.
            v6.listen(0)
            filler = socket.create_connection(("::1", port), timeout=2)
            keep.append(filler)
            probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            probe.settimeout(0.2)
            try:
                probe.connect(("::1", port))
                print("error: [::1] still answers SYNs with a full accept queue", flush=True)
                return 1
            except (socket.timeout, OSError):
                pass
            finally:
                probe.close()
    elif mode != "refused":
        print(f"error: unknown mode {mode}", flush=True)
        return 2
    print(port, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    return 0


# --------------------------------------------------------------------------
# The test.
# --------------------------------------------------------------------------

def sh(*args, check_rc=True):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check_rc and p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


class Namespace:
    def __init__(self):
        self.name = f"taps-{os.getpid()}-{int(time.time() * 1000) % 100000}"
        self.etc = f"/etc/netns/{self.name}"
        self.created = False
        self.servers = []

    def create(self):
        sh("ip", "netns", "add", self.name)
        self.created = True
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        os.makedirs(self.etc, exist_ok=True)
        with open(os.path.join(self.etc, "hosts"), "w") as f:
            f.write("127.0.0.1\tlocalhost\n::1\tlocalhost\n"
                    f"::1\t{HOST}\n127.0.0.1\t{HOST}\n")

    def start_server(self, mode):
        p = subprocess.Popen(["ip", "netns", "exec", self.name, sys.executable, os.path.abspath(__file__),
                              "--serve", mode],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.servers.append(p)
        line = p.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"listener helper ({mode}) failed: {line!r}")
        return p, int(line)

    def stop_server(self, p):
        try:
            p.stdin.close()
            p.wait(timeout=5)
        except Exception:
            p.kill()
            p.wait()
        if p in self.servers:
            self.servers.remove(p)

    def cleanup(self):
        for p in list(self.servers):
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass
        self.servers = []
        if self.created:
            sh("ip", "netns", "del", self.name, check_rc=False)
            self.created = False
        shutil.rmtree(self.etc, ignore_errors=True)
        try:
            os.rmdir("/etc/netns")  # only if empty
        except OSError:
            pass


def race(ns, exe, port):
    p = subprocess.run(["ip", "netns", "exec", ns.name, exe, "--json", "--attempt-delay", str(DELAY_MS),
                        HOST, str(port)], capture_output=True, text=True, timeout=30)
    try:
        j = json.loads(p.stdout)
    except ValueError:
        print(f"taps_race exit {p.returncode}, stdout {p.stdout!r}, stderr {p.stderr!r}", flush=True)
        return p.returncode, None
    return p.returncode, j


def summary(j):
    w = j.get("winner")
    atts = ", ".join(f"{a['address']} {a['started_ms']}-{a['ended_ms']} {a['outcome']}"
                     + (f" ({a['error']})" if a.get("error") else "") for a in j.get("attempts", []))
    return f"winner {w and w['address']} elapsed {j.get('elapsed_ms')} ms; attempts: {atts}"


def scenario(ns, exe, mode, runs):
    server, port = ns.start_server(mode)
    results = []
    try:
        for _ in range(runs):
            code, j = race(ns, exe, port)
            if j is not None:
                print(f"  {mode}: exit {code}, {summary(j)}", flush=True)
            results.append((code, j))
    finally:
        ns.stop_server(server)
    return results


def winners_family(results, family, what):
    ok = all(code == 0 and j is not None and j.get("winner") and j["winner"]["family"] == family
             for code, j in results)
    check(ok, f"{what}: every run exits 0 and {family} wins")
    return ok


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        return serve(sys.argv[2])
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    print("test dualstack_netns", flush=True)
    if not os.access(exe, os.X_OK):
        print(f"FAIL: {exe} is not an executable", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        skip_or_fail("needs root to create a network namespace")
    if shutil.which("ip") is None:
        skip_or_fail("needs `ip` (iproute2)")

    ns = Namespace()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        try:
            ns.create()
        except RuntimeError as e:
            skip_or_fail(f"cannot create a network namespace: {e}")

        # (a) IPv6 blackholed: IPv4 after the attempt delay.
        res = scenario(ns, exe, "blackhole", RUNS_BLACKHOLE)
        if winners_family(res, "ipv4", "(a) v6 blackholed"):
            el = [j["elapsed_ms"] for _, j in res]
            med = statistics.median(el)
            check(abs(med - DELAY_MS) <= 2.0,
                  f"(a) v6 blackholed: median elapsed_ms {med:.2f} within 2 ms of {DELAY_MS}")
            check(all(abs(e - DELAY_MS) <= 10.0 for e in el),
                  f"(a) v6 blackholed: every elapsed_ms within 10 ms of {DELAY_MS}: {el}")
            ok = True
            for _, j in res:
                v6 = [a for a in j["attempts"] if a["family"] == "ipv6"]
                v4 = [a for a in j["attempts"] if a["outcome"] == "won"]
                ok = ok and len(v6) == 1 and v6[0]["outcome"] == "cancelled" and v6[0]["started_ms"] < 5 \
                    and len(v4) == 1 and abs(v4[0]["started_ms"] - DELAY_MS) <= 10
            check(ok, "(a) v6 blackholed: ::1 tried first and cancelled, IPv4 started at the attempt delay")

        # (b) IPv6 refused: IPv4 at once.
        res = scenario(ns, exe, "refused", RUNS_REFUSED)
        if winners_family(res, "ipv4", "(b) v6 refused"):
            el = [j["elapsed_ms"] for _, j in res]
            med = statistics.median(el)
            check(med < 2.0, f"(b) v6 refused: median elapsed_ms {med:.2f} under 2 ms ({el})")
            ok = all(any(a["family"] == "ipv6" and a["outcome"] == "failed" and a["error"] == "Connection refused"
                         for a in j["attempts"]) for _, j in res)
            check(ok, "(b) v6 refused: the ::1 attempt failed with Connection refused")

        # (c) both work: IPv6 first, and it wins.
        res = scenario(ns, exe, "both", RUNS_BOTH)
        if winners_family(res, "ipv6", "(c) both listen"):
            check(all(j["winner"]["address"] == "::1" and j["elapsed_ms"] < 50 for _, j in res),
                  "(c) both listen: ::1 wins at once")
    except RuntimeError as e:
        check(False, f"setup: {e}")
    finally:
        ns.cleanup()
        check(not os.path.exists(ns.etc) and ns.name not in sh("ip", "netns", "list").stdout,
              "namespace and /etc/netns entry removed")

    print(f"dualstack_netns: {passed} passed, {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
