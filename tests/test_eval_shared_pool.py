"""Languages compared on one shared pool of images: the pool, the languages apart, the refusal,
recall on the pool by hand, and the report's summary, chart and JSON on the pool's figures."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from mling.common.hub import Source
from mling.evaluation import retrieval_set
from mling.evaluation.caption_sets import read_caption_file, sets_from_captions
from mling.evaluation.embed import EmbedConfig, Embedder
from mling.evaluation.recall import chance_mr, retrieval_metrics
from mling.evaluation.retrieval_report import models_section, pool_lines, write_retrieval_report
from mling.evaluation.score_models import pool_metrics
from mling.evaluation.shared_pool import images_named, pool_captions, shared_pool
from tests.helpers.eval_fixtures import tiny_models, write_images
from tests.helpers.multilingual import CAPTIONS

# 6 images; each language names some of them (caption i of a language describes image i)
NAMED = {"en": [0, 1, 2, 3, 4, 5], "ru": [0, 1, 3, 5], "ja": [0, 1, 2, 3, 5], "ar": [2, 4]}


def _sets(named=NAMED):
    triples = [
        (f"{image}.png", language, CAPTIONS[language][image])
        for image in range(6)
        for language, images in named.items()
        if image in images
    ]
    # every image once, so the image list is the same whichever languages name it
    triples += [(f"{image}.png", "el", CAPTIONS["el"][image]) for image in range(6)]
    sets = sets_from_captions("tiny", Path("img"), triples, languages=[*named, "el"])
    return sets[:-1]


def test_the_pool_is_the_images_every_language_with_enough_names_names():
    sets = _sets()
    assert [images_named(s) for s in sets] == [6, 4, 5, 2]
    pool = shared_pool(sets, min_images=4, min_shared=1)
    # ar names 2 < 4 images: apart; en ∩ ru ∩ ja = {0, 1, 3, 5}
    assert pool.languages == ("en", "ru", "ja")
    assert pool.apart == {"ar": 2}
    assert pool.images == (0, 1, 3, 5)
    assert pool.refused is None
    # raising the minimum to 5 drops ru: the pool grows to en ∩ ja
    wider = shared_pool(sets, min_images=5, min_shared=1)
    assert wider.apart == {"ru": 4, "ar": 2} and wider.images == (0, 1, 2, 3, 5)


def test_languages_that_share_too_few_are_moved_apart_fewest_first():
    # en, ru, ja, de each name 4+ images but all four share only {3, 5}: de and ru name the
    # fewest (4); de goes first (by code), and en ∩ ru ∩ ja = {0, 1, 3, 5} is 4 images
    named = {**NAMED, "de": [2, 3, 4, 5]}
    pool = shared_pool(_sets(named), min_images=4, min_shared=1)
    assert pool.languages == ("en", "ru", "ja") and pool.moved == ("de",)
    assert pool.apart == {"ar": 2, "de": 4} and pool.images == (0, 1, 3, 5)
    assert pool.refused is None
    # at 6 only en names enough: the pool is its images, the rest apart by their count
    alone = shared_pool(_sets(named), min_images=6, min_shared=6)
    assert alone.languages == ("en",) and alone.images == tuple(range(6))


def test_where_every_language_names_every_image_the_pool_is_the_whole_set():
    # Multi30k, XM3600: the pool's figures are then each language's own
    sets = _sets({language: range(6) for language in ("en", "de", "ja", "ar")})
    pool = shared_pool(sets, min_images=6, min_shared=6)
    assert pool.languages == ("en", "de", "ja", "ar") and pool.apart == {}
    assert pool.images == tuple(range(6)) and pool.refused is None


@pytest.mark.parametrize(
    ("min_images", "min_shared", "reason"),
    [
        (4, 5, "the 3 languages naming at least 4 images share 4 images; a comparison needs "
               "at least 5"),
        (7, 1, "no language names at least 7 images (the most: 6)"),
    ],
)  # fmt: skip
def test_a_pool_too_small_is_refused_with_its_reason(min_images, min_shared, reason):
    pool = shared_pool(_sets(), min_images=min_images, min_shared=min_shared)
    assert pool.refused == reason


def test_caption_sets_of_different_images_share_no_pool():
    ru = _sets({"ru": [0, 1, 3, 5]})[0]
    ja = dataclasses.replace(_sets({"ja": [0, 1, 2, 3, 5]})[0], images=ru.images[:5])
    pool = shared_pool([ru, ja], min_images=1, min_shared=1)
    assert pool.refused == "the languages' caption sets list different images"


def test_captions_of_pool_images_point_at_their_place_in_the_pool():
    # ja's captions name images 0 1 2 3 5; the pool is 0 1 3 5: image 2's caption goes
    kept, remapped = pool_captions([0, 1, 2, 3, 5], [0, 1, 3, 5])
    assert kept.tolist() == [0, 1, 3, 4]
    assert remapped.tolist() == [0, 1, 2, 3]


def _at(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_recall_on_the_pool_by_hand():
    # images on the unit circle; image 2 (20°, named by ja only) sits beside image 0 (0°)
    image_embeds = torch.tensor([_at(a) for a in (0, 90, 20, 180, 270, 135)])
    # ja's captions of images 0 1 2 3 5: caption 0 (15°) is 5° from image 2, 15° from image 0
    text_embeds = torch.tensor([_at(a) for a in (15, 90, 30, 180, 135)])
    text_to_image = [0, 1, 2, 3, 5]
    own = retrieval_metrics(image_embeds, text_embeds, text_to_image, ks=(1,))
    # own images: caption 0 finds image 2 first (t2i miss); image 2's best own caption (30°,
    # 10° away) is beaten by caption 0 (5° away) (i2t miss): 4 of 5 both ways
    assert own["t2i"]["R@1"] == own["i2t"]["R@1"] == pytest.approx(80.0)
    pooled = pool_metrics(image_embeds, text_embeds, text_to_image, [0, 1, 3, 5], ks=(1,))
    # without image 2 and its caption, every caption's nearest image is its own
    assert pooled == {"i2t": {"R@1": 100.0}, "t2i": {"R@1": 100.0}, "mR": 100.0}


def test_chance_is_the_mean_of_k_over_n():
    assert chance_mr(1000) == pytest.approx(100 * (1 + 5 + 10) / 3 / 1000)  # 0.53
    assert chance_mr(47) == pytest.approx(11.35, abs=0.01)
    assert chance_mr(4) == pytest.approx(100 * (1 + 4 + 4) / 3 / 4)  # R@5, R@10 are certain
    assert chance_mr(0) is None


# the report: own figures favour ar (2 images) and put ru under 0.85x en; the pool's put ja there
OWN = {"en": 30.0, "ru": 24.0, "ja": 27.0, "ar": 61.0}
POOLED = {"en": 20.0, "ru": 19.0, "ja": 15.0}


def _metrics(mr: float) -> dict:
    recall = {"R@1": mr, "R@5": mr, "R@10": mr}
    return {"i2t": recall, "t2i": recall, "mR": mr}


def _report(tmp_path, pool):
    sets = _sets()
    results = {"mling": {language: _metrics(mr) for language, mr in OWN.items()}}
    data = {s.language: s.describe() for s in sets}
    _, stdout = write_retrieval_report(tmp_path, "t", results, data, sets=sets, pool=pool)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    return report, (tmp_path / "report.md").read_text(encoding="utf-8"), stdout


def test_the_fairness_summary_and_json_use_the_pool(tmp_path):
    pool = shared_pool(_sets(), min_images=4, min_shared=1)
    pool = dataclasses.replace(
        pool, models={"mling": {language: _metrics(mr) for language, mr in POOLED.items()}}
    )
    report, markdown, stdout = _report(tmp_path, pool)
    # on the pool: mean 54 / 3, median 19, worst ja 15 = 0.75x en; 0.85 x 20 = 17: ja only
    row = "| mling | 3 | 20.0 | 18.0 | 19.0 | 15.0 (ja) | 0.75x | 1 |"
    lead = (
        "On a shared pool: the 4 images named in every one of the 3 languages that name at "
        "least 4 images; chance mR there is 75.00. Apart, with the images each names: ar 2;"
    )
    for text in (markdown, stdout):
        assert row in text and "- mling, below 0.85x en: ja" in text and lead in text
    assert markdown.index(lead) < markdown.index(row) < markdown.index("## Per language")
    # the per-language table keeps each language's own figure, beside the images it names;
    # ▼ follows the pool (ja 15 < 17), not the own figures (ru 24 < 0.85 x 30 = 25.5)
    assert "| language | script | chrF vs en | images named | mling |" in markdown
    table = markdown[markdown.index("## Per language") : markdown.index("## Recall")]
    cells = {
        line.split(" | ")[0][2:]: line.split(" | ")[-2:]
        for line in table.splitlines()
        if line.startswith(("| en |", "| ru |", "| ja |", "| ar |"))
    }
    assert cells == {
        "en": ["6", "30.0 |"],
        "ru": ["4", "24.0 |"],
        "ja": ["5", "27.0 ▼ |"],
        "ar": ["2", "61.0 |"],
    }
    assert report["shared_pool"] == {
        "apart": {"ar": 2},
        "moved": [],
        "chance_mR": 75.0,
        "images": 4,
        "languages": ["en", "ru", "ja"],
        "min_images": 4,
        "models": {"mling": {language: _metrics(mr) for language, mr in POOLED.items()}},
        "refused": None,
    }
    # every key from before the pool is still there, unchanged
    assert report["models"]["mling"]["ar"]["mR"] == 61.0
    assert sorted(report) == [
        "data", "languages", "models", "notes", "reference", "shared_pool", "sources", "title",
    ]  # fmt: skip
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_a_refused_pool_is_one_line_and_the_summary_is_each_languages_own(tmp_path):
    pool = shared_pool(_sets(), min_images=4, min_shared=5)
    report, markdown, stdout = _report(tmp_path, pool)
    line = (
        "No shared pool: the 3 languages naming at least 4 images share 4 images; a comparison "
        "needs at least 5. Below, each language is scored with its own captions"
    )
    assert line in markdown and line in stdout
    # own figures: mean 142 / 4, median (27 + 30) / 2, worst ru 24 = 0.80x en; ru under 25.5
    assert "| mling | 4 | 30.0 | 35.5 | 28.5 | 24.0 (ru) | 0.80x | 1 |" in markdown
    assert "- mling, below 0.85x en: ru" in markdown and "| 4 | 24.0 ▼ |" in markdown
    assert report["shared_pool"]["refused"].startswith("the 3 languages")
    assert report["shared_pool"]["models"] == {} and report["shared_pool"]["images"] == 4


def test_english_apart_is_said_and_leaves_no_ratios():
    named = {"en": [0, 1], "ru": [0, 1, 3, 5], "ja": [0, 1, 2, 3, 5]}
    pool = shared_pool(_sets(named), min_images=4, min_shared=1)
    assert pool.languages == ("ru", "ja") and pool.apart == {"en": 2}
    (line, _) = pool_lines(pool)
    assert (
        "every one of the 2 languages" in line
        and "Apart, with the images each names: en 2;" in line
    )
    assert line.endswith("en is apart, so the pool has no en score and no ratios.")


def test_entry_point_compares_on_the_pool_or_not(tmp_path, tiny_tokenizer_dir, capsys):
    # 120 images: en names all, ru all but 10, ar 5; the pool is ru's 110
    names = [f"{i:04d}.png" for i in range(120)]
    write_images(tmp_path / "images", names)
    lines = [(name, "en", CAPTIONS["en"][i % 6]) for i, name in enumerate(names)]
    lines += [(name, "ru", CAPTIONS["ru"][i % 6]) for i, name in enumerate(names) if i >= 10]
    lines += [(name, "ar", CAPTIONS["ar"][i]) for i, name in enumerate(names[:5])]
    lines = [
        json.dumps(
            {"image": name, "caption": f"{caption} {i}", "language": language}, ensure_ascii=False
        )
        for i, (name, language, caption) in enumerate(lines)
    ]
    (tmp_path / "set.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (model,) = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["mling"])
    argv = ["--captions", str(tmp_path / "set.jsonl"), "--images", str(tmp_path / "images")]
    argv += ["--model", str(model), "--cache", str(tmp_path / "cache"), "--pool-min-images", "50"]

    assert retrieval_set.main([*argv, "--output", str(tmp_path / "on")]) == 0
    report = json.loads((tmp_path / "on/report.json").read_text(encoding="utf-8"))
    pool = report["shared_pool"]
    assert pool["images"] == 110 and pool["languages"] == ["en", "ru"]
    assert pool["apart"] == {"ar": 5} and pool["refused"] is None
    assert pool["chance_mR"] == pytest.approx(100 * 16 / 3 / 110)
    assert sorted(pool["models"]["mling"]) == ["en", "ru"]
    # en on the pool: its captions of images 10..119 against those images, from the same
    # (cached) embeddings
    embedder = Embedder(model, EmbedConfig(cache_dir=tmp_path / "cache", device="cpu"))
    en = read_caption_file(tmp_path / "set.jsonl", tmp_path / "images", languages=["en"])[0]
    expected = pool_metrics(
        embedder.images(en.images), embedder.texts(en.captions), en.text_to_image, range(10, 120)
    )
    got = pool["models"]["mling"]["en"]
    assert got["mR"] == pytest.approx(expected["mR"])
    assert got["t2i"] == pytest.approx(expected["t2i"])
    assert "the 110 images named in every one of the 2 languages" in capsys.readouterr().out

    assert retrieval_set.main([*argv[:-2], "--output", str(tmp_path / "default")]) == 0
    assert "no language names at least 300 images (the most: 120)" in capsys.readouterr().out
    assert retrieval_set.main([*argv[:-1], "0", "--output", str(tmp_path / "off")]) == 0
    off = json.loads((tmp_path / "off/report.json").read_text(encoding="utf-8"))
    assert "shared_pool" not in off and off["models"] == report["models"]

    with pytest.raises(SystemExit):
        retrieval_set.main(["--help"])
    assert "--pool-min-images N" in capsys.readouterr().out


def test_reports_name_inputs_as_the_user_gave_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("set.jsonl").write_text('{"image": "a.png", "captions": {"ja": "犬"}}\n', "utf-8")
    (ja,) = read_caption_file("set.jsonl", "images")
    assert ja.describe()["source"] == "set.jsonl" and ja.images == (Path("images/a.png"),)
    local = Source(Path("runs/mling/model"))
    hub = Source(tmp_path / "hub-cache/snapshots/abc", "org/align", "abc")
    lines = "\n".join(models_section({"mling": local, "align": hub}))
    assert "| mling | runs/mling/model | — |" in lines and "| align | org/align | abc |" in lines
    assert str(tmp_path) not in lines
