"""What training reports: loss, temperature, learning rate, throughput and skipped rows.

The running loss stays on the device between logged steps; `point` is the loop's only host
sync. Points go to OUTPUT_DIR/metrics.jsonl (one JSON object per line, for plots), to
accelerate's trackers (TensorBoard) and to the progress bar, all from the main process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mling.training.loader import SKIP_REASONS


def _step(line: str) -> int | None:
    """A metrics line's step; None for a line a killed run left half-written."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


class TrainLog:
    def __init__(self, accelerator, path: Path, step: int, max_steps: int, batch_size: int):
        self.accelerator = accelerator
        self.path = path
        self.batch_size = batch_size  # pairs per process per step
        self.loss_sum = torch.zeros((), device=accelerator.device)
        self.since_step, self.since_time = step, time.perf_counter()
        main = accelerator.is_main_process
        if main and path.exists():  # a resumed run rewrites the steps after its checkpoint
            lines = path.read_text(encoding="utf-8").splitlines()
            kept = [line for line in lines if _step(line) is not None and _step(line) <= step]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        # disable=None: a bar on terminals; batch-job logs get one line per point instead
        self.progress = tqdm(
            total=max_steps, initial=step, disable=None if main else True, desc="train"
        )
        self.lines = main and self.progress.disable

    def add(self, loss: torch.Tensor) -> None:
        """Accumulate one step's loss without leaving the device."""
        self.loss_sum += loss.detach()
        self.progress.update(1)

    def point(self, step: int, lr: float, temperature: torch.Tensor, totals: list[float]) -> dict:
        """Log the mean loss since the last point; totals are the skipped rows of all processes
        by SKIP_REASONS. Returns the record."""
        now = time.perf_counter()
        steps = step - self.since_step
        per_process = self.batch_size * steps / (now - self.since_time)
        world = self.accelerator.num_processes
        record = {
            "step": step,
            "loss": self.loss_sum.item() / steps,
            "temperature": temperature.item(),
            "lr": lr,
            "samples_per_s": per_process * world,
            "samples_per_s_per_process": per_process,
            **{f"skipped_{reason}": int(n) for reason, n in zip(SKIP_REASONS, totals, strict=True)},
        }
        if self.accelerator.is_main_process:
            with self.path.open("a", encoding="utf-8") as file:
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
        self.accelerator.log({k: v for k, v in record.items() if k != "step"}, step=step)
        self.loss_sum.zero_()
        self.restart(step)
        return record

    def restart(self, step: int) -> None:
        """Measure throughput from here (after an evaluation, which is not training time)."""
        self.since_step, self.since_time = step, time.perf_counter()

    def close(self) -> None:
        self.progress.close()
