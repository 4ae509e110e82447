"""The parent of `run --processes N` waits for its own children only."""

import os
import subprocess
import sys

from flows.local_cluster import _wait_for_an_exit


def test_an_adopted_orphan_neither_wakes_the_parent_nor_is_reaped_by_it():
    # As PID 1 of a container, the parent also has children it did not start; one has
    # exited and nobody reaped it.
    stray = os.fork()
    if stray == 0:
        os._exit(0)
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    try:
        _wait_for_an_exit([ours], most_s=60)
        assert ours.poll() == 0  # it returned because ours exited, not because of the stray
    finally:
        ours.kill()
        ours.wait()
        # the stray is still there to be reaped by whoever adopted it
        assert os.waitpid(stray, os.WNOHANG)[0] == stray


def test_it_returns_at_once_when_a_child_has_already_exited():
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        while done.poll() is None:
            _wait_for_an_exit([done, running], most_s=60)
        assert done.returncode == 0 and running.poll() is None
    finally:
        running.kill()
        running.wait()
