#!/usr/bin/env python3
"""bench/compare.py end to end, small: every tool and peer it measures
(taps_race, the C API, curl, asyncio, Node, the epoll loop, the plain C
floor, the memory runs) still runs on this machine and gives figures, so
that the benchmark does not rot between the runs that fill
docs/BENCHMARKS.md. It checks that the figures exist and are sane, not
the targets: those need a quiet machine and 15 minutes.

usage: bench_smoke.py BUILD_DIR

Checks: compare.py exits 0; one wake probe ran before the one round;
every time-to-connected case has its runs for every tool with no error;
the library's tools and the floor connect to the family RFC 8305 picks on
that case; every client makes connections at 100 and 1,000 in flight; the
memory runs have every race in flight, with a heap per race under 4 KiB.

Needs root, `ip`, curl and node. Without them it exits 77 (skip) with a
message, except under CI=true, where that is a failure.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import nettest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNS = 2
# Tools that follow the RFC 8305 schedule, so their winner is known.
SCHEDULED = ("taps_race", "taps_api", "taps_api_nocache", "floor_cold", "floor_warm")


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print(__doc__, file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    why = nettest.netbed.can_run()
    if why:
        nettest.skip_or_fail(why)
    for tool in ("curl", "node"):
        if shutil.which(tool) is None:
            nettest.skip_or_fail(f"`{tool}` is missing (scripts/deps --test installs it)")
    t = nettest.Checks("bench_smoke")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "figures.json")
        argv = [sys.executable, os.path.join(ROOT, "bench", "compare.py"), "--build", build, "--runs", str(RUNS),
                "--rounds", "1", "--block", "1", "--round-tries", "1", "--quiet-wait", "1", "--cps-seconds", "0.3", "--cps-repeats", "1",
                "--memory", "1000", "--out", os.path.join(tmp, "BENCHMARKS.md"), "--json", out]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        for line in (p.stdout + p.stderr).strip().splitlines():
            print(f"  {line}", flush=True)
        if not t.check(p.returncode == 0, f"compare.py exit {p.returncode}"):
            return t.finish()
        t.check(os.path.getsize(os.path.join(tmp, "BENCHMARKS.md")) > 0, "the Markdown report is written")
        with open(out) as f:
            j = json.load(f)

    # --quiet-wait 1: one wake probe before the round, never a pause.
    st = j.get("ttc_steal_pct") or [[]]
    t.check(len(st) == 1 and len(st[0]) == 4 and len(st[0][3]) == 1 and 0 <= st[0][3][0] <= 100,
            f"one round, one try, one wake probe before it: {st}")
    for case, row in j["ttc"].items():
        for tool, r in row.items():
            if not isinstance(r, dict):
                continue
            n = r["v6"] + r["v4"]
            t.check(n == RUNS and r["errors"] == 0, f"time to connected, {case}, {tool}: {n} of {RUNS} runs "
                    f"connected, {r['errors']} errors")
            if tool in SCHEDULED:
                got = r["v6"] if row["winner"] == "ipv6" else r["v4"]
                t.check(got == RUNS, f"time to connected, {case}, {tool}: {row['winner']} won {got} of {RUNS}")
    for key, rate in j["cps"].items():
        t.check(rate is not None and rate > 0, f"connections per second, {key}: {rate}")
    for m in j["memory"]:
        heap = m.get("heap_per_race")
        t.check(m.get("ok") and heap is not None and 0 < heap < 4096,
                f"memory, {m.get('races')} races in flight: all in flight {m.get('ok')}, heap {heap} B per race")
    t.check(len(j["targets"]) > 0, f"{len(j['targets'])} target lines")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
