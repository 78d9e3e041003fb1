#!/usr/bin/env python3
"""IPv4 literals on an IPv6-only network, through the taps_race program.

usage: nat64_literal.py PATH/TO/taps_race

Builds the NAT64 bed (tests/netbed/nat64bed.py: an IPv6-only client, tayga
translating the Network-Specific Prefix 2001:db8:64::/96, an IPv4-only
server 10.64.0.2:7101) and runs `taps_race --json` in the client namespace:

  (a) `--pref64 2001:db8:64::/96 10.64.0.2 7101`: the client has no IPv4
      route, so the literal is raced as 2001:db8:64::a40:2 (RFC 6052 /96,
      RFC 8305 §7.1); the race connects through tayga, one attempt, IPv6,
      reported as synthesized from 10.64.0.2, and the JSON names the prefix;
  (b) the same without --pref64: the loop learns the prefix from the RA
      (PREF64 option, RFC 8781; it sends a Router Solicitation, which the
      bed's RA sender answers at once) and connects the same way; the JSON
      names the prefix and "pref64_source": "ra";
  (c) `--pref64 64:ff9b::/96` (the Well-Known Prefix): 10.64.0.2 is a
      private address, which the Well-Known Prefix never carries (RFC 6052
      §3.1): not synthesized, fails as (b);
  (g) the A-only name v4only.nat64.test behind the resolver without dns64
      (TAPS_RESOLV_CONF): its A answer is synthesized under the RA's prefix
      and connects, reported as synthesized from 10.64.0.2;
  (h) the same name behind the DNS64 (its AAAA is synthesized) connects;
  (i) dual.nat64.test (a real AAAA nobody answers, and an A): the real
      IPv6 first, then the A answer's synthesis, which wins;
  (j) hint.nat64.test with --https on: its HTTPS record (_7101._https)
      has only an ipv4hint, 10.64.0.2 (the name and the record's TargetName
      have no address records): the hint is raced as its synthesis
      (HEv3 -04 §8.2), connects, reported as synthesized from 10.64.0.2;
  (d) a bad prefix (/80) is a usage error (exit 2) naming RFC 6052's lengths;
  then on a second bed without the RA sender:
  (e) no --pref64: the prefix comes from the DNS64's AAAA answer for
      ipv4only.arpa (RFC 7050), "pref64_source": "dns", and connects; the
      query is asked with the Router Solicitation, not after the 300 ms
      wait for an RA: the race, discovery included, takes under 100 ms;
  (f) no --pref64, TAPS_RESOLV_CONF naming the resolver without dns64: no
      prefix anywhere, the IPv4 attempt fails at once with ENETUNREACH
      (what every client without synthesis gets), "pref64": null.

Needs root, `ip`, tayga, unbound and kdig (or dig); without them it exits 77 (skip),
except under CI=true, where that is a failure.
"""
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netbed"))
import nettest  # noqa: E402
import nat64bed  # noqa: E402

RUNS = 3


def main():
    exe = nettest.executable_arg(__doc__)
    t = nettest.Checks("nat64_literal")
    why = nat64bed.can_run()
    if why:
        nettest.skip_or_fail(why)
    bed = nat64bed.Nat64Bed()
    try:
        bed.up()
    except nat64bed.BedError as e:
        nettest.skip_or_fail(f"cannot build the NAT64 bed: {e}")
    v4, port = bed.server_v4, str(bed.port)
    v6 = nat64bed.synthesized(v4)
    try:
        # (a) synthesized and connected through tayga.
        res = nettest.runs(bed, exe, v4, port, RUNS, "--pref64", nat64bed.NSP, label="(a)")
        ok = nettest.all_won_by(res, "ipv6")
        t.check(ok, "(a) --pref64: every run exits 0 and an IPv6 attempt wins")
        if ok:
            t.check(all(j["winner"]["address"] == v6 for _, j in res), f"(a) the winner is {v6}")
            t.check(all(len(j["attempts"]) == 1 and j["attempts"][0]["synthesized_from"] == v4 for _, j in res),
                    f"(a) one attempt, reported as synthesized from {v4}")
            t.check(all(j["pref64"] == nat64bed.NSP for _, j in res), "(a) the JSON names the prefix")
            el = [j["elapsed_ms"] for _, j in res]
            t.check(nettest.median(el) < 50, f"(a) median elapsed_ms {nettest.median(el):.2f} under 50")
            t.check(all(j["pref64_source"] == "caller" for _, j in res), "(a) the prefix is the caller's")
        # (b) no --pref64: learnt from the RA.
        res = nettest.runs(bed, exe, v4, port, RUNS, label="(b)")
        ok = nettest.all_won_by(res, "ipv6")
        t.check(ok, "(b) no --pref64: every run exits 0 and an IPv6 attempt wins")
        if ok:
            t.check(all(j["winner"]["address"] == v6 and j["attempts"][0]["synthesized_from"] == v4 for _, j in res),
                    f"(b) the winner is {v6}, synthesized from {v4}")
            t.check(all(j["pref64"] == nat64bed.NSP and j["pref64_source"] == "ra" for _, j in res),
                    "(b) the JSON names the prefix, learnt from the RA")
        # (g) an A-only name behind a resolver without dns64: its A answer
        # is synthesized under the prefix learnt from the RA.
        conf = os.path.join(bed.tmp, "plain-resolv.conf")
        with open(conf, "w") as f:
            f.write(f"nameserver {bed.plain_resolver}\noptions timeout:1 attempts:1\n")
        code, j = race_env(bed, exe, {"TAPS_RESOLV_CONF": conf}, "v4only.nat64.test", port)
        ok = code == 0 and j is not None and j["winner"] and j["winner"]["address"] == v6
        t.check(ok, f"(g) v4only.nat64.test, no dns64: connects to {v6}: {j and nettest.summary(j)}")
        t.check(ok and any(a["synthesized_from"] == v4 for a in j["attempts"]) and j["pref64_source"] == "ra",
                f"(g) its attempt is reported as synthesized from {v4}, prefix from the RA")
        # (h) the same name behind the DNS64: its AAAA is the synthesized
        # address (and its A synthesizes to the same one): connects.
        code, j = nettest.race(bed, exe, "v4only.nat64.test", port)
        ok = code == 0 and j is not None and j["winner"] and j["winner"]["address"] == v6
        t.check(ok, f"(h) v4only.nat64.test through the DNS64: connects to {v6}: {j and nettest.summary(j)}")
        # (i) dual.nat64.test: a real AAAA (nobody answers it) and an A
        # synthesized under the prefix, raced after it as IPv4.
        code, j = nettest.race(bed, exe, "dual.nat64.test", port)
        ok = code == 0 and j is not None and j["winner"] and j["winner"]["address"] == v6
        t.check(ok and [(a["address"], a["synthesized_from"]) for a in j["attempts"]] == [
            (nat64bed.DUAL6, None), (v6, v4)], f"(i) dual.nat64.test: the real AAAA first, then {v6} "
                                                f"(from the A answer) wins: {j and nettest.summary(j)}")
        # (j) an HTTPS record whose only address is an ipv4hint: raced as
        # its synthesis (HEv3 -04 §8.2) and connected through tayga.
        code, j = nettest.race(bed, exe, "hint.nat64.test", port, "--https", "on")
        ok = code == 0 and j is not None and j["winner"] and j["winner"]["address"] == v6
        t.check(ok and [(a["address"], a["synthesized_from"]) for a in j["attempts"]] == [(v6, v4)],
                f"(j) hint.nat64.test, ipv4hint={v4} only: connects to {v6}, synthesized from {v4}: "
                f"{j and nettest.summary(j)}")
        # (c) the Well-Known Prefix never carries a private address.
        code, j = nettest.race(bed, exe, v4, port, "--pref64", "64:ff9b::/96")
        ok = code == 1 and j is not None and [a["address"] for a in j["attempts"]] == [v4]
        t.check(ok, f"(c) --pref64 64:ff9b::/96 with {v4}: not synthesized (RFC 6052 §3.1): "
                    f"{j and nettest.summary(j)}")
        # (d) a bad prefix.
        p = subprocess.run(bed.client([exe, "--pref64", "2001:db8::/80", v4, port]), capture_output=True, text=True,
                           timeout=30)
        t.check(p.returncode == 2 and "32, 40, 48, 56, 64 or 96" in p.stderr,
                f"(d) --pref64 2001:db8::/80: exit {p.returncode}, {p.stderr.strip()[:120]!r}")
    finally:
        bed.down()
    no_ra(exe, t)
    return t.finish()


def race_env(bed, exe, env, host, port):
    """nettest.race with environment variables set for taps_race."""
    argv = bed.client(["env"] + [f"{k}={v}" for k, v in env.items()] + [exe, "--json", host, str(port)])
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        print(f"  taps_race exit {p.returncode}, stdout {p.stdout!r}, stderr {p.stderr!r}", flush=True)
        return p.returncode, None


def no_ra(exe, t):
    """(e), (f): the bed without the RA sender."""
    bed = nat64bed.Nat64Bed(ra=False)
    try:
        bed.up()
    except nat64bed.BedError as e:
        t.check(False, f"cannot build the NAT64 bed without RAs: {e}")
        return
    v4, port = bed.server_v4, str(bed.port)
    v6 = nat64bed.synthesized(v4)
    try:
        code, j = nettest.race(bed, exe, v4, port)
        ok = code == 0 and j is not None and j["winner"] and j["winner"]["address"] == v6
        t.check(ok, f"(e) no RA: connects to {v6}: {j and nettest.summary(j)}")
        t.check(ok and j["elapsed_ms"] < 100, "(e) RFC 7050 runs beside the RA wait: the race took "
                                               f"{j and j['elapsed_ms']} ms, discovery included (under 100)")
        t.check(ok and j["pref64"] == nat64bed.NSP and j["pref64_source"] == "dns",
                "(e) the prefix is learnt by RFC 7050 (ipv4only.arpa)")
        conf = os.path.join(bed.tmp, "plain-resolv.conf")
        with open(conf, "w") as f:
            f.write(f"nameserver {bed.plain_resolver}\noptions timeout:1 attempts:1\n")
        code, j = race_env(bed, exe, {"TAPS_RESOLV_CONF": conf}, v4, port)
        ok = code == 1 and j is not None and [a["error"] for a in j["attempts"]] == ["Network is unreachable"]
        t.check(ok, f"(f) no prefix anywhere: fails with ENETUNREACH: {j and nettest.summary(j)}")
        t.check(ok and j["attempts"][0]["synthesized_from"] is None and j["pref64"] is None,
                "(f) nothing synthesized, no prefix")
    finally:
        bed.down()


if __name__ == "__main__":
    sys.exit(main())
