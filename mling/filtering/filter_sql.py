"""The filtering pipeline, written once in SQL, run by DuckDB or Spark.

Input is the `features` table from the pre-pass (`mling/filtering/prepass.py`). Each stage is a named
query the engine defines in order, as a table (written once, read by later stages) or as a
view (cheap to recompute, or read once); the last, `decisions`, holds one row per input row
with its reason (null: kept) and one flag per filter (whether the row fails it on its own, for
the fairness report), each flag its record's predicate (`mling/filtering/reasons.py`). Both engines speak this SQL; `Dialect` holds the places where their
function names differ (regex extraction and matching, splitting, list explosion and length,
hashes).

Tokens, images (identities) and alt-texts (normalized captions) are grouped and joined by
64-bit hash, not by their text: two distinct values collide with probability about n^2 / 2^65
for n distinct values, and a collision only merges two counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from mling.filtering.reasons import (
    ImageFilterConfig,
    TextFilterConfig,
    filters,
    reason_names,
    thresholds,
)
from mling.filtering.segment import ENGINE_SPACED_PATTERN, ENGINE_WORD_PATTERN

# Above any count: "no vocabulary threshold".
NO_LIMIT = 1 << 62
# A row has a rare token when one of its tokens is outside the vocabulary. With K up to this
# many tokens, rows are matched against the vocabulary (a hash table that stays in cache);
# above it, against the rare tokens, which are none at all when the data has fewer than K.
SMALL_VOCABULARY = 1_000_000
# What the engine counts per row, which a filter's predicate may read besides the pre-pass's
# features columns (those it reads are carried through the narrow `rows` table).
COUNTS = ("alt_texts", "images", "has_rare_token", "word_count")


@dataclass(frozen=True)
class Stage:
    name: str
    sql: str  # a SELECT over `features` and earlier stages
    table: bool = True  # materialized once; False: a view, computed where it is read


@dataclass(frozen=True)
class Dialect:
    name: str
    extract_all: str  # format with {text} and {pattern}: list of all matches
    matches: str  # format with {text} and {pattern}: whether the pattern is found in the text
    split_space: str  # format with {text}: the pieces between single spaces
    explode: str  # format with {items}: one row per element (in a SELECT list)
    length: str  # format with {items}: number of elements
    hash: str  # format with {value}: 64-bit hash of a string
    # format with {words}: 64-bit hashes of the unigrams, then of each adjacent pair "w1 w2"
    # (hashing the joined text: DuckDB's two-argument hash(a, b) combines weakly and collides)
    token_hashes: str


DUCKDB = Dialect(
    name="duckdb",
    extract_all="regexp_extract_all({text}, {pattern})",
    matches="regexp_matches({text}, {pattern})",
    split_space="string_split({text}, ' ')",
    explode="unnest({items})",
    length="len({items})",
    hash="hash({value})",
    token_hashes=(
        "concat(list_transform({words}, lambda w: hash(w)), "
        "list_transform(range(1, len({words})), lambda i: hash({words}[i] || ' ' || {words}[i + 1])))"
    ),
)
SPARK = Dialect(
    name="spark",
    extract_all="regexp_extract_all({text}, {pattern}, 0)",
    matches="{text} RLIKE {pattern}",
    split_space="split({text}, ' ')",
    explode="explode({items})",
    length="size({items})",
    hash="xxhash64({value})",
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


def _pattern_literal(pattern: str, dialect: Dialect) -> str:
    # Spark treats backslashes in '...' as escapes; its raw literals r'...' keep them.
    prefix = "r" if dialect.name == "spark" else ""
    return prefix + _literal(pattern)


def words_sql(dialect: Dialect) -> str:
    """A caption's unigrams: ICU's from the pre-pass, else split on spaces when the caption is
    plain words between single spaces, else the word expression (see mling/filtering/segment.py)."""
    spaced = dialect.matches.format(
        text="caption", pattern=_pattern_literal(ENGINE_SPACED_PATTERN, dialect)
    )
    found = dialect.extract_all.format(
        text="caption", pattern=_pattern_literal(ENGINE_WORD_PATTERN, dialect)
    )
    return f"""CASE WHEN dictionary_words IS NOT NULL THEN dictionary_words
        WHEN {spaced} THEN {dialect.split_space.format(text="caption")} ELSE {found} END"""


def stages(image: ImageFilterConfig, text: TextFilterConfig, dialect: Dialect) -> list[Stage]:
    """The pipeline's stages, in execution order. Reads table `features`."""
    hashes = dialect.token_hashes.format(words="words")
    # A row is a duplicate when an earlier row has its key; only duplicated keys are kept here.
    first_of_key = "(d.first_row_id IS NULL OR f.row_id = d.first_row_id)"
    k = int(text.vocabulary_size)
    values = thresholds(image, text)
    flags = {reason.name: reason.predicate.format(**values) for reason in filters()}
    carried = list(dict.fromkeys(c for r in filters() for c in r.reads if c not in COUNTS))
    flag_columns = ", ".join(
        f"coalesce(malformed IS NULL AND ({expr}), false) AS {name}" for name, expr in flags.items()
    )
    # Reasons before duplicate_key in the order win over it; those after it lose.
    names = reason_names()
    before_duplicate = ", ".join(_literal(name) for name in names[: names.index("duplicate_key")])
    row_tokens = f"SELECT row_id, {dialect.explode.format(items='tokens')} AS token FROM row_words"
    if k <= SMALL_VOCABULARY:  # a token outside the vocabulary
        token_set = "SELECT c.token FROM token_counts c, vocabulary v WHERE c.n >= v.min_count"
        in_set = "NOT EXISTS"
    else:  # a token among the rare ones
        token_set = "SELECT c.token FROM token_counts c, vocabulary v WHERE c.n < v.min_count"
        in_set = "EXISTS"
    rare_rows = f"""SELECT DISTINCT t.row_id FROM ({row_tokens}) t
        WHERE {in_set} (SELECT 1 FROM ({token_set}) s WHERE s.token = t.token)"""
    reason = "CASE WHEN malformed IS NOT NULL THEN malformed "
    reason += " ".join(f"WHEN {name} THEN '{name}'" for name in flags) + " END"
    return [
        Stage(
            "duplicate_keys",
            """SELECT key, min(row_id) AS first_row_id FROM features
            WHERE key IS NOT NULL AND key <> '' GROUP BY key HAVING count(*) > 1""",
        ),
        Stage(
            # Everything per row but the text (unless a filter reads it), read three times
            # below: one narrow table.
            "rows",
            f"""SELECT f.row_id, {dialect.hash.format(value="f.identity")} AS image,
                {dialect.hash.format(value="f.caption_norm")} AS alt_text,
                {"".join(f"f.{column}, " for column in carried)}
                CASE WHEN f.malformed IN ({before_duplicate}) OR {first_of_key}
                     THEN f.malformed
                     ELSE 'duplicate_key' END AS malformed
            FROM features f LEFT JOIN duplicate_keys d ON f.key = d.key""",
        ),
        Stage(
            # n unigrams give 2n - 1 tokens: the n unigrams, then the n - 1 bigrams.
            "row_words",
            f"""SELECT row_id, {hashes} AS tokens, {dialect.length.format(items="words")} AS word_count
            FROM (SELECT f.row_id, {words_sql(dialect)} AS words
                  FROM features f LEFT JOIN duplicate_keys d ON f.key = d.key
                  WHERE f.malformed IS NULL AND {first_of_key}) w""",
        ),
        Stage(
            "token_counts",
            f"""SELECT token, count(*) AS n
            FROM (SELECT {dialect.explode.format(items="tokens")} AS token FROM row_words) t
            GROUP BY token""",
        ),
        Stage(
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
        Stage("row_rare", rare_rows, table=False),
        Stage(
            "image_counts",
            "SELECT image, count(*) AS alt_texts FROM rows WHERE malformed IS NULL GROUP BY image",
            table=False,
        ),
        Stage(
            "caption_counts",
            """SELECT alt_text, count(*) AS images
            FROM (SELECT DISTINCT alt_text, image FROM rows WHERE malformed IS NULL) p
            GROUP BY alt_text""",
            table=False,
        ),
        Stage(
            "decisions",
            f"""SELECT row_id, malformed, {", ".join(flags)}, {reason} AS reason
            FROM (SELECT row_id, malformed, {flag_columns}
                  FROM (SELECT r.row_id, r.malformed,
                            {"".join(f"r.{column}, " for column in carried)}
                            ic.alt_texts, cc.images,
                            rr.row_id IS NOT NULL AS has_rare_token,
                            coalesce(w.word_count, 0) AS word_count
                        FROM rows r
                        LEFT JOIN image_counts ic ON r.image = ic.image
                        LEFT JOIN caption_counts cc ON r.alt_text = cc.alt_text
                        LEFT JOIN row_words w ON r.row_id = w.row_id
                        LEFT JOIN row_rare rr ON r.row_id = rr.row_id) joined) flagged""",
        ),
    ]
