"""The --out check before a job starts. Light on purpose (fsspec only): the parent of
``run --processes N`` runs it while its children import the dataflow."""

from __future__ import annotations

import os
import secrets

import fsspec

from flows.settings import ConfigError


def check_output(url: str, storage_options: dict) -> None:
    """Fail before the job starts if --out cannot be written."""
    try:
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        fs.makedirs(root, exist_ok=True)
        # Its own name: the processes of a cluster check the same --out at once.
        probe = f"{root.rstrip('/')}/.burnwatch-probe-{os.getpid()}-{secrets.token_hex(4)}"
        fs.pipe(probe, b"ok")
        fs.rm_file(probe)  # a literal path: rm would glob a root like job-*
    except Exception as ex:  # noqa: BLE001 - any failure here is a configuration problem
        raise ConfigError(f"out: cannot write to {url!r}: {ex}") from ex
