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


def kill_when(
    module: str, argv: list[str], reached: Callable[[int], bool], timeout: float = 120
) -> list[int]:
    """Run `python -m module argv...` and SIGKILL it as soon as `reached(pid)` holds (polled
    every 5 ms). Returns the children it had then. Fails if the run ended first: a kill test
    that killed nothing would pass without testing anything."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", module, *argv]
    run = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while not reached(run.pid):
        assert run.poll() is None, f"{module} ended (exit {run.returncode}) before the kill point"
        assert time.monotonic() < deadline, f"{module} never reached the kill point"
        time.sleep(0.005)
    children = children_of(run.pid)
    run.send_signal(signal.SIGKILL)
    run.wait()
    time.sleep(1.0)  # the kernel's PDEATHSIG reaches the children
    return children


def interrupt_when(
    module: str, argv: list[str], reached: Callable[[int], bool], timeout: float = 120
) -> tuple[int, list[str], list[int]]:
    """Run `python -m module argv...` and press Ctrl-C as soon as `reached(pid)` holds: SIGINT
    to its process group, the run and its workers, as a terminal sends it. Returns (exit code,
    stderr's lines, the children it had then). Fails if the run ended first."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    run = subprocess.Popen(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while not reached(run.pid):
        assert run.poll() is None, f"{module} ended (exit {run.returncode}) before the interrupt"
        assert time.monotonic() < deadline, f"{module} never reached the interrupt point"
        time.sleep(0.005)
    children = children_of(run.pid)
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=timeout)
    return run.returncode, err.strip().splitlines(), children
