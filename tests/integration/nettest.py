"""Shared pieces of the network-namespace integration tests: the test bed
(tests/netbed/netbed.py), skip rules, checks, running taps_race in the
client namespace."""
import json
import os
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netbed"))
import netbed  # noqa: E402

DELAY_MS = 250


class Checks:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failures = []
        print(f"test {name}", flush=True)

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)
        return cond

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {len(self.failures)} failed", flush=True)
        return 1 if self.failures else 0


def skip_or_fail(msg):
    """Exit 77 (ctest: skipped) with a message; under CI=true a failure."""
    if os.environ.get("CI") == "true":
        print(f"FAIL: {msg} (CI=true: this test must run)", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"SKIP: {msg}", file=sys.stderr, flush=True)
    sys.exit(77)


def executable_arg(doc):
    if len(sys.argv) != 2:
        print(doc, file=sys.stderr)
        sys.exit(2)
    exe = os.path.abspath(sys.argv[1])
    if not os.access(exe, os.X_OK):
        print(f"FAIL: {exe} is not an executable", file=sys.stderr)
        sys.exit(1)
    return exe


def open_bed():
    why = netbed.can_run()
    if why:
        skip_or_fail(why)
    bed = netbed.Bed()
    try:
        bed.up()
    except netbed.BedError as e:
        skip_or_fail(f"cannot build the namespace test bed: {e}")
    return bed


def race(bed, exe, host, port, *opts):
    argv = bed.client([exe, "--json", *opts, host, str(port)])
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    try:
        j = json.loads(p.stdout)
    except ValueError:
        print(f"  taps_race exit {p.returncode}, stdout {p.stdout!r}, stderr {p.stderr!r}", flush=True)
        return p.returncode, None
    return p.returncode, j


def summary(j):
    w = j.get("winner")
    atts = ", ".join(f"{a['address']} {a['started_ms']}-{a['ended_ms']} {a['outcome']}"
                     + (f" ({a['error']})" if a.get("error") else "") for a in j.get("attempts", []))
    return f"winner {w and w['address']} elapsed {j.get('elapsed_ms')} ms; attempts: {atts}"


def runs(bed, exe, host, port, n, *opts, label=""):
    out = []
    for _ in range(n):
        code, j = race(bed, exe, host, port, *opts)
        if j is not None:
            print(f"  {label or host}: exit {code}, {summary(j)}", flush=True)
        out.append((code, j))
    return out


def all_won_by(results, family):
    return all(code == 0 and j is not None and j.get("winner") and j["winner"]["family"] == family
               for code, j in results)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def first_attempt(j):
    atts = sorted(j.get("attempts", []), key=lambda a: a["started_ms"])
    return atts[0] if atts else None


def winner_attempt(j):
    for a in j.get("attempts", []):
        if a["outcome"] == "won":
            return a
    return None
