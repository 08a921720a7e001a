"""WordPiece training with HF `tokenizers`, deterministic and with the alphabet we chose.

The WordPiece trainer in `tokenizers` is its BPE trainer plus a conversion, so we call the BPE
trainer directly with the `##` prefix (same result), which also offers `max_token_length`
(off by default: it costs about 15% more training time). A piece longer than BERT's word
limit can never match, so such pieces (learned from 100+ character runs) are dropped. Memory:
the trainer keeps a count for every distinct word of its input in RAM, which is why its input
is the budgeted sample, never the corpus.

Determinism: the trainer breaks ties between equally frequent pairs by token id, and gives ids
to `##c` forms in hash-map order, which differs from process to process. Passing every `##c`
form as a special token fixes their ids (and adds the forms the data never showed), so the same
sample gives the same vocabulary in every run.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, trainers

from tokenizer_training.alphabet import Alphabet
from tokenizer_training.normalization import (
    CONTINUATION,
    MAX_WORD_CHARS,
    SPECIAL_TOKENS,
    UNK,
    NormalizationConfig,
    bert_normalizer,
    bert_pre_tokenizer,
)


def train_wordpiece(
    batches: Iterable[list[str]],
    alphabet: Alphabet,
    normalization: NormalizationConfig,
    vocab_size: int,
    min_frequency: int = 2,
    max_token_chars: int | None = None,
) -> list[str]:
    """Tokens in id order: specials, `##` forms, single characters, then learned pieces.

    batches: the sample, a list of lines at a time; the trainer counts words in Rust threads
    while Python produces the next batch. vocab_size counts everything; fewer come back when
    the sample has no more pairs seen at least min_frequency times.
    """
    continuation = [CONTINUATION + char for char in alphabet.continuation]
    fixed = len(SPECIAL_TOKENS) + len(continuation) + len(alphabet.chars)
    if vocab_size < fixed:
        raise ValueError(
            f"--vocab-size {vocab_size} is smaller than the alphabet ({fixed} tokens); "
            "raise it or lower --max-alphabet-share"
        )
    tokenizer = Tokenizer(models.BPE(unk_token=UNK, continuing_subword_prefix=CONTINUATION))
    tokenizer.normalizer = bert_normalizer(normalization)
    tokenizer.pre_tokenizer = bert_pre_tokenizer()
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
    tokenizer.train_from_iterator(batches, trainer)
    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.__getitem__)
    return [t for t in tokens if len(t.removeprefix(CONTINUATION)) <= MAX_WORD_CHARS]
