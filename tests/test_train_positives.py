"""Rows that share an image: the loader's image_ids and a training run with --positives image_id."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mling.common.errors import InputError
from mling.training.loader import PairStream, grouped_order, image_id_hash, index_sources
from mling.training.recipe import RecipeError, load_recipe
from tests.helpers import train_fixtures
from tests.helpers.toy_pairs import toy_table
from tests.helpers.train_fixtures import tiny_argv

toy_tokenizer = train_fixtures.toy_tokenizer  # fixture

LANGUAGES_PER_IMAGE = 4  # rows 0-3 show image "img0", rows 4-7 "img1", ...


def shared_image_pairs(rows: int, side: int = 16) -> pa.Table:
    """Toy pairs with captions "row 7: ..." and an image_id column, 4 rows per image."""
    table = toy_table(rows, side=side)
    captions = [f"row {i}: {c}" for i, c in enumerate(table["caption"].to_pylist())]
    table = table.set_column(1, "caption", pa.array(captions))
    ids = [f"img{i // LANGUAGES_PER_IMAGE}" for i in range(rows)]
    return table.append_column("image_id", pa.array(ids))


def test_image_id_hash_is_blake2b_and_the_same_in_another_process():
    ids = image_id_hash(["1f431", "1f431", "1f436", "ネコ"])
    by_hand = int.from_bytes(
        hashlib.blake2b(b"1f431", digest_size=8).digest(), "little", signed=True
    )
    assert ids.dtype.name == "int64" and ids[0] == ids[1] == by_hand
    assert len({int(ids[0]), int(ids[2]), int(ids[3])}) == 3
    code = "from mling.training.loader import image_id_hash; print(image_id_hash(['1f431'])[0])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == by_hand  # Python's own hash() would differ (salted per process)


def test_batches_carry_equal_ids_for_the_rows_of_one_image(tmp_path, toy_tokenizer):
    pq.write_table(shared_image_pairs(48), tmp_path / "part-00000.parquet")
    stream = PairStream(
        index_sources([tmp_path], {}, "image_id"), str(toy_tokenizer), batch_size=8,
        image_size=16, max_length=12, shuffle_rows=20, id_column="image_id",
    )  # fmt: skip
    batches = list(itertools.islice(iter(stream), 3))
    rows = list(itertools.islice(stream.rows(0), 24))
    for k, batch in enumerate(batches):
        ids = [row[-1] for row in rows[8 * k : 8 * k + 8]]
        for row in rows[8 * k : 8 * k + 8]:  # each row's id is its image's: row n -> img{n // 4}
            number = int(row[1].split(":")[0].removeprefix("row "))
            assert row[-1] == f"img{number // LANGUAGES_PER_IMAGE}"
        got = batch["image_ids"].tolist()
        assert batch["image_ids"].dtype.is_floating_point is False
        assert got == image_id_hash(ids).tolist()
        for i, j in itertools.combinations(range(8), 2):
            assert (got[i] == got[j]) == (ids[i] == ids[j])
    assert any(len(set(b["image_ids"].tolist())) < 8 for b in batches)  # some images repeat


def test_no_id_column_means_no_image_ids(tmp_path, toy_tokenizer):
    pq.write_table(shared_image_pairs(24), tmp_path / "part-00000.parquet")
    stream = PairStream(
        index_sources([tmp_path], {}), str(toy_tokenizer), batch_size=8, image_size=16,
        max_length=12, shuffle_rows=20,
    )  # fmt: skip
    assert "image_ids" not in next(iter(stream))


def test_rows_without_an_id_share_their_image_with_no_other(tmp_path, toy_tokenizer):
    table = shared_image_pairs(16)
    table = table.set_column(6, "image_id", pa.array([None] * 16, pa.string()))
    pq.write_table(table, tmp_path / "part-00000.parquet")
    stream = PairStream(
        index_sources([tmp_path], {}, "image_id"), str(toy_tokenizer), batch_size=8,
        image_size=16, max_length=12, shuffle_rows=20, id_column="image_id",
    )  # fmt: skip
    first, second = itertools.islice(iter(stream), 2)
    assert len(set(first["image_ids"].tolist() + second["image_ids"].tolist())) == 16


def test_grouped_order_keeps_an_images_rows_together_in_chunks():
    rng = np.random.default_rng(0)
    ids = ["ネコ"] * 4 + ["كلب"] * 4 + ["1f431"] * 2 + [None, None]
    order = grouped_order(rng, ids, 4).tolist()
    assert sorted(order) == list(range(12))  # a permutation: every row once
    # each image's rows sit side by side (k = its row count); rows without an id are alone
    for key, count in (("ネコ", 4), ("كلب", 4), ("1f431", 2)):
        first = [ids[i] for i in order].index(key)
        assert [ids[i] for i in order[first : first + count]] == [key] * count
    halves = grouped_order(np.random.default_rng(0), ["a"] * 5, 2).tolist()
    assert sorted(halves) == list(range(5))  # chunks of 2, 2 and 1 of one image
    again = grouped_order(np.random.default_rng(0), ids, 4).tolist()
    assert again == order  # the seed decides, nothing else


def test_batches_hold_whole_chunks_of_an_image_with_group_rows(tmp_path, toy_tokenizer):
    pq.write_table(shared_image_pairs(48), tmp_path / "part-00000.parquet")
    stream = PairStream(
        index_sources([tmp_path], {}, "image_id"), str(toy_tokenizer), batch_size=8,
        image_size=16, max_length=12, shuffle_rows=48, id_column="image_id", group_rows=4,
    )  # fmt: skip
    seen = set()
    for batch in itertools.islice(iter(stream), 6):
        counts = Counter(batch["image_ids"].tolist())
        assert sorted(counts.values()) == [4, 4]  # two images, each with its 4 captions
        seen |= set(counts)
    assert len(seen) == 12  # one epoch: every image once
    with pytest.raises(RecipeError, match="--group-rows 4 needs --positives"):
        load_recipe("tiny", {"group_rows": 4})
    assert load_recipe("tiny", {"group_rows": 4, "positives": "image_id"}).data.group_rows == 4


def test_a_missing_id_column_and_a_bad_value_are_one_line(tmp_path):
    pq.write_table(toy_table(8, side=16), tmp_path / "part-00000.parquet")
    with pytest.raises(InputError, match="no column 'image_id' for --positives image_id"):
        index_sources([tmp_path], {}, "image_id")
    with pytest.raises(RecipeError, match="--positives image id: must be"):
        load_recipe("tiny", {"positives": "image id"})
    assert load_recipe("tiny").loss.positives == ""  # the paper's one positive per row


def test_a_tiny_run_with_positives_image_id(tmp_path, toy_tokenizer):
    import mling.train

    data = tmp_path / "pairs"
    data.mkdir()
    pq.write_table(shared_image_pairs(64, side=24), data / "part-00000.parquet")
    losses = {}
    for name, extra in (("plain", ()), ("shared", ("--positives", "image_id"))):
        out = tmp_path / name
        argv = tiny_argv(data, toy_tokenizer, out, "--max-steps", "2", *extra)
        assert mling.train.main(argv) == 0
        lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        losses[name] = json.loads(lines[0])["loss"]
    # same weights and batch at step 1: only the targets differ, spread over each image's rows
    # (near-uniform logits at step 1, so the losses differ in the fourth digit)
    assert abs(losses["shared"] - losses["plain"]) > 1e-5


def caption_row(caption: str) -> int:
    return int(caption.split(":")[0].removeprefix("row "))


def test_captions_per_image_brings_other_captions_of_the_same_image(tmp_path, toy_tokenizer):
    pq.write_table(shared_image_pairs(48), tmp_path / "part-00000.parquet")
    settings = dict(
        batch_size=8, image_size=16, max_length=12, shuffle_rows=20, id_column="image_id",
        captions_per_image=3,
    )  # fmt: skip
    stream = PairStream(index_sources([tmp_path], {}, "image_id"), str(toy_tokenizer), **settings)
    rows = list(itertools.islice(stream.rows(0), 48))
    for _, captions, _, _, _, image_id in rows:
        numbers = [caption_row(c) for c in captions]
        assert len(set(numbers)) == 3  # the row's own and two others, distinct: 4 per image
        assert {f"img{n // LANGUAGES_PER_IMAGE}" for n in numbers} == {image_id}
    # a resumed stream draws the same captions for the rows after its position
    resumed = list(itertools.islice(stream.rows(0, start=13), 10))
    assert resumed == rows[13:23]
    batch = next(iter(stream))
    assert batch["input_ids"].shape[:2] == (8, 3) and batch["attention_mask"].shape[:2] == (8, 3)
    assert batch["pixel_values"].shape[0] == batch["image_ids"].shape[0] == 8
    # an image with fewer captions than K repeats them; so does a row without an id
    more = PairStream(
        index_sources([tmp_path], {}, "image_id"), str(toy_tokenizer),
        **{**settings, "captions_per_image": 6},
    )  # fmt: skip
    for _, captions, *_ in itertools.islice(more.rows(0), 8):
        assert len(captions) == 6 and len(set(captions)) == 4
    with pytest.raises(InputError, match="--captions-per-image 3 needs --positives"):
        PairStream(index_sources([tmp_path], {}), str(toy_tokenizer),
                   **{**settings, "id_column": ""})  # fmt: skip
    with pytest.raises(RecipeError, match="--captions-per-image 2 needs --positives"):
        load_recipe("tiny", {"captions_per_image": 2})


def test_a_tiny_run_with_two_captions_per_image(tmp_path, toy_tokenizer):
    import mling.train

    data = tmp_path / "pairs"
    data.mkdir()
    pq.write_table(shared_image_pairs(64, side=24), data / "part-00000.parquet")
    out = tmp_path / "run"
    argv = tiny_argv(data, toy_tokenizer, out, "--max-steps", "2", "--positives", "image_id",
                     "--captions-per-image", "2", "--micro-batch", "8")  # fmt: skip
    assert mling.train.main(argv) == 0
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and all(json.loads(line)["loss"] > 0 for line in lines)
    assert (out / "model" / "config.json").is_file()


def test_the_caption_index_reads_every_kind_of_source(tmp_path, toy_tokenizer):
    import datasets

    from mling.pairs.shards import write_webdataset_shards

    table = shared_image_pairs(24)
    pq.write_table(table, tmp_path / "part-00000.parquet")
    parquet = PairStream(
        index_sources([tmp_path / "part-00000.parquet"], {}, "image_id"), str(toy_tokenizer),
        batch_size=8, image_size=16, max_length=12, id_column="image_id", captions_per_image=2,
    )  # fmt: skip
    expected = parquet.captions_by_id()
    assert len(expected) == 6 and all(len(c) == LANGUAGES_PER_IMAGE for c in expected.values())
    write_webdataset_shards(table.to_batches(), tmp_path / "wds", shard_rows=16)
    saved = datasets.Dataset.from_dict(
        {name: table[name].to_pylist() for name in ("caption", "image_id")}
        | {"image": [{"bytes": b, "path": None} for b in table["image"].to_pylist()]},
        features=datasets.Features(
            {"caption": datasets.Value("string"), "image_id": datasets.Value("string"),
             "image": datasets.Image()}
        ),
    )  # fmt: skip
    saved.save_to_disk(tmp_path / "hf")
    for path in ("wds", "hf"):
        stream = PairStream(
            index_sources([tmp_path / path], {}, "image_id"), str(toy_tokenizer), batch_size=8,
            image_size=16, max_length=12, id_column="image_id", captions_per_image=2,
        )  # fmt: skip
        got = stream.captions_by_id()
        assert {k: sorted(v) for k, v in got.items()} == {
            k: sorted(v) for k, v in expected.items()
        }, path
        assert next(iter(stream))["input_ids"].shape[:2] == (8, 2), path


def test_an_anchor_language_caption_comes_second(tmp_path, toy_tokenizer):
    """--anchor-language en: each row's second caption is its image's English one, unless the
    row's own is English; without a language column, one line."""
    table = shared_image_pairs(48)  # rows 4i .. 4i+3 show image i; row 4i + 2 is its English
    languages = ["ja", "ar", "en", "ru"] * 12
    pq.write_table(table.append_column("language", pa.array(languages)), tmp_path / "p.parquet")
    settings = dict(
        batch_size=8, image_size=16, max_length=12, shuffle_rows=20, id_column="image_id",
        captions_per_image=3, anchor_language="en",
    )  # fmt: skip
    stream = PairStream(
        index_sources([tmp_path], {}, "image_id", "en"), str(toy_tokenizer), **settings
    )
    for _, captions, *_ in itertools.islice(stream.rows(0), 48):
        own, second, third = (caption_row(c) for c in captions)
        if own % 4 == 2:  # an English row: its others drawn as without an anchor
            assert len({own, second, third}) == 3
        else:
            assert second == own - own % 4 + 2 and third not in (own, second)
    assert next(iter(stream))["input_ids"].shape[:2] == (8, 3)
    with pytest.raises(InputError, match="no language column for --anchor-language en"):
        pq.write_table(shared_image_pairs(8), tmp_path / "p.parquet")
        index_sources([tmp_path], {}, "image_id", "en")
    with pytest.raises(RecipeError, match="--anchor-language en needs --captions-per-image 2"):
        load_recipe("tiny", {"anchor_language": "en", "positives": "image_id"})
