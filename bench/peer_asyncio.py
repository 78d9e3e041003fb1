#!/usr/bin/env python3
"""Python asyncio side of bench/compare.py (run inside the test bed's client
namespace). Stdlib only.

  peer_asyncio.py ttc HOST PORT RUNS DELAY_MS
      RUNS sequential asyncio.open_connection(HOST, PORT,
      happy_eyeballs_delay=DELAY_MS/1000) after one warm-up connection;
      prints {"ms": [...], "family": [...], "errors": [...]}: time from the
      call to connected (name resolution included).
  peer_asyncio.py cps HOST PORTS IN_FLIGHT MAX_CONNS MAX_SECONDS DELAY_MS
      IN_FLIGHT concurrent workers connecting again and again (RST close),
      until MAX_CONNS started or MAX_SECONDS passed; prints
      {"started", "connected", "failed", "elapsed_s", "cps"}.
"""
import asyncio
import json
import resource
import socket
import struct
import sys
import time

LINGER0 = struct.pack("ii", 1, 0)


def rst_close(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    writer.transport.abort()


async def ttc(host, port, runs, delay):
    out = {"ms": [], "family": [], "errors": []}
    for i in range(runs + 1):
        t = time.perf_counter()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port, happy_eyeballs_delay=delay), 10)
        except Exception as e:  # noqa: BLE001 - reported
            if i:
                out["errors"].append(repr(e))
            continue
        ms = (time.perf_counter() - t) * 1000.0
        fam = "ipv6" if w.get_extra_info("socket").family == socket.AF_INET6 else "ipv4"
        rst_close(w)
        if i:  # the first one warms up imports and the executor
            out["ms"].append(ms)
            out["family"].append(fam)
    return out


async def cps(host, ports, in_flight, max_conns, max_s, delay):
    st = {"started": 0, "connected": 0, "failed": 0}
    deadline = time.perf_counter() + max_s

    async def worker():
        while st["started"] < max_conns and time.perf_counter() < deadline:
            port = ports[st["started"] % len(ports)]
            st["started"] += 1
            try:
                r, w = await asyncio.open_connection(host, port, happy_eyeballs_delay=delay)
            except OSError:
                st["failed"] += 1
                continue
            st["connected"] += 1
            rst_close(w)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    el = time.perf_counter() - t0
    st["elapsed_s"] = round(el, 4)
    st["cps"] = round(st["connected"] / el, 1)
    return st


def main(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        except (ValueError, OSError):
            pass
    if a[:1] == ["ttc"] and len(a) == 5:
        res = asyncio.run(ttc(a[1], int(a[2]), int(a[3]), int(a[4]) / 1000.0))
    elif a[:1] == ["cps"] and len(a) == 7:
        ports = [int(p) for p in a[2].split(",")]
        res = asyncio.run(cps(a[1], ports, int(a[3]), int(a[4]), float(a[5]), int(a[6]) / 1000.0))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
