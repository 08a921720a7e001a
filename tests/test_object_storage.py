"""Inputs and outputs on object storage and URLs, against a real S3 server on 127.0.0.1.

The server is moto in server mode, spoken to over HTTP by s3fs/botocore as a real bucket would
be; http(s) inputs come from http.server. Nothing is mocked inside the client.
"""

from __future__ import annotations

import functools
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mling.common.atomic
import mling.train
from mling.common.atomic import MARKER, WRITING
from mling.common.errors import InputError
from mling.filtering.pipeline import main as filter_main
from mling.pairs.shards import expand_inputs, iter_pair_batches, write_webdataset_shards
from mling.vocab.build_vocab import main as vocab_main
from tests.helpers import train_fixtures
from tests.helpers.filter_cases import EVAL_URL, OPTIONS, write_reason_fixture
from tests.helpers.multilingual import CAPTIONS
from tests.helpers.one_line import check_one_line, error_line
from tests.helpers.toy_pairs import write_toy_shards
from tests.helpers.train_fixtures import free_port, tiny_argv

s3fs = pytest.importorskip("s3fs")
pytest.importorskip("moto")

toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


@pytest.fixture(scope="module")
def s3_endpoint():
    """`python -m moto.server` on a free port of 127.0.0.1, for this module; stopped after."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


def _fresh_clients() -> None:
    """fsspec keeps one client per set of arguments; the environment is read when it is made."""
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch, tmp_path):
    """A new bucket on the server, with the standard variables pointing at it; its `s3://` URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # the stand-ins of URL outputs
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr("tempfile.tempdir", None)
    _fresh_clients()
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem().mkdir(name)
    yield f"s3://{name}"
    _fresh_clients()


def upload(local: Path, url: str) -> None:
    s3fs.S3FileSystem().put(str(local), url.removeprefix("s3://"), recursive=True)


def objects(url: str) -> set[str]:
    """Object names under a prefix, relative to it."""
    prefix = url.removeprefix("s3://")
    return {name[len(prefix) + 1 :] for name in s3fs.S3FileSystem().find(prefix)}


# ---- reading: globs, brace ranges, folders, http ----


@pytest.fixture
def toy_on_s3(tmp_path, bucket):
    """Three parquet shards of 8 toy pairs and their webdataset copy, local and on s3."""
    local = tmp_path / "toy"
    write_toy_shards(local, 24, side=16, shard_rows=8)
    write_webdataset_shards(iter_pair_batches([local]), tmp_path / "wds", shard_rows=12)
    upload(local, f"{bucket}/toy")
    upload(tmp_path / "wds", f"{bucket}/wds")
    return local, f"{bucket}/toy"


def _keys(paths) -> list[str]:
    return [k for b in iter_pair_batches(paths, columns=["key"]) for k in b.column(0).to_pylist()]


def test_brace_ranges_globs_and_folders_on_s3_read_what_the_local_shards_hold(toy_on_s3, bucket):
    local, remote = toy_on_s3
    expected = _keys([local])
    assert len(expected) == 24
    assert _keys([f"{remote}/part-{{00000..00002}}.parquet"]) == expected
    assert _keys([f"{remote}/*.parquet"]) == expected
    assert _keys([remote]) == expected  # a prefix, read flat like a folder
    assert sorted(_keys([f"{bucket}/wds/shard-{{00000..00001}}.tar"])) == sorted(expected)
    found = expand_inputs([f"{remote}/part-{{00000..00002}}.parquet"])
    assert [str(p) for p in found] == [f"{remote}/part-{i:05d}.parquet" for i in range(3)]


def test_a_brace_range_or_glob_that_matches_nothing_on_s3_is_one_line(toy_on_s3, capsys):
    _, remote = toy_on_s3
    with pytest.raises(InputError, match=r"input not found: .*part-00003\.parquet"):
        expand_inputs([f"{remote}/part-{{00000..00003}}.parquet"])  # the fourth is missing
    assert filter_main(["--input", f"{remote}/*.tar", "--output", "x", "--quiet"]) == 2
    assert error_line(capsys, "filter.py") == f"filter.py: input not found: {remote}/*.tar"


def test_http_inputs_from_a_local_web_server(tmp_path):
    write_toy_shards(tmp_path / "toy", 16, side=16, shard_rows=8)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/toy"
        assert _keys([f"{base}/part-{{00000..00001}}.parquet"]) == _keys([tmp_path / "toy"])
        with pytest.raises(InputError, match="input not found"):
            expand_inputs([f"{base}/part-00002.parquet"])
    finally:
        server.shutdown()


# ---- the filter: s3 in, s3 out, the marker last ----


class Recorder:
    """A filesystem that notes every object it writes or removes, in order."""

    def __init__(self, fs, log: list):
        self._fs, self._log = fs, log

    def __getattr__(self, name):
        method = getattr(self._fs, name)
        if name not in ("put_file", "pipe_file", "rm", "rm_file"):
            return method

        def recorded(*args, **kwargs):
            target = args[1] if name == "put_file" else args[0]
            self._log.append((name, target))
            return method(*args, **kwargs)

        return recorded


def _filter_argv(inputs: str, output: str, hashes: Path, *extra: str) -> list[str]:
    return ["--input", inputs, "--output", output, "--write-rejected", "--quiet",
            "--eval-hashes", str(hashes), *OPTIONS, *extra]  # fmt: skip


def _kept(table: pa.Table) -> list:
    return sorted(table.column("key").to_pylist(), key=str)


@pytest.mark.slow
def test_filter_from_s3_to_s3_keeps_what_it_keeps_locally_and_marks_it_last(
    tmp_path, bucket, monkeypatch, capsys
):
    write_reason_fixture(tmp_path / "in")
    hashes = tmp_path / "eval-hashes.txt"
    assert EVAL_URL in hashes.read_text()
    assert filter_main(_filter_argv(str(tmp_path / "in"), str(tmp_path / "out"), hashes)) == 0
    upload(tmp_path / "in", f"{bucket}/in")
    log: list = []
    real = mling.common.atomic.filesystem
    monkeypatch.setattr(
        mling.common.atomic, "filesystem", lambda url: (Recorder(real(url)[0], log), real(url)[1])
    )
    out = f"{bucket}/filtered"
    assert filter_main(_filter_argv(f"{bucket}/in/*.parquet", out, hashes)) == 0

    local_kept = pq.read_table(sorted((tmp_path / "out").glob("part-*.parquet")))
    fs = s3fs.S3FileSystem()
    remote_kept = pq.read_table([p for p in fs.glob(f"{out[5:]}/part-*.parquet")], filesystem=fs)
    assert _kept(remote_kept) == _kept(local_kept) and remote_kept.num_rows > 0
    assert objects(out) >= {MARKER, "report.json", "rejected/part-00000.parquet"}
    assert WRITING not in objects(out)
    writes = [target.rsplit("/", 1)[-1] for name, target in log if name != "rm"]
    assert writes[0] == WRITING and writes[-2:] == [MARKER, WRITING]  # MARKER last, then clean up
    assert [name for name, _ in log][-1] == "rm_file"
    report = json.loads(fs.cat(f"{out[5:]}/report.json"))
    assert report["accounting"]["kept"] == local_kept.num_rows

    # an upload that never finished: readers refuse it, a rerun needs --overwrite
    fs.rm(f"{out[5:]}/{MARKER}")
    fs.pipe(f"{out[5:]}/{WRITING}", b"{}")
    capsys.readouterr()
    assert filter_main(_filter_argv(out, str(tmp_path / "again"), hashes)) == 2
    assert "still being uploaded, or whose upload was killed" in error_line(capsys, "filter.py")
    with pytest.raises(InputError, match="upload was killed"):
        expand_inputs([f"{out}/rejected"])  # one level down is part of it too
    assert filter_main(_filter_argv(f"{bucket}/in", out, hashes)) == 2
    assert "upload never finished; pass --overwrite" in error_line(capsys, "filter.py")
    assert filter_main(_filter_argv(f"{bucket}/in", out, hashes, "--overwrite")) == 0
    assert MARKER in objects(out) and WRITING not in objects(out)
    assert _kept(pq.read_table(fs.glob(f"{out[5:]}/part-*.parquet"), filesystem=fs)) == _kept(
        local_kept
    )


def test_s3_outputs_are_never_destructive(tmp_path, bucket, capsys):
    write_reason_fixture(tmp_path / "in")
    hashes = tmp_path / "eval-hashes.txt"
    upload(tmp_path / "in", f"{bucket}/in")
    fs = s3fs.S3FileSystem()
    fs.pipe(f"{bucket[5:]}/theirs/data.csv", b"a,b\n")
    for extra in ((), ("--overwrite",)):
        assert filter_main(_filter_argv(f"{bucket}/in", f"{bucket}/theirs", hashes, *extra)) == 2
        assert "this toolkit did not write" in error_line(capsys, "filter.py")
    assert objects(f"{bucket}/theirs") == {"data.csv"}
    assert filter_main(_filter_argv(f"{bucket}/in", f"{bucket}/in", hashes)) == 2
    assert "would replace the input" in error_line(capsys, "filter.py")
    assert filter_main(_filter_argv(f"{bucket}/in", f"{bucket}/theirs/data.csv", hashes)) == 2
    assert "is an object (a file)" in error_line(capsys, "filter.py")
    assert filter_main(_filter_argv(f"{bucket}/in", "s3://no-such-bucket-here/x", hashes)) == 2
    assert "the bucket does not exist" in error_line(capsys, "filter.py")
    argv = _filter_argv(f"{bucket}/in", f"{bucket}/ours", hashes, "--work-dir", f"{bucket}/w")
    assert filter_main(argv) == 2
    assert "--work-dir s3://" in error_line(capsys, "filter.py") and not objects(f"{bucket}/ours")


# ---- the vocabulary builder: s3 in, s3 out ----


@pytest.mark.slow
def test_build_vocab_reads_s3_and_publishes_to_s3(tmp_path, bucket):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for language in ("en", "de", "ja", "ar", "hi", "ru"):
        text = "\n".join(f"{a} {b}" for a in CAPTIONS[language] for b in CAPTIONS[language])
        (corpus / f"captions.{language}.txt").write_text(text + "\n", encoding="utf-8")
    upload(corpus, f"{bucket}/corpus")
    out = f"{bucket}/vocab"
    argv = ["--input", f"{bucket}/corpus/captions.{{en,de,ja,ar,hi,ru}}.txt", "--output", out,
            "--vocab-size", "400", "--lang-from-filename", "*.{lang}.txt"]  # fmt: skip
    assert argv[4] == "--vocab-size"
    assert vocab_main(argv) == 0
    assert objects(out) >= {MARKER, "vocab.txt", "tokenizer.json", "report.json"}
    assert WRITING not in objects(out)
    fs = s3fs.S3FileSystem()
    report = json.loads(fs.cat(f"{out[5:]}/report.json"))
    assert report["output"] == out
    local = ["--input", str(corpus / "captions.{en,de,ja,ar,hi,ru}.txt")]
    local += ["--output", str(tmp_path / "v")]
    assert vocab_main([*local, *argv[4:]]) == 0  # the same build on the local files
    assert fs.cat(f"{out[5:]}/vocab.txt") == (tmp_path / "v" / "vocab.txt").read_bytes()
    local_report = json.loads((tmp_path / "v" / "report.json").read_text())
    assert report["corpus"] == local_report["corpus"]
    assert vocab_main(argv) == 2  # an earlier output of ours: --overwrite replaces it
    assert vocab_main([*argv, "--overwrite"]) == 0


# ---- training: streaming from s3, resumed ----


def _losses(output: Path) -> list[tuple[int, float]]:
    lines = (output / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [(record["step"], record["loss"]) for record in map(json.loads, lines)]


@pytest.mark.slow
def test_training_streams_from_s3_and_resumes_to_the_same_losses(
    tmp_path, bucket, toy_tokenizer, capsys
):
    """Parquet and webdataset shards on s3, two loader workers reading them with fsspec."""
    local = tmp_path / "toy"
    write_toy_shards(local, 96, side=24, shard_rows=48)
    write_webdataset_shards(iter_pair_batches([local]), tmp_path / "wds", shard_rows=96)
    upload(local, f"{bucket}/toy")
    upload(tmp_path / "wds", f"{bucket}/wds")
    data = [f"{bucket}/toy/part-{{00000..00001}}.parquet", f"{bucket}/wds/*.tar"]

    def argv(output: Path, *extra: str) -> list[str]:
        base = tiny_argv(Path("x"), toy_tokenizer, output, "--num-workers", "2", *extra)
        where = base.index("--train-data")
        return [*base[: where + 1], *data, *base[where + 2 :]]

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert mling.train.main(argv(straight, "--max-steps", "4")) == 0
    assert "192 pairs" in capsys.readouterr().err  # both layouts, every row, read from s3
    assert mling.train.main(argv(resumed, "--max-steps", "2", "--decay-steps", "4")) == 0
    assert mling.train.main(argv(resumed, "--max-steps", "4", "--resume", "latest")) == 0
    assert [step for step, _ in _losses(straight)] == [1, 2, 3, 4]
    assert _losses(resumed) == _losses(straight)


def test_training_output_dir_must_be_local(tmp_path, bucket, capsys, toy_tokenizer):
    argv = tiny_argv(tmp_path, toy_tokenizer, Path("x"), "--max-steps", "1")
    argv[argv.index("--output-dir") + 1] = f"{bucket}/run"
    assert mling.train.main(argv) == 2
    line = error_line(capsys, "train.py")
    assert f"--output-dir {bucket}/run: must be a local folder" in line
    assert not objects(bucket)


@pytest.mark.parametrize(
    "entry",
    [
        ["data/synthetic.py", "--pairs", "10"],
        ["mling/export.py", "--checkpoint", "runs/x"],
        ["eval/multi30k.py", "--model", "m", "--multi30k", "m30k", "--images", "img"],
        ["eval/retrieval_set.py", "--model", "m", "--captions", "c.jsonl", "--images", "img"],
    ],
    ids=["synthetic", "export", "multi30k", "retrieval_set"],
)
def test_outputs_that_stay_local_refuse_a_url_in_one_line(tmp_path, entry):
    """Not a local folder named `s3:` made without a word: the URL is refused before any work."""
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, str(root / entry[0]), *entry[1:], "--output", "s3://bucket/out"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    prog = Path(entry[0]).name
    check_one_line(done.stderr.strip().splitlines(), prog, "--output s3://bucket/out: must be a")
    assert not list(tmp_path.iterdir())


# ---- one-line errors ----


def test_an_unreachable_endpoint_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries, as a user sets them
    _fresh_clients()
    try:
        assert filter_main(["--input", "s3://bucket/laion/{00000..00010}.tar",
                            "--output", str(tmp_path / "out"), "--quiet"]) == 2  # fmt: skip
        line = error_line(capsys, "filter.py")
        assert line.startswith("filter.py: cannot reach s3://bucket/laion/00000.tar")
        assert "AWS_ENDPOINT_URL" in line
    finally:
        _fresh_clients()


def test_a_missing_s3fs_is_one_line_saying_what_to_install(tmp_path, monkeypatch, capsys):
    import fsspec.registry  # noqa: F401  (the module, for its private table below)

    registry = sys.modules["fsspec.registry"]._registry  # imported implementations, by protocol
    monkeypatch.delitem(registry, "s3", raising=False)
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs now fails
    assert filter_main(["--input", "s3://bucket/x.parquet", "--output", str(tmp_path)]) == 2
    assert error_line(capsys, "filter.py") == (
        "filter.py: reading s3://bucket/x.parquet needs s3fs: pip install s3fs "
        "(or pip install 'mling-align[s3]')"
    )
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    monkeypatch.delitem(registry, "gs", raising=False)
    argv = ["--input", "gs://b/c.txt", "--output", str(tmp_path / "v"), "--vocab-size", "300"]
    assert vocab_main(argv) == 2
    assert "needs gcsfs: pip install gcsfs" in error_line(capsys, "build_vocab.py")
