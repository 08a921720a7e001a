"""Training data: the paper's transforms, and the streaming loader (sharding, resume, bad rows)."""

from __future__ import annotations

import itertools
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from mling.common.errors import InputError
from mling.pairs.shards import write_webdataset_shards
from mling.training.loader import (
    Block,
    PairStream,
    Source,
    build_loader,
    caption_encoder,
    index_sources,
    make_blocks,
)
from mling.training.transforms import (
    decode_image,
    eval_crop,
    image_processor,
    random_crops,
    resize_size,
    to_model_pixels,
    train_crop,
)
from tests.helpers import train_fixtures
from tests.helpers.multilingual import CAPTIONS
from tests.helpers.toy_pairs import toy_table

toy_tokenizer = train_fixtures.toy_tokenizer  # fixture

# ---- transforms ----


def coordinate_image(side: int) -> Image.Image:
    """Red = column, green = row: a crop's first pixel tells where it was taken."""
    x, y = np.meshgrid(np.arange(side), np.arange(side))
    return Image.fromarray(np.stack([x, y, np.zeros_like(x)], axis=-1).astype(np.uint8))


def test_resize_keeps_the_papers_ratio():
    assert resize_size(289) == 346
    assert resize_size(64) == 77  # 64 * 346 / 289 = 76.6


def test_eval_crop_is_the_center_of_the_resize():
    crop = eval_crop(coordinate_image(77), 64)  # already 77 px: the resize is the identity
    assert crop.shape == (3, 64, 64) and crop.dtype == np.uint8
    start = (77 - 64) // 2  # 6
    assert crop[0, 0].tolist() == list(range(start, start + 64))  # red: columns 6..69
    assert crop[1, :, 0].tolist() == list(range(start, start + 64))  # green: rows 6..69


def test_train_crop_offset_and_flip():
    crop = train_crop(coordinate_image(77), 64, offset=(13, 0), flip=True)
    assert crop[0, 0].tolist() == list(range(13 + 63, 12, -1))  # columns 76..13, mirrored
    assert crop[1, :, 0].tolist() == list(range(64))  # rows 0..63


def test_random_crops_stay_inside_the_resize():
    offsets, flips = random_crops(np.random.default_rng(0), 1000, 64)
    assert offsets.min() == 0 and offsets.max() == 77 - 64
    assert 400 < flips.sum() < 600


def test_pixels_become_minus_one_to_one():
    pixels = torch.tensor([0, 255], dtype=torch.uint8).reshape(1, 2, 1, 1).expand(1, 2, 1, 1)
    assert to_model_pixels(pixels).flatten().tolist() == [-1.0, 1.0]


def test_exported_image_processor_reproduces_the_eval_transform():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (50, 90, 3), dtype=np.uint8)).resize((180, 100))
    ours = to_model_pixels(torch.from_numpy(eval_crop(photo, 64))[None])
    theirs = image_processor(64)(images=[photo], return_tensors="pt")["pixel_values"]
    assert theirs.shape == ours.shape == (1, 3, 64, 64)
    assert (theirs - ours).abs().max().item() <= 2 / 127.5  # one uint8 rounding step


def test_truncated_jpeg_does_not_decode():
    payload = toy_table(1, side=32)["image"][0].as_py()
    assert decode_image(payload).size == (32, 32)
    with pytest.raises(OSError):
        decode_image(payload[: len(payload) // 3])


# ---- blocks and readers ----


def test_blocks_shrink_so_every_reader_has_several():
    sources = [Source("a", "parquet", (10, 6)), Source("b", "tar", (4,))]
    blocks = make_blocks(sources, block_rows=1024, readers=1)  # 20 rows // (4 * 1) = 5 per block
    assert blocks == [
        Block(0, 0, 0, 5), Block(0, 0, 5, 10), Block(0, 1, 0, 5), Block(0, 1, 5, 6), Block(1, 0, 0, 4)
    ]  # fmt: skip
    with pytest.raises(InputError, match="lower --num-workers"):
        make_blocks(sources, 1024, readers=21)


def unique_pairs(rows: int, side: int = 16) -> pa.Table:
    """Toy pairs whose captions are unique: "row 7: rot und blau"."""
    table = toy_table(rows, side=side)
    captions = [f"row {i}: {c}" for i, c in enumerate(table["caption"].to_pylist())]
    return table.set_column(1, "caption", pa.array(captions))


def stream_over(path: Path, tokenizer: Path, **options) -> PairStream:
    settings = {"batch_size": 8, "image_size": 16, "max_length": 12, "shuffle_rows": 20, **options}
    mapping = settings.setdefault("mapping", {})
    return PairStream(index_sources([path], mapping), str(tokenizer), **settings)


def first_epoch(stream: PairStream, reader: int) -> list[str]:
    rows = sum(b.rows for window in stream.windows(reader, 0) for b in window)
    return [caption for _, caption, *_ in itertools.islice(stream.rows(reader), rows)]


def test_each_process_reads_its_own_rows(tmp_path, toy_tokenizer):
    pq.write_table(unique_pairs(100), tmp_path / "part-00000.parquet")
    seen = []
    for rank in (0, 1):
        stream = stream_over(tmp_path, toy_tokenizer, rank=rank, world_size=2)
        seen.append(first_epoch(stream, reader=rank))
    assert set(seen[0]).isdisjoint(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(unique_pairs(100)["caption"].to_pylist())


def test_resuming_a_reader_skips_exactly_the_consumed_rows(tmp_path, toy_tokenizer):
    pq.write_table(unique_pairs(50), tmp_path / "part-00000.parquet")
    stream = stream_over(tmp_path, toy_tokenizer)
    straight = list(itertools.islice(stream.rows(0), 130))  # 2.6 epochs of 50 rows
    for start in (7, 20, 50, 113):  # mid-window, window edge, epoch edge, third epoch
        resumed = list(itertools.islice(stream.rows(0, start=start), 130 - start))
        assert [r[:2] + r[3:] for r in resumed] == [r[:2] + r[3:] for r in straight[start:]]
    assert first_epoch(stream, 0) != [r[1] for r in straight[50:100]]  # epochs reshuffle


def test_bad_rows_are_skipped_and_counted_by_reason(tmp_path, toy_tokenizer):
    table = unique_pairs(40)
    captions, images = table["caption"].to_pylist(), table["image"].to_pylist()
    for i in (3, 11, 19, 27):
        images[i] = images[i][:30]  # truncated JPEG
    images[5] = b"not an image at all"
    corrupt = {images[i] for i in (3, 5, 11, 19, 27)}
    captions[6], captions[7], captions[8] = None, "", "   "
    images[9] = images[10] = None
    table = table.set_column(1, "caption", pa.array(captions)).set_column(
        5, "image", pa.array(images)
    )
    pq.write_table(table, tmp_path / "part-00000.parquet")
    stream = stream_over(tmp_path, toy_tokenizer, batch_size=40 - 10)  # all the good rows
    batch = next(iter(stream))
    # The batch ends at the last good row; the planted rows read before it are its skips.
    expected = Counter()
    for _, caption, image, *_ in itertools.islice(stream.rows(0), batch["position"]):
        if caption is None or not caption.strip():
            expected["missing_caption"] += 1
        elif image is None:
            expected["missing_image"] += 1
        elif image in corrupt:
            expected["corrupt_image"] += 1
    assert batch["skipped"] == dict(expected)
    assert sum(expected.values()) == batch["position"] - 30 >= 5
    assert (
        batch["pixel_values"].shape == (30, 3, 16, 16)
        and batch["pixel_values"].dtype == torch.uint8
    )
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (30, 12)


def test_a_corpus_without_usable_images_fails_with_advice(tmp_path, toy_tokenizer):
    table = unique_pairs(10)
    table = table.set_column(5, "image", pa.array([b"junk"] * 10, pa.binary()))
    pq.write_table(table, tmp_path / "part-00000.parquet")
    with pytest.raises(InputError, match="no usable pair in 10 rows"):
        next(iter(stream_over(tmp_path, toy_tokenizer)))


def test_missing_image_column_is_named(tmp_path):
    pq.write_table(unique_pairs(4).drop(["image"]), tmp_path / "part-00000.parquet")
    with pytest.raises(InputError, match="no image column 'image'.*--column SRC=image"):
        index_sources([tmp_path], {})


def test_worker_processes_resume_mid_round_robin(tmp_path, toy_tokenizer):
    pq.write_table(unique_pairs(64), tmp_path / "part-00000.parquet")
    fresh = stream_over(tmp_path, toy_tokenizer, num_workers=2)
    batches = list(itertools.islice(build_loader(fresh, prefetch=1), 6))
    positions = {b["reader"]: b["position"] for b in batches[:3]}  # stopped after 3 batches
    resumed = stream_over(
        tmp_path, toy_tokenizer, num_workers=2, positions=positions, worker_offset=3 % 2
    )
    again = list(itertools.islice(build_loader(resumed, prefetch=1), 3))
    for expected, got in zip(batches[3:], again, strict=True):
        assert got["reader"] == expected["reader"] and got["position"] == expected["position"]
        assert torch.equal(got["pixel_values"], expected["pixel_values"])
        assert torch.equal(got["input_ids"], expected["input_ids"])


# ---- other layouts ----


def test_webdataset_datasets_and_laion_columns_give_the_same_pairs(tmp_path, toy_tokenizer):
    import datasets

    table = unique_pairs(30)
    expected = sorted(table["caption"].to_pylist())
    write_webdataset_shards(table.to_batches(), tmp_path / "wds", shard_rows=16)
    saved = datasets.Dataset.from_dict(
        {
            "caption": table["caption"].to_pylist(),
            "image": [{"bytes": b, "path": None} for b in table["image"].to_pylist()],
        },
        features=datasets.Features(
            {"caption": datasets.Value("string"), "image": datasets.Image()}
        ),
    )
    saved.save_to_disk(tmp_path / "hf")
    (tmp_path / "laion").mkdir()
    pq.write_table(
        table.rename_columns(["key", "TEXT", "URL", "WIDTH", "HEIGHT", "image"]),
        tmp_path / "laion" / "a.parquet",
    )
    for path, mapping in [("wds", {}), ("hf", {}), ("laion", {"TEXT": "caption"})]:
        stream = stream_over(tmp_path / path, toy_tokenizer, mapping=mapping)
        assert sorted(first_epoch(stream, 0)) == expected, path
        assert next(iter(stream))["skipped"] == {}, path


def test_multilingual_captions_survive_tokenization(tmp_path, toy_tokenizer):
    table = unique_pairs(8)
    mixed = [CAPTIONS[lang][0] for lang in ("ar", "th", "ja", "hi", "el", "ru", "zh", "vi")]
    table = table.set_column(1, "caption", pa.array(mixed))
    pq.write_table(table, tmp_path / "part-00000.parquet")
    static = stream_over(tmp_path, toy_tokenizer, max_length=64, pad_to_max_length=True)
    batch = next(iter(static))
    lengths = batch["attention_mask"].sum(dim=1)
    assert batch["input_ids"].shape == (8, 64)  # static: padded to max_length whatever the text
    assert lengths.min().item() >= 3  # [CLS] + at least one piece + [SEP] for every script
    # by default to the longest caption, rounded up to 8 tokens: the same tokens, less padding
    short = next(iter(stream_over(tmp_path, toy_tokenizer, max_length=64)))
    width = short["input_ids"].shape[1]
    assert width == -(-lengths.max().item() // 8) * 8 < 64
    assert torch.equal(short["input_ids"], batch["input_ids"][:, :width])
    assert torch.equal(short["attention_mask"], batch["attention_mask"][:, :width])


def test_caption_encoder_matches_the_transformers_tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    captions = [caption for texts in CAPTIONS.values() for caption in texts[:2]]
    captions.append(" ".join(CAPTIONS["de"] * 8))  # longer than max_length: truncated
    input_ids, attention_mask = caption_encoder(str(tiny_tokenizer_dir), 24, True)(captions)
    reference = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)(
        captions, padding="max_length", truncation=True, max_length=24, return_tensors="pt"
    )
    assert input_ids.shape == (len(captions), 24) and input_ids.dtype == torch.int64
    assert torch.equal(input_ids, reference["input_ids"])
    assert torch.equal(attention_mask, reference["attention_mask"])
    assert attention_mask[-1].all() and input_ids[-1, -1] == reference["input_ids"][-1, -1]
    # padded to the longest (here the truncated one, 24 tokens), as static; shorter batches
    # stop at their longest caption rounded up to 8
    assert torch.equal(caption_encoder(str(tiny_tokenizer_dir), 24, False)(captions)[0], input_ids)
    short_ids, short_mask = caption_encoder(str(tiny_tokenizer_dir), 24, False)(captions[:2])
    longest = int(reference["attention_mask"][:2].sum(1).max())
    assert short_ids.shape == (2, min(24, -(-longest // 8) * 8))
    assert torch.equal(short_ids, reference["input_ids"][:2, : short_ids.shape[1]])
    assert torch.equal(short_mask, reference["attention_mask"][:2, : short_ids.shape[1]])


def test_decomposed_captions_tokenize_like_composed_ones(tiny_tokenizer_dir):
    # Web alt-text arrives in NFC and NFD; the fast tokenizer does not compose by itself.
    composed = [caption for lang in ("vi", "fr", "cs", "de") for caption in CAPTIONS[lang][:2]]
    decomposed = [unicodedata.normalize("NFD", caption) for caption in composed]
    assert decomposed != composed  # the fixture has characters that decompose
    encode = caption_encoder(str(tiny_tokenizer_dir), 32)
    assert torch.equal(encode(decomposed)[0], encode(composed)[0])
