#!/usr/bin/env python3
"""A path that cannot reach the destination is pruned before the race
(HEv3 -04 §4.1), on the namespace test bed, through taps_race.

usage: unroutable_path_netns.py PATH/TO/taps_race

The bed's client has two links, c1 (10.200.1.0/24, 2001:db8:200:1::/64) and c2
(10.200.2.0/24, 2001:db8:200:2::/64), and no default route. s2's addresses
(10.200.2.1, 2001:db8:200:2::1) are only reachable through c2, and 127.0.0.1 is
an address of the client itself, which c1 leads off. So

  taps_race --json --interface c1 10.200.2.1 443
  taps_race --json --interface c1 2001:db8:200:2::1 443
  taps_race --json --interface c1 127.0.0.1 443

must fail at once (well under the kernel's ARP or SYN timeouts: no attempt is
made), with the error naming the reason (no path has a route) and the report
listing the candidate as "pruned" with "Network is unreachable". Through c2,
s2's addresses connect (the control: nothing pruned).

Needs root and `ip`: without them it exits 77, except under CI=true (a
failure).
"""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import nettest  # noqa: E402

PORT = 443  # accepts on s1's and s2's addresses
AT_ONCE_MS = 50.0


def main():
    exe = nettest.executable_arg(__doc__)
    t = nettest.Checks("unroutable_path_netns")
    bed = nettest.open_bed()
    try:
        for dst in ("10.200.2.1", "2001:db8:200:2::1", "127.0.0.1"):
            code, j = nettest.race(bed, exe, dst, PORT, "--interface", "c1")
            what = f"--interface c1 {dst}"
            if not t.check(j is not None, f"{what}: JSON out"):
                continue
            print(f"  {what}: exit {code}, {nettest.summary(j)}, error {j.get('error')!r}", flush=True)
            t.check(code != 0 and not j.get("winner"), f"{what}: fails")
            t.check("no path has a route" in (j.get("error") or ""), f"{what}: the error names the reason")
            t.check(j.get("elapsed_ms", 1e9) < AT_ONCE_MS, f"{what}: at once ({j.get('elapsed_ms')} ms)")
            atts = j.get("attempts", [])
            t.check(len(atts) == 1 and atts[0]["outcome"] == "pruned" and atts[0]["address"] == dst
                    and atts[0]["error"] == "Network is unreachable",
                    f"{what}: the report lists the candidate as pruned, no route")
        for dst in ("10.200.2.1", "2001:db8:200:2::1"):
            code, j = nettest.race(bed, exe, dst, PORT, "--interface", "c2")
            what = f"--interface c2 {dst}"
            if not t.check(j is not None, f"{what}: JSON out"):
                continue
            print(f"  {what}: exit {code}, {nettest.summary(j)}", flush=True)
            t.check(code == 0 and j.get("winner") and all(a["outcome"] != "pruned" for a in j["attempts"]),
                    f"{what}: connects, nothing pruned")
    except Exception as e:
        t.check(False, f"unexpected error: {e!r}")
    finally:
        bed.down()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
