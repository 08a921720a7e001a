"""train.py on XLA:CPU (PJRT_DEVICE=CPU), the code path a TPU takes through accelerate.

One process trains the tiny recipe at static shapes (--pad-to-max-length, full batches) with
dropout and drop-connect on; torch_xla's metrics, read after every step, say how many graphs
were compiled and how many values came back to the host. Runs share one process, so a second
run with the same graphs reuses the compiled ones.
"""

from __future__ import annotations

import json

import pytest
import torch_xla.debug.metrics as met
from accelerate.state import AcceleratorState

import mling.train as train
from tests.helpers import train_fixtures
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture

STEPS = 20
LOG_EVERY = 5
WARM_UP = LOG_EVERY + 1  # steps: the first step's graph, the steady step's, the first log point's
# Host reads per logged point: the processes' flags and counts (one reduce), the mean loss and
# the temperature (train.py's train_loop and TrainLog.point).
READS_PER_POINT = 3
# Eager CPU and XLA:CPU differ in float rounding only (other kernels, other summation order);
# over 10 steps at lr 1e-2 the logged losses stay this close.
LOSS_TOLERANCE = 1e-3


def smaller_than_tiny(data, tokenizer, output, *extra: str) -> list[str]:
    """tiny at 8 pairs of 32 px, one text layer: XLA:CPU compiles each graph in about a minute."""
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


def run(monkeypatch, argv: list[str]) -> list[tuple[int, int]]:
    """train.main(argv) in this process; the counts after each step's train_step."""
    after_step = []
    step = train.train_step

    def counted(*args, **kwargs):
        out = step(*args, **kwargs)
        after_step.append(counts())
        return out

    with monkeypatch.context() as patch:
        patch.setattr(train, "train_step", counted)
        try:
            assert train.main(argv) == 0
        finally:  # accelerate keeps one device per process: the next run may pick another
            AcceleratorState._reset_state(reset_partial_state=True)
    return after_step


def losses(run_dir) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


@pytest.fixture(scope="module")
def xla_run(tmp_path_factory, toy_pairs, toy_tokenizer):
    """The main run: 20 steps, dropout and drop-connect on; (its folder, counts per step)."""
    out = tmp_path_factory.mktemp("xla") / "run"
    argv = smaller_than_tiny(toy_pairs, toy_tokenizer, out, "--max-steps", str(STEPS),
                             "--text-dropout", "0.1", "--drop-connect-rate", "0.2")  # fmt: skip
    with pytest.MonkeyPatch.context() as monkeypatch:
        return out, run(monkeypatch, argv)


def test_the_run_takes_xla_and_finishes(xla_run):
    out, per_step = xla_run
    assert len(per_step) == STEPS
    assert len(losses(out)) == STEPS // LOG_EVERY
    assert (out / "model" / "model.safetensors").is_file()


def test_graphs_stop_growing_after_warm_up(xla_run):
    """The first step (optimizer state created), the steady step and the first logging point's
    reads compile; from then on every step runs a graph already compiled."""
    _, per_step = xla_run
    compiled = [c for c, _ in per_step]
    assert compiled[WARM_UP - 1] == compiled[-1], compiled


def test_no_host_read_in_a_step_outside_the_logging_points(xla_run):
    _, per_step = xla_run
    transfers = [t for _, t in per_step]
    for step in range(WARM_UP + 1, STEPS + 1):  # steps are 1-based; per_step[step - 1]
        logged_before = (step - 1) % LOG_EVERY == 0  # the previous step ended in a point
        expected = READS_PER_POINT if logged_before else 0
        assert transfers[step - 1] - transfers[step - 2] == expected, (step, transfers)


def test_losses_match_eager_cpu(monkeypatch, tmp_path, toy_pairs, toy_tokenizer):
    """Without dropout (XLA draws other random numbers than the CPU), the same recipe and seed
    on XLA:CPU and on eager CPU log the same losses."""
    common = ["--max-steps", "10", "--text-dropout", "0", "--drop-connect-rate", "0"]
    xla_dir, cpu_dir = tmp_path / "xla", tmp_path / "cpu"
    run(monkeypatch, smaller_than_tiny(toy_pairs, toy_tokenizer, xla_dir, *common))
    run(monkeypatch, smaller_than_tiny(toy_pairs, toy_tokenizer, cpu_dir, *common, "--cpu", "true"))
    assert losses(xla_dir) == pytest.approx(losses(cpu_dir), abs=LOSS_TOLERANCE)


def test_text_bucket_rows_is_refused_in_one_line(tmp_path, toy_pairs, toy_tokenizer, capsys):
    argv = smaller_than_tiny(toy_pairs, toy_tokenizer, tmp_path / "run", "--text-bucket-rows", "4")
    assert train.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--text-bucket-rows 0" in err[0], err
