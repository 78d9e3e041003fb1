#!/usr/bin/env python3
"""HTTPS records (RFC 9460) and the HEv3 rules on the namespace test bed,
through taps_race.

usage: hev3_netns.py PATH/TO/taps_race

The bed's DNS server answers hev3.test from knotd (tests/netbed/zones/
hev3.test.zone; netbed.HEV3_CASES describes each name) and *.slow.test
itself. taps_race runs in the client namespace with --json, port 443, the
default Resolution Delay (50 ms) and an attempt delay of 250 ms. Ports 443
and 8443 accept on the server's s1 and s2 addresses; 8446 refuses; 8447
drops SYNs. draft-ietf-happy-happyeyeballs-v3-04 sections in brackets.

  port       ServiceMode port=8443: the winner is on 8443, not 443 (RFC 9460 §7.2)
  alias      AliasMode to svc.hev3.test: the winner is svc's address (s2),
             not alias's own (s1) [§4.2.1]
  prio       SvcPriority 1 (prio1, port 8446, refused) then 2 (prio2, s2):
             the first attempt goes to priority 1's target and fails, the
             winner is priority 2's [§5.2]
  prioh      the same with priority 1 blackholed (8447): priority 2 wins
  mandatory  priority 1 has an unknown mandatory key: skipped, no attempt on
             its port 8446; priority 2 wins (RFC 9460 §8)
  hints      ipv4hint/ipv6hint and no A/AAAA: the winner is a hint (s2)
  hintdiff   hints (s2) differ from A/AAAA (s1): either wins, on 443
  ech, alpn, h3only
             the ServiceMode record's own addresses (s1) win on 443
  norecord   A/AAAA only: as without HTTPS records, the winner on 443 (s1)
  loop1, self
             AliasMode loops: the race ends and falls back to the name's own
             addresses (s1) within the attempt delay plus a margin
  chain0, noservice, port0
             hostile: the race ends (exit 0 or 1, one JSON object) within
             5 s, never with an attempt on port 0
  https300.slow.test
             A and AAAA at once, HTTPS after 300 ms: the race does not wait
             for HTTPS past the Resolution Delay: connected on 443 in under
             150 ms (~51 ms expected); with dns_answers printed, the first
             attempt no earlier than 45 ms [§4.2]
  https20.slow.test
             HTTPS ("1 . alpn=h2") within the Resolution Delay: connected on
             443 in under 150 ms; with dns_answers printed, the first attempt
             no earlier than 18 ms (when HTTPS came) [§4.2]

The assertions are on winner.address and winner.port; the JSON fields
attempts[].port/alpn/service_priority/from_hint, https_records[] and
dns_answers[] are checked only when taps_race prints them.

Needs root, `ip` (iproute2) and knotd/kdig (scripts/deps --test). Without
them it exits 77 (skip) with a message, except under CI=true, where that is
a failure.
"""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import nettest  # noqa: E402
from nettest import DELAY_MS, first_attempt, winner_attempt  # noqa: E402

netbed = nettest.netbed
RUNS = 2
PORT = netbed.PORT_HTTPS
S1, S2 = netbed.S1, netbed.S2


def won(code, j):
    return code == 0 and j is not None and isinstance(j.get("winner"), dict)


def winner_in(res, addresses, port):
    return all(won(c, j) and j["winner"]["address"] in addresses and j["winner"]["port"] == port for c, j in res)


def optional(j, key):
    """A field the library may not print yet: None when absent."""
    return j.get(key) if j is not None else None


def check_case(t, bed, exe, key, opts):
    case = netbed.HEV3_CASES[key]
    host = case["host"]
    res = nettest.runs(bed, exe, host, PORT, RUNS, *opts)
    addrs, port = case["connect"]
    t.check(winner_in(res, addrs, port), f"{host}: every run wins on one of {list(addrs)} port {port}")
    return res


def check_prio(t, bed, exe, key, refused_port, opts):
    res = check_case(t, bed, exe, key, opts)
    host = netbed.HEV3_CASES[key]["host"]
    if all(won(c, j) for c, j in res):
        firsts = [first_attempt(j) for _, j in res]
        t.check(all(a is not None and a["address"] in S1 and a["port"] == refused_port and a["outcome"] != "won"
                    for a in firsts),
                f"{host}: the first attempt goes to priority 1's target (s1 port {refused_port}) and fails "
                f"({[(a['address'], a['port'], a['outcome']) for a in firsts if a]})")
        prios = [(optional(a, "service_priority"), optional(winner_attempt(j), "service_priority"))
                 for a, (_, j) in zip(firsts, res)]
        if all(p != (None, None) for p in prios):
            t.check(all(p == (1, 2) for p in prios), f"{host}: service_priority first 1, winner 2 ({prios})")


def check_hostile(t, bed, exe, key):
    host = netbed.HEV3_CASES[key]["host"]
    res = nettest.runs(bed, exe, host, PORT, 1, "--timeout", "5000", "--attempt-delay", str(DELAY_MS))
    t.check(all(c in (0, 1) and j is not None and j.get("elapsed_ms", 1e9) < 5500 for c, j in res),
            f"{host}: the race ends within 5 s with one JSON object")
    t.check(all(a["port"] != 0 for _, j in res if j for a in j.get("attempts", [])),
            f"{host}: no attempt on port 0")


def main():
    exe = nettest.executable_arg(__doc__)
    t = nettest.Checks("hev3_netns")
    bed = nettest.open_bed()
    if not bed.knotd or netbed.kdig_path() is None:
        bed.down()
        nettest.skip_or_fail("needs knotd and kdig (Debian's knot, knot-dnsutils: scripts/deps --test)")
    opts = ("--attempt-delay", str(DELAY_MS))
    try:
        res = check_case(t, bed, exe, "port", opts)
        t.check(all(won(c, j) and j["winner"]["port"] == netbed.PORT_HTTPS_ALT for c, j in res),
                "port.hev3.test: connected on 8443 (port=8443), not the caller's 443")

        check_case(t, bed, exe, "alias", opts)
        check_prio(t, bed, exe, "prio", netbed.PORT_HTTPS_REFUSED, opts)
        check_prio(t, bed, exe, "prioh", netbed.PORT_HTTPS_HOLE, opts)

        res = check_case(t, bed, exe, "mandatory", opts)
        t.check(all(a["port"] != netbed.PORT_HTTPS_REFUSED for _, j in res if j for a in j.get("attempts", [])),
                "mandatory.hev3.test: no attempt on the skipped record's port 8446")

        res = check_case(t, bed, exe, "hints", opts)
        hints = [optional(winner_attempt(j), "from_hint") for _, j in res if j and winner_attempt(j)]
        if hints and None not in hints:
            t.check(all(hints), f"hints.hev3.test: the winner came from a hint ({hints})")

        check_case(t, bed, exe, "hintdiff", opts)

        res = check_case(t, bed, exe, "ech", opts)
        recs = [optional(j, "https_records") for _, j in res]
        if all(r is not None for r in recs):
            t.check(all(any(x.get("ech") for x in r) for r in recs), "ech.hev3.test: https_records carry the ech")

        res = check_case(t, bed, exe, "alpn", opts)
        recs = [optional(j, "https_records") for _, j in res]
        if all(r is not None for r in recs):
            # The record's ALPN set (RFC 9460 §7.1.2): its ids, then the
            # default "http/1.1" (no no-default-alpn).
            t.check(all([x.get("alpn") for x in r] == [["h3", "h2", "http/1.1"]] for r in recs),
                    f"alpn.hev3.test: https_records alpn [h3, h2, http/1.1] ({recs})")
        check_case(t, bed, exe, "h3only", opts)

        res = check_case(t, bed, exe, "norecord", opts)
        t.check(all(won(c, j) and j["winner"]["family"] == "ipv6" and j["elapsed_ms"] < 150 for c, j in res),
                "norecord.hev3.test: as without HTTPS records: IPv6 wins at once on the caller's port")

        for key in ("loop", "self"):
            res = check_case(t, bed, exe, key, opts)
            t.check(all(j is not None and j["elapsed_ms"] < DELAY_MS + 250 for _, j in res),
                    f"{netbed.HEV3_CASES[key]['host']}: the loop costs no more than an attempt delay "
                    f"({[j and j['elapsed_ms'] for _, j in res]})")

        for key in ("chain", "noservice", "port0"):
            check_hostile(t, bed, exe, key)

        for name in ("https300.slow.test", "https20.slow.test"):
            res = nettest.runs(bed, exe, name, PORT, RUNS, *opts)
            t.check(winner_in(res, S1, PORT) and all(j["elapsed_ms"] < 150 for _, j in res),
                    f"{name}: connected on 443 in under 150 ms ({[j and j['elapsed_ms'] for _, j in res]})")
            answers = [optional(j, "dns_answers") for _, j in res]
            if all(a is not None for a in answers):  # a library that asks for HTTPS records
                wait = 45 if name.startswith("https300") else 18
                starts = [first_attempt(j)["started_ms"] for c, j in res if won(c, j)]
                t.check(all(s >= wait for s in starts),
                        f"{name}: the first attempt waited for HTTPS (the answer or the Resolution Delay): "
                        f"started at {starts} ms, want >= {wait}")
            if name.startswith("https300") and all(a is not None for a in answers):
                t.check(all(not any(x.get("type") in ("HTTPS", 65) and x.get("ms", 0) < 250 for x in a)
                            for a in answers), f"{name}: no HTTPS answer before 250 ms in dns_answers")
    except Exception as e:
        t.check(False, f"unexpected error: {e!r}")
    finally:
        bed.down()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
