#!/usr/bin/env python3
"""Checks what taps_race shows a person at a terminal while a race hangs.

usage: taps_race_tty.py PATH/TO/taps_race

A listener on 127.0.0.1 whose accept queue is full drops every SYN, so a
race to it hangs. taps_race runs with its stderr on a pseudo-terminal and
no --timeout: after 1 s it shows a live line of the attempt it waits for
("racing for 1.2 s: ..."), and after 5 s a hint about --timeout. It is
stopped after 6.5 s.
"""
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time


def main():
    exe = sys.argv[1]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    # Fill the accept queue (never accepted): later SYNs are dropped.
    fillers = []
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(0.3)

    master, slave = pty.openpty()
    proc = subprocess.Popen([exe, "127.0.0.1", str(port)], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 6.5
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    os.close(master)
    text = seen.decode(errors="replace")
    failures = []
    for want, what in [("racing for ", "a live line after 1 s"),
                       ("127.0.0.1", "the live line names the attempt's address"),
                       ("--timeout", "a hint about --timeout after 5 s")]:
        ok = want in text
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if not ok:
            failures.append(what)
    if failures:
        print("stderr on the terminal was:\n" + text)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
