"""The filtering pipeline, written once in SQL, run by DuckDB or Spark.

Input is the `features` table from the pre-pass (`data/prepass.py`). Each stage is a named
query the engine materializes as a table, in order; the last, `decisions`, holds one row per
input row with its reason (null: kept) and one flag per filter (whether the row fails it on
its own, for the fairness report). Both engines speak this SQL; `Dialect` holds the three
places where their function names differ (regex extraction, list explosion, token hashes).
"""

from __future__ import annotations

from dataclasses import dataclass

from data.filters import FILTERS, MALFORMED, ImageFilterConfig, TextFilterConfig
from data.segment import ENGINE_WORD_PATTERN

# Above any count: "no vocabulary threshold" and "row has no token" alike.
NO_LIMIT = 1 << 62


@dataclass(frozen=True)
class Dialect:
    name: str
    extract_all: str  # format with {text} and {pattern}: list of all matches
    explode: str  # format with {items}: one row per element (in a SELECT list)
    # format with {words}: 64-bit hashes of the unigrams, then of each adjacent pair "w1 w2"
    # (hashing the joined text: DuckDB's two-argument hash(a, b) combines weakly and collides)
    token_hashes: str


DUCKDB = Dialect(
    name="duckdb",
    extract_all="regexp_extract_all({text}, {pattern})",
    explode="unnest({items})",
    token_hashes=(
        "concat(list_transform({words}, lambda w: hash(w)), "
        "list_transform(range(1, len({words})), lambda i: hash({words}[i] || ' ' || {words}[i + 1])))"
    ),
)
SPARK = Dialect(
    name="spark",
    extract_all="regexp_extract_all({text}, {pattern}, 0)",
    explode="explode({items})",
    token_hashes=(
        "concat(transform({words}, w -> xxhash64(w)), "
        "zip_with(slice({words}, 1, greatest(size({words}) - 1, 0)), "
        "slice({words}, 2, greatest(size({words}) - 1, 0)), (a, b) -> xxhash64(concat(a, ' ', b))))"
    ),
)


def _literal(text: str) -> str:
    """A SQL string literal both engines read the same way: no backslash escapes inside."""
    if "\\" in text and not text.isascii():
        raise ValueError("patterns are written with ASCII escapes only")
    return "'" + text.replace("'", "''") + "'"


def _pattern_literal(dialect: Dialect) -> str:
    # Spark treats backslashes in '...' as escapes; its raw literals r'...' keep them.
    prefix = "r" if dialect.name == "spark" else ""
    return prefix + _literal(ENGINE_WORD_PATTERN)


def stages(
    image: ImageFilterConfig, text: TextFilterConfig, dialect: Dialect
) -> list[tuple[str, str]]:
    """(table name, SELECT) pairs, in execution order. Reads table `features`."""
    words = f"coalesce(dictionary_words, {dialect.extract_all.format(text='caption', pattern=_pattern_literal(dialect))})"
    hashes = dialect.token_hashes.format(words="unigrams")
    # A row is a duplicate when an earlier row has its key; only duplicated keys are kept here.
    first_of_key = "(d.first_row_id IS NULL OR f.row_id = d.first_row_id)"
    k = int(text.vocabulary_size)
    flags = {
        "image_too_small": f"least(width, height) <= {int(image.min_side)}",
        "aspect_ratio": f"greatest(width, height) >= {float(image.max_aspect_ratio)!r} * least(width, height)",
        "image_many_alt_texts": f"alt_texts > {int(image.max_alt_texts)}",
        "near_duplicate_eval": "near_eval",
        "alt_text_shared": f"images > {int(text.max_images)}",
        "rare_token": "rarest_count < min_count",
        "too_few_words": f"word_count < {int(text.min_words)}",
        "too_many_words": f"word_count > {int(text.max_words)}",
    }
    assert tuple(flags) == FILTERS, "flags must follow data.filters.REASONS"
    flag_columns = ", ".join(
        f"coalesce(malformed IS NULL AND ({expr}), false) AS {name}" for name, expr in flags.items()
    )
    reason = "CASE WHEN malformed IS NOT NULL THEN malformed "
    reason += " ".join(f"WHEN {name} THEN '{name}'" for name in FILTERS) + " END"
    return [
        (
            "duplicate_keys",
            """SELECT key, min(row_id) AS first_row_id FROM features
            WHERE key IS NOT NULL AND key <> '' GROUP BY key HAVING count(*) > 1""",
        ),
        (
            "rows",
            f"""SELECT f.row_id, f.identity, f.caption_norm, f.width, f.height, f.near_eval,
                f.language, f.language_score,
                CASE WHEN f.malformed = 'missing_key' OR {first_of_key} THEN f.malformed
                     ELSE 'duplicate_key' END AS malformed
            FROM features f LEFT JOIN duplicate_keys d ON f.key = d.key""",
        ),
        (
            # Tokens are compared by 64-bit hash: two distinct tokens collide with probability
            # about n^2 / 2^65 for n distinct tokens, and a collision only merges two counts.
            "tokens",
            f"""SELECT row_id, {dialect.explode.format(items=hashes)} AS token
            FROM (SELECT f.row_id, {words} AS unigrams
                  FROM features f LEFT JOIN duplicate_keys d ON f.key = d.key
                  WHERE f.malformed IS NULL AND {first_of_key}) w""",
        ),
        ("token_counts", "SELECT token, count(*) AS n FROM tokens GROUP BY token"),
        (
            # Tokens with this count or more make the vocabulary (see vocabulary_min_count).
            "vocabulary",
            f"""SELECT coalesce(min(CASE WHEN covered <= {k} THEN n END), max(n) + 1, {NO_LIMIT})
                    AS min_count,
                coalesce(max(CASE WHEN covered <= {k} THEN covered END), 0) AS vocabulary_tokens,
                coalesce(max(covered), 0) AS distinct_tokens
            FROM (SELECT n, CAST(sum(tokens_with_n) OVER (ORDER BY n DESC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS covered
                  FROM (SELECT n, count(*) AS tokens_with_n FROM token_counts GROUP BY n) h) c""",
        ),
        (
            # n unigrams give 2n - 1 tokens (n unigrams, n - 1 bigrams): the word count for free.
            "row_tokens",
            """SELECT t.row_id, min(c.n) AS rarest_count, CAST((count(*) + 1) / 2 AS BIGINT) AS word_count
            FROM tokens t JOIN token_counts c ON t.token = c.token GROUP BY t.row_id""",
        ),
        (
            "image_counts",
            "SELECT identity, count(*) AS alt_texts FROM rows WHERE malformed IS NULL GROUP BY identity",
        ),
        (
            "caption_counts",
            """SELECT caption_norm, count(DISTINCT identity) AS images
            FROM rows WHERE malformed IS NULL GROUP BY caption_norm""",
        ),
        (
            "decisions",
            f"""SELECT row_id, language, language_score, malformed, {", ".join(FILTERS)},
                {reason} AS reason
            FROM (SELECT row_id, language, language_score, malformed, {flag_columns}
                  FROM (SELECT r.*, ic.alt_texts, cc.images,
                            coalesce(t.rarest_count, {NO_LIMIT}) AS rarest_count,
                            coalesce(t.word_count, 0) AS word_count
                        FROM rows r
                        LEFT JOIN image_counts ic ON r.identity = ic.identity
                        LEFT JOIN caption_counts cc ON r.caption_norm = cc.caption_norm
                        LEFT JOIN row_tokens t ON r.row_id = t.row_id) joined
                  CROSS JOIN vocabulary) flagged""",
        ),
    ]


def malformed_names_sql() -> str:
    """`('missing_key', ...)`: the malformed reasons as a SQL list, for report queries."""
    return "(" + ", ".join(_literal(name) for name in MALFORMED) + ")"
