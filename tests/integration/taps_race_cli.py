#!/usr/bin/env python3
"""Checks the taps_race command-line program on loopback.

usage: taps_race_cli.py PATH/TO/taps_race

Bad usage exits 2 with a usage message on stderr; the demo (no HOST) shows
::1 refused and IPv4 winning; --json prints exactly one JSON object; a
refused or timed-out race exits 1 with winner null and an error. A name
whose HTTPS record (RFC 9460) a small DNS server on loopback answers
(TAPS_RESOLV_CONF) shows, in the readable output, each attempt's ALPN ids,
SvcPriority and hint, and the records used; without records, none of it.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(exe, *args, env=None):
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, env=env)
    return p.returncode, p.stdout, p.stderr


HTTPS_NAME = "svc.taps-race.test"
ECH_CONFIG = bytes([0x00, 0x08, 0xfe, 0x0d, 0x00, 0x04, 1, 2, 3, 4])


def https_rdata(port):
    """HTTPS "1 . alpn=h2 port=PORT ipv4hint=127.0.0.1 ech=..." (RFC 9460 §2.2)."""
    params = [(1, b"\x02h2"), (3, struct.pack("!H", port)), (4, socket.inet_aton("127.0.0.1")), (5, ECH_CONFIG)]
    return struct.pack("!H", 1) + b"\x00" + b"".join(struct.pack("!HH", k, len(v)) + v for k, v in params)


A_DELAY_S = 0.3


def dns_answer(query, port):
    """The reply to one query for HTTPS_NAME (A 127.0.0.1, the HTTPS record
    on `port`, AAAA empty; NXDOMAIN for other names) and its type; None
    for a query too short."""
    if len(query) < 17:
        return None, 0
    qid, i, labels = query[:2], 12, []
    while i < len(query) and query[i] != 0:
        labels.append(query[i + 1:i + 1 + query[i]].decode("ascii", "replace"))
        i += 1 + query[i]
    qtype = struct.unpack("!H", query[i + 1:i + 3])[0]
    question = query[12:i + 5]
    ours = ".".join(labels).lower() == HTTPS_NAME
    rdata = {1: socket.inet_aton("127.0.0.1"), 65: https_rdata(port)}.get(qtype) if ours else None
    answer = b"" if rdata is None else b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 30, len(rdata)) + rdata
    flags = 0x8580 if ours else 0x8583
    return qid + struct.pack("!HHHHH", flags, 1, 1 if answer else 0, 0, 0) + question + answer, qtype


def dns_server(port):
    """A UDP DNS server on 127.0.0.1 (thread) answering HTTPS_NAME, its A
    answer A_DELAY_S late; its port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))

    def serve():
        while True:
            query, peer = s.recvfrom(4096)
            reply, qtype = dns_answer(query, port)
            if reply is not None:
                # The A answer comes late: the attempt goes to the hint.
                threading.Timer(A_DELAY_S if qtype == 1 else 0, s.sendto, (reply, peer)).start()

    threading.Thread(target=serve, daemon=True).start()
    return s.getsockname()[1]


def check_https_text(exe):
    """The readable output of a race with an HTTPS record: its attempt's
    ALPN ids, SvcPriority and hint, and the record (priority, target, port,
    alpn, ECH); the same race in --json agrees."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    port = lst.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "resolv.conf")
        with open(conf, "w") as f:
            f.write(f"nameserver 127.0.0.1:{dns_server(port)}\noptions timeout:1 attempts:2\n")
        env = dict(os.environ, TAPS_RESOLV_CONF=conf)
        code, out, err = run(exe, HTTPS_NAME, "443", env=env)
        print(out, end="")
        check(code == 0 and f"winner: 127.0.0.1 port {port}" in out,
              f"HTTPS record port={port}: the winner is on it (got {code}; stderr {err!r})")
        check(f"\n  priority 1  target {HTTPS_NAME}  port {port}  alpn h2,http/1.1  ECH\n" in out,
              "the readable output lists the HTTPS record: priority, target, port, alpn, ECH")
        rows = [ln.split() for ln in out.splitlines() if ln.lstrip().startswith("alpn ")]
        check(rows == [["alpn", "h2,http/1.1", "SvcPriority", "1", "from", "hint"]],
              f"the attempt (to the hint, before the late A answer) shows its ALPN ids, SvcPriority, hint: {rows}")
        code, jout, err = run(exe, "--json", HTTPS_NAME, "443", env=env)
        j = parse_json(jout, "HTTPS --json")
        if j is not None:
            check([(a["alpn"], a["service_priority"], a["from_hint"]) for a in j["attempts"]]
                  == [(["h2", "http/1.1"], 1, True)] and j["https_records"][0]["ech"] is True,
                  "--json agrees: alpn [h2, http/1.1], service_priority 1, from_hint, the record with ECH")
    lst.close()


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
    check("HTTPS records" not in out and "SvcPriority" not in out and "alpn" not in out,
          "demo (no HTTPS records): no HTTPS lines")

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

    check_https_text(exe)

    if failures:
        print(f"taps_race_cli: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("test taps_race_cli ... ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
