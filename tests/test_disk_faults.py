"""The file system saying no, with real OS errors: a file-size limit (`ulimit -f`, EFBIG, set
in a process of its own), a folder nobody may write in (sysfs, EPERM even for root). Each is
one line naming the file or the output, exit 2, and what was there before is still there."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mling.common.errors import InputError, file_system_error, file_system_errors
from mling.evaluation import multi30k
from mling.vocab.build_vocab import main as build_vocab_main
from tests.helpers.eval_fixtures import tiny_models, write_images, write_multi30k
from tests.helpers.multilingual import CAPTIONS
from tests.helpers.one_line import check_one_line, error_line

ROOT = Path(__file__).resolve().parents[1]
LIMITED = (
    "import resource, runpy, sys\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "sys.argv = sys.argv[2:]\n"
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
)


def run_limited(limit: int, module: str, *argv: str) -> subprocess.CompletedProcess:
    """`python -m module argv...` where no file may grow past `limit` bytes (writes past it
    fail with EFBIG: Python ignores SIGXFSZ)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-c", LIMITED, str(limit), module, *argv]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def beside(folder: Path) -> list[str]:
    """What runs on `folder` left beside it: staging, scratch, locks (`.NAME.*`)."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_a_size_limit_in_the_vocabulary_keeps_the_earlier_vocabulary(tmp_path):
    corpus = tmp_path / "corpus.txt"
    lines = [f"{c} {i}" for i in range(20) for captions in CAPTIONS.values() for c in captions]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "vocab"
    argv = ["--input", str(corpus), "--output", str(out), "--vocab-size", "400"]
    assert build_vocab_main(argv) == 0
    before = files(out)
    done = run_limited(2000, "mling.vocab.build_vocab", *argv, "--overwrite")
    assert done.returncode == 2, done.stderr
    line = check_one_line(done.stderr.strip().splitlines(), "build_vocab.py", "(EFBIG)")
    assert str(out) in line and "`ulimit -f`" in line
    assert files(out) == before and beside(out) == []


def test_a_size_limit_in_an_evaluation_keeps_the_earlier_report(tmp_path, tiny_tokenizer_dir):
    names = write_multi30k(tmp_path / "multi30k")
    write_images(tmp_path / "images", names)
    (model,) = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["mling"])
    out = tmp_path / "eval"
    argv = ["--multi30k", str(tmp_path / "multi30k"), "--images", str(tmp_path / "images")]
    argv += ["--model", str(model), "--languages", "en,cs", "--output", str(out)]
    assert multi30k.main(argv) == 0
    before = files(out)
    # the embeddings come from the cache; the report's figure is past the limit
    done = run_limited(4000, "mling.evaluation.multi30k", *argv)
    assert done.returncode == 2, done.stderr
    check_one_line(done.stderr.strip().splitlines(), "multi30k.py", "File too large (EFBIG)")
    assert files(out) == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".report.")] == []


@pytest.mark.parametrize(
    ("module", "prog", "argv"),
    [
        ("mling.synthetic.generate", "synthetic.py",
         ["--pairs", "40", "--test-images", "4", "--reuse-threshold", "3", "--workers", "1",
          "--quiet"]),
        ("mling.emoji_set.build", "emoji_set.py",
         ["--pins", str(ROOT / "tests/fixtures/emoji/pins.json"), "--min-names", "3",
          "--cache", str(ROOT / "tests/fixtures/emoji"), "--workers", "1"]),
    ],
)  # fmt: skip
def test_a_size_limit_leaves_no_output_and_no_scratch(tmp_path, module, prog, argv):
    out = tmp_path / "new" / "out"
    done = run_limited(3000, module, *argv, "--output", str(out))
    assert done.returncode == 2, done.stderr
    check_one_line(done.stderr.strip().splitlines(), prog, "File too large (EFBIG)")
    assert not (tmp_path / "new").exists()  # nor the folder it made for it


@pytest.fixture
def forbidden() -> Path:
    """A folder in which nobody, root included, may create anything: sysfs refuses mkdir."""
    probe = Path("/sys/mling-probe")
    try:
        probe.mkdir()
    except PermissionError:
        return Path("/sys")
    except OSError:
        pass
    else:
        probe.rmdir()
    pytest.skip("no folder here refuses root")


def test_a_folder_nobody_may_write_is_one_line(tmp_path, forbidden, tiny_tokenizer_dir, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CAPTIONS["de"]) + "\n", encoding="utf-8")
    argv = ["--input", str(corpus), "--output", str(forbidden / "mling-vocab")]
    assert build_vocab_main([*argv, "--vocab-size", "200"]) == 2
    error_line(capsys, "build_vocab.py", f"{forbidden}/")
    names = write_multi30k(tmp_path / "multi30k")
    write_images(tmp_path / "images", names)
    (model,) = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["mling"])
    capsys.readouterr()
    argv = ["--multi30k", str(tmp_path / "multi30k"), "--images", str(tmp_path / "images")]
    argv += ["--model", str(model), "--output", str(forbidden / "mling-eval")]
    assert multi30k.main(argv) == 2
    line = error_line(capsys, "multi30k.py", f"{forbidden / 'mling-eval'}: ")
    assert "no permission; give a path you may use" in line


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/out/a.parquet"),
         "/out/a.parquet: No space left on device (ENOSPC); free some space"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "/out: Disk quota exceeded (EDQUOT)"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/x"), "/ro/x: Read-only file system"),
        (PermissionError(errno.EACCES, "Permission denied", "/x"), "/x: Permission denied (EACCES)"),
        (OSError("[Errno 28] Error writing bytes to file"), "/out: No space left on device"),
        (Exception("No space left on device (os error 28)"), "/out: No space left on device"),
    ],
)  # fmt: skip
def test_the_file_systems_refusals_become_one_line(error, says):
    """As pyarrow (errno in the text) and Rust libraries (`os error N`) report them too."""
    assert str(file_system_error(error, "/out")).startswith(says)
    with pytest.raises(InputError, match="^" + re.escape(says)), file_system_errors("/out"):
        raise error


def test_other_errors_pass_through():
    assert file_system_error(FileNotFoundError(errno.ENOENT, "No such file", "/x")) is None
    assert file_system_error(ValueError("[Errno] not one")) is None
    with pytest.raises(KeyError), file_system_errors("/out"):
        raise KeyError("a bug stays a traceback")
