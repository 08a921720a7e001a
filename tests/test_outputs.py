"""Outputs are never destructive: every entry point refuses, in one line, what publishing its
output would destroy, and two runs on one output never mix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import mling.train
from mling.common.atomic import MARKER, claim_output
from mling.filtering.pipeline import main as filter_main
from mling.synthetic import generate
from mling.training.run_dir import LOCK
from tests.helpers import train_fixtures
from tests.helpers.filter_cases import run, write_reason_fixture
from tests.helpers.kill import processes
from tests.helpers.one_line import error_line
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


def test_the_filter_refuses_its_input_a_foreign_folder_and_a_busy_output(tmp_path, capsys):
    write_reason_fixture(tmp_path / "in")
    before = sorted(p.name for p in (tmp_path / "in").iterdir())
    argv = ["--input", str(tmp_path / "in"), "--quiet"]
    assert filter_main([*argv, "--output", str(tmp_path / "in"), "--overwrite"]) == 2
    error_line(capsys, "filter.py", "would replace the input")
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == before
    assert filter_main([*argv, "--output", str(tmp_path)]) == 2  # holds the input
    error_line(capsys, "filter.py", "would replace the input")

    out = run(tmp_path, "out")
    capsys.readouterr()
    assert (out / MARKER).is_file()
    with claim_output(out, overwrite=True):  # another run holds it
        assert filter_main([*argv, "--output", str(out), "--overwrite"]) == 2
        error_line(capsys, "filter.py", "is being written by another run")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".lock")]


def test_a_run_refused_after_claiming_its_output_leaves_no_folder_it_made(tmp_path, capsys):
    from mling.vocab.build_vocab import main as build_vocab_main

    out = tmp_path / "new" / "deeper" / "out"
    tiny = ["--output", str(out), "--pairs", "20", "--test-images", "4", "--quiet"]
    assert generate.main(tiny) == 2  # refused once it holds the output's lock
    error_line(capsys, "synthetic.py", "cannot hold a reused image")
    assert not (tmp_path / "new").exists()
    (tmp_path / "blank.txt").write_text("\n \n\n", encoding="utf-8")
    argv = ["--input", str(tmp_path / "blank.txt"), "--output", str(out), "--vocab-size", "200"]
    assert build_vocab_main(argv) == 2  # after its census
    error_line(capsys, "build_vocab.py", "no usable lines")
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()  # a folder that was there stays, empty as it was
    assert generate.main([*tiny[2:], "--output", str(tmp_path / "mine" / "out")]) == 2
    assert list((tmp_path / "mine").iterdir()) == []


def test_synthetic_reruns_only_with_overwrite(tmp_path, capsys):
    tiny = ["--output", str(tmp_path / "x"), "--pairs", "20", "--test-images", "4"]
    assert generate.main([*tiny, "--quiet"]) == 2  # a corpus too small for its noise: one line
    error_line(capsys, "synthetic.py", "cannot hold a reused image")
    argv = ["--output", str(tmp_path / "syn"), "--pairs", "40", "--test-images", "4", "--quiet"]
    argv += ["--reuse-threshold", "3", "--workers", "1"]
    assert generate.main(argv) == 0
    capsys.readouterr()
    assert generate.main(argv) == 2
    error_line(capsys, "synthetic.py", "pass --overwrite")
    assert generate.main([*argv, "--overwrite"]) == 0


def test_a_run_folder_holds_one_run(tmp_path, toy_pairs, toy_tokenizer, capsys):
    """Reusing a run folder without --resume is refused (it used to prune the new run's own
    checkpoints); --overwrite starts over; a live run's lock refuses a second one."""
    run_dir = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, run_dir, "--max-steps", "2", "--save-every", "1")
    assert mling.train.main(argv) == 0
    capsys.readouterr()
    assert mling.train.main(argv) == 2
    error_line(capsys, "train.py", "holds another run")
    (run_dir / "notes.txt").write_text("mine")
    assert mling.train.main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    assert (run_dir / "notes.txt").read_text() == "mine"  # only what a run writes is deleted
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step-*")) == [
        "step-00000001",
        "step-00000002",
    ]
    assert not (run_dir / LOCK).exists()

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / LOCK).write_text(f"{sleeper.pid}\n")  # a live run holds the folder
        assert mling.train.main([*argv, "--overwrite"]) == 2
        error_line(capsys, "train.py", f"in use by another run (process {sleeper.pid})")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert mling.train.main([*argv, "--overwrite"]) == 0  # a dead holder's lock is taken over
    assert os.getpid() != sleeper.pid


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--max-steps", "0"], "--max-steps 0: must be at least 1"),
        (["--max-steps", "-1"], "--max-steps -1: must be at least 1"),
        (["--lr", "nan"], "--lr nan: must be a finite number above 0"),
        (["--batch-size", "0"], "--batch-size 0: must be at least 1"),
        (["--image-size", "0"], "--image-size 0: must be at least 16"),
        (["--log-every", "0"], "--log-every 0: must be at least 1"),
        (["--freeze", "everything"], "--freeze everything: choose from image, text, image-bn"),
    ],
)
def test_recipe_values_no_run_can_use_are_refused_before_any_work(
    tmp_path, toy_pairs, toy_tokenizer, capsys, flags, says
):
    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path / "run", *flags)
    assert mling.train.main(argv) == 2
    error_line(capsys, "train.py", says)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_a_filter_killed_mid_run_leaves_no_process_and_its_scratch_is_reclaimed(tmp_path):
    import signal
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.helpers.filter_cases import GOOD

    (tmp_path / "in").mkdir()
    captions = list(GOOD.values())
    rows = 200_000
    table = pa.table(
        {
            "key": [f"k{i}" for i in range(rows)],
            "caption": [f"{captions[i % len(captions)]} {i}" for i in range(rows)],
            "url": [f"https://img.example/{i}.jpg" for i in range(rows)],
            "width": [400] * rows,
            "height": [300] * rows,
        }
    )
    pq.write_table(table, tmp_path / "in" / "part-0.parquet", row_group_size=20_000)
    command = [sys.executable, "-m", "mling.filtering.pipeline", "--input", str(tmp_path / "in")]
    command += ["--output", str(tmp_path / "out"), "--workers", "2", "--quiet"]
    parent = subprocess.Popen(command, start_new_session=True)
    deadline = time.monotonic() + 120
    children = []
    while not children and time.monotonic() < deadline:
        time.sleep(0.05)  # the pre-pass has started writing, and forked its workers
        if list(tmp_path.glob(".out.work-*/*")):
            children = [pid for pid, ppid, _ in processes() if ppid == parent.pid]
    assert children, "the pre-pass runs in worker processes"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    time.sleep(1.0)
    alive = [pid for pid, _, state in processes() if pid in children and state != "Z"]
    assert alive == [], f"workers outlived their parent: {alive}"
    assert list(tmp_path.glob(".out.*-*"))  # what the killed run left
    assert not (tmp_path / "out").exists()  # and no output that looks complete

    assert (
        filter_main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--quiet"])
        == 0
    )
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_export_and_training_never_delete_what_is_not_ours(
    tmp_path, toy_pairs, toy_tokenizer, capsys
):
    import mling.export

    run_dir = tmp_path / "run"
    assert mling.train.main(tiny_argv(toy_pairs, toy_tokenizer, run_dir, "--max-steps", "1")) == 0
    capsys.readouterr()
    (checkpoint,) = (run_dir / "checkpoints").glob("step-*")
    for target in (checkpoint, run_dir):  # the checkpoint being exported, or the run holding it
        argv = ["--checkpoint", str(checkpoint), "--output", str(target), "--overwrite"]
        assert mling.export.main(argv) == 2
        error_line(capsys, "export.py", "would replace the input")
    assert (checkpoint / "model.safetensors").is_file()

    theirs = tmp_path / "theirs"
    (theirs / "model").mkdir(parents=True)
    (theirs / "model" / "weights.bin").write_text("mine")
    argv = tiny_argv(toy_pairs, toy_tokenizer, theirs, "--max-steps", "1", "--overwrite")
    assert mling.train.main(argv) == 2
    error_line(capsys, "train.py", "this toolkit did not write")
    assert (theirs / "model" / "weights.bin").read_text() == "mine"
