"""sample.py: the census read in parallel parts is exactly the census of one pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mling.vocab import sample as sample_module
from mling.vocab.corpus_reader import CorpusConfig, discover
from mling.vocab.labels import Labeler
from mling.vocab.sample import SamplingConfig, take_census
from tests.helpers.multilingual import CAPTIONS


def write_files(root: Path) -> CorpusConfig:
    """Per-language files, English in two of them, so that languages recur across parts,
    plus an empty file whose warning a child part must hand back."""
    root.mkdir()
    names = sorted(CAPTIONS)
    for index, language in enumerate(names):
        lines = [f"{caption} {k}" for k in range(40) for caption in CAPTIONS[language]]
        (root / f"{index:02d}.{language}.txt").write_text("\n".join(lines) + "\n", "utf-8")
    english = [f"{caption} again {k}" for k in range(60) for caption in CAPTIONS["en"]]
    (root / "99.en.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    (root / "98.de.txt").write_bytes(b"")
    return CorpusConfig(inputs=(str(root),), lang_from_filename="*.{lang}.txt")


@pytest.mark.parametrize("workers", [2, 3])
def test_census_in_parts_equals_one_pass(tmp_path, monkeypatch, capsys, workers):
    corpus = write_files(tmp_path / "corpus")
    sampling = SamplingConfig(holdout=0.1, report_lines=7, seed=3)
    # A small character limit, so that English reaches it in one part and stops in the next.
    monkeypatch.setattr(sample_module, "CHAR_COUNT_LIMIT", 3_000)

    def census(parts: int, cache: Path):
        skipped: Counter[str] = Counter()
        sources = discover(corpus, skipped)
        return take_census(sources, corpus, sampling, Labeler(), cache, workers=parts)

    one = census(1, tmp_path / "one.u16")
    one_err = capsys.readouterr().err
    split = census(workers, tmp_path / "split.u16")
    split_err = capsys.readouterr().err
    assert len(sample_module._split_sources(discover(corpus, Counter()), workers)) == workers
    assert split == one  # languages, counts, characters, held-out lines, skips, label sources
    monkeypatch.setattr(sample_module, "CHAR_COUNT_LIMIT", 10**9)
    unlimited = census(workers, tmp_path / "unlimited.u16")
    assert 3_000 < one.char_counts["en"].total() < unlimited.char_counts["en"].total()
    assert np.array_equal(
        np.fromfile(tmp_path / "split.u16", np.uint16), np.fromfile(tmp_path / "one.u16", np.uint16)
    )
    assert not list(tmp_path.glob("split.u16.*"))  # the parts' caches are merged and gone
    assert "98.de.txt: empty file" in split_err and split_err == one_err
