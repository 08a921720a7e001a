"""The pair schema: parquet and webdataset shards round-trip multilingual pairs unchanged."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mling.common.atomic import MARKER
from mling.common.errors import InputError
from mling.pairs.schema import PAIR_SCHEMA, column_map
from mling.pairs.shards import (
    count_tar_samples,
    expand_braces,
    expand_inputs,
    iter_pair_batches,
    write_pair_shards,
    write_webdataset_shards,
)
from tests.helpers.multilingual import CAPTIONS


def _pairs(n_per_language: int = 2) -> pa.Table:
    rows = []
    for language, captions in CAPTIONS.items():
        for index, caption in enumerate(captions[:n_per_language]):
            rows.append(
                {
                    "key": f"{language}-{index}",
                    "caption": caption,
                    "url": f"https://example.org/{language}/{index}.jpg",
                    "width": 640 + index,
                    "height": 480,
                    "image": bytes([index]) * 10,
                }
            )
    return pa.Table.from_pylist(rows, schema=PAIR_SCHEMA)


def test_parquet_round_trip_in_shards(tmp_path):
    table = _pairs()
    paths = write_pair_shards(table.to_batches(max_chunksize=7), tmp_path / "out", shard_rows=10)
    assert [p.name for p in paths] == [f"part-{i:05d}.parquet" for i in range(4)]
    assert [pq.read_metadata(p).num_rows for p in paths] == [10, 10, 10, 2]
    back = pa.Table.from_batches(list(iter_pair_batches([tmp_path / "out"])))
    assert back.to_pylist() == table.to_pylist()


def test_webdataset_round_trip(tmp_path):
    table = _pairs()
    paths = write_webdataset_shards(table.to_batches(), tmp_path / "wds", shard_rows=20)
    assert len(paths) == 2
    with tarfile.open(paths[0]) as tar:
        names = tar.getnames()[:3]
    assert names == ["en-0.txt", "en-0.json", "en-0.jpg"]
    back = pa.Table.from_batches(list(iter_pair_batches(paths, columns=list(PAIR_SCHEMA.names))))
    assert back.to_pylist() == table.to_pylist()


def test_rewriting_an_output_replaces_it_whole(tmp_path):
    write_pair_shards(_pairs(3).to_batches(), tmp_path / "out", shard_rows=5)
    write_pair_shards(_pairs(1).to_batches(), tmp_path / "out", shard_rows=100, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "part-00000.parquet"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_output_never_destroys_what_we_did_not_write(tmp_path):
    """Refused, each in one line, and nothing touched: an earlier output without --overwrite,
    a folder of the user's (even with --overwrite), a file, a path under a file."""
    write_pair_shards(_pairs(3).to_batches(), tmp_path / "ours", shard_rows=5)
    before = sorted(p.name for p in (tmp_path / "ours").iterdir())
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    for target, overwrite, says in [
        ("ours", False, "holds an earlier output; pass --overwrite"),
        ("theirs", True, "this toolkit did not write and is not empty"),
        ("file", True, "is a file"),
        ("file/sub", True, "lies under"),
    ]:
        with pytest.raises(InputError, match=says):
            write_pair_shards(_pairs(1).to_batches(), tmp_path / target, overwrite=overwrite)
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == before
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "file").read_text() == "mine"
    with pytest.raises(InputError, match="--shard-rows must be at least 1"):
        write_pair_shards(_pairs(1).to_batches(), tmp_path / "new", shard_rows=0)


def test_laion_columns_map_onto_the_pair_schema(tmp_path):
    laion = pa.table(
        {"TEXT": ["Ein Hund", "猫"], "URL": ["u1", "u2"], "WIDTH": [300, 400], "HEIGHT": [200, 250]}
    )
    pq.write_table(laion, tmp_path / "laion.parquet")
    mapping = column_map("laion", ["URL=key"])
    (batch,) = iter_pair_batches([tmp_path / "laion.parquet"], mapping, columns=["key", "caption"])
    assert batch.to_pylist() == [
        {"key": "u1", "caption": "Ein Hund"},
        {"key": "u2", "caption": "猫"},
    ]


def test_values_are_kept_as_stored_so_the_filter_can_reject_them(tmp_path):
    shard = tmp_path / "bad.tar"
    with tarfile.open(shard, "w") as tar:
        for name, payload in [
            ("a.txt", "مرحبا".encode()),
            ("a.json", json.dumps({"width": "wide", "height": 10}).encode()),
            ("b.txt", b"\xff\xfe broken"),
            ("b.json", b"{not json"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, pa.BufferReader(payload))
    rows = pa.Table.from_batches(list(iter_pair_batches([shard]))).to_pylist()
    assert [r["key"] for r in rows] == ["a", "b"]
    assert rows[0]["width"] == "wide" and rows[0]["caption"] == "مرحبا"
    assert rows[1]["caption"].startswith("\ufffd") and rows[1]["width"] is None


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="input not found: .*missing"):
        expand_inputs([tmp_path / "missing"])
    with pytest.raises(InputError, match="unknown column preset 'lion'"):
        column_map("lion")
    with pytest.raises(InputError, match="SOURCE=DEST"):
        column_map(None, ["TEXT"])
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="cannot read parquet"):
        list(iter_pair_batches([tmp_path / "broken.parquet"]))


def _tar(path, members: list[tuple[str, bytes]]) -> bytes:
    with tarfile.open(path, "w") as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path.read_bytes()


def test_a_tar_cut_at_a_member_boundary_is_refused_not_read_as_complete(tmp_path):
    members = [(f"{k:03d}.{ext}", b"{}" if ext == "json" else b"x") for k in range(4)
               for ext in ("txt", "json")]  # fmt: skip
    whole = _tar(tmp_path / "whole.tar", members)
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "cut.tar").write_bytes(whole[: 4 * tarfile.BLOCKSIZE * 2])
    assert count_tar_samples(tmp_path / "whole.tar") == 4
    for read in (
        lambda: list(iter_pair_batches([tmp_path / "cut"])),
        lambda: count_tar_samples(tmp_path / "cut" / "cut.tar"),
    ):
        with pytest.raises(InputError, match="is cut short"):
            read()


def test_samples_sharing_a_key_are_never_merged_or_dropped(tmp_path):
    """Two samples with one key, one after the other, stay two rows (the filter then names the
    second a duplicate_key); the training index counts them the same way."""
    members = [("a.txt", b"Ein Hund"), ("a.json", b'{"width": 300}')]
    members += [("a.txt", "犬が走る".encode()), ("a.json", b'{"width": 400}')]
    members += [("b.txt", "قطة".encode())]
    _tar(tmp_path / "dup.tar", members)
    (batch,) = iter_pair_batches([tmp_path / "dup.tar"], columns=["key", "caption", "width"])
    assert batch.to_pylist() == [
        {"key": "a", "caption": "Ein Hund", "width": 300},
        {"key": "a", "caption": "犬が走る", "width": 400},
        {"key": "b", "caption": "قطة", "width": None},
    ]
    assert count_tar_samples(tmp_path / "dup.tar") == 3


def test_brace_ranges_name_shards_as_webdataset_users_write_them(tmp_path):
    assert expand_braces("s/{00008..00011}.tar") == [f"s/{n:05d}.tar" for n in range(8, 12)]
    assert expand_braces("{a,b}/{1..2}.parquet") == [
        "a/1.parquet",
        "a/2.parquet",
        "b/1.parquet",
        "b/2.parquet",
    ]
    assert expand_braces("odd{name}.tar") == ["odd{name}.tar"]  # not a range: literal
    for k in range(3):
        write_pair_shards(_pairs(2).to_batches(), tmp_path / f"d{k}")
    found = expand_inputs([str(tmp_path / "d{0..2}" / "part-00000.parquet")])
    assert [p.parent.name for p in found] == ["d0", "d1", "d2"]
    with pytest.raises(InputError, match=r"input not found: .*d3/part-00000.parquet"):
        expand_inputs([str(tmp_path / "d{0..3}" / "part-00000.parquet")])
