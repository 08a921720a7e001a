"""train.py on XLA:CPU (PJRT_DEVICE=CPU), the code path a TPU takes through accelerate.

Every run trains a recipe smaller than tiny at static shapes (--pad-to-max-length, full
batches); torch_xla's metrics, read after every step, say how many graphs were compiled and
how many values came back to the host. All runs share this process, so a run whose graphs an
earlier run compiled reuses them (XLA:CPU compiles each graph in tens of seconds, and cannot
load one back from a persistent cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch_xla
import torch_xla.debug.metrics as met
from accelerate.state import AcceleratorState

import mling.train as train
from mling.training.random_state import RandomState
from tests.helpers import train_fixtures
from tests.helpers.train_fixtures import tiny_argv

ROOT = Path(__file__).resolve().parents[2]  # the repository: mling/train.py runs from there
toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture

STEPS = 20
LOG_EVERY = 5
SHORT = 10  # steps of the runs compared with eager CPU
# steps until every graph a run needs is compiled: the first step's (it creates the optimizer's
# state), the steady step's (from step 2), and at the first logging point its reads' and the
# log's reset
WARM_UP = LOG_EVERY
# Host reads per logged point: the processes' flags and counts (one reduce), the mean loss and
# the temperature (train.py's train_loop and TrainLog.point).
READS_PER_POINT = 3
# Eager CPU and XLA:CPU differ in float rounding only (other kernels, other summation order):
# over 10 steps at lr 1e-2 the logged losses differed by at most 1.2e-6 (--micro-batch 4)
# and 4e-7 (--freeze image); the bound leaves a hundredfold margin.
LOSS_TOLERANCE = 1e-4
DROPOUT = ("--text-dropout", "0.1", "--drop-connect-rate", "0.2", "--decay-steps", str(STEPS))
# dropout off for the comparisons with eager CPU (XLA draws other random numbers); a low
# temperature, so that the loss leaves chance (ln 8 a direction) within 10 steps
COMPARED = ("--text-dropout", "0", "--drop-connect-rate", "0", "--temperature-init", "0.05")


def smaller_than_tiny(data, tokenizer, output, *extra: str) -> list[str]:
    """tiny at 8 pairs of 32 px, one text layer: the fewer ops, the shorter each compile."""
    argv = tiny_argv(data, tokenizer, output, *extra)
    argv[argv.index("--cpu") : argv.index("--cpu") + 2] = []  # XLA, unless a test asks for CPU
    return [
        *argv,
        "--batch-size", "8", "--max-length", "8", "--text-layers", "1",
        "--log-every", str(LOG_EVERY), "--pad-to-max-length", "true", "--report-to", "none",
    ]  # fmt: skip


def counts() -> tuple[int, int]:
    """(graphs compiled, device-to-host transfers) so far in this process."""
    compiled = met.metric_data("CompileTime")
    transfers = met.metric_data("TransferFromDeviceTime")
    return (compiled[0] if compiled else 0, transfers[0] if transfers else 0)


def run(argv: list[str]) -> list[tuple[int, int]]:
    """train.main(argv) in this process; the counts when each step starts, so entry i holds
    them after i whole steps (each with its logging point and its graph cuts)."""
    before_step = []
    step = train.train_step

    def counted(*args, **kwargs):
        before_step.append(counts())
        return step(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "train_step", counted)
        try:
            assert train.main(argv) == 0
        finally:  # accelerate keeps one device per process: the next run may pick another
            AcceleratorState._reset_state(reset_partial_state=True)
    return before_step


def losses(run_dir) -> dict[int, float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {record["step"]: record["loss"] for record in map(json.loads, lines)}


def check_flat(after: list[tuple[int, int]]) -> None:
    """No graph compiled after the first logging point; no host read in a step but its
    logging point's. after[i]: the counts after i steps."""
    compiled = [c for c, _ in after]
    assert compiled[WARM_UP] == compiled[-1], compiled
    transfers = [t for _, t in after]
    for step in range(1, len(after)):
        expected = READS_PER_POINT if step % LOG_EVERY == 0 else 0
        assert transfers[step] - transfers[step - 1] == expected, (step, transfers)


@pytest.fixture(scope="module")
def xla_run(tmp_path_factory, toy_pairs, toy_tokenizer):
    """The main run: 20 steps, dropout and drop-connect on; (its folder, counts per step)."""
    out = tmp_path_factory.mktemp("xla") / "run"
    return out, run(
        smaller_than_tiny(toy_pairs, toy_tokenizer, out, *DROPOUT, "--max-steps", str(STEPS))
    )


def compared(root, toy_pairs, toy_tokenizer, *extra: str):
    """The same recipe on XLA (here) and on eager CPU (the same venv, another process:
    accelerate takes XLA in every process where torch_xla imports); (XLA counts after each
    step, XLA losses, CPU losses)."""
    argv = [*COMPARED, "--max-steps", str(SHORT), *extra]
    after = run(smaller_than_tiny(toy_pairs, toy_tokenizer, root / "xla", *argv))
    cpu = smaller_than_tiny(toy_pairs, toy_tokenizer, root / "cpu", *argv, "--cpu", "true")
    env = {**os.environ, "USE_TORCH_XLA": "0"}
    subprocess.run([sys.executable, "mling/train.py", *cpu], env=env, cwd=ROOT, check=True)
    return after, losses(root / "xla"), losses(root / "cpu")


def test_the_run_takes_xla_and_finishes(xla_run):
    out, after = xla_run
    assert len(after) == STEPS  # train_step ran 20 times
    assert sorted(losses(out)) == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))
    assert (out / "model" / "model.safetensors").is_file()


def test_graphs_stop_growing_after_warm_up(xla_run):
    """The first step (optimizer state created), the steady step and the first logging point's
    reads compile; from then on every step runs a graph already compiled, and reads nothing
    back but at the logging points."""
    check_flat(xla_run[1])


def test_a_resumed_run_logs_what_the_uninterrupted_run_logged(
    xla_run, tmp_path, toy_pairs, toy_tokenizer
):
    """Stopped at step 10 (its last, so checkpointed), then resumed to 20 (the decay fixed at
    20 in both): the checkpoint's weights, optimizer, data position and XLA's seed give the
    same dropout masks, so the main run's losses."""
    out, _ = xla_run
    argv = smaller_than_tiny(toy_pairs, toy_tokenizer, tmp_path / "run", *DROPOUT)
    run([*argv, "--max-steps", str(STEPS // 2)])
    run([*argv, "--max-steps", str(STEPS), "--resume", "latest"])
    assert losses(tmp_path / "run") == pytest.approx(losses(out), abs=1e-6)


def test_losses_match_eager_cpu_with_micro_batches(tmp_path, toy_pairs, toy_tokenizer):
    """--micro-batch 4 (gradient caching: two forwards without autograd, one replayed with it)
    on XLA and on eager CPU: the same losses; its graphs too stop growing after warm-up."""
    after, xla, cpu = compared(tmp_path, toy_pairs, toy_tokenizer, "--micro-batch", "4")
    assert sorted(xla) == [LOG_EVERY, SHORT] and xla[LOG_EVERY] != xla[SHORT]
    assert xla == pytest.approx(cpu, abs=LOSS_TOLERANCE)
    check_flat(after)


def test_losses_match_eager_cpu_with_a_frozen_image_tower(
    xla_run, tmp_path, toy_pairs, toy_tokenizer
):
    """LiT: the main run's image tower, frozen (eval mode, no autograd); a random one, frozen,
    would embed every image alike and leave the loss at chance."""
    out, _ = xla_run
    extra = ("--init-image", str(out / "model"), "--freeze", "image")
    after, xla, cpu = compared(tmp_path, toy_pairs, toy_tokenizer, *extra)
    assert sorted(xla) == [LOG_EVERY, SHORT] and xla[LOG_EVERY] != xla[SHORT]
    assert xla == pytest.approx(cpu, abs=LOSS_TOLERANCE)
    check_flat(after)


def test_gradient_caching_replays_xla_dropout():
    """RandomState on XLA: restored, the device's seed draws the same dropout mask again."""
    device = torch_xla.device()
    ones = torch.ones(64, device=device)
    state = RandomState.capture(device)
    first = torch.nn.functional.dropout(ones, 0.5).cpu()
    state.restore()
    again = torch.nn.functional.dropout(ones, 0.5).cpu()
    other = torch.nn.functional.dropout(ones, 0.5).cpu()
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize(
    ("extra", "advice"),
    [(("--text-bucket-rows", "4"), "--text-bucket-rows 0"), (("--cpu", "true"), "USE_TORCH_XLA=0")],
)
def test_what_xla_cannot_do_is_refused_in_one_line(
    tmp_path, toy_pairs, toy_tokenizer, capsys, extra, advice
):
    argv = smaller_than_tiny(toy_pairs, toy_tokenizer, tmp_path / "run", *extra)
    try:
        assert train.main(argv) == 2
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and advice in err[0], err
