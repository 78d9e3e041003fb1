#!/usr/bin/env python3
"""History across runs of taps_race on the namespace test bed.

usage: history_netns.py PATH/TO/taps_race

Builds the test bed (tests/netbed/netbed.py) and runs
`ip netns exec <client> taps_race --json --history FILE blackhole.test 7001`
(IPv6 blackholed: SYNs vanish; IPv4 accepts) again and again with one
history file:

  run 1     no history: IPv6 first, IPv4 wins at the attempt delay (within
            15 ms of 250 ms); the file is written, mode 0600, first line
            "taps-racing-history 1";
  runs 2-8  the history says IPv6 failed: IPv4 is attempted first and wins
            at once (every run under 15 ms, median under 5 ms), IPv6 is not
            attempted;
  run 9     convergence (a failure demotes in the next 7 races on its
            network, or for 30 s): the 8th race after the failing one
            attempts IPv6 first again; it is still blackholed,
            and IPv4 wins at the minimum delay that the known IPv4 RTT gives
            (100 ms, within 15 ms), not 250 ms.

Needs root and `ip` (iproute2). Without them it exits 77 (skip) with a
message, except under CI=true, where that is a failure.
"""
import os
import stat
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import nettest  # noqa: E402
from nettest import DELAY_MS, all_won_by, median


def main():
    exe = nettest.executable_arg(__doc__)
    t = nettest.Checks("history_netns")
    bed = nettest.open_bed()
    tmp = tempfile.mkdtemp(prefix="taps-history-")
    path = os.path.join(tmp, "history")
    c = bed.cases["blackhole"]
    race = lambda label: nettest.runs(bed, exe, c["host"], c["port"], 1, "--history", path, label=label)[0]
    try:
        code, j = race("run 1")
        if t.check(all_won_by([(code, j)], "ipv4"), "run 1: exits 0 and ipv4 wins"):
            first = nettest.first_attempt(j)
            t.check(first["family"] == "ipv6" and abs(j["elapsed_ms"] - DELAY_MS) <= 15.0,
                    f"run 1: IPv6 first, IPv4 at the attempt delay ({j['elapsed_ms']} ms)")
        ok = os.path.exists(path)
        t.check(ok, "run 1 wrote the history file")
        if ok:
            with open(path) as f:
                t.check(f.readline() == "taps-racing-history 1\n", "the file starts with its format and version")
            t.check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "the file is private (mode 0600)")

        fast = []
        for k in range(2, 9):
            code, j = race(f"run {k}")
            if not t.check(all_won_by([(code, j)], "ipv4"), f"run {k}: exits 0 and ipv4 wins"):
                continue
            fast.append(j["elapsed_ms"])
            t.check(all(a["family"] == "ipv4" for a in j["attempts"]) and j["elapsed_ms"] < 15.0,
                    f"run {k}: IPv4 only, at once ({j['elapsed_ms']} ms)")
        t.check(len(fast) == 7 and median(fast) < 5.0, f"runs 2-8: median elapsed_ms {median(fast):.2f} under 5 ms")

        code, j = race("run 9")
        if t.check(all_won_by([(code, j)], "ipv4"), "run 9: exits 0 and ipv4 wins"):
            first = nettest.first_attempt(j)
            t.check(first["family"] == "ipv6", "run 9: IPv6 attempted first again (convergence)")
            t.check(abs(j["elapsed_ms"] - 100.0) <= 15.0,
                    f"run 9: IPv4 at the 100 ms minimum delay its RTT gives ({j['elapsed_ms']} ms)")
    except Exception as e:  # a broken bed or program is a failure, not a crash
        t.check(False, f"unexpected error: {e!r}")
    finally:
        bed.down()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
