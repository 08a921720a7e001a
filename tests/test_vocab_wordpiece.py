"""wordpiece.py: the trainer fed counted words learns exactly what it learns from raw lines.

The reference is the plain route: every sampled line, copies included, through BERT's
normalizer and pre-tokenizer inside the trainer. The fast route normalizes each distinct line
once and hands the trainer `word word ...` sequences; the word counts, hence the vocabulary,
must be the same for every normalization option and for awkward text.
"""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, trainers

from mling.vocab import wordpiece
from mling.vocab.alphabet import Alphabet
from mling.vocab.forked import ForkedStream
from mling.vocab.normalization import (
    CONTINUATION,
    MAX_WORD_CHARS,
    SPECIAL_TOKENS,
    UNK,
    NormalizationConfig,
    Pipeline,
    bert_normalizer,
    bert_pre_tokenizer,
)
from mling.vocab.wordpiece import train_wordpiece, word_sequences
from tests.helpers.multilingual import ALL_CAPTIONS

# Whitespace of every kind, control and format characters (ZWNJ, soft hyphen), CJK inside
# Latin, punctuation glued to words, combining marks, case that folds, a 120-character word.
AWKWARD = [
    "tab\tsep\u00a0nbsp\u2003em\u3000ideographic  double",
    "می\u200cخواهم\u00adsoft hyphen\u200bzero-width",
    "mixed漢字text and カタカナ々 runs",
    "«quoted», (brackets) — dash… ellipsis!?",
    "Café ÉCOLE İstanbul ΣΟΦΟΣ straße",
    "e\u0301 a\u0308 combining marks, नमस्ते",
    "ภาษาไทย" * 17,
    "next\x85line and unit\x1fseparator: deleted by BERT's cleaning, not split",
]


def reference_vocabulary(lines: list[str], copies: list[int], alphabet, config, vocab_size):
    """The plain route: raw lines, each repeated, normalized and cut inside the trainer."""
    continuation = [CONTINUATION + char for char in alphabet.continuation]
    tokenizer = Tokenizer(models.BPE(unk_token=UNK, continuing_subword_prefix=CONTINUATION))
    tokenizer.normalizer = bert_normalizer(config)
    tokenizer.pre_tokenizer = bert_pre_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS) + continuation,
        initial_alphabet=alphabet.chars,
        limit_alphabet=len(alphabet.chars),
        continuing_subword_prefix=CONTINUATION,
        show_progress=False,
    )
    repeated = [line for line, n in zip(lines, copies, strict=True) for _ in range(n)]
    tokenizer.train_from_iterator([repeated], trainer)
    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.__getitem__)
    return [t for t in tokens if len(t.removeprefix(CONTINUATION)) <= MAX_WORD_CHARS]


def alphabet_of(lines: list[str], pipeline: Pipeline) -> Alphabet:
    chars = sorted({char for line in lines for word in pipeline.words(line) for char in word})
    isolated = pipeline.isolated(chars)
    return Alphabet(
        chars=chars,
        continuation=[char for char in chars if char not in isolated],
        by_rule={},
        dropped={},
        uncovered={},
        exemplar_sources={},
    )


@pytest.mark.parametrize(
    "config",
    [NormalizationConfig(), NormalizationConfig(lowercase=True, strip_accents=True)],
    ids=["cased", "uncased"],
)
def test_counted_words_give_the_vocabulary_of_raw_lines(config, monkeypatch):
    lines = ALL_CAPTIONS + AWKWARD
    copies = [1 + (i % 3) for i in range(len(lines))]  # 1, 2 or 3 copies, as a sample has
    pipeline = Pipeline(config)
    alphabet = alphabet_of(lines, pipeline)
    # Small sequences and batches, so the test crosses every boundary of the stream.
    monkeypatch.setattr(wordpiece, "SEQUENCE_CHARS", 64)
    monkeypatch.setattr(wordpiece, "BATCH_SEQUENCES", 3)
    groups = [([line], n) for line, n in zip(lines, copies, strict=True)]
    groups += [(lines[::2], 2)]  # a group of several lines, joined before normalizing
    copies = [n + 2 * (i % 2 == 0) for i, n in enumerate(copies)]
    size = 2500
    fast = train_wordpiece(word_sequences(groups, pipeline), alphabet, size)
    slow = reference_vocabulary(lines, copies, alphabet, config, size)
    assert fast == slow
    assert len(fast) > len(SPECIAL_TOKENS) + len(alphabet.chars) + 100  # merges happened


def test_word_sequences_repeat_each_word_as_often_as_it_occurs():
    pipeline = Pipeline(NormalizationConfig())
    sequences = list(word_sequences([(["Ein Hund, ein Hund."], 2), (["犬が走る"], 1)], pipeline))
    words = " ".join(s for batch in sequences for s in batch).split()
    # 2 copies: "Hund" twice per line, the rest once; each kanji is a word of its own.
    assert sorted(words) == sorted(
        ["Ein"] * 2 + ["Hund"] * 4 + ["ein"] * 2 + [","] * 2 + ["."] * 2 + ["犬", "が", "走", "る"]
    )


def test_forked_stream_yields_in_order_then_the_result():
    state = {"seen": 0}

    def produce():
        for i in range(5):
            state["seen"] += 1  # in the child: the parent's copy stays 0
            yield [f"item {i}"]

    with ForkedStream(produce, lambda: state["seen"]) as stream:
        assert list(stream) == [[f"item {i}"] for i in range(5)]
    assert stream.result == 5
    assert state["seen"] == 0


def test_forked_stream_reraises_the_childs_error():
    def produce():
        yield 1
        raise OSError("disk gone")

    with ForkedStream(produce, lambda: None) as stream:
        items = iter(stream)
        assert next(items) == 1
        with pytest.raises(OSError, match="disk gone"):
            next(items)


def test_forked_stream_stops_a_child_nobody_reads():
    def endless():
        while True:
            yield "x" * 10_000

    with ForkedStream(endless, lambda: None) as stream:
        pass  # the parent failed before reading: the child must not outlive the block
    assert not stream._process.is_alive()
