#!/usr/bin/env python3
"""The C API on the namespace test bed: runs c-tests/test_netbed.c in the
bed's client namespace, one process per case.

usage: c_netbed.py PATH/TO/test_netbed

The cases (what each checks is in c-tests/test_netbed.c): IPv6 blackholed,
IPv6 refused, both work, slow / fast / late AAAA from the bed's DNS server,
two local paths, the blackhole case on a loop embedded in the test's own
poll(2), and no loop fd left after taps_event_loop_free while a resolver thread
still waits for an AAAA answer.

Needs root and `ip` (iproute2). Without them it exits 77 (skip) with a
message, except under CI=true, where that is a failure.
"""
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import nettest  # noqa: E402

CASES = ["blackhole", "refused", "both", "slow_aaaa", "fast_aaaa", "late_aaaa", "two_paths", "embedded",
         "free_while_resolving"]


def main():
    exe = nettest.executable_arg(__doc__)
    t = nettest.Checks("c_netbed")
    bed = nettest.open_bed()
    try:
        for case in CASES:
            try:
                p = subprocess.run(bed.client([exe, case]), capture_output=True, text=True, timeout=120)
                out, code = p.stdout + p.stderr, p.returncode
            except subprocess.TimeoutExpired as e:
                out, code = f"{e.stdout or ''}{e.stderr or ''}\ntimed out after 120 s", -1
            for line in out.strip().splitlines():
                print(f"  {line}", flush=True)
            t.check(code == 0, f"{case}: test_netbed {case} exit {code}")
    finally:
        bed.down()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
