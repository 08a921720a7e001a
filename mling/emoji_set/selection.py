"""Which emoji and which languages make the set, and its rows: one per (drawing, language).

An emoji is in the set when a training set draws it and at least one chosen language names
it; with `shared` (the default) the held-out drawings must have it too, so every training
emoji has a ground truth in the evaluation. A language is in the set when it names at
least `min_names` of those emoji (regional locales, whose files only patch their parent's, are
left out unless named).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mling.common.errors import InputError
from mling.emoji_set.cldr import Annotation, caption_of, is_regional

ORDERS = ("rows", "drawings")  # rows shuffled one by one, or drawings with their rows together
EMOJI_CHOICES = ("shared", "all")  # trained and held out, or every training drawing with a name


@dataclass(frozen=True)
class Selection:
    emoji: tuple[str, ...]  # emoji keys of the training pairs, sorted
    heldout: tuple[str, ...]  # emoji keys of the retrieval set: trained and held out, sorted
    languages: tuple[str, ...]  # CLDR locale ids, sorted


def _named(names: dict[str, dict[str, Annotation]], locales) -> set[str]:
    return {key for locale in locales for key in names[locale]}


def select(
    names: dict[str, dict[str, Annotation]],
    train: set[str],
    heldout: set[str],
    emoji: str = "shared",
    languages: list[str] | None = None,
    min_names: int = 100,
) -> Selection:
    """The set's emoji and languages (see the module's docstring); one InputError line when
    a named language is unknown or names none of them, or when no language is left."""
    if emoji not in EMOJI_CHOICES:
        raise InputError(f"--emoji {emoji!r}: choose one of {', '.join(EMOJI_CHOICES)}")
    drawn = train & heldout if emoji == "shared" else set(train)
    if languages:
        unknown = [language for language in languages if language not in names]
        if unknown:
            raise InputError(
                f"--languages: CLDR has no annotations for {', '.join(unknown)}; "
                f"it has {', '.join(sorted(names))}"
            )
        silent = [lang for lang in languages if not drawn & set(names[lang])]
        if silent:
            raise InputError(
                f"--languages: {', '.join(silent)} name(s) none of the {len(drawn)} emoji drawn"
            )
        chosen = sorted(set(languages))
    else:
        chosen = sorted(
            locale
            for locale, named in names.items()
            if not is_regional(locale) and len(drawn & set(named)) >= min_names
        )
        if not chosen:
            best = max(len(drawn & set(named)) for named in names.values())
            raise InputError(
                f"no CLDR locale names {min_names} of the {len(drawn)} emoji drawn (the most "
                f"is {best}); lower --min-names or name --languages"
            )
    named = _named(names, chosen)
    return Selection(
        emoji=tuple(sorted(drawn & named)),
        heldout=tuple(sorted(train & heldout & named)),
        languages=tuple(chosen),
    )


def pair_rows(
    selection: Selection,
    names: dict[str, dict[str, Annotation]],
    images: dict[str, dict[str, bytes]],
    spelled: dict[str, str],
    px: int,
    urls: dict[str, str],
    keywords: bool,
    seed: int = 0,
    order_by: str = "rows",
):
    """Pair-schema rows, one per (drawing, language naming its emoji), in an order shuffled by
    `seed`. `order_by` "rows": every row on its own, so a reader that mixes rows only within a
    window (a streaming loader) still sees every emoji and language in every batch;
    "drawings": the drawings shuffled, each drawing's rows (its languages, shuffled) side by
    side, for a loader that keeps an image's captions together (`--group-rows`). `images` is
    {set: {emoji key: PNG}}, `urls` {set: url prefix}. Rows of one emoji share its
    `image_id`, whoever drew it."""
    if order_by not in ORDERS:
        raise InputError(f"--order {order_by!r}: choose one of {', '.join(ORDERS)}")
    rng = random.Random(seed)
    drawings = [(key, drawn_by) for key in selection.emoji for drawn_by in images
                if key in images[drawn_by]]  # fmt: skip
    rows_of = {
        drawing: [lang for lang in selection.languages if drawing[0] in names[lang]]
        for drawing in drawings
    }
    if order_by == "rows":
        order = [(key, drawn_by, lang) for key, drawn_by in drawings
                 for lang in rows_of[(key, drawn_by)]]  # fmt: skip
        rng.shuffle(order)
    else:
        rng.shuffle(drawings)
        order = []
        for key, drawn_by in drawings:
            languages = rows_of[(key, drawn_by)]
            rng.shuffle(languages)
            order += [(key, drawn_by, lang) for lang in languages]
    for key, drawn_by, language in order:
        yield {
            "key": f"{key}.{drawn_by}.{language}",
            "caption": caption_of(names[language][key], keywords),
            "url": f"{urls[drawn_by]}#{key}",
            "width": px,
            "height": px,
            "image": images[drawn_by][key],
            "language": language,
            "image_id": key,
            "emoji": spelled[key],
        }


def heldout_lines(
    selection: Selection, names: dict[str, dict[str, Annotation]], spelled: dict[str, str]
):
    """Retrieval-set lines (`eval/retrieval_set.py --format jsonl`): each held-out image with
    its name in every language that names it, one caption per language."""
    for key in selection.heldout:
        captions = {
            language: [names[language][key].name]
            for language in selection.languages
            if key in names[language]
        }
        yield {"image": f"{key}.png", "emoji": spelled[key], "captions": captions}
