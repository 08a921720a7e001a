"""The tracker is a choice: TensorBoard (the default), Weights & Biases offline, or none;
metrics.jsonl is written whichever it is, and a missing wandb is one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mling.train import main
from mling.training.recipe import load_recipe
from mling.training.run_dir import start_over
from tests.helpers import train_fixtures
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture

STEPS = 3


@pytest.fixture
def wandb_offline(monkeypatch):
    """W&B offline, without an account; its settings are read again for each test."""
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")  # no network
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DIR", "WANDB_PROJECT", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    wandb.teardown()  # the process-wide W&B service and settings, for the next test


def metrics(output: Path) -> list[dict]:
    lines = (output / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def wandb_records(path: Path) -> list:
    """The protobuf records of a `run-*.wandb` file: W&B's 7-byte header, then LevelDB's log
    format (32 KiB blocks; per chunk a CRC, a little-endian length and a type: 1 full,
    2 first, 3 middle, 4 last)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_run(root: Path) -> tuple[dict[int, dict], dict]:
    """The history rows by step and the config of the one offline run under root/wandb."""
    (run_file,) = (root / "wandb").glob("offline-run-*/run-*.wandb")
    history, config = {}, {}
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                   for item in record.history.item}  # fmt: skip
            history[row["_step"]] = row
        updates = record.config.update if kind == "config" else []
        updates = record.run.config.update if kind == "run" else updates
        config.update({item.key: json.loads(item.value_json) for item in updates})
    return history, config


def test_tensorboard_is_the_default(tmp_path, toy_pairs, toy_tokenizer):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", str(STEPS))) == 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))  # the scalars' file
    board = EventAccumulator(str(out / "tensorboard"))
    board.Reload()
    losses = [(event.step, event.value) for event in board.Scalars("loss")]
    # TensorBoard stores float32
    assert losses == [(m["step"], pytest.approx(m["loss"], rel=1e-6)) for m in metrics(out)]
    assert not (out / "wandb").exists()


def test_wandb_offline_writes_the_metrics_and_the_recipe(
    tmp_path, toy_pairs, toy_tokenizer, wandb_offline
):
    out = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", str(STEPS), "--lr", "0.002")
    assert main([*argv, "--report-to", "wandb"]) == 0

    history, config = wandb_run(out)  # the run files live in the run folder
    written = metrics(out)
    assert [m["step"] for m in written] == list(range(1, STEPS + 1))
    assert sorted(history) == [m["step"] for m in written]
    for m in written:
        for key, value in m.items():
            if key != "step":  # the row's _step
                assert history[m["step"]][key] == value, (m["step"], key)
    # the recipe, nested by section with typed values, as W&B's config
    recipe = load_recipe("tiny", {}).to_dict()
    assert config["optim"]["lr"] == 0.002
    assert config["data"]["batch_size"] == 16
    assert config["model"].keys() == recipe["model"].keys()
    assert not (out / "tensorboard").exists()
    start_over(out)  # what --overwrite does: W&B's files are the run's too
    assert not (out / "wandb").exists()


def test_wandb_dir_from_the_environment_wins(tmp_path, toy_pairs, toy_tokenizer, wandb_offline):
    wandb_offline.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    out = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "1")
    assert main([*argv, "--report-to", "wandb"]) == 0
    history, _ = wandb_run(tmp_path / "elsewhere")
    assert sorted(history) == [1]
    assert not (out / "wandb").exists()


def test_none_writes_metrics_and_no_tracker_files(tmp_path, toy_pairs, toy_tokenizer):
    out = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", str(STEPS))
    assert main([*argv, "--report-to", "none"]) == 0
    assert [m["step"] for m in metrics(out)] == list(range(1, STEPS + 1))
    assert not (out / "tensorboard").exists() and not (out / "wandb").exists()


def test_wandb_not_installed_is_one_line(tmp_path, toy_pairs, toy_tokenizer, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what find_spec sees without the package
    out = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "1")
    assert main([*argv, "--report-to", "wandb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "pip install 'mling-align[wandb]'" in err
    assert not out.exists()  # refused before any work
