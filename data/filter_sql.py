"""The filtering pipeline, written once in SQL, run by DuckDB or Spark.

Input is the `features` table from the pre-pass (`data/prepass.py`). Each stage is a named
query the engine materializes as a table, in order; the last, `decisions`, holds one row per
input row with its reason (null: kept) and one flag per filter (whether the row fails it on
its own, for the fairness report). Both engines speak this SQL; `Dialect` holds the three
places where their function names differ (regex extraction, list length, list explosion).
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
    list_length: str  # format with {items}
    explode: str  # format with {items}: one row per element (in a SELECT list)
    bigrams: str  # format with {words}: list of "w1 w2" for adjacent words


DUCKDB = Dialect(
    name="duckdb",
    extract_all="regexp_extract_all({text}, {pattern})",
    list_length="len({items})",
    explode="unnest({items})",
    bigrams="list_transform(range(1, len({words})), lambda i: {words}[i] || ' ' || {words}[i + 1])",
)
SPARK = Dialect(
    name="spark",
    extract_all="regexp_extract_all({text}, {pattern}, 0)",
    list_length="size({items})",
    explode="explode({items})",
    bigrams=(
        "zip_with(slice({words}, 1, greatest(size({words}) - 1, 0)), "
        "slice({words}, 2, greatest(size({words}) - 1, 0)), (a, b) -> concat(a, ' ', b))"
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


def stages(image: ImageFilterConfig, text: TextFilterConfig, dialect: Dialect) -> list[tuple[str, str]]:
    """(table name, SELECT) pairs, in execution order. Reads table `features`."""
    words = dialect.extract_all.format(text="caption", pattern=_pattern_literal(dialect))
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
    reason = "CASE WHEN malformed IS NOT NULL THEN malformed "
    reason += " ".join(f"WHEN {name} THEN '{name}'" for name in FILTERS) + " END"
    return [
        (
            # duplicate_key is the only malformed check that needs to see other rows.
            "keyed",
            """SELECT row_id, key, caption, caption_norm, width, height, identity, near_eval,
                dictionary_words, language, language_score,
                CASE WHEN malformed = 'missing_key' THEN malformed
                     WHEN row_number() OVER (PARTITION BY key ORDER BY row_id) > 1
                     THEN 'duplicate_key' ELSE malformed END AS malformed
            FROM features""",
        ),
        (
            "words",
            f"""SELECT row_id, coalesce(dictionary_words, {words}) AS unigrams
            FROM keyed WHERE malformed IS NULL""",
        ),
        (
            "tokens",
            f"""SELECT row_id, {dialect.explode.format(items=f"concat(unigrams, {dialect.bigrams.format(words='unigrams')})")} AS token
            FROM words""",
        ),
        ("token_counts", "SELECT token, count(*) AS n FROM tokens GROUP BY token"),
        (
            # Tokens with this count or more make the vocabulary (see vocabulary_min_count).
            "vocabulary",
            f"""SELECT coalesce(min(CASE WHEN covered <= {int(text.vocabulary_size)} THEN n END),
                    max(n) + 1, {NO_LIMIT}) AS min_count,
                coalesce(max(CASE WHEN covered <= {int(text.vocabulary_size)} THEN covered END), 0)
                    AS vocabulary_tokens,
                coalesce(max(covered), 0) AS distinct_tokens
            FROM (SELECT n, CAST(sum(tokens_with_n) OVER (ORDER BY n DESC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS covered
                  FROM (SELECT n, count(*) AS tokens_with_n FROM token_counts GROUP BY n) h) c""",
        ),
        (
            "rarest",
            """SELECT t.row_id, min(c.n) AS rarest_count
            FROM tokens t JOIN token_counts c ON t.token = c.token GROUP BY t.row_id""",
        ),
        (
            "image_counts",
            "SELECT identity, count(*) AS alt_texts FROM keyed WHERE malformed IS NULL GROUP BY identity",
        ),
        (
            "caption_counts",
            """SELECT caption_norm, count(DISTINCT identity) AS images
            FROM keyed WHERE malformed IS NULL GROUP BY caption_norm""",
        ),
        (
            "decisions",
            f"""SELECT row_id, language, language_score, malformed, {", ".join(FILTERS)},
                {reason} AS reason
            FROM (SELECT k.row_id, k.language, k.language_score, k.malformed,
                    {", ".join(f"coalesce(k.malformed IS NULL AND ({expr}), false) AS {name}" for name, expr in flags.items())}
                  FROM (SELECT keyed.*, ic.alt_texts, cc.images,
                            coalesce(r.rarest_count, {NO_LIMIT}) AS rarest_count,
                            {dialect.list_length.format(items="w.unigrams")} AS word_count
                        FROM keyed
                        LEFT JOIN image_counts ic ON keyed.identity = ic.identity
                        LEFT JOIN caption_counts cc ON keyed.caption_norm = cc.caption_norm
                        LEFT JOIN rarest r ON keyed.row_id = r.row_id
                        LEFT JOIN words w ON keyed.row_id = w.row_id) k
                  CROSS JOIN vocabulary) flagged""",
        ),
    ]


def malformed_names_sql() -> str:
    """`('missing_key', ...)`: the malformed reasons as a SQL list, for report queries."""
    return "(" + ", ".join(_literal(name) for name in MALFORMED) + ")"
