"""``burnwatch run --processes N``: the job as N local processes, to use N cores.

Bytewax worker threads share Python's GIL, and burnwatch's work is Python, so
two worker threads are slower than one (docs/throughput.md). Processes scale:
this starts N copies of the same ``run`` command as one Bytewax cluster on
loopback (``-i k -a ADDRS``), sharing one recovery directory and one run key,
and stops them together.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (held together, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def _listening(port: int) -> bool:
    """Whether a local socket listens on ``port`` (read from /proc: connecting to a
    Bytewax process to find out would look like a peer to it)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _die_with_parent() -> None:
    # A child must not outlive a parent killed with SIGKILL (it would hold the store).
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def run_processes(argv: list[str], processes: int, *, run_key: str,
                  metrics_port: int) -> int:
    """Run ``burnwatch ARGV -i k -a ADDRS`` for k < processes; the worst exit code.

    Child k serves metrics on ``metrics_port + k`` (none when it is 0). When one
    child fails the others are stopped; SIGINT/SIGTERM are passed on to all.
    """
    ports = free_ports(processes)
    addresses = ";".join(f"127.0.0.1:{p}" for p in ports)
    children = []
    for k in range(processes):
        env = {**os.environ, "BURNWATCH_RUN_KEY": run_key,
               "BURNWATCH_METRICS_PORT": str(metrics_port + k if metrics_port else 0)}
        cmd = [sys.executable, "-m", "flows.cli", *argv, "-i", str(k), "-a", addresses]
        children.append(subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent))
        # Process k connects to processes < k and, refused, retries only a second
        # later: let each listen before the next starts.
        deadline = time.monotonic() + 30
        while (k < processes - 1 and not _listening(ports[k]) and children[k].poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.02)
    log.info("started %d processes pids=%s addresses=%s", processes,
             [c.pid for c in children], addresses)

    def forward(signum, _frame) -> None:
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    worst = 0
    while any(c.poll() is None for c in children):
        failed = [c for c in children if c.poll() not in (None, 0)]
        if failed and not worst:
            worst = failed[0].returncode
            log.error("process pid=%d exited with %d; stopping the others",
                      failed[0].pid, worst)
            forward(signal.SIGTERM, None)
        time.sleep(0.2)
    codes = [c.returncode for c in children]
    return worst or next((rc for rc in codes if rc), 0)
