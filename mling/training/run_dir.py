"""The run folder (`--output-dir`): one run's checkpoints, metrics, logs and model, never two.

A folder that holds another run is refused unless the run continues it (`--resume`) or starts
it over (`--overwrite`, which deletes only what a run writes there: the names in RUN_ENTRIES).
While a run trains, its folder is locked (a file holding the process id), so a second run on it
refuses instead of mixing its checkpoints with the first one's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mling.common.atomic import MARKER, mark
from mling.common.errors import InputError

RUN_ENTRIES = (
    "checkpoints",
    "metrics.jsonl",
    "tensorboard",
    "wandb",
    "model",
    "evals",
    "image-cache",  # image_cache.CACHE_DIR
)
LOCK = ".mling-run.lock"


def previous_run(output_dir: Path) -> list[str]:
    """What an earlier run left in output_dir (names from RUN_ENTRIES)."""
    return [name for name in RUN_ENTRIES if (output_dir / name).exists()]


def check_run_dir(output_dir: Path, resume: bool, overwrite: bool) -> None:
    """One InputError line when output_dir cannot take this run; every process calls it."""
    for parent in [output_dir, *output_dir.parents]:
        if parent.is_file():
            raise InputError(f"--output-dir {output_dir}: {parent} is a file")
    found = previous_run(output_dir)
    if found and not resume and not overwrite:
        raise InputError(
            f"--output-dir {output_dir} holds another run ({', '.join(found)}); pass "
            "--resume latest to continue it, --overwrite to start over, or another folder"
        )
    if found and overwrite and not resume and not (output_dir / MARKER).is_file():
        raise InputError(
            f"--output-dir {output_dir} holds {', '.join(found)} that this toolkit did not "
            "write; --overwrite deletes only a run of ours: pick another folder"
        )


def start_over(output_dir: Path) -> None:
    """Delete what an earlier run wrote (RUN_ENTRIES only); the main process calls it."""
    for name in previous_run(output_dir):
        path = output_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_run_dir(output_dir: Path) -> None:
    """Mark output_dir as in use by this process (the main one), until `unlock_run_dir`.

    The lock is a file holding the process id: a second run refuses while that process lives;
    one left by a killed run is taken over, so a kill -9 never blocks the next run.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    lock = output_dir / LOCK
    try:
        holder = int(lock.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        holder = 0
    if holder and holder != os.getpid() and _alive(holder):
        raise InputError(
            f"--output-dir {output_dir} is in use by another run (process {holder}); wait for "
            "it or pick another"
        )
    lock.write_text(f"{os.getpid()}\n")
    mark(output_dir)  # a run folder of ours: what a later --overwrite may start over


def unlock_run_dir(output_dir: Path) -> None:
    lock = output_dir / LOCK
    try:
        if int(lock.read_text().strip() or 0) == os.getpid():
            lock.unlink()
    except (FileNotFoundError, ValueError):
        pass
