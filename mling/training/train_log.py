"""What training reports: loss, temperature, learning rate, throughput, skipped rows, evaluations.

The running loss stays on the device between logged steps; `point` is the loop's only host
sync. Points go to OUTPUT_DIR/metrics.jsonl (one JSON object per line, for plots), to
accelerate's trackers (TensorBoard) and to the progress bar, all from the main process.

A checkpoint carries `state()`: the loss summed since the last point and the evaluations run
and failed, so a resumed run logs what the uninterrupted run logs (a signal between two points
loses nothing).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mling.common.atomic import write_atomic
from mling.common.errors import file_system_errors
from mling.training.loader import SKIP_REASONS


def _step(line: str) -> int | None:
    """A metrics line's step; None for a line a killed run left half-written."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


class TrainLog:
    def __init__(
        self,
        accelerator,
        path: Path,
        step: int,
        max_steps: int,
        batch_size: int,
        state: dict | None = None,
    ):
        """`state`: a checkpoint's `state()`, when the run resumes from one."""
        self.accelerator = accelerator
        self.path = path
        self.batch_size = batch_size  # pairs per process per step
        self.loss_sum = torch.zeros((), device=accelerator.device)
        self.loss_steps = 0  # steps summed in loss_sum
        self.evals_run = self.evals_failed = 0
        self.notes: dict = {}  # fields of the next point only (a resume's allowed changes)
        if state:
            self.loss_sum += state["loss_sum"].to(accelerator.device)
            self.loss_steps = int(state["loss_steps"])
            self.evals_run, self.evals_failed = int(state["evals_run"]), int(state["evals_failed"])
        self.since_step, self.since_time = step, time.perf_counter()
        main = accelerator.is_main_process
        if main and path.exists():  # a resumed run rewrites the steps after its checkpoint
            lines = path.read_text(encoding="utf-8").splitlines()
            kept = [line for line in lines if _step(line) is not None and _step(line) <= step]
            # beside it, then renamed: a full disk leaves it as it was
            write_atomic(path, "".join(line + "\n" for line in kept).encode("utf-8"))
        # disable=None: a bar on terminals; batch-job logs get one line per point instead
        self.progress = tqdm(
            total=max_steps, initial=step, disable=None if main else True, desc="train"
        )
        self.lines = main and self.progress.disable

    def state(self) -> dict:
        """What a checkpoint keeps of the log (the loss stays a float32 tensor: bit for bit)."""
        return {
            "loss_sum": self.loss_sum.detach().clone(),
            "loss_steps": self.loss_steps,
            "evals_run": self.evals_run,
            "evals_failed": self.evals_failed,
        }

    def add(self, loss: torch.Tensor) -> None:
        """Accumulate one step's loss without leaving the device."""
        self.loss_sum += loss.detach()
        self.loss_steps += 1
        self.progress.update(1)

    def evaluated(self, code: int, seconds: float) -> None:
        """An evaluation ended with exit code `code`; its time is not training throughput."""
        self.evals_run += 1
        self.evals_failed += code != 0
        self.since_time += seconds

    def point(self, step: int, lr: float, temperature: torch.Tensor, totals: list[float]) -> dict:
        """Log the mean loss since the last point; totals are the skipped rows of all processes
        by SKIP_REASONS. Returns the record. Collective: every process calls it (each holds
        its own loss, P x its share of the global loss; the mean over processes is logged)."""
        now = time.perf_counter()
        steps = step - self.since_step
        per_process = self.batch_size * steps / max(now - self.since_time, 1e-9)
        world = self.accelerator.num_processes
        record = {
            "step": step,
            "loss": self.accelerator.reduce(self.loss_sum.clone(), "mean").item() / self.loss_steps,
            "temperature": temperature.item(),
            "lr": lr,
            "samples_per_s": per_process * world,
            "samples_per_s_per_process": per_process,
            **{f"skipped_{reason}": int(n) for reason, n in zip(SKIP_REASONS, totals, strict=True)},
        }
        if self.evals_run:
            record |= {"evals_run": self.evals_run, "evals_failed": self.evals_failed}
        record |= self.notes
        self.notes = {}
        if self.accelerator.is_main_process:
            with file_system_errors(self.path), self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record) + "\n")
            self.progress.set_postfix(
                loss=f"{record['loss']:.3f}", temp=f"{record['temperature']:.3f}"
            )
            if self.lines:
                print(
                    f"train.py: step {step} loss {record['loss']:.4f} temperature "
                    f"{record['temperature']:.4f} lr {lr:.3g} {record['samples_per_s']:.0f} pairs/s",
                    file=sys.stderr,
                    flush=True,
                )
        scalars = {k: v for k, v in record.items() if k != "step" and isinstance(v, int | float)}
        self.accelerator.log(scalars, step=step)
        self.loss_sum.zero_()
        self.loss_steps = 0
        self.since_step, self.since_time = step, time.perf_counter()
        return record

    def close(self) -> None:
        self.progress.close()
