"""Multi30k: the reader on the real layout, the multi-model report, the cache and bad input."""

from __future__ import annotations

import csv
import gzip
import json
import re

import pytest
import torch

from mling.common.errors import InputError
from mling.evaluation import multi30k
from mling.evaluation.multi30k_data import comparability_note, read_multi30k
from mling.evaluation.recall import retrieval_metrics
from tests.helpers import fake_hub
from tests.helpers.eval_fixtures import N_IMAGES, tiny_models, write_images, write_multi30k
from tests.helpers.multilingual import CAPTIONS
from tests.helpers.one_line import error_line
from tests.helpers.tiny_model import build_tiny_align

hub_cache = fake_hub.hub_cache  # fixture

# reader


def test_paper_setup_en_de_five_captions_fr_cs_one(tmp_path):
    names = write_multi30k(tmp_path)
    en = read_multi30k(tmp_path, "en", images=tmp_path / "images")
    assert en.images == tuple(tmp_path / "images" / name for name in names)
    assert len(en.captions) == 5 * N_IMAGES
    # file k holds caption k of every image: caption j belongs to image j % N
    assert en.text_to_image == tuple(list(range(N_IMAGES)) * 5)
    assert en.captions[:N_IMAGES] == tuple(CAPTIONS["en"])
    assert en.captions[N_IMAGES] == CAPTIONS["en"][0].lower()
    assert en.source == "data/task2/raw/test_2016.{1..5}.en.gz"
    cs = read_multi30k(tmp_path, "cs")
    assert cs.captions == tuple(CAPTIONS["cs"])  # diacritics intact through gzip
    assert cs.text_to_image == tuple(range(N_IMAGES))
    assert cs.source == "data/task1/raw/test_2016_flickr.cs.gz"


def test_task1_on_request_and_for_splits_task2_lacks(tmp_path):
    write_multi30k(tmp_path)
    de = read_multi30k(tmp_path, "de", source="task1")
    assert de.captions == tuple(CAPTIONS["de"])
    write_multi30k(tmp_path / "flickr2017", split="test_2017_flickr")
    en = read_multi30k(tmp_path / "flickr2017", "en", split="test_2017_flickr")
    assert len(en.captions) == N_IMAGES


def test_caption_count_must_match_the_split(tmp_path):
    write_multi30k(tmp_path)
    path = tmp_path / "data/task1/raw/test_2016_flickr.fr.gz"
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.write("\n".join(CAPTIONS["fr"][:-1]) + "\n")
    with pytest.raises(InputError, match=r"has 5 captions but .* lists 6 images"):
        read_multi30k(tmp_path, "fr")


def test_missing_language_or_root(tmp_path):
    write_multi30k(tmp_path)
    with pytest.raises(InputError, match=r"test_2016_flickr\.ru\.gz is missing"):
        read_multi30k(tmp_path, "ru")
    with pytest.raises(InputError, match="not a Multi30k repository"):
        read_multi30k(tmp_path / "data", "en")


def test_comparability_note():
    assert comparability_note("test_2016", 1000) is None
    assert "6 images here but 1000" in comparability_note("test_2016", 6)


# end to end


@pytest.fixture(scope="module")
def bench(tmp_path_factory, tiny_tokenizer_dir):
    """A Multi30k clone, its images and two tiny models (mling, en) as mling/train.py exports."""
    root = tmp_path_factory.mktemp("multi30k")
    names = write_multi30k(root / "multi30k")
    write_images(root / "images", names)
    models = tiny_models(root / "runs", tiny_tokenizer_dir, ["mling", "en"])
    return root, models


def run(bench, tmp_path, *extra: str) -> int:
    root, models = bench
    argv = ["--multi30k", str(root / "multi30k"), "--images", str(root / "images")]
    for model in models:
        argv += ["--model", str(model)]
    return multi30k.main([*argv, "--output", str(tmp_path / "out"), "--batch-size", "4", *extra])


def test_report_for_two_models(bench, tmp_path, capsys):
    assert run(bench, tmp_path) == 0
    stdout = capsys.readouterr().out
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert list(report["models"]) == ["en", "mling"]  # sorted keys; names from runs/NAME/model
    for by_language in report["models"].values():
        assert sorted(by_language) == ["cs", "de", "en", "fr"]
        for language, metrics in by_language.items():
            assert sorted(metrics) == ["i2t", "mR", "t2i"]
            assert sorted(metrics["i2t"]) == sorted(metrics["t2i"]) == ["R@1", "R@10", "R@5"]
            # 6 images: a caption's top 10 holds every image, so t2i R@10 is 100; so is i2t
            # R@10 where an image has 5 other captions to beat (fr, cs), not 25 (en, de)
            assert metrics["t2i"]["R@10"] == 100.0
            if language in ("fr", "cs"):
                assert metrics["i2t"]["R@10"] == 100.0
            recalls = [*metrics["i2t"].values(), *metrics["t2i"].values()]
            assert metrics["mR"] == pytest.approx(sum(recalls) / 6)
    assert report["languages"] == ["en", "de", "fr", "cs"]
    assert report["data"]["en"]["captions"] == 30 and report["data"]["fr"]["captions"] == 6
    assert report["reference"]["models"]["ALIGN-mling (paper)"]["cs"] == 63.2
    assert "6 images here but 1000" in report["notes"][0]

    rows = list(csv.DictReader((out / "report.csv").open(encoding="utf-8")))
    assert [(r["model"], r["language"]) for r in rows][:5] == [
        ("mling", "en"),
        ("mling", "de"),
        ("mling", "fr"),
        ("mling", "cs"),
        ("en", "en"),
    ]
    assert float(rows[0]["mR"]) == pytest.approx(report["models"]["mling"]["en"]["mR"], abs=1e-4)
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (out / "report.md").read_text(encoding="utf-8")
    # the fairness summary first (the paper's row checked by hand: mean 322.4 / 4, median
    # (84.1 + 84.9) / 2, 63.2 / 90.2, and only cs under 0.85 x 90.2), then languages as rows
    paper = "| *ALIGN-mling (paper)* | 4 | 90.2 | 80.6 | 84.5 | 63.2 (cs) | 0.70x | 1 |"
    assert markdown.index(paper) < markdown.index("## Per language")
    assert "- *ALIGN-mling (paper)*, below 0.85x en: cs" in markdown
    assert (
        "| language | script | chrF vs en | mling | en | *ALIGN-EN (paper)* | *ALIGN-mling "
        "(paper)* | *M3P zero-shot (paper)* | *UC2 fine-tuned (paper)* |" in markdown
    )
    assert re.search(r"\n\| en \| Latn \| — \| [\d.]+ \| [\d.]+ \| 92\.2 \| 90\.2 \|", markdown)
    assert re.search(r"\n\| cs \| Latn \| [\d.]+ \| .*\| — \| 63\.2 ▼ \| 20\.4 ▼ \|", markdown)
    assert paper in stdout and "| language | script | chrF vs en | mling |" in stdout


def test_recall_matches_the_models_own_forward_pass(bench, tmp_path):
    """Batched, length-sorted, cached embeddings give what AlignModel.forward gives at once."""
    from PIL import Image
    from transformers import AlignModel, AlignProcessor

    assert run(bench, tmp_path, "--languages", "de") == 0
    report = json.loads((tmp_path / "out/report.json").read_text(encoding="utf-8"))
    root, models = bench
    caption_set = read_multi30k(root / "multi30k", "de", images=root / "images")
    model = AlignModel.from_pretrained(models[0]).eval()
    processor = AlignProcessor.from_pretrained(models[0])
    images = [Image.open(path).convert("RGB") for path in caption_set.images]
    inputs = processor(images=images, text=list(caption_set.captions), return_tensors="pt")
    with torch.no_grad():
        output = model(**inputs)
    expected = retrieval_metrics(output.image_embeds, output.text_embeds, caption_set.text_to_image)
    got = report["models"]["mling"]["de"]
    assert got["i2t"] == pytest.approx(expected["i2t"])
    assert got["t2i"] == pytest.approx(expected["t2i"])


def test_second_run_reads_the_cache_and_a_changed_model_misses_it(
    bench, tmp_path, tiny_tokenizer_dir, capsys
):
    root, _ = bench
    model = build_tiny_align(tmp_path / "runs/m/model", tiny_tokenizer_dir, seed=0)
    argv = ["--multi30k", str(root / "multi30k"), "--images", str(root / "images")]
    argv += ["--model", str(model), "--output", str(tmp_path / "out")]
    report = tmp_path / "out/report.json"

    assert multi30k.main(argv) == 0
    first = report.read_text(encoding="utf-8")
    assert len(list((tmp_path / "out/cache").iterdir())) == 1 + 4  # images once, 4 languages
    capsys.readouterr()
    assert multi30k.main(argv) == 0
    assert capsys.readouterr().err.count("from the cache") == 5
    assert report.read_text(encoding="utf-8") == first

    # same path, new weights: the fingerprint changes and nothing stale is reused
    build_tiny_align(model, tiny_tokenizer_dir, seed=1)
    assert multi30k.main(argv) == 0
    assert "from the cache" not in capsys.readouterr().err
    assert report.read_text(encoding="utf-8") != first
    assert len(list((tmp_path / "out/cache").iterdir())) == 2 * (1 + 4)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            "missing",
            "2 of 6 images under .* are unusable: 2 missing (1000092795.jpg, 1000092802.jpg)",
        ),
        ("empty", "1 of 6 images .* 1 empty (1000092795.jpg)"),
        ("garbage", "1 of 6 images .* 1 undecodable (1000092795.jpg)"),
        ("truncated", "1 of 6 images .* 1 undecodable (1000092795.jpg)"),
    ],
)
def test_bad_images_are_one_line(bench, tmp_path, capsys, damage, message):
    root, models = bench
    images = tmp_path / "images"
    names = sorted(p.name for p in (root / "images").iterdir())
    paths = write_images(images, names)
    if damage == "missing":
        paths[0].unlink(), paths[1].unlink()
    elif damage == "empty":
        paths[0].write_bytes(b"")
    elif damage == "garbage":
        paths[0].write_bytes(b"not an image, ceci n'est pas une image")
    else:
        paths[0].write_bytes(paths[0].read_bytes()[:200])
    argv = [
        "--multi30k",
        str(root / "multi30k"),
        "--images",
        str(images),
        "--model",
        str(models[0]),
    ]
    assert multi30k.main([*argv, "--output", str(tmp_path / "out")]) == 2
    assert_one_line_error(capsys, message)
    assert not (tmp_path / "out/report.json").exists()


def assert_one_line_error(capsys, pattern: str) -> None:
    """The error is one line, the last; progress lines of models evaluated so far may precede
    (the shared check's "evaluation progress" notice)."""
    err = error_line(capsys, "multi30k.py")
    assert re.search(pattern.replace("(", r"\(").replace(")", r"\)"), err), err


def test_a_model_directory_that_is_not_align_is_one_line(bench, tmp_path, capsys):
    from transformers import BertConfig, BertModel

    root, models = bench
    BertModel(
        BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
    ).save_pretrained(tmp_path / "bert")
    argv = ["--multi30k", str(root / "multi30k"), "--images", str(root / "images")]
    for model, pattern in [
        (tmp_path / "bert", "holds a 'bert' model, not an AlignModel"),
        (tmp_path / "nowhere", "nowhere: no such file or folder"),
        (root / "images", "has no config.json; pass an AlignModel directory"),
    ]:
        assert multi30k.main([*argv, "--model", str(model), "--output", str(tmp_path / "out")]) == 2
        assert_one_line_error(capsys, pattern)


def test_caption_count_mismatch_and_name_count_are_one_line(bench, tmp_path, capsys):
    root, models = bench
    clone = tmp_path / "multi30k"
    write_multi30k(clone)
    with gzip.open(clone / "data/task2/raw/test_2016.3.de.gz", "wt", encoding="utf-8") as file:
        file.write("Ein Hund.\n")
    argv = ["--multi30k", str(clone), "--images", str(root / "images"), "--model", str(models[0])]
    assert multi30k.main([*argv, "--output", str(tmp_path / "out")]) == 2
    assert_one_line_error(capsys, "test_2016.3.de.gz has 1 captions but .* lists 6 images")
    assert (
        multi30k.main([*argv, "--name", "a", "--name", "b", "--output", str(tmp_path / "out")]) == 2
    )
    assert_one_line_error(capsys, "2 --name for 1 --model")


def test_a_model_that_outputs_nan_is_one_line(bench, tmp_path, tiny_tokenizer_dir, capsys):
    from transformers import AlignModel

    root, _ = bench
    model_dir = build_tiny_align(tmp_path / "broken/model", tiny_tokenizer_dir)
    model = AlignModel.from_pretrained(model_dir)
    with torch.no_grad():
        model.text_projection.weight.fill_(float("nan"))
    model.save_pretrained(model_dir)
    argv = ["--multi30k", str(root / "multi30k"), "--images", str(root / "images")]
    argv += ["--model", str(model_dir), "--output", str(tmp_path / "out"), "--languages", "cs"]
    assert multi30k.main(argv) == 2
    assert_one_line_error(capsys, "broken .*: embeddings contain NaN")


def test_a_hub_id_is_evaluated_from_the_cache_and_the_report_names_its_revision(
    tmp_path, tiny_tokenizer_dir, hub_cache
):
    from tests.helpers.fake_hub import COMMIT, put_in_cache

    names = write_multi30k(tmp_path / "m30k")
    write_images(tmp_path / "images", names)
    (local,) = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["mine"])
    put_in_cache(
        hub_cache, "org/tiny-align", build_tiny_align(tmp_path / "hub", tiny_tokenizer_dir)
    )
    argv = ["--model", "org/tiny-align", "--model", str(local), "--languages", "en,de"]
    argv += ["--multi30k", str(tmp_path / "m30k"), "--images", str(tmp_path / "images")]
    assert multi30k.main([*argv, "--output", str(tmp_path / "out"), "--device", "cpu"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert sorted(report["models"]) == ["mine", "tiny-align"]
    assert report["sources"]["tiny-align"]["hub_id"] == "org/tiny-align"
    assert report["sources"]["tiny-align"]["revision"] == COMMIT
    assert report["sources"]["mine"]["hub_id"] is None
    assert (
        f"| tiny-align | org/tiny-align | {COMMIT} |"
        in (tmp_path / "out" / "report.md").read_text()
    )


def test_the_report_folder_is_never_someone_elses(bench, tmp_path, capsys):
    root, models = bench
    argv = ["--multi30k", str(root / "multi30k"), "--images", str(root / "images")]
    argv += ["--model", str(models[0]), "--languages", "en"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "report.md").write_text("my own notes")
    assert multi30k.main([*argv, "--output", str(tmp_path / "mine")]) == 2
    assert_one_line_error(capsys, "did not write and is not empty")
    assert (tmp_path / "mine" / "report.md").read_text() == "my own notes"
    for _ in range(2):  # our own report folder: a rerun replaces the reports, reuses the cache
        assert multi30k.main([*argv, "--output", str(tmp_path / "ours")]) == 0


# a damaged model, a refused run


def _cut(path, keep: int = -1000) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _as_pickle(model_dir) -> None:
    from safetensors.torch import load_file

    torch.save(load_file(model_dir / "model.safetensors"), model_dir / "pytorch_model.bin")
    (model_dir / "model.safetensors").unlink()


def _sharded(model_dir) -> None:
    from transformers import AlignModel

    AlignModel.from_pretrained(model_dir).save_pretrained(model_dir, max_shard_size="200KB")
    (model_dir / "model.safetensors").unlink(missing_ok=True)
    sorted(model_dir.glob("model-*.safetensors"))[-1].unlink()


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda m: _cut(m / "model.safetensors"), "model.safetensors is cut short"),
        (lambda m: _cut(m / "model.safetensors", 4), "model.safetensors is cut short"),
        (lambda m: (m / "model.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"not json"),
         "model.safetensors has no readable header"),
        (lambda m: (m / "model.safetensors").unlink(), "no weights (model.safetensors or"),
        (lambda m: (_as_pickle(m), _cut(m / "pytorch_model.bin")), "pytorch_model.bin is cut short"),
        (_sharded, "is missing (model.safetensors.index.json names it)"),
        (lambda m: (m / "config.json").write_text('{"model_type": "align", "text_config": 5}'),
         "config.json is not a usable AlignModel config"),
    ],
    ids=["cut", "cut-in-header", "junk-header", "no-weights", "pickle-cut", "shard-missing",
         "config-values"],
)  # fmt: skip
def test_a_damaged_model_is_one_line_before_anything_is_written(
    bench, tmp_path, tiny_tokenizer_dir, capsys, damage, says
):
    root, models = bench
    model = build_tiny_align(tmp_path / "runs/cut/model", tiny_tokenizer_dir)
    damage(model)
    capsys.readouterr()  # the fixture's own progress bars
    argv = ["--multi30k", str(root / "multi30k"), "--images", str(root / "images")]
    argv += ["--model", str(models[0]), "--model", str(model), "--output", str(tmp_path / "out")]
    assert multi30k.main(argv) == 2
    line = error_line(capsys, "multi30k.py", says)
    assert str(model) in line and "export the model again" in line
    assert not (tmp_path / "out").exists()  # checked before the first model ran


def test_a_refused_evaluation_leaves_nothing_behind(bench, tmp_path, tiny_tokenizer_dir, capsys):
    root, models = bench
    data = ["--multi30k", str(root / "multi30k"), "--images", str(root / "images")]
    model = ["--model", str(models[0]), "--languages", "cs"]
    # refused before any work: no folder, no marker, no staging, no lock
    out = tmp_path / "new" / "out"
    missing = ["--multi30k", str(tmp_path / "nowhere"), "--images", str(root / "images")]
    assert multi30k.main([*missing, *model, "--output", str(out)]) == 2
    error_line(capsys, "multi30k.py", "is not a Multi30k repository")
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()  # a folder of the user's, empty: left as it was
    assert multi30k.main([*missing, *model, "--output", str(tmp_path / "empty")]) == 2
    assert list((tmp_path / "empty").iterdir()) == []
    # our own folder from an earlier run: its reports untouched
    assert multi30k.main([*data, *model, "--output", str(tmp_path / "ours")]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "ours").iterdir() if p.is_file()}
    assert multi30k.main([*missing, *model, "--output", str(tmp_path / "ours")]) == 2
    after = {p.name: p.read_bytes() for p in (tmp_path / "ours").iterdir() if p.is_file()}
    assert after == before
    # refused once the models ran (NaN embeddings): no report, no staging, no lock; only the
    # embeddings it cached remain, in a folder of ours the next run reuses
    broken = build_tiny_align(tmp_path / "broken/model", tiny_tokenizer_dir)
    _fill_text_projection_with_nan(broken)
    nan = ["--model", str(broken), "--languages", "cs", "--output", str(tmp_path / "nan")]
    capsys.readouterr()
    assert multi30k.main([*data, *nan]) == 2
    error_line(capsys, "multi30k.py", "embeddings contain NaN")
    left = sorted(p.name for p in (tmp_path / "nan").iterdir())
    assert left == [".mling-output", "cache"] and not (tmp_path / "nan/report.json").exists()


def _fill_text_projection_with_nan(model_dir) -> None:
    from transformers import AlignModel

    model = AlignModel.from_pretrained(model_dir)
    with torch.no_grad():
        model.text_projection.weight.fill_(float("nan"))
    model.save_pretrained(model_dir)


def test_a_damaged_embedding_cache_file_is_computed_again(bench, tmp_path, capsys):
    root, models = bench
    argv = ["--multi30k", str(root / "multi30k"), "--images", str(root / "images")]
    argv += ["--model", str(models[0]), "--languages", "cs", "--output", str(tmp_path / "out")]
    assert multi30k.main(argv) == 0
    report = (tmp_path / "out/report.json").read_bytes()
    for cached in (tmp_path / "out/cache").iterdir():
        _cut(cached, 100)  # a copy cut short: the header promises more than the file holds
    capsys.readouterr()
    assert multi30k.main(argv) == 0
    assert capsys.readouterr().err.count("in the cache are damaged; computing them again") == 2
    assert (tmp_path / "out/report.json").read_bytes() == report
