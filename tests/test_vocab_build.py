"""build_vocab.py end to end: the output contract, fast/slow agreement, determinism, the
report, unigram, --report-only, small vocabularies and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from mling.vocab.build_vocab import PROG, main
from mling.vocab.normalization import SPECIAL_TOKENS
from tests.helpers.multilingual import ALL_CAPTIONS, CAPTIONS
from tests.helpers.one_line import error_line

ROOT = Path(__file__).resolve().parent.parent
# Text the agreement must hold on beyond the captions: mixed scripts and punctuation, emoji,
# combining marks (NFC), kana and Thai runs, literal special tokens, tabs and newlines.
TRICKY = [
    "Ein Hund (brown) läuft – «vite» über 3,5 km!",
    "Tiếng Việt có dấu: người, đường, nước.",
    "नमस्ते दुनिया। हिन्दी में वाक्य",
    "カタカナとひらがなの文、漢字も。",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ" * 4,  # one 116-character word: [UNK] in both
    "Emoji 🐕🐈 and symbols €, °C, №, ™",
    "[MASK] is kept, [UNK] too, [CLS]x",
    "tab\there\nnewline and  double  spaces",
    "Ελληνικά: ο σκύλος τρέχει.",
    "العربية: كلب يجري في العشب",
    "한국어 문장입니다. 고양이가 잔다.",
    "ሰላም፡ለዓለም። ውሻ፡ይሮጣል።",
]


def write_corpus(path: Path, repeat: int = 6) -> Path:
    """JSONL of parallel captions: each language's captions paired, with their English."""
    english = CAPTIONS["en"]
    with open(path, "w", encoding="utf-8") as file:
        for language, captions in CAPTIONS.items():
            for i in range(len(captions)):
                for j in range(repeat):
                    row = {
                        "caption": f"{captions[i]} {captions[j]}",
                        "language": language,
                        "english": f"{english[i]} {english[j]}",
                    }
                    file.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def build(tmp_path: Path, name: str, *extra: str, vocab_size: int = 2000) -> Path:
    corpus = tmp_path / "corpus.jsonl"
    if not corpus.exists():
        write_corpus(corpus)
    out = tmp_path / name
    args = ["--input", str(corpus), "--output", str(out), "--vocab-size", str(vocab_size)]
    args += ["--lang-column", "language", "--english-column", "english", "--holdout", "0.2"]
    assert main(args + list(extra)) == 0
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("vocab"), "vocab")


def fast_and_slow(directory: Path):
    from transformers import AutoTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    return AutoTokenizer.from_pretrained(directory), BertTokenizerLegacy.from_pretrained(directory)


def test_output_loads_as_bert_tokenizer_fast(built):
    from transformers import AutoTokenizer, BertTokenizerFast

    tokenizer = AutoTokenizer.from_pretrained(built)
    assert isinstance(tokenizer, BertTokenizerFast)
    assert tokenizer.convert_ids_to_tokens(list(range(5))) == list(SPECIAL_TOKENS)
    assert tokenizer.model_max_length == 64
    vocab = (built / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert vocab == tokenizer.convert_ids_to_tokens(list(range(len(vocab))))
    assert len(vocab) == len(tokenizer) == 2000
    ids = tokenizer(" ".join(ALL_CAPTIONS), truncation=True)["input_ids"]
    assert len(ids) == 64 and ids[0] == 2 and ids[-1] == 3  # [CLS] ... [SEP]


@pytest.mark.parametrize("lowercase", [False, True])
def test_fast_and_slow_tokenizers_agree(built, tmp_path, lowercase):
    directory = build(tmp_path, "lower", "--lowercase") if lowercase else built
    fast, slow = fast_and_slow(directory)
    assert slow.basic_tokenizer.do_lower_case is lowercase
    texts = [unicodedata.normalize("NFC", text) for text in ALL_CAPTIONS + TRICKY]
    for text in texts:
        assert fast(text)["input_ids"] == slow(text)["input_ids"], text
    assert fast.unk_token_id in fast(TRICKY[4])["input_ids"]  # the long run, in both


def test_scripts_without_spaces_become_pieces_not_unk(built):
    fast, _ = fast_and_slow(built)
    for language in ("th", "ja"):
        for caption in CAPTIONS[language]:
            tokens = fast.tokenize(caption)
            assert "[UNK]" not in tokens, (caption, tokens)
            word_pieces = [t.removeprefix("##") for t in tokens if len(t.removeprefix("##")) > 1]
            assert word_pieces, tokens  # learned multi-character pieces, not one per letter


def test_report_per_language(built):
    report = json.loads((built / "report.json").read_text(encoding="utf-8"))
    assert set(report["languages"]) == set(CAPTIONS)
    for language, row in report["languages"].items():
        assert row["unk_rate"] == 0.0, language
        assert row["fertility"] >= 1.0
        assert (row["parity"] is None) == (language == "en")
    assert report["summary"]["parity"]["languages"] == 15
    assert report["scripts"]["Latin"]["tokens"] > 0 and "Thai" in report["scripts"]
    assert report["sample"]["lines"] > 0 and report["corpus"]["skipped"] == {}
    assert report["vocab_size"] == 2000
    markdown = (built / "report.md").read_text(encoding="utf-8")
    assert "## Per language" in markdown and "| th | Thai |" in markdown
    assert "\nScripts: Latin " in markdown and "- most tokens per word (" in markdown
    assert (built / "report.png").stat().st_size > 10_000


def test_same_input_and_seed_give_the_same_vocabulary_across_processes(tmp_path):
    """Each build runs in its own interpreter: the trainer's hash maps are seeded per process."""
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    outputs = []
    for name in ("a", "b"):
        command = [sys.executable, str(ROOT / "tokenizer_training" / "build_vocab.py")]
        command += ["--input", str(corpus), "--output", str(tmp_path / name)]
        command += ["--vocab-size", "2500", "--lang-column", "language", "--seed", "7"]
        subprocess.run(command, check=True, capture_output=True, cwd=tmp_path)
        outputs.append(tmp_path / name)
    for file in ("vocab.txt", "tokenizer.json"):
        assert (outputs[0] / file).read_bytes() == (outputs[1] / file).read_bytes()


def test_a_different_seed_draws_a_different_sample(tmp_path):
    first = build(tmp_path, "s1", "--seed", "1", "--alpha", "0.5")
    second = build(tmp_path, "s2", "--seed", "2", "--alpha", "0.5")
    sampled = [
        json.loads((d / "report.json").read_text())["sample"]["languages"] for d in (first, second)
    ]
    assert sampled[0] != sampled[1]


def test_the_sample_follows_the_budget_and_the_smoothing(tmp_path):
    corpus = tmp_path / "skewed.jsonl"
    with open(corpus, "w", encoding="utf-8") as file:  # English 9x larger than Thai
        for language, repeat in (("en", 54), ("th", 6)):
            for i in range(repeat):
                for caption in CAPTIONS[language]:
                    row = {"caption": f"{caption} {i}", "language": language}
                    file.write(json.dumps(row, ensure_ascii=False) + "\n")
    out = tmp_path / "budget"
    args = ["--input", str(corpus), "--output", str(out), "--vocab-size", "600"]
    assert main(args + ["--lang-column", "language", "--max-sentences", "120"]) == 0
    sample = json.loads((out / "report.json").read_text(encoding="utf-8"))["sample"]
    assert 100 <= sample["lines"] <= 140  # 120 expected, drawn line by line
    lines = {lang: row["sampled_lines"] for lang, row in sample["languages"].items()}
    # alpha 0.3: Thai's share is 9^-0.3 / (1 + 9^-0.3) = 0.34 of the sample, not its 0.10.
    assert 0.25 < lines["th"] / sample["lines"] < 0.43
    assert sample["languages"]["th"]["rate"] > 1 > sample["languages"]["en"]["rate"]


def test_unigram_is_exported_in_the_same_form(built, tmp_path):
    unigram = build(tmp_path, "unigram", "--algorithm", "unigram")
    fast, slow = fast_and_slow(unigram)
    for text in ALL_CAPTIONS + TRICKY:
        assert fast(text)["input_ids"] == slow(text)["input_ids"], text
    report = json.loads((unigram / "report.json").read_text(encoding="utf-8"))
    assert report["algorithm"] == "unigram"
    assert all(row["unk_rate"] == 0.0 for row in report["languages"].values())
    ours = (unigram / "vocab.txt").read_text(encoding="utf-8")
    assert ours != (built / "vocab.txt").read_text(encoding="utf-8")


def test_small_vocabulary_still_builds_and_says_what_it_left_out(tmp_path):
    out = build(tmp_path, "tiny", vocab_size=200)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["vocab_size"] <= 200
    assert report["alphabet"]["dropped"]["coverage"] > 0  # 16 scripts do not fit in 100 slots
    fast, _ = fast_and_slow(out)
    assert len(fast) <= 200


def test_report_only_compares_vocabularies(built, tmp_path, capsys):
    other = build(tmp_path, "other", vocab_size=1000)
    corpus = write_corpus(tmp_path / "heldout.jsonl", repeat=1)
    args = ["--report-only", "--tokenizer", str(built), str(other), "--input", str(corpus)]
    args += ["--lang-column", "language", "--english-column", "english"]
    assert main(args + ["--output", str(tmp_path / "compare")]) == 0
    report = json.loads((tmp_path / "compare" / "report_only.json").read_text(encoding="utf-8"))
    assert set(report["tokenizers"]) == {"vocab", "other"}
    small, large = report["tokenizers"]["other"], report["tokenizers"]["vocab"]
    assert set(small["languages"]) == set(CAPTIONS)
    # A vocabulary too small for 16 scripts: [UNK]s, and English cut into more pieces.
    assert small["summary"]["unk_rate"]["median"] > large["summary"]["unk_rate"]["median"] == 0
    assert small["languages"]["en"]["fertility"] > large["languages"]["en"]["fertility"]
    assert "other (1000 tokens)" in capsys.readouterr().out


def test_bad_input_is_counted_not_fatal(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_corpus(corpus / "good.jsonl")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "junk.txt").write_bytes(bytes(range(256)) * 40)
    (corpus / "mixed.txt").write_bytes(b"ok line\n\xff\xfe\n" + b"y" * 70_000 + b"\nfine\n")
    args = ["--input", str(corpus), "--output", str(tmp_path / "out"), "--vocab-size", "1500"]
    assert main(args + ["--lang-column", "language"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["corpus"]["skipped"] == {
        "file_binary": 1,
        "file_empty": 1,
        "invalid_utf8": 1,
        "too_long": 1,
    }
    captured = capsys.readouterr()
    assert "skipping" in captured.err and "skipped input:" in captured.out


def test_user_errors_are_one_line(tmp_path, capsys):
    missing = ["--input", str(tmp_path / "none.txt"), "--output", str(tmp_path / "o")]
    assert main(missing) == 2
    assert error_line(capsys, PROG).endswith(f"input not found: {tmp_path / 'none.txt'}")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.md").write_text("keep me", encoding="utf-8")
    corpus = write_corpus(tmp_path / "c.jsonl", repeat=1)
    assert main(["--input", str(corpus), "--output", str(tmp_path / "notes")]) == 2
    error_line(capsys, PROG, "this toolkit did not write and is not empty")
    assert (tmp_path / "notes" / "todo.md").exists()


def test_column_preset_names_the_caption_column_as_on_every_entry_point(tmp_path, capsys):
    """LAION parquet keeps its alt-text in `TEXT`: `--column-preset laion` (or `--column
    TEXT=caption`) reads it, as filter.py and train.py do; without it, one line says what to do."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    captions = [c for language in ("en", "ja", "ar", "hi") for c in CAPTIONS[language]] * 4
    pq.write_table(
        pa.table({"TEXT": captions, "URL": ["u"] * len(captions)}), tmp_path / "a.parquet"
    )
    argv = ["--input", str(tmp_path / "a.parquet"), "--vocab-size", "300"]
    assert main([*argv, "--output", str(tmp_path / "v0")]) == 0  # recognized from its columns
    odd = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"alt": captions}), odd)
    capsys.readouterr()
    assert main(["--input", str(odd), "--vocab-size", "300", "--output", str(tmp_path / "v9")]) == 2
    error_line(capsys, PROG, "pass --text-column NAME")
    for flags, name in ((["--column-preset", "laion"], "v1"), (["--column", "TEXT=caption"], "v2")):
        assert main([*argv, *flags, "--output", str(tmp_path / name)]) == 0
    assert (tmp_path / "v1" / "vocab.txt").read_text() == (
        tmp_path / "v2" / "vocab.txt"
    ).read_text()
