"""The synthetic corpus (data/synthetic.py): deterministic, exact noise counts, grammatical
captions in eight languages, a test set that eval/multi30k.py reads like the real one, and
noise that the filters catch for the reason it was made for."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pyarrow.parquet as pq
import pytest

from mling.evaluation.multi30k_data import read_multi30k
from mling.filtering import pipeline as filter_entry
from mling.filtering.image_hash import phash_bytes
from mling.synthetic import generate
from mling.synthetic.captions import LANGUAGES, PHRASINGS, caption
from mling.synthetic.noise import NoiseRates
from mling.synthetic.scenes import Group, Scene
from tests.helpers.one_line import error_line

PAIRS, TEST_IMAGES, REUSE = 1200, 60, 40


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "corpus"
    argv = ["--output", str(out), "--pairs", str(PAIRS), "--test-images", str(TEST_IMAGES)]
    argv += ["--reuse-threshold", str(REUSE), "--workers", "1", "--quiet", "--seed", "3"]
    assert generate.main(argv) == 0
    return out


def _digest(folder) -> str:
    table = pq.read_table(folder)
    return hashlib.sha256(table.to_pandas().to_csv().encode()).hexdigest()


def test_same_seed_same_corpus(corpus, tmp_path):
    again = tmp_path / "again"
    argv = ["--output", str(again), "--pairs", str(PAIRS), "--test-images", str(TEST_IMAGES)]
    argv += ["--reuse-threshold", str(REUSE), "--workers", "1", "--quiet", "--seed", "3"]
    assert generate.main(argv) == 0
    assert _digest(again / "pairs") == _digest(corpus / "pairs")
    first = sorted(p.read_bytes() for p in (corpus / "images").iterdir())
    assert first == sorted(p.read_bytes() for p in (again / "images").iterdir())


def test_noise_counts_are_exact_and_add_up(corpus):
    report = json.loads((corpus / "report.json").read_text())
    table = pq.read_table(corpus / "pairs").to_pandas()
    counted = table["synthetic_noise"].value_counts().to_dict()
    expected = NoiseRates().counts(PAIRS)
    expected["reused_image"] = max(expected["reused_image"], REUSE + 1)
    expected["clean"] = PAIRS - sum(v for k, v in expected.items() if k != "clean")
    assert counted == {k: v for k, v in expected.items() if v}
    assert sum(report["noise"].values()) == PAIRS == len(table)
    assert sum(report["languages"].values()) == PAIRS
    assert set(table["synthetic_language"]) == {*LANGUAGES, "und"}
    assert table["key"].is_unique


def test_test_set_reads_as_multi30k(corpus):
    for language, per_image in (("en", 5), ("de", 5), ("fr", 1), ("cs", 1)):
        captions = read_multi30k(corpus / "multi30k", language, images=corpus / "images")
        assert len(captions.images) == TEST_IMAGES
        assert len(captions.captions) == per_image * TEST_IMAGES
        assert all(path.exists() for path in captions.images)
    english = read_multi30k(corpus / "multi30k", "en")
    first_image = [
        c for c, i in zip(english.captions, english.text_to_image, strict=True) if i == 0
    ]
    assert len(set(first_image)) >= 4  # the five captions use distinct phrasings


def test_captions_agree_in_every_language():
    scene = Scene("grey", (Group("star", "red", "small", 2, "left"),))
    rng = random.Random(0)
    assert caption(scene, "en", rng, 0) == "Two little red stars on the left on a grey background."
    assert caption(scene, "de", rng, 1).startswith("Ein grauer Hintergrund mit zwei kleinen roten")
    assert caption(scene, "fr", rng, 0).startswith("Deux petites étoiles rouges")
    assert caption(scene, "cs", rng, 1).startswith("Šedé pozadí se dvěma malými červenými hvězdami")
    assert caption(scene, "ru", rng, 0).startswith("Две маленькие красные звезды")
    assert "نجمتان" in caption(scene, "ar", rng, 0)  # the dual
    japanese = caption(scene, "ja", rng, 0)
    assert " " not in japanese and "星" in japanese
    for language in LANGUAGES:
        phrasings = {caption(scene, language, random.Random(1), p) for p in range(PHRASINGS)}
        assert len(phrasings) == PHRASINGS, language


def test_near_duplicates_hash_close_to_their_test_image_and_clean_images_do_not(corpus):
    table = pq.read_table(corpus / "pairs").to_pandas()
    tests = np.array(
        [phash_bytes(p.read_bytes()) for p in sorted((corpus / "images").iterdir())],
        dtype=np.uint64,
    )

    def nearest(payload: bytes) -> int:
        xor = np.bitwise_xor(tests, np.uint64(phash_bytes(payload)))
        return min(bin(int(v)).count("1") for v in xor)

    near = [nearest(b) for b in table[table.synthetic_noise == "near_duplicate"].image]
    clean = [nearest(b) for b in table[table.synthetic_noise == "clean"].image[:300]]
    assert np.mean(np.array(near) <= 2) >= 0.8
    assert np.mean(np.array(clean) <= 2) <= 0.02


@pytest.mark.slow
def test_filters_catch_the_noise_they_target(corpus, tmp_path):
    out = tmp_path / "filtered"
    argv = ["--input", str(corpus / "pairs"), "--output", str(out), "--write-rejected"]
    argv += ["--eval-images", str(corpus / "images"), "--eval-radius", "2", "--quiet"]
    # thresholds scaled to 1200 pairs, as the demo scales them to 20000
    argv += ["--max-alt-texts", str(REUSE), "--max-images", "3", "--workers", "1"]
    assert filter_entry.main(argv) == 0
    kept = pq.read_table(sorted(out.glob("part-*.parquet"))).to_pandas()
    rejected = pq.read_table(out / "rejected").to_pandas()
    assert len(kept) + len(rejected) == PAIRS
    reasons = rejected.groupby("synthetic_noise")["reason"].agg(lambda r: set(r)).to_dict()
    assert reasons["too_small"] == {"image_too_small"}
    assert reasons["extreme_aspect"] == {"aspect_ratio"}
    assert reasons["reused_image"] == {"image_many_alt_texts"}
    # Boilerplate is dropped wherever it is shared by more than 3 images; in so small a corpus
    # a few of the 16 strings may be rarer than that, and those may stay.
    table = pq.read_table(corpus / "pairs").to_pandas()
    counts = table[table.synthetic_noise == "boilerplate"].caption.value_counts()
    frequent = set(counts[counts > 3].index)
    assert frequent
    assert not frequent & set(kept[kept.synthetic_noise == "boilerplate"].caption)
    assert (
        "too_short" not in set(kept.synthetic_noise)
        or (kept.synthetic_noise == "too_short").sum() <= 5
    )
    clean = (kept.synthetic_noise == "clean").sum() / (
        (kept.synthetic_noise == "clean").sum() + (rejected.synthetic_noise == "clean").sum()
    )
    assert clean >= 0.95


def test_bad_noise_spec_is_one_line_and_exit_2(tmp_path, capsys):
    for spec, says in (("bogus=1", "unknown noise kind 'bogus'"), ("garbage=x", "write KIND=RATE")):
        assert generate.main(["--output", str(tmp_path / "out"), "--noise", spec]) == 2
        error_line(capsys, "synthetic.py", says)
    assert not (tmp_path / "out").exists()
