"""The image-embedding cache of a frozen image tower: the same training as the uncached frozen
tower with the same fixed transform, a file in the run folder that survives --resume and is
rebuilt when its key changes, and a loader that no longer decodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import mling.train
from mling.training.image_cache import (
    CACHE_DIR,
    CACHE_FILE,
    ImageCache,
    cache_key,
    cache_wanted,
    image_digest,
)
from mling.training.loader import PairStream, index_sources
from mling.training.model import build_model
from mling.training.recipe import load_recipe
from tests.helpers import train_fixtures
from tests.helpers.one_line import error_line
from tests.helpers.tiny_model import build_tiny_align
from tests.helpers.train_fixtures import TOY_CORRUPT, tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture

LIT = ("--freeze", "image", "--crop", "center", "--flip", "false", "--decay-steps", "4")


@pytest.fixture(scope="module")
def image_tower(tmp_path_factory, toy_tokenizer) -> Path:
    """A trained-looking model folder whose image tower the runs below keep frozen."""
    return build_tiny_align(tmp_path_factory.mktemp("tower") / "m", toy_tokenizer, seed=3,
                            image_size=32)  # fmt: skip


def run(tmp_path: Path, data: Path, tokenizer: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    argv = tiny_argv(data, tokenizer, out, "--max-steps", "4", *extra)
    assert mling.train.main(argv) == 0
    return out


def losses(out: Path) -> list[float]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]


def text_weights(out: Path) -> dict[str, torch.Tensor]:
    weights = load_file(str(out / "model" / "model.safetensors"))
    return {n: w for n, w in weights.items() if n.startswith(("text_", "temperature"))}


def assert_same_training(a: Path, b: Path) -> None:
    assert losses(a) == pytest.approx(losses(b), rel=1e-4, abs=1e-5)
    wa, wb = text_weights(a), text_weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.parametrize("micro_batch", ["0", "8"])
def test_cached_training_equals_the_frozen_tower_run_every_step(
    tmp_path, toy_pairs, toy_tokenizer, image_tower, micro_batch, capsys
):
    common = ("--init-image", str(image_tower), *LIT, "--micro-batch", micro_batch)
    cached = run(tmp_path, toy_pairs, toy_tokenizer, "cached", *common)
    err = capsys.readouterr().err
    # every distinct image once; the truncated ones (two distinct byte strings: a third of a
    # 24 px JPEG is its header) are recorded as undecodable
    assert f"image-cache/embeds.pt: {480 - TOY_CORRUPT} images (new, 477 embedded now, " in err
    assert "2 undecodable" in err
    plain = run(tmp_path, toy_pairs, toy_tokenizer, "plain", *common, "--image-cache", "false")
    assert not (plain / CACHE_DIR).exists()
    assert_same_training(cached, plain)
    assert len(losses(cached)) == 4


def test_the_cache_survives_a_stop_and_resume_and_is_rebuilt_when_its_key_changes(
    tmp_path, toy_pairs, toy_tokenizer, image_tower, capsys
):
    common = ("--init-image", str(image_tower), *LIT, "--save-every", "2")
    straight = run(tmp_path, toy_pairs, toy_tokenizer, "straight", *common, "--image-cache",
                   "false")  # fmt: skip
    out = tmp_path / "stopped"
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "2", *common)
    assert mling.train.main(argv) == 0  # a run stopped at step 2 (its checkpoint is the kill's)
    path = out / CACHE_DIR / CACHE_FILE
    written = path.stat().st_mtime_ns
    capsys.readouterr()
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "4", *common,
                     "--resume", "latest")  # fmt: skip
    assert mling.train.main(argv) == 0
    assert "(477 read from the run folder, 0 embedded now" in capsys.readouterr().err
    assert path.stat().st_mtime_ns == written  # read, not rewritten
    assert_same_training(out, straight)

    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "4", *common,
                     "--overwrite")  # fmt: skip
    assert mling.train.main(argv) == 0  # --overwrite starts over: the cache goes with the run
    assert "(new, 477 embedded now" in capsys.readouterr().err
    assert_same_training(out, straight)


def test_a_changed_key_rebuilds_a_cache_left_in_the_run_folder(
    tmp_path, toy_pairs, toy_tokenizer, image_tower, capsys
):
    common = ("--init-image", str(image_tower), *LIT, "--save-every", "2")
    out = run(tmp_path, toy_pairs, toy_tokenizer, "run", *common, "--max-steps", "2")
    path = out / CACHE_DIR / CACHE_FILE
    cache = ImageCache.load(path)
    cache.key, cache.embeds = "another tower", torch.zeros_like(cache.embeds)
    path.write_bytes(cache.to_bytes())
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "4", *common,
                     "--resume", "latest")  # fmt: skip
    assert mling.train.main(argv) == 0
    assert "rebuilt: the tower, transform or precision changed" in capsys.readouterr().err
    assert ImageCache.load(path).embeds.abs().sum() > 0


def test_a_cut_cache_file_is_rebuilt_and_bad_recipes_are_one_line(
    tmp_path, toy_pairs, toy_tokenizer, image_tower, capsys
):
    common = ("--init-image", str(image_tower), *LIT, "--save-every", "2")
    out = run(tmp_path, toy_pairs, toy_tokenizer, "run", *common, "--max-steps", "2")
    path = out / CACHE_DIR / CACHE_FILE
    path.write_bytes(path.read_bytes()[:1000])  # a disk that filled up under someone else
    argv = tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "3", *common,
                     "--resume", "latest")  # fmt: skip
    capsys.readouterr()
    assert mling.train.main(argv) == 0
    assert "(rebuilt: the file was unreadable, 477 embedded now" in capsys.readouterr().err
    for flags, message in [
        (("--crop", "middle"), "--crop middle: choose from random, center"),
        (("--text-text-weight", "-1", "--positives", "image_id"), "--text-text-weight -1.0"),
        (("--text-text-weight", "1"), "--text-text-weight 1.0 needs --positives"),
    ]:
        argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path / "bad", *flags)
        assert mling.train.main(argv) == 2
        error_line(capsys, "train.py", message)


def test_the_key_follows_the_towers_weights_the_image_size_and_the_precision():
    recipe = load_recipe("tiny", {"image_size": 32})
    tower = build_model(recipe.model, 100, seed=0).vision_model
    key = cache_key(tower, 32, "no")
    assert cache_key(tower, 32, "no") == key
    assert cache_key(tower, 48, "no") != key
    assert cache_key(tower, 32, "bf16") != key
    with torch.no_grad():
        next(tower.parameters())[0].add_(1e-3)
    assert cache_key(tower, 32, "no") != key
    stats = dict(tower.named_buffers())
    other = build_model(recipe.model, 100, seed=0).vision_model
    stats_key = cache_key(other, 32, "no")
    with torch.no_grad():
        next(b for n, b in other.named_buffers() if n.endswith("running_mean")).add_(1.0)
    assert cache_key(other, 32, "no") != stats_key and stats  # batch-norm statistics count


def test_augmentation_turns_the_cache_off_with_one_line(
    tmp_path, toy_pairs, toy_tokenizer, image_tower, capsys
):
    run(tmp_path, toy_pairs, toy_tokenizer, "aug", "--init-image", str(image_tower),
        "--freeze", "image", "--max-steps", "1")  # fmt: skip
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "image-embedding cache off" in line]
    assert len(lines) == 1 and "--crop random and --flip true" in lines[0]
    assert not (tmp_path / "aug" / CACHE_DIR).exists()
    assert cache_wanted(["image"], "center", False) is None
    assert cache_wanted(["text"], "center", False) == "the image tower trains"


def test_the_loader_reads_image_rows_instead_of_decoding(toy_pairs, toy_tokenizer):
    def stream(index=None) -> PairStream:
        return PairStream(index_sources([toy_pairs], {}), str(toy_tokenizer), batch_size=9,
                          image_size=32, max_length=12, crop="center", flip=False,
                          image_index=index)  # fmt: skip

    payloads = [p for part in stream().image_payloads() for p in part]
    assert len(payloads) == 480
    index = {image_digest(p): row for row, p in enumerate(payloads[TOY_CORRUPT:])}
    decoding, cached = iter(stream()), iter(stream(index))
    skipped_decoding, skipped_cached = {}, {}
    for _ in range((480 - TOY_CORRUPT) // 9):  # the corpus once: every skip on both sides
        a, b = next(decoding), next(cached)
        assert "pixel_values" not in b and b["image_rows"].shape == (9,)
        assert torch.equal(a["input_ids"], b["input_ids"])  # the same rows, in the same order
        for skipped, batch in ((skipped_decoding, a), (skipped_cached, b)):
            for reason, count in batch["skipped"].items():
                skipped[reason] = skipped.get(reason, 0) + count
    assert skipped_cached == skipped_decoding == {"corrupt_image": TOY_CORRUPT}


@pytest.mark.slow
def test_two_processes_share_one_cache_and_train_as_without_it(
    tmp_path, toy_pairs, toy_tokenizer, image_tower
):
    """accelerate launch, 2 CPU processes: each embeds its share of the distinct images, both
    read the whole cache, and the run equals the same launch with the tower run every step."""
    import os
    import subprocess
    import sys

    from tests.helpers.train_fixtures import free_port

    def launch(name: str, *extra: str) -> Path:
        out = tmp_path / name
        command = [
            sys.executable, "-m", "accelerate.commands.launch",
            "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), "-m", "mling.train",
            *tiny_argv(toy_pairs, toy_tokenizer, out, "--max-steps", "3",
                       "--init-image", str(image_tower), *LIT, *extra),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return out

    cached = launch("cached")
    assert len(ImageCache.load(cached / CACHE_DIR / CACHE_FILE).digests) == 480 - TOY_CORRUPT
    plain = launch("plain", "--image-cache", "false")
    assert_same_training(cached, plain)
