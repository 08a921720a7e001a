"""Training's faults, one line each and never a silent wrong result: sources that are no model,
recipe files, damaged pairs, a tracker that cannot be imported, a run that turns NaN, a file
system that refuses a write."""

from __future__ import annotations

import builtins
import io
import resource
import shutil
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file, save_file

import mling.export
import mling.train
from mling.pairs.shards import iter_pair_batches
from mling.training.checkpoint import damage
from mling.training.finite import DIVERGED_EXIT, FiniteWatch
from mling.vocab.build_vocab import main as build_vocab_main
from tests.helpers import train_fixtures
from tests.helpers.one_line import error_line
from tests.helpers.tiny_model import build_tiny_align
from tests.helpers.toy_pairs import toy_table
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture

QUIET = ("--report-to", "none")  # no tracker files: these runs are about what they write


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, toy_pairs, toy_tokenizer) -> Path:
    """Two steps, checkpointed at step 2: what the tests below resume (each from a copy)."""
    output = tmp_path_factory.mktemp("saved") / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, output, "--max-steps", "2", "--save-every", "2")
    assert mling.train.main([*argv, *QUIET]) == 0
    return output


def copy_of(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


@contextmanager
def file_size_limit(limit: int):
    """RLIMIT_FSIZE for this process (it binds root too): a write past `limit` bytes fails
    with EFBIG, as a full disk fails with ENOSPC (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


# ---- sources and recipe files ----


@pytest.mark.parametrize("folder", ["empty", "config without weights"])
def test_an_init_image_folder_that_is_no_model(tmp_path, toy_pairs, toy_tokenizer, capsys, folder):
    source = tmp_path / "source"
    if folder == "empty":
        source.mkdir()
        says = "holds no config.json"
    else:
        build_tiny_align(source, toy_tokenizer)
        (source / "model.safetensors").unlink()
        says = "holds no loadable AlignModel weights"
        capsys.readouterr()  # the helper's own progress bar
    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path / "run", "--init-image", str(source))
    assert mling.train.main(argv) == 2
    assert f"--init-image {source}" in error_line(capsys, "train.py", says)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("model: 5\n", "section model: holds 5, not fields"),
        ("data: [1, 2]\n", "section data: holds [1, 2], not fields"),
        ("run:\n  1: 2\n", "unknown recipe option --1"),
    ],
)
def test_a_recipe_section_that_holds_no_fields(
    tmp_path, toy_pairs, toy_tokenizer, capsys, text, says
):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path / "run")
    argv[argv.index("tiny")] = str(recipe)
    assert mling.train.main(argv) == 2
    error_line(capsys, "train.py", says)


# ---- damaged pairs ----


def _tar(path: Path, samples: list[dict[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for key, sample in enumerate(samples):
            for extension, payload in sample.items():
                info = tarfile.TarInfo(f"{key:04d}.{extension}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_webdataset_json_that_is_no_object(tmp_path, toy_tokenizer, capsys, workers):
    """In the trainer or in a loader process: a sample without metadata, as unparseable JSON
    is (the reader's rule for every entry point), so the run goes on and counts nothing
    lost: the sample still has its caption and image."""
    rows = toy_table(24, side=24).to_pylist()
    samples = [
        {"txt": row["caption"].encode(), "jpg": row["image"], "json": b'{"width": 24}'}
        for row in rows
    ]
    samples[3]["json"] = b'["Ein Hund", 24]'
    (tmp_path / "pairs").mkdir()
    _tar(tmp_path / "pairs" / "part-0.tar", samples)
    (batch,) = list(iter_pair_batches([tmp_path / "pairs"]))
    assert batch.num_rows == 24 and batch.column("width")[3].as_py() is None
    argv = tiny_argv(tmp_path / "pairs", toy_tokenizer, tmp_path / "run", "--num-workers", workers)
    assert mling.train.main([*argv, "--max-steps", "1", "--batch-size", "8"]) == 0


DATASETS_DAMAGE = {  # file: (bytes, what the one line says)
    "junk state.json": ("state.json", b"{not json", "is not a `datasets` state file"),
    "list state.json": ("state.json", b"[1, 2]", "(a JSON object), not a list"),
    "state.json without files": ("state.json", b'{"_data_files": 5}', '"_data_files" must be'),
    "junk dataset_info.json": ("dataset_info.json", b"{not", "is not a `datasets` info file"),
    "list dataset_info.json": ("dataset_info.json", b"[1]", "(a JSON object), not a list"),
}


@pytest.mark.parametrize("damage_name", sorted(DATASETS_DAMAGE))
def test_a_datasets_folder_with_a_damaged_json(tmp_path, toy_tokenizer, capsys, damage_name):
    """Training reads a `datasets` folder with datasets.load_from_disk (dataset_info.json too);
    the vocabulary builder and the filter through mling.pairs (state.json)."""
    import datasets

    name, payload, says = DATASETS_DAMAGE[damage_name]
    rows = toy_table(8, side=24)
    folder = tmp_path / "saved"
    datasets.Dataset.from_dict(
        {"caption": rows["caption"].to_pylist(), "image": rows["image"].to_pylist()}
    ).save_to_disk(str(folder))
    (folder / name).write_bytes(payload)
    capsys.readouterr()  # save_to_disk's own progress bar
    assert mling.train.main(tiny_argv(folder, toy_tokenizer, tmp_path / "run")) == 2
    assert f"{folder / name}" in error_line(capsys, "train.py", says)
    if name == "state.json":
        assert build_vocab_main(["--input", str(folder), "--output", str(tmp_path / "v")]) == 2
        error_line(capsys, "build_vocab.py", says)


def test_no_usable_pair_counts_each_row_once_and_names_the_flag(tmp_path, toy_tokenizer, capsys):
    table = toy_table(20, side=24)
    table = table.set_column(1, "caption", pa.nulls(20, pa.string()))
    (tmp_path / "pairs").mkdir()
    pq.write_table(table, tmp_path / "pairs" / "part-0.parquet")
    assert mling.train.main(tiny_argv(tmp_path / "pairs", toy_tokenizer, tmp_path / "run")) == 2
    line = error_line(capsys, "train.py", "no usable pair in 20 rows ({'missing_caption': 20})")
    assert "--column SRC=caption" in line and "--columns" not in line


def test_wandb_that_cannot_be_imported(tmp_path, toy_pairs, toy_tokenizer, monkeypatch, capsys):
    """Found but not importable (uninstalled halfway, a broken dependency): refused before
    any work, as a missing package is (test_train_trackers.py)."""
    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb" or name.startswith("wandb."):
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path / "run", "--report-to", "wandb")
    assert mling.train.main(argv) == 2
    error_line(capsys, "train.py", "pip install 'mling-align[wandb]'")
    assert not (tmp_path / "run").exists()


def test_export_names_its_own_options(tmp_path, capsys):
    argv = ["--checkpoint", str(tmp_path), "--output", str(tmp_path / "x")]
    assert mling.export.main(argv) == 2
    line = error_line(capsys, "export.py", "is not a checkpoint")
    assert "--checkpoint" in line and "--resume" not in line


# ---- NaN and infinity ----


def test_the_finite_watch_keeps_the_first_bad_step_on_the_device():
    watch = FiniteWatch(torch.device("cpu"))
    watch.observe(torch.tensor(2.5), torch.tensor(0.1))  # step 1
    watch.observe(torch.tensor(3.0), None)  # fp16: the scaler checks the gradients
    assert int(watch.first_bad) == 0
    watch.observe(torch.tensor(float("nan")), torch.tensor(0.1))  # step 3
    watch.observe(torch.tensor(1.0), torch.tensor(float("inf")))
    assert int(watch.first_bad) == 3  # the first, not the last
    model = torch.nn.Linear(2, 2)
    resumed = FiniteWatch(torch.device("cpu"), step=4)
    resumed.observe(torch.tensor(1.0), torch.tensor(0.1))  # step 5
    resumed.observe_weights(model)
    assert int(resumed.first_bad) == 0
    resumed.observe(torch.tensor(1.0), torch.tensor(0.1))  # step 6
    with torch.no_grad():
        model.bias[1] = float("inf")
    resumed.observe_weights(model)
    assert int(resumed.first_bad) == 6


def test_a_run_nan_from_its_first_step_stops_and_exports_nothing(
    tmp_path, toy_pairs, toy_tokenizer, capsys
):
    """A temperature of 1e-300 is 0 in float32: every logit is infinite from step 1. It used
    to train 3 NaN steps and export a model of NaN weights, exit 0."""
    run = tmp_path / "run"
    argv = tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", "4", "--log-every", "2")
    argv += ["--save-every", "2", "--temperature-init", "1e-300", *QUIET]
    assert mling.train.main(argv) == DIVERGED_EXIT
    line = error_line(capsys, "train.py", "non-finite training at step 1")
    assert "stopped at step 2" in line and "no checkpoint came before it" in line
    assert not (run / "model").exists() and not (run / "checkpoints").exists()
    assert not (run / "metrics.jsonl").exists()  # the NaN point is not logged


def test_a_run_that_diverges_keeps_its_last_good_checkpoint(
    saved_run, tmp_path, toy_pairs, toy_tokenizer, capsys
):
    run = copy_of(saved_run, tmp_path)
    before = (run / "metrics.jsonl").read_text()
    model = (run / "model" / "model.safetensors").read_bytes()  # the 2-step run's export
    argv = tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", "6", "--save-every", "2")
    argv += ["--log-every", "2", "--lr", "1e30", "--allow-recipe-change", "lr", *QUIET]
    assert mling.train.main([*argv, "--resume", "latest"]) == DIVERGED_EXIT
    line = error_line(capsys, "train.py", "non-finite training at step")
    assert "checkpoint step-00000002 is the last good one" in line
    assert (run / "checkpoints" / "latest").read_text() == "step-00000002"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step-00000002"]
    assert (run / "model" / "model.safetensors").read_bytes() == model  # not replaced
    assert (run / "metrics.jsonl").read_text() == before  # nothing logged from the NaN steps


def test_export_refuses_a_checkpoint_with_nan_weights(saved_run, tmp_path, capsys):
    checkpoint = copy_of(saved_run, tmp_path) / "checkpoints" / "step-00000002"
    weights = load_file(str(checkpoint / "model.safetensors"))
    weights["temperature"] = torch.full_like(weights["temperature"], float("nan"))
    save_file(weights, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    argv = ["--checkpoint", str(checkpoint), "--output", str(tmp_path / "export")]
    assert mling.export.main(argv) == 2
    error_line(capsys, "export.py", "holds NaN or infinite weights (temperature)")
    assert not (tmp_path / "export").exists()


# ---- a file system that refuses a write ----


def test_a_checkpoint_past_the_file_size_limit(
    saved_run, tmp_path, toy_pairs, toy_tokenizer, capsys
):
    """model.safetensors (2.4 MB) cannot be written: one line naming the checkpoint, exit 2;
    `latest` and the earlier checkpoint as they were, no half-written folder left."""
    run = copy_of(saved_run, tmp_path)
    argv = tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", "3", *QUIET)
    with file_size_limit(1_000_000):
        code = mling.train.main([*argv, "--resume", "latest"])
    assert code == 2
    line = error_line(
        capsys, "train.py", f"{run / 'checkpoints' / 'step-00000003'}: File too large (EFBIG)"
    )
    assert "size limit" in line
    checkpoints = run / "checkpoints"
    assert (checkpoints / "latest").read_text() == "step-00000002"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["latest", "step-00000002"]
    assert damage(checkpoints / "step-00000002") is None


def test_metrics_past_the_file_size_limit(saved_run, tmp_path, toy_pairs, toy_tokenizer, capsys):
    """A resumed run rewrites metrics.jsonl beside it, then renames: the old one survives."""
    run = copy_of(saved_run, tmp_path)
    before = (run / "metrics.jsonl").read_bytes()
    argv = tiny_argv(toy_pairs, toy_tokenizer, run, "--max-steps", "3", *QUIET)
    with file_size_limit(len(before) - 1):
        code = mling.train.main([*argv, "--resume", "latest"])
    assert code == 2
    error_line(capsys, "train.py", f"{run / 'metrics.jsonl'}: File too large (EFBIG)")
    assert (run / "metrics.jsonl").read_bytes() == before
    assert [p.name for p in run.iterdir() if p.name.startswith(".metrics")] == []


def test_an_export_past_the_file_size_limit_keeps_the_earlier_one(saved_run, tmp_path, capsys):
    checkpoint = saved_run / "checkpoints" / "step-00000002"
    out = tmp_path / "export"
    assert mling.export.main(["--checkpoint", str(checkpoint), "--output", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    argv = ["--checkpoint", str(checkpoint), "--output", str(out), "--overwrite"]
    with file_size_limit(1_000_000):
        code = mling.export.main(argv)
    assert code == 2
    error_line(capsys, "export.py", f"{out}: File too large (EFBIG)")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no staging folder left


def test_any_entry_point_names_a_refused_write(tmp_path, capsys):
    """The catch-all in one_line_errors (every entry point): a file the system names."""
    from mling.common.cli import one_line_errors

    @one_line_errors("tool.py")
    def main(argv=None) -> int:
        (tmp_path / "big.bin").write_bytes(b"x" * 4096)
        return 0

    with file_size_limit(1024):
        assert main([]) == 2
    error_line(capsys, "tool.py", "File too large (EFBIG); a file outgrew the size limit")
