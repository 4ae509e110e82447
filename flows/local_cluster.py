"""``burnwatch run --processes N``: the job as N local processes, to use N cores.

Bytewax worker threads share Python's GIL, and burnwatch's work is Python, so
two worker threads are slower than one (docs/throughput.md). Processes scale:
this starts N copies of the same ``run`` command as one Bytewax cluster on
loopback (``-i k -a ADDRS``), sharing one recovery directory and one run key,
and stops them together.

Start-up is paid once, not N times in a row: the processes start together and
import in parallel while the parent checks the output; each waits at a gate (a
pipe the parent writes to once the checks pass) and then, just before joining
the cluster, for the processes before it to listen.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from flows.settings import Settings
from flows.store import fixed_settings, open_recovery_store

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
GATE_ENV = "BURNWATCH_CLUSTER_GATE"  # the fd of the gate, in a child
GO = b"g"
EXIT_NOT_STARTED = 3


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


def start_local_cluster(settings: Settings, argv: list[str], *, processes: int, workers: int,
                        recovery_dir: Path) -> int:
    """``run --processes N``: make the store here, then run N processes on it."""
    run_key = open_recovery_store(recovery_dir, workers * processes, settings.run_key,
                                  fixed=fixed_settings(settings))

    def check_output() -> None:
        from flows.output_check import check_output

        check_output(settings.out, settings.storage_options)

    return run_processes(without_option(argv, "--processes"), processes, run_key=run_key,
                         metrics_port=settings.metrics_port, prepare=check_output)


def run_processes(argv: list[str], processes: int, *, run_key: str, metrics_port: int,
                  prepare: Callable[[], None] = lambda: None) -> int:
    """Run ``burnwatch ARGV -i k -a ADDRS`` for k < processes; the worst exit code.

    The children start at once and wait at the gate while ``prepare`` runs here;
    if it raises, they are let go with nothing to do and its error is raised.
    Child k serves metrics on ``metrics_port + k`` (none when it is 0). When one
    child fails the others are stopped; SIGINT/SIGTERM are passed on to all.
    """
    ports = free_ports(processes)
    addresses = ";".join(f"127.0.0.1:{p}" for p in ports)
    gate, opener = os.pipe()
    children = []
    try:
        for k in range(processes):
            env = {**os.environ, "BURNWATCH_RUN_KEY": run_key, GATE_ENV: str(gate),
                   "BURNWATCH_METRICS_PORT": str(metrics_port + k if metrics_port else 0)}
            cmd = [sys.executable, "-m", "flows.cli", *argv, "-i", str(k), "-a", addresses]
            children.append(subprocess.Popen(cmd, env=env, pass_fds=(gate,),
                                             preexec_fn=_die_with_parent))
    except BaseException:
        os.close(opener)  # the gate reads end-of-file: started children exit
        raise
    finally:
        os.close(gate)  # each child has its own copy
    try:
        prepare()
    except BaseException:
        os.close(opener)
        for c in children:
            c.wait()
        raise
    try:
        os.write(opener, GO * processes)
    except BrokenPipeError:  # every child has exited already: the loop below reports how
        pass
    os.close(opener)
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
        _wait_for_an_exit(children)
    codes = [c.returncode for c in children]
    return worst or next((rc for rc in codes if rc), 0)


def _wait_for_an_exit(children: list[subprocess.Popen], most_s: float = 1.0) -> None:
    """Until one of ``children`` exits (left for ``Popen.poll`` to reap, with its code), or
    ``most_s`` passes. Only these children: as PID 1 of a container, this process may also
    have adopted orphans, whose exits must neither wake it nor be waited for."""
    fds = []
    try:
        for c in children:
            if c.returncode is None:
                fds.append(os.pidfd_open(c.pid))
        if fds:
            select.select(fds, [], [], most_s)
    except OSError:  # a child reaped meanwhile, or no pidfd (Linux < 5.3): look again soon
        time.sleep(0.05)
    finally:
        for fd in fds:
            os.close(fd)


def wait_for_go() -> bool:
    """In a process that ``run_processes`` started: wait at the gate. Whether it was one.

    Exits quietly when the parent's checks failed (the parent reports why).
    """
    fd = os.environ.pop(GATE_ENV, None)
    if fd is None:
        return False
    go = os.read(int(fd), 1)
    os.close(int(fd))
    if go != GO:
        raise SystemExit(EXIT_NOT_STARTED)
    return True


def wait_for_predecessors(addresses: list[str], timeout_s: float = 30.0) -> None:
    """Wait until each local ``HOST:PORT`` listens. A Bytewax process connects to
    the ones before it, and after a refused connect it retries only a second later."""
    deadline = time.monotonic() + timeout_s
    ports = [int(a.rsplit(":", 1)[1]) for a in addresses]
    while not all(_listening(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.02)
