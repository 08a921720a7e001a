"""Training through the installed entry points, launched by accelerate on 2 CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import train_fixtures
from tests.helpers.train_fixtures import free_port, tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


@pytest.mark.slow
@pytest.mark.parametrize("how", ["module", "console-script", "sigmoid"])
def test_two_processes_train_through_the_installed_entry_points(
    tmp_path, how, toy_pairs, toy_tokenizer
):
    """`accelerate launch -m mling.train` and the `mling-train` console script, 2 CPU processes;
    and the sigmoid loss, its captions passed between the 2 processes."""
    extra = ["--loss", "sigmoid"] if how == "sigmoid" else []
    if how in ("module", "sigmoid"):
        target = ["-m", "mling.train"]
    else:
        target = [str(Path(sys.executable).with_name("mling-train"))]
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        *target, *tiny_argv(toy_pairs, toy_tokenizer, tmp_path / "run", "--max-steps", "2", *extra),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and all(0 < json.loads(line)["loss"] < 20 for line in lines)
