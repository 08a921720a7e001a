"""kill -9 of a vocabulary build and of an evaluation at several points: no output that looks
complete, no process left, scratch reclaimed by the next run, which succeeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mling.evaluation import multi30k
from mling.vocab.build_vocab import main as build_vocab_main
from tests.helpers.eval_fixtures import tiny_models, write_images, write_multi30k
from tests.helpers.kill import alive, children_of, kill_when
from tests.helpers.multilingual import CAPTIONS


def leftovers(folder: Path, name: str) -> list[str]:
    """What runs on `folder/name` left beside it: staging, scratch, lock (`.NAME.*`)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.slow
def test_a_vocabulary_build_killed_anywhere_leaves_nothing_that_looks_built(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    languages = sorted(CAPTIONS)
    with corpus.open("w", encoding="utf-8") as file:
        for i in range(60_000):  # a few seconds of work: time to be killed in each stage
            captions = CAPTIONS[languages[i % len(languages)]]
            caption = f"{captions[i % len(captions)]} {captions[i // 7 % len(captions)]} {i}"
            row = {"caption": caption, "language": languages[i % len(languages)]}
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
    out = tmp_path / "vocab"
    argv = ["--input", str(corpus), "--lang-column", "language", "--output", str(out)]
    argv += ["--vocab-size", "1500"]

    def scratch(pattern: str):
        return lambda pid: bool(list(tmp_path.glob(f".vocab.{pattern}")))

    points = {
        "census": scratch("work-*/labels.u16"),
        "sample stream": lambda pid: bool(children_of(pid)),  # its forked child runs
        "saved, not reported": scratch("tmp-*/vocab.txt"),
    }
    for point, reached in points.items():
        children = kill_when("mling.vocab.build_vocab", argv, reached)
        assert alive(children) == [], f"{point}: children outlived the build"
        assert not out.exists(), f"{point}: an output that looks built"
        assert leftovers(tmp_path, "vocab"), f"{point}: the kill left no scratch?"
    assert build_vocab_main(argv) == 0
    assert (out / "vocab.txt").is_file() and (out / "report.json").is_file()
    assert leftovers(tmp_path, "vocab") == []  # reclaimed by the run that followed


@pytest.mark.slow
def test_an_evaluation_killed_anywhere_leaves_no_report_that_looks_whole(
    tmp_path, tiny_tokenizer_dir
):
    names = write_multi30k(tmp_path / "multi30k")
    write_images(tmp_path / "images", names)
    models = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["a", "b"])
    out = tmp_path / "eval"
    argv = ["--multi30k", str(tmp_path / "multi30k"), "--images", str(tmp_path / "images")]
    argv += [flag for model in models for flag in ("--model", str(model))]
    argv += ["--output", str(out), "--batch-size", "2"]

    # between two models' embeddings, into a new folder: no report; the folder is ours
    children = kill_when("mling.evaluation.multi30k", argv, lambda pid: any(out.glob("cache/*")))
    assert alive(children) == []
    assert not (out / "report.json").exists()
    assert multi30k.main(argv) == 0  # the rerun takes the folder (and its cache) back
    report = (out / "report.json").read_bytes()
    assert leftovers(out, "report") == []

    # while the reports are written over an earlier run's: that run's report, whole, or none
    def writing_reports(pid: int) -> bool:
        return any(out.glob(".report.tmp-*/*"))

    kill_when("mling.evaluation.multi30k", argv, writing_reports)  # embeddings from the cache
    assert not (out / "report.json").exists() or (out / "report.json").read_bytes() == report
    assert leftovers(out, "report")
    assert multi30k.main(argv) == 0
    assert json.loads((out / "report.json").read_text())
    assert leftovers(out, "report") == []
