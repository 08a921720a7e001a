"""Checkpoints: resuming reproduces an uninterrupted run exactly; a signal or a crash mid-save
never leaves `latest` pointing at a broken checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

import mling.train
import mling.training.checkpoint
from mling.training.schedule import lr_at
from tests.helpers import train_fixtures
from tests.helpers.one_line import error_line
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture

STEPS = 6
DROPOUT = ("--text-dropout", "0.1", "--drop-connect-rate", "0.3")  # RNG state must be restored


def losses(output: Path) -> list[tuple[int, float]]:
    lines = (output / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [(record["step"], record["loss"]) for record in map(json.loads, lines)]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, toy_pairs, toy_tokenizer) -> Path:
    """STEPS steps in one go, two loader workers (resuming must restore their round-robin)."""
    output = tmp_path_factory.mktemp("straight")
    argv = tiny_argv(
        toy_pairs, toy_tokenizer, output, "--max-steps", str(STEPS), "--num-workers", "2", *DROPOUT
    )
    assert mling.train.main(argv) == 0
    return output


def test_n_steps_resumed_for_n_more_equal_2n_steps(
    straight_run, tmp_path, toy_pairs, toy_tokenizer
):
    half = STEPS // 2  # 3: odd, so the resumed loader starts at its second worker
    first = tiny_argv(
        toy_pairs,
        toy_tokenizer,
        tmp_path,
        "--num-workers",
        "2",
        "--decay-steps",
        str(STEPS),
        *DROPOUT,
    )
    assert mling.train.main([*first, "--max-steps", str(half)]) == 0
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-00000003"
    assert mling.train.main([*first, "--max-steps", str(STEPS), "--resume", "latest"]) == 0
    expected = losses(straight_run)
    assert [step for step, _ in expected] == list(range(1, STEPS + 1))
    assert losses(tmp_path) == expected  # bit for bit: same data, augmentation, dropout, updates


def test_sigterm_checkpoints_and_resume_continues_exactly(
    straight_run, tmp_path, toy_pairs, toy_tokenizer, monkeypatch
):
    def lr_with_a_signal(step, *args):
        if step == 1:  # during the second step
            os.kill(os.getpid(), signal.SIGTERM)
        return lr_at(step, *args)

    argv = tiny_argv(
        toy_pairs,
        toy_tokenizer,
        tmp_path,
        "--num-workers",
        "2",
        "--max-steps",
        str(STEPS),
        *DROPOUT,
    )
    with monkeypatch.context() as patch:
        patch.setattr(mling.train, "lr_at", lr_with_a_signal)
        assert mling.train.main(argv) == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-00000002"
    assert not (tmp_path / "model").exists()  # no export of an unfinished run
    assert mling.train.main([*argv, "--resume", "latest"]) == 0
    assert losses(tmp_path) == losses(straight_run)


def test_a_crash_while_saving_leaves_latest_on_the_previous_checkpoint(
    tmp_path, toy_pairs, toy_tokenizer, monkeypatch
):
    real_save_state = mling.training.checkpoint.save_state

    def crash_on_the_second_save(directory, stem, state):
        if stem == "optimizer" and "step-00000004" in str(directory):
            raise KeyboardInterrupt("killed while writing")
        return real_save_state(directory, stem, state)

    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path, "--max-steps", "4", "--save-every", "2")
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(mling.training.checkpoint, "save_state", crash_on_the_second_save)
        mling.train.main(argv)
    root = tmp_path / "checkpoints"
    assert (root / "latest").read_text() == "step-00000002"
    assert (root / ".tmp-step-00000004").is_dir() and not (root / "step-00000004").exists()
    assert mling.train.main([*argv, "--resume", "latest"]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000002", "step-00000004"]
    assert [step for step, _ in losses(tmp_path)] == [1, 2, 3, 4]  # steps 3-4 logged once


def test_resume_from_nothing_and_from_a_wrong_path(tmp_path, toy_pairs, toy_tokenizer, capsys):
    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path, "--max-steps", "1")
    assert mling.train.main([*argv, "--resume", str(tmp_path / "nowhere")]) == 2
    assert "is not a checkpoint" in capsys.readouterr().err
    assert mling.train.main([*argv, "--resume", "latest"]) == 0  # no checkpoint yet: fresh start


@pytest.mark.slow
def test_killed_between_checkpoints_then_resumed_logs_the_same_losses(
    straight_run, tmp_path, toy_pairs, toy_tokenizer
):
    """kill -9 of a training process between two checkpoints (no cleanup runs), then
    `--resume latest`: the run goes on from the checkpoint and logs the uninterrupted losses."""
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", str(STEPS), "--num-workers", "2")
    argv += [*DROPOUT, "--save-every", "3"]
    process = subprocess.Popen([sys.executable, "-m", "mling.train", *argv], cwd=tmp_path)
    latest, metrics = run / "checkpoints" / "latest", run / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        lines = metrics.read_text().splitlines() if metrics.exists() else []
        if latest.exists() and len(lines) >= 4:  # step 3 saved, step 4 done: between the two
            break
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be killed between checkpoints"
    process.kill()
    process.wait()
    assert latest.read_text() == "step-00000003"

    assert mling.train.main([*argv, "--resume", "latest"]) == 0
    resumed, expected = losses(run), losses(straight_run)
    assert [step for step, _ in resumed] == list(range(1, STEPS + 1))
    assert [loss for _, loss in resumed] == pytest.approx([loss for _, loss in expected], rel=1e-6)


def test_metrics_after_a_signal_between_points_equal_the_uninterrupted_run(
    straight_run, tmp_path, toy_pairs, toy_tokenizer, monkeypatch
):
    """SIGTERM at step 2 of a run logging every 5 steps: the checkpoint keeps the loss summed
    over steps 1-2, so the resumed run logs steps 5 and 6 as the uninterrupted run does (it
    used to log the mean of steps 3-5 alone)."""

    def lr_with_a_signal(step, *args):
        if step == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return lr_at(step, *args)

    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path, "--num-workers", "2", *DROPOUT)
    argv += ["--max-steps", str(STEPS), "--log-every", "5"]
    with monkeypatch.context() as patch:
        patch.setattr(mling.train, "lr_at", lr_with_a_signal)
        assert mling.train.main(argv) == 128 + signal.SIGTERM
    assert not (tmp_path / "metrics.jsonl").exists()  # no point before the signal
    assert mling.train.main([*argv, "--resume", "latest"]) == 0
    every_step = dict(losses(straight_run))  # the same run, logged at every step
    expected = [(5, sum(every_step[s] for s in range(1, 6)) / 5), (6, every_step[6])]
    resumed = losses(tmp_path)
    assert [step for step, _ in resumed] == [5, 6]
    assert [loss for _, loss in resumed] == pytest.approx([loss for _, loss in expected], rel=1e-6)


def test_a_changed_recipe_is_refused_on_resume_unless_allowed(
    straight_run, tmp_path, toy_pairs, toy_tokenizer, capsys
):
    """--batch-size or --micro-batch changed on resume used to go on silently, with other
    losses than the uninterrupted run's. A change that alters the run is refused, naming each
    field; one that cannot (how often to log, how long to run) is taken; --allow-recipe-change
    takes a named one and logs it."""
    run = tmp_path / "run"
    shutil.copytree(straight_run, run)
    argv = tiny_argv(toy_pairs, toy_tokenizer, run, "--num-workers", "2", *DROPOUT)
    argv += ["--resume", "latest"]
    assert mling.train.main([*argv, "--batch-size", "32", "--micro-batch", "4"]) == 2
    line = error_line(capsys, "train.py", "--batch-size 16 → 32, --micro-batch 0 → 4")
    assert "checkpoint step-00000006's recipe" in line
    assert "--allow-recipe-change batch_size,micro_batch" in line
    assert mling.train.main([*argv, "--num-workers", "0"]) == 2  # the data would restart
    error_line(capsys, "train.py", "--num-workers 2 → 0")
    assert mling.train.main([*argv, "--allow-recipe-change", "batch-sise"]) == 2
    error_line(capsys, "train.py", "did you mean batch_size")
    assert (run / "checkpoints" / "latest").read_text() == "step-00000006"  # nothing trained

    more = [*argv, "--max-steps", str(STEPS + 1), "--log-every", "7", "--save-every", "1"]
    assert (
        mling.train.main([*more, "--micro-batch", "8", "--allow-recipe-change", "micro-batch"]) == 0
    )
    assert "--resume with a changed recipe: --micro-batch 0 → 8" in capsys.readouterr().err
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == STEPS + 1 and last["recipe_changes"] == ["--micro-batch 0 → 8"]
    # the checkpoint carries the recipe it was trained with: resuming it again needs nothing
    assert mling.train.main([*more, "--max-steps", str(STEPS + 2), "--micro-batch", "8"]) == 0
