"""Starting from trained weights: hub ids from a cache filled in its own layout, towers from
different sources, frozen towers bit-identical with no optimizer state, the model card, and
publishing up to the upload call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import mling.train
from mling.common.errors import InputError
from mling.common.hub import looks_like_path, resolve_source
from mling.training.checkpoint import load_state
from mling.training.model_export import load_checkpoint_model
from mling.training.pretrained import torch_batch_norm_momentum
from tests.helpers import fake_hub, train_fixtures
from tests.helpers.fake_hub import COMMIT, put_in_cache
from tests.helpers.one_line import error_line
from tests.helpers.tiny_model import build_tiny_align
from tests.helpers.train_fixtures import tiny_argv

toy_pairs = train_fixtures.toy_pairs  # fixture
hub_cache = fake_hub.hub_cache  # fixture


@pytest.fixture
def source_model(tmp_path, tiny_tokenizer_dir) -> Path:
    """A trained-looking AlignModel folder (transformers' own BN momentum 0.99 in its config)."""
    return build_tiny_align(tmp_path / "source", tiny_tokenizer_dir, seed=7, image_size=32)


def train(tmp_path: Path, data: Path, tokenizer: str, name: str, *extra: str) -> Path:
    out = tmp_path / name
    argv = tiny_argv(data, Path(tokenizer), out, "--max-steps", "3", "--save-every", "3", *extra)
    assert mling.train.main(argv) == 0
    return out


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


# ---- one rule for local paths and hub ids ----


@pytest.mark.parametrize(
    ("text", "path"),
    [("/abs/x", True), ("./x", True), ("../x", True), ("~/x", True), ("a/b/c", True),
     ("org/name", False), ("name", False)],
)  # fmt: skip
def test_what_looks_like_a_path_never_reaches_the_hub(text, path):
    assert looks_like_path(text) is path


def test_hub_ids_resolve_from_the_cache_and_offline_misses_are_one_line(hub_cache, source_model):
    put_in_cache(hub_cache, "org/tiny-align", source_model)
    source = resolve_source("org/tiny-align", "--init")
    assert (source.hub_id, source.revision) == ("org/tiny-align", COMMIT)
    assert (source.path / "config.json").is_file()
    assert resolve_source(str(source_model)).hub_id is None  # an existing path is local
    with pytest.raises(InputError, match=r"--init org/absent .*HF_HUB_OFFLINE=1") as error:
        resolve_source("org/absent", "--init")
    assert "\n" not in str(error.value)
    with pytest.raises(InputError, match=r"--init ./org/tiny-align: no such file or folder"):
        resolve_source("./org/tiny-align", "--init")


# ---- towers from sources, frozen towers ----


def test_lit_frozen_image_tower_from_the_hub_stays_bit_identical(
    tmp_path, toy_pairs, tiny_tokenizer_dir, source_model, hub_cache, capsys
):
    """--init-image HUB_ID --freeze image: the image tower (weights and BN statistics) is the
    source's, bit for bit, after training; it has no optimizer state; the text tower and the
    temperature train; the source's TF-convention BN momentum is converted."""
    put_in_cache(hub_cache, "org/tiny-align", source_model)
    run = train(
        tmp_path, toy_pairs, str(tiny_tokenizer_dir), "lit",
        "--init-image", "org/tiny-align", "--freeze", "image",
    )  # fmt: skip
    assert "image tower(s) from org/tiny-align@0123456789ab" in capsys.readouterr().err
    source, trained = weights(source_model), weights(run / "model")
    image = [name for name in trained if name.startswith("vision_model.")]
    assert image and all(torch.equal(trained[n], source[n]) for n in image)
    text = [n for n in trained if n.startswith("text_model.encoder")]
    assert any(not torch.equal(trained[n], source[n]) for n in text if n in source)
    assert trained["temperature"].item() != pytest.approx(1.0)  # the temperature trains

    config = json.loads((run / "model" / "config.json").read_text())
    assert config["vision_config"]["batch_norm_momentum"] == pytest.approx(0.01)
    assert config["vision_config"]["width_coefficient"] == 0.25  # the source's architecture

    (checkpoint,) = sorted((run / "checkpoints").glob("step-*"))
    optimizer = load_state(checkpoint, "optimizer")
    align = load_checkpoint_model(checkpoint)[0]
    trained_parameters = [
        name
        for name, _ in align.named_parameters()
        if not name.startswith(("vision_model.", "text_model.pooler."))
    ]
    assert sum(len(group["params"]) for group in optimizer["param_groups"]) == len(
        trained_parameters
    )
    assert len(optimizer["state"]) == len(trained_parameters)  # none for a frozen parameter


def test_frozen_text_tower_and_image_bn_statistics(tmp_path, toy_pairs, source_model):
    run = train(
        tmp_path, toy_pairs, str(source_model), "text-frozen",
        "--init", str(source_model), "--freeze", "text", "--freeze", "image-bn",
    )  # fmt: skip
    source, trained = weights(source_model), weights(run / "model")
    text = [n for n in trained if n.startswith(("text_model.", "text_projection."))]
    assert text and all(torch.equal(trained[n], source[n]) for n in text)
    statistics = [n for n in trained if n.endswith(("running_mean", "running_var"))]
    assert statistics and all(torch.equal(trained[n], source[n]) for n in statistics)
    kernels = [n for n in trained if n.startswith("vision_model.") and n.endswith("conv.weight")]
    assert any(not torch.equal(trained[n], source[n]) for n in kernels)  # the image tower trains


def test_a_text_tower_that_does_not_fit_is_one_line(
    tmp_path, toy_pairs, source_model, tiny_tokenizer_dir, capsys
):
    other = train_fixtures.build_toy_tokenizer(tmp_path / "other-vocab")
    argv = tiny_argv(toy_pairs, other, tmp_path / "run", "--init-text", str(source_model))
    assert mling.train.main(argv) == 2
    error_line(capsys, "train.py", "text_model.embeddings.word_embeddings.weight")


def test_offline_hub_id_without_a_cached_copy_is_one_line(tmp_path, toy_pairs, hub_cache, capsys):
    argv = tiny_argv(toy_pairs, Path("org/never-cached"), tmp_path / "run")
    assert mling.train.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train.py: --tokenizer org/never-cached") and "HF_HUB_OFFLINE" in err


def test_bn_momentum_conventions():
    assert torch_batch_norm_momentum(0.99) == pytest.approx(0.01)  # TF's, as transformers keeps
    assert torch_batch_norm_momentum(0.01) == 0.01  # torch's, as our presets say


def test_resume_keeps_the_checkpoint_and_says_init_is_ignored(
    tmp_path, toy_pairs, source_model, capsys
):
    run = train(tmp_path, toy_pairs, str(source_model), "resumed", "--init", str(source_model))
    before = weights(run / "model")
    argv = tiny_argv(toy_pairs, source_model, run, "--max-steps", "3", "--resume", "latest")
    assert mling.train.main([*argv, "--init", str(source_model)]) == 0
    assert "--resume: the checkpoint's weights win; --init* ignored" in capsys.readouterr().err
    after = weights(run / "model")
    assert all(torch.equal(before[n], after[n]) for n in before)


# ---- the model card and publishing ----


def test_the_export_carries_a_model_card_that_round_trips(tmp_path, toy_pairs, tiny_tokenizer_dir):
    from huggingface_hub import ModelCard

    run = train(tmp_path, toy_pairs, str(tiny_tokenizer_dir), "card", "--license", "apache-2.0")
    card = ModelCard.load(run / "model" / "README.md")
    assert card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "zero-shot-image-classification"
    assert card.data.library_name == "transformers"
    assert "| steps | 3 |" in card.text and "AlignModel.from_pretrained" in card.text


def test_push_to_hub_uploads_the_export_and_offline_is_one_line(tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    from mling.training.model_export import push_to_hub

    folder = tmp_path / "model"
    folder.mkdir()
    with pytest.raises(InputError, match=r"--push-to-hub me/align: HF_HUB_OFFLINE=1"):
        push_to_hub(folder, "me/align")  # offline: huggingface_hub refuses before any request
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(repo_id))
    monkeypatch.setattr(
        HfApi, "upload_folder", lambda self, **kw: calls.append(kw) or "https://hub/commit/1"
    )
    assert push_to_hub(folder, "me/align") == "https://hub/commit/1"
    assert calls[0] == "me/align"
    assert (calls[1]["repo_id"], calls[1]["folder_path"]) == ("me/align", str(folder))
