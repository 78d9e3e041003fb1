#!/usr/bin/env python3
"""Racing two local paths on the namespace test bed, through taps_race.

usage: two_paths_netns.py PATH/TO/taps_race

The bed's client reaches the service addresses of twopath.test (10.200.9.1,
2001:db8:200:9::1) over two veth links, c1 and c2; the server drops every SYN
that comes through c2 (a listener bound to s2 with a full accept queue) and
accepts through c1. Binding to c2 by device or by its addresses both take c2.

  taps_race --json --interface c1 --interface c2 twopath.test 7005
  taps_race --json --interface c2 --interface c1 twopath.test 7005

must connect, over c1: the winner is never on c2. When the JSON names the
local interface or address of attempts, the winner's must be c1's, and some
attempt must have gone through c2 (both paths raced). With c2 listed first,
when c2 is attempted first, c1 must win no earlier than the attempt delay.

Needs a taps_race with `--interface` (local endpoints): while `taps_race
--help` does not list it, this test exits 77 (skip) saying so. Also needs
root and `ip`: without them it exits 77, except under CI=true (a failure).
"""
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import nettest  # noqa: E402
from nettest import DELAY_MS

RUNS = 5


def local_of(a):
    """The local interface or address an attempt (or winner) names, if any."""
    for k in ("interface", "local_interface", "local_address", "local", "source", "source_address", "path"):
        v = a.get(k)
        if isinstance(v, dict):
            v = v.get("interface") or v.get("address")
        if v:
            return str(v)
    return None


def on_c2(bed, v):
    d = bed.describe()["client_interfaces"]["c2"]
    return v in ("c2", d["ipv4"], d["ipv6"])


def on_c1(bed, v):
    d = bed.describe()["client_interfaces"]["c1"]
    return v in ("c1", d["ipv4"], d["ipv6"])


def main():
    exe = nettest.executable_arg(__doc__)
    h = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    if "--interface" not in h.stdout + h.stderr:
        print("SKIP: taps_race has no --interface option yet (local endpoints / interface selection pending)",
              file=sys.stderr, flush=True)
        return 77
    t = nettest.Checks("two_paths_netns")
    bed = nettest.open_bed()
    c = bed.cases["twopath"]
    all_attempts, named = [], False
    try:
        for order in (("c1", "c2"), ("c2", "c1")):
            args = []
            for i in order:
                args += ["--interface", i]
            res = nettest.runs(bed, exe, c["host"], c["port"], RUNS, "--attempt-delay", str(DELAY_MS), *args,
                               label=f"interfaces {','.join(order)}")
            what = f"interfaces {' then '.join(order)}"
            if not t.check(all(code == 0 and j and j.get("winner") for code, j in res),
                           f"{what}: every run connects"):
                continue
            all_attempts += [a for _, j in res for a in j["attempts"]]
            winners = [local_of(j["winner"]) or local_of(nettest.winner_attempt(j) or {}) for _, j in res]
            if all(w is None for w in winners):
                print("  note: the JSON names no local interface/address; checking what it can", flush=True)
            else:
                named = True
                t.check(all(w is not None and on_c1(bed, w) for w in winners),
                        f"{what}: the winner is on c1 ({winners})")
                late = [j["elapsed_ms"] for _, j in res
                        if j["attempts"] and on_c2(bed, local_of(min(j["attempts"],
                                                                     key=lambda a: a["started_ms"])) or "")]
                if late:
                    t.check(all(e >= DELAY_MS - 1 for e in late),
                            f"{what}: when c2 was tried first, c1 won after the attempt delay ({late})")
            t.check(all(a["outcome"] != "won" or j["winner"]["address"] == a["address"]
                        for _, j in res for a in j["attempts"]), f"{what}: one winner per race")
        if named:
            t.check(any(on_c2(bed, local_of(a) or "") for a in all_attempts),
                    "both paths raced: some attempts went through c2")
    except Exception as e:
        t.check(False, f"unexpected error: {e!r}")
    finally:
        bed.down()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
