#!/usr/bin/env python3
"""Checks the taps_race command-line program on loopback.

usage: taps_race_cli.py PATH/TO/taps_race

Bad usage exits 2 with a usage message on stderr; the demo (no HOST) shows
::1 refused and IPv4 winning; --json prints exactly one JSON object; a
refused or timed-out race exits 1 with winner null and an error.
"""
import json
import socket
import subprocess
import sys

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(exe, *args):
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def parse_json(out, what):
    try:
        return json.loads(out)
    except ValueError as e:
        check(False, f"{what}: stdout is one JSON object ({e}): {out!r}")
        return None


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    exe = sys.argv[1]
    print("test taps_race_cli", flush=True)

    # Bad usage: exit 2, usage on stderr, nothing on stdout.
    for args in (["--bogus"], ["--attempt-delay"], ["--attempt-delay", "abc"], ["--timeout", "-5"],
                 ["--resolution-delay", "99999999999"], ["127.0.0.1"], ["--json", "127.0.0.1"],
                 ["127.0.0.1", "0"], ["127.0.0.1", "65536"], ["127.0.0.1", "12x"],
                 ["127.0.0.1", "80", "extra"], ["", "80"], ["--https"], ["--https", "maybe", "127.0.0.1", "80"]):
        code, out, err = run(exe, *args)
        check(code == 2 and "usage" in err and out == "",
              f"bad usage {args} -> exit 2 with usage on stderr (got {code}, stdout {out!r})")

    code, out, err = run(exe, "--help")
    check(code == 0 and "usage" in out, "--help -> exit 0, usage on stdout")

    # The demo, readable.
    code, out, err = run(exe)
    print(out, end="")
    check(code == 0, f"demo exits 0 (got {code}; stderr {err!r})")
    check("::1" in out and "refused" in out, "demo says ::1 is raced and refused")
    check("winner: 127.0.0.1" in out, "demo: 127.0.0.1 wins")
    check("Connection refused" in out, "demo timeline shows the ::1 error (strerror)")

    # The demo, JSON.
    code, out, err = run(exe, "--json")
    print(out, end="")
    check(code == 0, f"demo --json exits 0 (got {code})")
    j = parse_json(out, "demo --json")
    if j is not None:
        w = j.get("winner")
        check(isinstance(w, dict) and w.get("address") == "127.0.0.1" and w.get("family") == "ipv4"
              and w.get("protocol") == "tcp" and isinstance(w.get("port"), int) and w["port"] > 0,
              "demo --json: winner 127.0.0.1 ipv4 tcp with a port")
        check(j.get("error") is None, "demo --json: error null")
        check(isinstance(j.get("elapsed_ms"), (int, float)) and 0 <= j["elapsed_ms"] < 200,
              f"demo --json: elapsed_ms under the attempt delay ({j.get('elapsed_ms')})")
        atts = j.get("attempts", [])
        v6 = [a for a in atts if a.get("family") == "ipv6"]
        check(len(v6) >= 1 and all(a["address"] == "::1" and a["outcome"] == "failed"
                                   and a["error"] == "Connection refused" for a in v6),
              "demo --json: ::1 attempted and refused")
        won = [a for a in atts if a.get("outcome") == "won"]
        check(len(won) == 1 and won[0]["family"] == "ipv4" and won[0]["error"] is None
              and won[0]["ended_ms"] is not None and won[0]["started_ms"] <= won[0]["ended_ms"],
              "demo --json: exactly one attempt won, over IPv4")
        keys = {"address", "port", "family", "started_ms", "ended_ms", "outcome", "error"}
        check(all(keys <= set(a) for a in atts), "demo --json: every attempt has the documented keys")
        # HTTPS records (HEv3): the system resolver asks none, so every
        # attempt has no ALPN, no SvcPriority, no hint, and the lists are empty.
        check(all(a.get("alpn") == [] and "service_priority" in a and a["service_priority"] is None
                  and a.get("from_hint") is False for a in atts),
              "demo --json: every attempt has alpn [], service_priority null, from_hint false")
        check(j.get("https_records") == [] and j.get("dns_answers") == [],
              "demo --json: https_records and dns_answers empty (no HTTPS asked)")

    # A literal that refuses: exit 1, winner null, error text.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = s.getsockname()[1]
    code, out, err = run(exe, "--json", "127.0.0.1", str(port))
    print(out, end="")
    check(code == 1, f"refused -> exit 1 (got {code})")
    j = parse_json(out, "refused --json")
    if j is not None:
        check(j.get("winner") is None and isinstance(j.get("error"), str) and j["error"],
              "refused --json: winner null, error text")
        atts = j.get("attempts", [])
        check(len(atts) == 1 and atts[0]["outcome"] == "failed" and atts[0]["error"] == "Connection refused"
              and atts[0]["port"] == port and atts[0]["address"] == "127.0.0.1",
              "refused --json: one failed attempt, Connection refused")
    code, out, err = run(exe, "127.0.0.1", str(port))
    check(code == 1 and "no winner" in out, "refused, readable: exit 1 and 'no winner'")
    s.close()

    # A literal that connects, port given as a number.
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    port = lst.getsockname()[1]
    code, out, err = run(exe, "--json", "--attempt-delay", "100", "--resolution-delay", "20",
                         "127.0.0.1", str(port))
    j = parse_json(out, "literal --json")
    check(code == 0 and j is not None and j["winner"]["port"] == port, "literal 127.0.0.1 connects, exit 0")

    # Total timeout against a silent address (listen backlog 0, full accept queue).
    bh = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    bh.bind(("127.0.0.1", 0))
    bh.listen(0)
    bport = bh.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", bport), timeout=2)
    code, out, err = run(exe, "--json", "--timeout", "150", "127.0.0.1", str(bport))
    print(out, end="")
    check(code == 1, f"timeout -> exit 1 (got {code})")
    j = parse_json(out, "timeout --json")
    if j is not None:
        check(j.get("winner") is None and isinstance(j.get("error"), str), "timeout --json: winner null, error")
        check(140 <= j.get("elapsed_ms", 0) <= 400, f"timeout --json: elapsed ~150 ms ({j.get('elapsed_ms')})")
        check(all(a["outcome"] != "won" for a in j.get("attempts", [])), "timeout --json: no attempt won")
    filler.close()
    bh.close()
    lst.close()

    if failures:
        print(f"taps_race_cli: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("test taps_race_cli ... ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
