"""The filter's faults: one line, no file lost, nothing left that looks written.

A `--work-dir` is claimed as an output is (refused when it holds what we did not write, or
overlaps the input or the output; locked; emptied after success); Ctrl-C ends in one line and
exit code 130; a file system that refuses a write ends in one line naming the path, the
earlier output intact; inputs of odd types get reasons or one line; rejected rows keep their
sizes as found; every numeric option is range-checked where it is parsed.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mling.common.atomic import MARKER, SCRATCH
from mling.filtering.pipeline import OPTION_CHECKS, _parser
from mling.filtering.pipeline import main as filter_main
from mling.filtering.reasons import options
from mling.pairs.schema import PAIR_COLUMNS
from mling.pairs.shards import iter_pair_batches
from tests.helpers.filter_cases import GOOD, write_reason_fixture
from tests.helpers.kill import ROOT, alive, children_of, interrupt_when
from tests.helpers.one_line import check_one_line, error_line

FAST = ["--quiet", "--no-language-id", "--workers", "1"]
CAPTIONS = list(GOOD.values())  # one per script, each kept when nothing else is wrong


def files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too): relative path -> bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def write_pairs(
    folder: Path, rows: int, *, image_bytes: int = 0, width: int = 400, caption_chars: int = 0
) -> Path:
    """`rows` pairs in one parquet, each kept unless `width` is too small: a caption per script
    (or `caption_chars` random letters), random (incompressible) image bytes if asked."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = __import__("random").Random(0)

    def caption(i: int) -> str:
        if caption_chars:
            return "".join(rng.choice("abcdefghij ") for _ in range(caption_chars))
        return f"{CAPTIONS[i % len(CAPTIONS)]} {i}"

    table = {
        "key": [f"k{i}" for i in range(rows)],
        "caption": [caption(i) for i in range(rows)],
        "url": [f"https://img.example/{i}.jpg" for i in range(rows)],
        "width": [width] * rows,
        "height": [300] * rows,
    }
    if image_bytes:
        table["image"] = [rng.randbytes(image_bytes) for _ in range(rows)]
    pq.write_table(pa.table(table), folder / "part-0.parquet", row_group_size=20_000)
    return folder


def earlier_output(folder: Path) -> dict[str, bytes]:
    """An earlier output of ours at `folder` (its marker, a report): what a failed run keeps."""
    folder.mkdir()
    (folder / MARKER).write_text('{"written_by": "mling-align"}\n')
    (folder / "report.md").write_text("an earlier run's report\n")
    return files(folder)


def leftovers(parent: Path, name: str) -> list[str]:
    """Staging, scratch and locks beside `parent/name` (`.NAME.*`)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


# --work-dir: claimed like an output


def test_a_work_dir_holding_files_we_did_not_write_is_refused_and_kept(tmp_path, capsys):
    write_reason_fixture(tmp_path / "in")
    work = tmp_path / "work"
    (work / "decisions").mkdir(parents=True)
    (work / "decisions" / "part-00000.parquet").write_bytes(b"the user's own file")
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), *FAST]
    assert filter_main([*argv, "--work-dir", str(work)]) == 2
    error_line(capsys, "filter.py", f"--work-dir {work} is a folder this toolkit did not write")
    assert files(work) == {"decisions/part-00000.parquet": b"the user's own file"}
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path, "work") == leftovers(tmp_path, "out") == []


@pytest.mark.parametrize(
    "work, says",
    [
        ("in", "would replace the input"),  # the input's folder itself
        ("in/scratch", "lies in the input"),
        ("outs/out", "is --output"),
        ("outs/out/scratch", "lies in --output"),
        ("outs", "holds --output"),
    ],
)
def test_a_work_dir_apart_from_the_input_and_the_output(tmp_path, capsys, work, says):
    write_reason_fixture(tmp_path / "in")
    before = files(tmp_path / "in")
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "outs" / "out"), *FAST]
    assert filter_main([*argv, "--work-dir", str(tmp_path / work)]) == 2
    error_line(capsys, "filter.py", says)
    assert files(tmp_path / "in") == before  # not a folder, not a lock more
    assert not (tmp_path / "outs").exists()


def test_a_work_dir_is_emptied_after_success_and_a_failed_runs_leftovers_reused(tmp_path):
    write_reason_fixture(tmp_path / "in")
    argv = ["--input", str(tmp_path / "in"), *FAST]
    new = tmp_path / "new" / "work"  # made by the run, the folder above it too: both removed
    assert filter_main([*argv, "--output", str(tmp_path / "a"), "--work-dir", str(new)]) == 0
    assert not (tmp_path / "new").exists()
    empty = tmp_path / "empty"  # the user's empty folder: left as found, empty
    empty.mkdir()
    assert filter_main([*argv, "--output", str(tmp_path / "b"), "--work-dir", str(empty)]) == 0
    assert files(empty) == {} and empty.is_dir()
    # what a failed or killed run left, under its marker: emptied, then used
    (empty / "features").mkdir()
    (empty / "features" / "features-00000.parquet").write_bytes(b"half written")
    (empty / SCRATCH).write_text('{"written_by": "mling-align", "scratch": "left by a run"}\n')
    assert filter_main([*argv, "--output", str(tmp_path / "c"), "--work-dir", str(empty)]) == 0
    assert files(empty) == {}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")] == []
    assert files(tmp_path / "a").keys() == files(tmp_path / "c").keys()


@pytest.mark.slow
def test_two_filters_on_one_work_dir_the_second_refused_while_the_first_runs(tmp_path, capsys):
    write_pairs(tmp_path / "in", 100_000)
    work = tmp_path / "work"
    argv = ["--input", str(tmp_path / "in"), "--work-dir", str(work), *FAST]
    command = [sys.executable, "-m", "mling.filtering.pipeline", *argv]
    first = subprocess.Popen([*command, "--output", str(tmp_path / "a")], cwd=ROOT)
    deadline = time.monotonic() + 120
    while not (work / SCRATCH).is_file():  # claimed: locked by a live process
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    assert filter_main([*argv, "--output", str(tmp_path / "b")]) == 2
    error_line(capsys, "filter.py", f"--work-dir {work} is in use by another run")
    assert first.poll() is None, "the first run ended before the second tried: no test"
    assert first.wait(timeout=300) == 0
    assert not work.exists() and not (tmp_path / "b").exists()
    assert json.loads((tmp_path / "a" / "report.json").read_text())["accounting"]["kept"] == 100_000


# Ctrl-C


@pytest.mark.slow
def test_ctrl_c_is_one_line_exit_130_and_leaves_nothing_that_looks_written(tmp_path):
    write_pairs(tmp_path / "in", 100_000)
    out, work = tmp_path / "out", tmp_path / "work"
    before = earlier_output(out)
    argv = ["--input", str(tmp_path / "in"), "--output", str(out), "--overwrite", "--quiet"]
    argv += ["--work-dir", str(work), "--workers", "2"]
    points = {
        "pre-pass": lambda pid: (work / "features").is_dir() and bool(children_of(pid)),
        "engine": lambda pid: (
            any((work / "features").glob("*.parquet")) and not (work / "decisions").exists()
        ),
        "language ID": lambda pid: (work / "labelled").is_dir() and bool(children_of(pid)),
    }
    for point, reached in points.items():
        code, err, children = interrupt_when("mling.filtering.pipeline", argv, reached)
        assert code == 130, (point, err)
        check_one_line(err, "filter.py", f"interrupted; nothing was written to {out}")
        assert files(out) == before, point  # the earlier output, whole
        assert leftovers(tmp_path, "out") == [], point  # no staging, no lock
        assert alive(children) == [], f"{point}: workers outlived the run"
        assert "stopped" in json.loads((work / SCRATCH).read_text())["scratch"], point
    assert filter_main(argv) == 0  # the work dir, left marked, is taken back and emptied
    assert not work.exists()
    assert json.loads((out / "report.json").read_text())["accounting"]["kept"] == 100_000


# A file system that refuses a write: a file-size limit (ulimit -f), as a full disk would


def filter_limited(argv: list[str], max_file_bytes: int) -> tuple[int, list[str]]:
    """The filter in a process whose files may not grow past `max_file_bytes` (EFBIG)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    command = [sys.executable, "-m", "mling.filtering.pipeline", *argv]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        command, cwd=ROOT, env=env, preexec_fn=limit, capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stderr.strip().splitlines()


@pytest.mark.slow
@pytest.mark.parametrize(
    "writing, pairs, extra, says",
    [
        # long captions, twice in the features file: the work dir's file is the first too big
        (
            "work dir",
            {"rows": 100, "caption_chars": 4000},
            [],
            "cannot write in {work} (the scratch)",
        ),
        (
            "kept shards",
            {"rows": 100, "image_bytes": 20_000},
            [],
            "cannot write in {out}/.out.tmp-",
        ),
        (
            "rejected shards",
            {"rows": 100, "image_bytes": 20_000, "width": 100},  # every row too small
            ["--write-rejected"],
            "cannot write in {out}/.out.tmp-",
        ),
        # report.png, ~30 kB: named when the writer names it, else its staging folder
        ("report", {"rows": 24}, [], "{out}/.out.tmp-"),
    ],
)
def test_a_write_the_file_system_refuses_is_one_line_and_the_earlier_output_stays(
    tmp_path, writing, pairs, extra, says
):
    write_pairs(tmp_path / "in", **pairs)
    out, work = tmp_path / "out", tmp_path / "work"
    before = earlier_output(out)
    argv = ["--input", str(tmp_path / "in"), "--output", str(out), "--overwrite", *FAST, *extra]
    argv += ["--work-dir", str(work), "--workers", "2"]
    limit = 16_000 if writing == "report" else 200_000
    code, err = filter_limited(argv, limit)
    assert code == 2, err
    line = check_one_line(err, "filter.py", says.format(work=work, out=tmp_path))
    assert f"nothing was written to {out}; File too large (EFBIG);" in line
    assert files(out) == before
    assert leftovers(tmp_path, "out") == []
    assert "stopped" in json.loads((work / SCRATCH).read_text())["scratch"]
    assert filter_main(argv) == 0  # with room to write: the run goes through
    assert not work.exists()


# Inputs of odd types: a reason per row, or one line


@pytest.mark.parametrize("image", [[1, 2], [1.5, 2.0], [[1], [2]]], ids=["int", "float", "list"])
def test_an_image_column_that_is_not_bytes_is_one_line(tmp_path, capsys, image):
    table = {"key": ["a", "b"], "caption": CAPTIONS[:2], "width": [300] * 2, "height": [400] * 2}
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({**table, "image": image}), tmp_path / "in" / "part-0.parquet")
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), *FAST]
    assert filter_main(argv) == 2
    error_line(capsys, "filter.py", "part-0.parquet: its image column holds")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path, "out") == []


def test_a_webdataset_json_that_is_no_object_is_a_sample_without_metadata(tmp_path):
    (tmp_path / "in").mkdir()
    metadata = {"list": [300, 400], "number": 7, "null": None, "object": {"width": 300}}
    with tarfile.open(tmp_path / "in" / "shard.tar", "w") as tar:
        for key, meta in metadata.items():
            meta = {**meta, "height": 400} if isinstance(meta, dict) else meta
            for extension, payload in (("txt", CAPTIONS[0]), ("json", json.dumps(meta))):
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size = len(payload.encode())
                tar.addfile(info, io.BytesIO(payload.encode()))
    # the shared reader (training's too): every sample a row, with its caption
    (batch,) = iter_pair_batches([tmp_path / "in" / "shard.tar"])
    assert batch.column("key").to_pylist() == list(metadata)
    assert set(batch.column("caption").to_pylist()) == {CAPTIONS[0]}
    # the filter: a row without sizes is dropped as such, counted
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), *FAST]
    assert filter_main([*argv, "--write-rejected"]) == 0
    rejected = pq.read_table(tmp_path / "out" / "rejected").to_pydict()
    assert dict(zip(rejected["key"], rejected["reason"], strict=True)) == {
        "list": "missing_size",
        "number": "missing_size",
        "null": "missing_size",
    }


@pytest.mark.parametrize(
    "column, values",
    [
        ("key", pa.array([["a"], ["b"]])),  # a list
        ("key", pa.array([b"\xff", b"b"])),  # bytes that are not UTF-8
        ("status", pa.array([["success"], ["failed"]])),
        ("url", pa.array([[1], [2]])),
    ],
)
def test_key_status_and_url_columns_of_any_type_are_rows_with_reasons(tmp_path, column, values):
    table = {"key": ["a", "b"], "caption": CAPTIONS[:2], "width": [300] * 2, "height": [400] * 2}
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({**table, column: values}), tmp_path / "in" / "part-0.parquet")
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), *FAST]
    assert filter_main([*argv, "--write-rejected"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["accounting"]["input_rows"] == 2


# Rejected rows keep their sizes as found; kept rows as they always were


def test_rejected_rows_keep_their_sizes_as_found(tmp_path):
    (tmp_path / "in").mkdir()
    sizes = {  # key -> (width as stored, height as stored), each a string column
        "fraction": ("640.5", "480"),
        "word": ("big", "480"),
        "nan": ("NaN", "480"),
        "padded": (" 640 ", "+480"),  # a size: kept
        "small": ("100", "480"),  # a size, too small
    }
    table = pa.table(
        {
            "key": list(sizes),
            "caption": [CAPTIONS[i] for i in range(len(sizes))],
            "width": [w for w, _ in sizes.values()],
            "height": [h for _, h in sizes.values()],
        }
    )
    pq.write_table(table, tmp_path / "in" / "part-0.parquet")
    floats = pa.table(
        {"key": ["float"], "caption": [CAPTIONS[6]], "width": [640.5], "height": [480.0]}
    )
    pq.write_table(floats, tmp_path / "in" / "part-1.parquet")
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), *FAST]
    assert filter_main([*argv, "--write-rejected"]) == 0
    rejected = pq.read_table(tmp_path / "out" / "rejected")
    rows = {row["key"]: row for row in rejected.to_pylist()}
    found = {key: (row["width_found"], row["height_found"]) for key, row in rows.items()}
    assert found == {
        "fraction": ("640.5", "480"),
        "word": ("big", "480"),
        "nan": ("NaN", "480"),
        "small": ("100", "480"),
        "float": ("640.5", "480.0"),
    }
    read = {key: (row["width"], row["height"], row["reason"]) for key, row in rows.items()}
    assert read == {  # as the filter read them: a whole number, else null
        "fraction": (None, 480, "size_not_numeric"),
        "word": (None, 480, "size_not_numeric"),
        "nan": (None, 480, "size_not_numeric"),
        "small": (100, 480, "image_too_small"),
        "float": (None, 480, "size_not_numeric"),
    }
    kept = pq.read_table(tmp_path / "out" / "part-00000.parquet")
    assert kept.schema.names == [*PAIR_COLUMNS, "language", "language_score"]  # no *_found
    assert kept.drop_columns(["language", "language_score"]).to_pylist()[0] == {
        "key": "padded",
        "caption": CAPTIONS[3],
        "url": None,
        "width": 640,
        "height": 480,
        "image": None,
    }


# Every numeric option: range-checked where it is parsed


@pytest.mark.parametrize(
    "flag, value, says",
    [
        ("--memory-limit", "4", "expected a size such as 4GB"),
        ("--memory-limit", "lots", "expected a size such as 4GB"),
        ("--memory-limit", "1MB", "DuckDB needs at least 64MiB"),
        ("--memory-limit", "0%", "a share of the RAM is above 0%"),
        ("--memory-limit", "150%", "at most 100%"),
        ("--spark-master", "local[0]", "expected local, local[N]"),
        ("--spark-master", "nowhere", "expected local, local[N]"),
        ("--threads", "0", "--threads 0: must be at least 1"),
        ("--workers", "0", "--workers 0: must be at least 1"),
        ("--shard-rows", "0", "--shard-rows 0: must be at least 1"),
        ("--language-seed", "-1", "--language-seed -1: must be at least 0"),
        ("--language-sample", "0", "expected a number of rows"),
        ("--max-aspect-ratio", "nan", "must be a finite number"),
        ("--eval-radius", "65", "--eval-radius 65: must be between 0 and 64"),
    ],
)
def test_a_numeric_option_out_of_range_is_one_line(tmp_path, capsys, flag, value, says):
    argv = ["--input", str(tmp_path), "--output", str(tmp_path / "out"), flag, value]
    assert filter_main(argv) == 2
    error_line(capsys, "filter.py", says)


def test_every_numeric_option_has_its_range():
    """An int or float option the parser reads is checked: OPTION_CHECKS, or a threshold's
    field."""
    thresholds = {option.field for option in options()}
    numeric = {a.dest for a in _parser()._actions if a.type in (int, float)}
    checked = {flag.lstrip("-").replace("-", "_") for flag in OPTION_CHECKS}
    assert numeric - thresholds - checked == set()
    assert checked <= numeric
