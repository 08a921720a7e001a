"""kill -9 or Ctrl-C at a chosen moment: an entry point started in a process of its own, its
children seen in /proc, and SIGKILL (or SIGINT, to its whole process group, as a terminal
sends it) sent when the run reaches the point a test names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, state) of every process, from /proc (Z: a zombie, already dead)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found.append((int(stat.parent.name), int(fields[1]), fields[0]))
    return found


def children_of(pid: int) -> list[int]:
    return [child for child, parent, _ in processes() if parent == pid]


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (a zombie has ended)."""
    return [pid for pid, _, state in processes() if pid in pids and state != "Z"]


def _run_until(
    module: str, argv: list[str], reached: Callable[[int], bool], timeout: float, stderr: int
) -> tuple[subprocess.Popen, list[int]]:
    """Start `python -m module argv...` in a session of its own and wait until `reached(pid)`
    holds (polled every 5 ms). Returns the run and the children it has then. Fails if the run
    ended first: a test that stopped nothing would pass without testing anything."""
    run = subprocess.Popen(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while not reached(run.pid):
        assert run.poll() is None, f"{module} ended (exit {run.returncode}) before the stop point"
        assert time.monotonic() < deadline, f"{module} never reached the stop point"
        time.sleep(0.005)
    return run, children_of(run.pid)


def kill_when(
    module: str, argv: list[str], reached: Callable[[int], bool], timeout: float = 120
) -> list[int]:
    """Run `python -m module argv...` and SIGKILL it as soon as `reached(pid)` holds. Returns
    the children it had then."""
    run, children = _run_until(module, argv, reached, timeout, subprocess.DEVNULL)
    run.send_signal(signal.SIGKILL)
    run.wait()
    time.sleep(1.0)  # the kernel's PDEATHSIG reaches the children
    return children


def interrupt_when(
    module: str, argv: list[str], reached: Callable[[int], bool], timeout: float = 120
) -> tuple[int, list[str], list[int]]:
    """Run `python -m module argv...` and press Ctrl-C as soon as `reached(pid)` holds: SIGINT
    to its process group, the run and its workers, as a terminal sends it. Returns (exit code,
    stderr's lines, the children it had then)."""
    run, children = _run_until(module, argv, reached, timeout, subprocess.PIPE)
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=timeout)
    return run.returncode, err.strip().splitlines(), children
