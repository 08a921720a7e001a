"""Stages: commands run as processes of their own, each with its log file and its timing.

The demos and the benchmarks run the entry points a user runs, each in a fresh interpreter (its
own peak memory, nothing left over from the stage before), and run them the same way: a stage
is a command, the log its stdout and stderr go to, and the seconds it took. A stage that exits
non-zero, or cannot start, ends the run with one line naming the stage and its log, exit
status 1; the stages still running are stopped first.

    stages = StageRunner("demo.py", out / "logs", total=7)
    seconds = stages.run("filter", entry_point("data/filter.py", "--input", ...))

Stages run in the caller's working directory unless told otherwise, so the paths in their
reports are the paths as the user gave them.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The script a user runs for each entry point -> the module it calls. The demos run the module
# (`python -P -m`), so that a stage works from an installed wheel as from a clone.
ENTRY_POINTS = {
    "data/synthetic.py": "mling.synthetic.generate",
    "data/emoji_set.py": "mling.emoji_set.build",
    "data/filter.py": "mling.filtering.pipeline",
    "tokenizer_training/build_vocab.py": "mling.vocab.build_vocab",
    "mling/train.py": "mling.train",
    "mling/export.py": "mling.export",
    "eval/multi30k.py": "mling.evaluation.multi30k",
    "eval/retrieval_set.py": "mling.evaluation.retrieval_set",
    "eval/zero_shot.py": "mling.evaluation.zero_shot",
}


@dataclass(frozen=True)
class Command:
    """What a stage runs, and how a user would type it."""

    argv: tuple[str, ...]  # run as it is, no shell
    shown: str  # printed when the stage starts
    closing: str = ""  # when it ends, its log's last line starting with this is printed


def python_module(
    module: str, args: Sequence[str] = (), *, shown: str | None = None, isolated: bool = True
) -> Command:
    """`python -P -m MODULE ARGS` in this interpreter. -P keeps the working directory off the
    import path, so that no folder of the user's (a `data/`) can shadow a module; a benchmark
    that runs a module of the repository itself (`benchmarks.*`) passes isolated=False."""
    argv = (sys.executable, *(("-P",) if isolated else ()), "-m", module, *args)
    return Command(argv, shown or shlex.join(["python", "-m", module, *args]))


def entry_point(script: str, *args: str) -> Command:
    """The entry point a user runs as `python SCRIPT ARGS`, run as its module; the line it
    closes its output with (`filter.py: ...`) is printed when it ends."""
    command = python_module(ENTRY_POINTS[script], args, shown=shlex.join([script, *args]))
    return Command(command.argv, command.shown, closing=f"{Path(script).name}:")


@dataclass
class Stage:
    """One command, run to completion: its log, and once it has run, its timing and status."""

    name: str  # names its log (LOGS/NAME.log) and its timing; one per runner
    command: Command
    log: Path  # its stdout and stderr
    env: dict[str, str] = field(default_factory=dict)  # on top of the runner's environment
    seconds: float | None = None  # wall clock, from start to exit
    code: int | None = None  # exit status; negative: killed by that signal


class StageFailed(SystemExit):
    """A stage exited non-zero or could not start: one line for the user, exit status 1."""


# What run_together calls while its stages run: their processes by stage name.
Watch = Callable[[Mapping[str, subprocess.Popen]], None]


class StageRunner:
    """Runs stages, one at a time or several at once; keeps each one's record in `stages`."""

    def __init__(
        self,
        prog: str,
        logs: str | Path,
        *,
        total: int | None = None,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        echo: bool = True,
    ) -> None:
        self.prog = prog  # names the failure line: "demo.py: stage filter failed ..."
        self.logs = Path(logs)  # LOGS/NAME.log for a stage given no log of its own
        self.total = total  # the steps of the recipe: "[3/7]" before each; None: no number
        self.cwd = cwd  # where the stages run; None: this process's working directory
        self.env = dict(env or {})  # on top of os.environ, for every stage
        self.echo = echo  # a line as each stage starts and ends
        self.number = 0
        self.stages: list[Stage] = []

    @property
    def seconds(self) -> dict[str, float]:
        """Each finished stage's wall-clock seconds, by name."""
        return {s.name: s.seconds for s in self.stages if s.seconds is not None}

    def say(self, line: str) -> None:
        if self.echo:
            print(line, flush=True)

    def announce(self, title: str) -> None:
        """The next step of the recipe, numbered: a stage, or work done in this process."""
        self.number += 1
        self.say(f"[{self.number}/{self.total}] {title}" if self.total else title)

    def stage(
        self,
        name: str,
        command: Command | Sequence[str],
        env: Mapping[str, str] | None = None,
        log: str | Path | None = None,
    ) -> Stage:
        """A stage to run (run_together); a plain argv is shown as it is."""
        if not isinstance(command, Command):
            command = Command(tuple(command), shlex.join(command))
        return Stage(
            name, command, Path(log) if log else self.logs / f"{name}.log", dict(env or {})
        )

    def run(
        self,
        name: str,
        command: Command | Sequence[str],
        env: Mapping[str, str] | None = None,
        log: str | Path | None = None,
    ) -> float:
        """Run one stage to completion; returns its seconds."""
        stage = self.stage(name, command, env, log)
        self.announce(f"{name}: {stage.command.shown}")
        self._run([stage])
        self.say(f"      {stage.seconds:.0f} s. {closing_line(stage)}".rstrip())
        return stage.seconds

    def run_together(
        self,
        stages: Sequence[Stage],
        title: str | None = None,
        at_once: int | None = None,
        watch: Watch | None = None,
        every: float = 1.0,
    ) -> dict[str, float]:
        """Run stages side by side, `at_once` at a time (default all), in their order; `watch`
        is called about every `every` seconds while any runs. Returns seconds by name."""
        if title:
            self.announce(title)
        self._run(list(stages), at_once, watch, every)
        return {s.name: s.seconds for s in stages}

    def _run(
        self,
        stages: list[Stage],
        at_once: int | None = None,
        watch: Watch | None = None,
        every: float = 1.0,
    ) -> None:
        pending = list(stages)
        running: dict[str, tuple[Stage, subprocess.Popen, float]] = {}
        try:
            while pending or running:
                while pending and len(running) < max(1, at_once or len(stages)):
                    stage = pending.pop(0)
                    running[stage.name] = (stage, self._start(stage), time.perf_counter())
                if watch is not None:
                    watch({name: process for name, (_, process, _) in running.items()})
                for name, (stage, process, started) in list(running.items()):
                    try:  # waiting, not polling: a lone stage's time is exact
                        process.wait(timeout=every / len(running))
                    except subprocess.TimeoutExpired:
                        continue
                    stage.seconds, stage.code = time.perf_counter() - started, process.returncode
                    self.stages.append(stage)
                    del running[name]
                    if stage.code != 0:
                        raise StageFailed(self._failure(stage))
        finally:  # a failure, or Ctrl-C: no stage outlives the run
            for _, process, _ in running.values():
                process.terminate()
            for _, process, _ in running.values():
                process.wait()

    def _start(self, stage: Stage) -> subprocess.Popen:
        stage.log.parent.mkdir(parents=True, exist_ok=True)
        with stage.log.open("w", encoding="utf-8") as log:  # the child keeps its own handle
            try:
                return subprocess.Popen(
                    stage.command.argv,
                    cwd=self.cwd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **self.env, **stage.env},
                )
            except OSError as error:  # no such program, not executable, no such cwd
                log.write(f"{self.prog}: cannot run {shlex.join(stage.command.argv)}: {error}\n")
                self.stages.append(stage)
                raise StageFailed(
                    f"{self.prog}: stage {stage.name} could not start ({stage.command.argv[0]}: "
                    f"{error.strerror or error}); see {stage.log}"
                ) from None

    def _failure(self, stage: Stage) -> str:
        if stage.code is not None and stage.code < 0:
            how = f"killed by {signal.Signals(-stage.code).name}"
        else:
            how = f"exit {stage.code}"
        last = last_line(stage.log)
        ends = f"; it ends: {last}" if last else ""
        return f"{self.prog}: stage {stage.name} failed ({how}); see {stage.log}{ends}"


def last_line(log: Path, prefix: str = "") -> str:
    """The last non-blank line of a log that starts with `prefix`, stripped; "" if none."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return next((s for line in reversed(lines) if (s := line.strip()) and s.startswith(prefix)), "")


def closing_line(stage: Stage) -> str:
    """The line a stage's command closes its output with, when it names one."""
    return last_line(stage.log, stage.command.closing) if stage.command.closing else ""
