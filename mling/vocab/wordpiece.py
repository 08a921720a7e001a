"""WordPiece training with HF `tokenizers`, deterministic and with the alphabet we chose.

The WordPiece trainer in `tokenizers` is its BPE trainer plus a conversion, so we call the BPE
trainer directly with the `##` prefix (same result), which also offers `max_token_length`
(off by default: it costs about 15% more training time). A piece longer than BERT's word
limit can never match, so such pieces (learned from 100+ character runs) are dropped. Memory:
the trainer keeps a count for every distinct word of its input in RAM, which is why its input
is the budgeted sample, never the corpus.

Speed: the trainer's result depends only on how often each word occurs, and most of its time
goes into normalizing and pre-tokenizing every line it is given, copies included (in a
balanced sample most lines are copies: small languages are repeated). So we give it the words
instead: the sampled lines are split at whitespace, and each distinct chunk is normalized and
cut at punctuation once (by the same Rust normalizer and pre-tokenizer), its words counted as
often as the chunk occurs, copies included. The trainer then reads
`word word word ...` with a plain whitespace split: the same word counts, hence the same
vocabulary, for a fraction of the work (tests/test_vocab_build.py checks both ways agree).

Determinism: the trainer breaks ties between equally frequent pairs by token id, and gives ids
to `##c` forms in hash-map order, which differs from process to process. Passing every `##c`
form as a special token fixes their ids (and adds the forms the data never showed), so the same
sample gives the same vocabulary in every run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from mling.vocab.alphabet import Alphabet
from mling.vocab.normalization import CONTINUATION, MAX_WORD_CHARS, SPECIAL_TOKENS, UNK, Pipeline

SEQUENCE_CHARS = 1 << 12  # characters per sequence handed to the trainer (its unit of work)
BATCH_SEQUENCES = 256  # sequences per batch: the trainer's reader takes 256 at a time from Python
CHUNK_CACHE = 1 << 20  # chunks remembered with their words; the cache restarts when full
# Whitespace to str.split() but control characters to BERT's cleaning, which deletes them.
_SPLIT_DIFFERS = re.compile(r"[\x0b\x0c\x1c-\x1f\x85]")


def train_wordpiece(
    word_batches: Iterable[list[str]],
    alphabet: Alphabet,
    vocab_size: int,
    min_frequency: int = 2,
    max_token_chars: int | None = None,
) -> list[str]:
    """Tokens in id order: specials, `##` forms, single characters, then learned pieces.

    word_batches: `word_sequences` of the sample; the trainer counts them in Rust threads as
    they arrive. vocab_size counts everything; fewer come back when the sample has no more
    pairs seen at least min_frequency times.
    """
    continuation = [CONTINUATION + char for char in alphabet.continuation]
    fixed = len(SPECIAL_TOKENS) + len(continuation) + len(alphabet.chars)
    if vocab_size < fixed:
        raise ValueError(
            f"--vocab-size {vocab_size} is smaller than the alphabet ({fixed} tokens); "
            "raise it or lower --max-alphabet-share"
        )
    tokenizer = Tokenizer(models.BPE(unk_token=UNK, continuing_subword_prefix=CONTINUATION))
    # The words arrive normalized and cut: only the whitespace between them is left to split.
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS) + continuation,
        initial_alphabet=alphabet.chars,
        # Exactly the chosen characters: everything else the data shows is left out.
        limit_alphabet=len(alphabet.chars),
        continuing_subword_prefix=CONTINUATION,
        max_token_length=max_token_chars,
        show_progress=False,
    )
    tokenizer.train_from_iterator(word_batches, trainer)
    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.__getitem__)
    return [t for t in tokens if len(t.removeprefix(CONTINUATION)) <= MAX_WORD_CHARS]


def word_sequences(
    sample: Iterable[tuple[list[str], int]], pipeline: Pipeline
) -> Iterator[list[str]]:
    """The words `pipeline` makes of the sample, each as often as it occurs (copies included),
    as space-separated sequences of about SEQUENCE_CHARS characters, BATCH_SEQUENCES a list."""
    words_of_raw: dict[str, list[str]] = {}  # raw chunk -> its words, each with a space
    words_of_normalized: dict[str, list[str]] = {}
    sequences: list[str] = []
    parts: list[str] = []
    size = 0
    for lines, copies in sample:
        text = "\n".join(lines)
        # Python's split() and BERT's pipeline cut at the same whitespace, except for a few
        # control characters that BERT's cleaning deletes instead; text with one of those is
        # normalized first. Otherwise each distinct chunk is normalized once, not each line.
        if _SPLIT_DIFFERS.search(text):
            chunks = Counter(pipeline.normalize(text).split())
            cache, to_words = words_of_normalized, pipeline.cut
        else:
            chunks, cache, to_words = Counter(text.split()), words_of_raw, pipeline.words
        if len(cache) > CHUNK_CACHE:
            cache.clear()
        for chunk, count in chunks.items():
            words = cache.get(chunk)
            if words is None:
                words = cache[chunk] = [word + " " for word in to_words(chunk)]
            for word in words:
                parts.append(word * (count * copies))
                size += len(word) * count * copies
            if size >= SEQUENCE_CHARS:
                sequences.append("".join(parts))
                parts, size = [], 0
                if len(sequences) >= BATCH_SEQUENCES:
                    yield sequences
                    sequences = []
    if parts:
        sequences.append("".join(parts))
    if sequences:
        yield sequences
