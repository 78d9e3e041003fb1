#!/usr/bin/env python3
"""Checks that TAPS_LOG=debug makes the library log to stderr, and -v too.

usage: taps_race_log.py PATH/TO/taps_race

Runs taps_race's demo (it races localhost and ::1 against a listener of its
own on 127.0.0.1) with TAPS_LOG=debug: stderr has one line per attempt
start and one per attempt end (as many as the race's attempts), each with a
time in ms and a level; the same with -v through the log callback.
"""
import os
import re
import subprocess
import sys

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(exe, args, env):
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, env=env)
    return p.returncode, p.stdout, p.stderr


def attempts(out):
    """The rows of the timeline table: (number, outcome)."""
    return re.findall(r"^\s*(\d+)\s+\S.*?\s(won|failed|cancelled|running|spare)\s", out, re.M)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    exe = sys.argv[1]
    print("test taps_race_log", flush=True)
    base = {k: v for k, v in os.environ.items() if k != "TAPS_LOG"}

    for how, args, env in (("TAPS_LOG=debug", [], dict(base, TAPS_LOG="debug")), ("-v", ["-v"], base)):
        code, out, err = run(exe, args, env)
        sys.stdout.write(err)
        check(code == 0, f"{how}: the demo exits 0 (got {code})")
        rows = attempts(out)
        started = re.findall(r"^\s*[\d.]+ ms\s+DEBUG\s.*race \d+: attempt (\d+) started at ", err, re.M)
        ended = re.findall(r"^\s*[\d.]+ ms\s+DEBUG\s.*race \d+: attempt (\d+) \(.*\) (won|failed|cancelled) at ", err, re.M)
        check(len(rows) >= 1, f"{how}: the timeline has attempts ({len(rows)})")
        check(len(started) == len(rows), f"{how}: one start line per attempt ({len(started)} for {len(rows)})")
        check(len(ended) == len(rows), f"{how}: one end line per attempt ({len(ended)} for {len(rows)})")
        check(sorted(int(n) for n in started) == list(range(len(rows))), f"{how}: attempts numbered from 0")
        check(any(o == "won" for _, o in ended), f"{how}: an end line says which attempt won")
        check(re.search(r"INFO\s.*race \d+ started: ", err) is not None, f"{how}: the race's start at info")

    code, out, err = run(exe, [], base)
    check(code == 0 and " DEBUG " not in err and " INFO " not in err, "no TAPS_LOG, no -v: no log lines")
    check("won at " in out and "ready callback at " in out, "the winner line says which time is which")

    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        return 1
    print("test taps_race_log ... ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
