"""A sentencepiece unigram vocabulary, exported as WordPiece for comparison with `wordpiece.py`.

Unigram (Kudo, 2018) picks pieces by likelihood rather than by merge frequency. To compare
the vocabularies and nothing else, it sees the same words as WordPiece (the sample run through
the BERT pipeline, words separated by spaces, so no piece crosses a word boundary), and its
pieces become WordPiece tokens: `▁piece` starts a word (`piece`), `piece` continues one
(`##piece`). The result loads and tokenizes exactly like the WordPiece build (greedy longest
match over the same alphabet); only which pieces are in the vocabulary differs.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from mling.vocab.alphabet import Alphabet
from mling.vocab.normalization import CONTINUATION, SPECIAL_TOKENS, NormalizationConfig, Pipeline

WORD_START = "\u2581"  # sentencepiece's word-start marker


def pre_tokenize_files(
    sources: list[Path], target: Path, normalization: NormalizationConfig
) -> None:
    """Write the lines of `sources` as space-separated words, as the tokenizer will see them."""
    pipeline = Pipeline(normalization)
    with open(target, "w", encoding="utf-8") as out:
        for source in sources:
            with open(source, encoding="utf-8") as lines:
                for line in lines:
                    words = pipeline.words(line)
                    if words:
                        out.write(" ".join(words) + "\n")


def pieces_to_wordpiece(pieces: list[str], allowed: set[str]) -> list[str]:
    """sentencepiece pieces (best first) -> WordPiece tokens, keeping only allowed characters."""
    tokens = []
    for piece in pieces:
        if piece.startswith(WORD_START):
            word = piece[len(WORD_START) :]
            token = word
        else:
            word = piece
            token = CONTINUATION + piece
        if word and all(char in allowed for char in word):
            tokens.append(token)
    return tokens


def train_unigram(
    files: list[Path],
    alphabet: Alphabet,
    normalization: NormalizationConfig,
    vocab_size: int,
    max_token_chars: int | None,
    workdir: Path,
    max_line_bytes: int = 16_384,
) -> list[str]:
    """Tokens in id order: specials, `##` forms, single characters, then unigram pieces."""
    import sentencepiece as spm

    words_file = workdir / "unigram_words.txt"
    pre_tokenize_files(files, words_file, normalization)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=str(words_file),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a small sample may not support vocab_size pieces
        character_coverage=1.0,  # the alphabet is ours; pieces with other characters are dropped
        normalization_rule_name="identity",  # the BERT normalizer already ran
        split_by_unicode_script=False,  # WordPiece words may mix scripts; keep them comparable
        split_by_number=False,
        split_by_whitespace=True,
        max_sentencepiece_length=max_token_chars or 16,  # sentencepiece's default
        max_sentence_length=4 * max_line_bytes,
        shuffle_input_sentence=False,
        num_threads=os.cpu_count() or 1,
        minloglevel=2,
    )
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [
        processor.id_to_piece(i)
        for i in range(processor.get_piece_size())
        if not (processor.is_control(i) or processor.is_unknown(i) or processor.is_unused(i))
    ]
    fixed = (
        list(SPECIAL_TOKENS)
        + [CONTINUATION + char for char in alphabet.continuation]
        + list(alphabet.chars)
    )
    seen = set(fixed)
    tokens = list(fixed)
    for token in pieces_to_wordpiece(pieces, set(alphabet.chars)):
        if len(tokens) >= vocab_size:
            break
        if token not in seen:
            seen.add(token)
            tokens.append(token)
    return tokens
