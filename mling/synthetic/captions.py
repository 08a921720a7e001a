"""Grammatical captions of a `Scene` in eight languages, several phrasings each.

Every language describes the same facts (count, size, colour, shape and position of each
group, and the background), with its own grammar done properly:

- en: number agreement (is/are, plural nouns), article choice.
- de: gender (der Kreis, das Herz, die Raute), adjective declension after the indefinite
  article (mixed: ein kleiner roter Kreis) and after numerals (strong: zwei kleine rote
  Kreise), nominative, accusative and dative (mit zwei kleinen roten Kreisen; dem Herzen).
- fr: gender and number agreement of adjectives (une petite étoile verte, deux petits cercles
  verts), size before the noun and colour after, invariable orange and croix.
- cs: three genders, nominative, accusative, instrumental and locative (se dvěma malými
  červenými hvězdami, na šedém pozadí), numeral agreement (dva kruhy, dvě hvězdy), s/se.
- es: gender and number agreement, apocope (un gran círculo), both adjective orders.
- ru: numeral government (два маленьких красных круга, две маленькие красные звезды: genitive
  singular noun, adjective genitive plural for masculine and neuter, nominative plural for
  feminine), instrumental with с, accusative (звезду), prepositional (на сером фоне).
- ar (right to left): gender, dual (دائرتان حمراوان صغيرتان), gender polarity of three (ثلاثة
  مربعات, ثلاث دوائر), non-human plurals agreeing in the feminine singular, و joined to its word.
- ja (no spaces): attributive adjectives (赤い, 緑の), counters (二つ), particles.

`caption(scene, language, rng)` picks a phrasing and synonyms at random; `caption(...,
phrasing=i)` picks phrasing i, so a test set can give each image several distinct captions.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from mling.synthetic.scenes import Group, Scene

LANGUAGES = ("en", "de", "fr", "cs", "es", "ru", "ar", "ja")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _is_single(scene: Scene) -> bool:
    """One object in all: the verb is singular (there is, ist, je)."""
    return len(scene.groups) == 1 and scene.groups[0].count == 1


# English ---------------------------------------------------------------------------------

EN_SHAPE = {"circle": "circle", "square": "square", "triangle": "triangle", "star": "star",
            "heart": "heart", "cross": "cross", "diamond": "diamond"}  # fmt: skip
EN_SIZE = {"small": ("small", "little"), "large": ("large", "big")}
EN_COUNT = {1: "a", 2: "two", 3: "three"}
EN_POSITION = {"left": ("on the left",), "right": ("on the right",), "top": ("at the top",),
               "bottom": ("at the bottom",), "centre": ("in the centre", "in the middle")}  # fmt: skip
EN_BACKGROUND = {"white": "white", "grey": "grey", "black": "black", "beige": "beige"}


def _en_group(group: Group, rng: random.Random) -> str:
    noun = EN_SHAPE[group.shape]
    if group.count > 1:
        noun += "es" if noun.endswith("ss") else "s"
    size = rng.choice(EN_SIZE[group.size])
    return f"{EN_COUNT[group.count]} {size} {group.colour} {noun} {rng.choice(EN_POSITION[group.position])}"


def _en(scene: Scene, rng: random.Random, phrasing: int) -> str:
    groups = " and ".join(_en_group(g, rng) for g in scene.groups)
    bg = EN_BACKGROUND[scene.background]
    return [
        f"{_cap(groups)} on a {bg} background.",
        f"A {bg} background with {groups}.",
        f"There {'is' if _is_single(scene) else 'are'} {groups} against a {bg} backdrop.",
        f"Picture of {groups} on {bg}.",
    ][phrasing]


# German ----------------------------------------------------------------------------------

# gender, singular, dative singular, plural, dative plural
DE_NOUN = {
    "circle": ("m", "Kreis", "Kreis", "Kreise", "Kreisen"),
    "square": ("n", "Quadrat", "Quadrat", "Quadrate", "Quadraten"),
    "triangle": ("n", "Dreieck", "Dreieck", "Dreiecke", "Dreiecken"),
    "star": ("m", "Stern", "Stern", "Sterne", "Sternen"),
    "heart": ("n", "Herz", "Herzen", "Herzen", "Herzen"),
    "cross": ("n", "Kreuz", "Kreuz", "Kreuze", "Kreuzen"),
    "diamond": ("f", "Raute", "Raute", "Rauten", "Rauten"),
}
DE_STEM = {"small": "klein", "large": "groß", "red": "rot", "green": "grün", "blue": "blau",
           "yellow": "gelb", "purple": "violett", "orange": "orangefarben", "white": "weiß",
           "black": "schwarz", "grey": "grau", "beige": "beigefarben"}  # fmt: skip
DE_PREDICATIVE = {"white": "weiß", "grey": "grau", "black": "schwarz", "beige": "beige"}
# mixed declension after ein/einen/einem/einer, by case and gender
DE_MIXED = {"nom": {"m": "er", "n": "es", "f": "e"}, "acc": {"m": "en", "n": "es", "f": "e"},
            "dat": {"m": "en", "n": "en", "f": "en"}}  # fmt: skip
DE_ARTICLE = {"nom": {"m": "ein", "n": "ein", "f": "eine"},
              "acc": {"m": "einen", "n": "ein", "f": "eine"},
              "dat": {"m": "einem", "n": "einem", "f": "einer"}}  # fmt: skip
DE_COUNT = {2: "zwei", 3: "drei"}
DE_POSITION = {"left": ("links", "auf der linken Seite"), "right": ("rechts", "auf der rechten Seite"),
               "top": ("oben",), "bottom": ("unten",), "centre": ("in der Mitte",)}  # fmt: skip


def _de_group(group: Group, case: str, rng: random.Random) -> str:
    gender, singular, dative, plural, dative_plural = DE_NOUN[group.shape]
    if group.count == 1:
        ending = DE_MIXED[case][gender]
        head, noun = DE_ARTICLE[case][gender], dative if case == "dat" else singular
    else:  # strong plural after an undeclined numeral
        ending = "en" if case == "dat" else "e"
        head, noun = DE_COUNT[group.count], dative_plural if case == "dat" else plural
    size, colour = DE_STEM[group.size] + ending, DE_STEM[group.colour] + ending
    return f"{head} {size} {colour} {noun} {rng.choice(DE_POSITION[group.position])}"


def _de(scene: Scene, rng: random.Random, phrasing: int) -> str:
    def groups(case: str) -> str:
        return " und ".join(_de_group(g, case, rng) for g in scene.groups)

    stem = DE_STEM[scene.background]
    verb = "ist" if _is_single(scene) else "sind"
    if phrasing == 0:
        return f"{_cap(groups('nom'))} auf einem {stem}en Hintergrund."
    if phrasing == 1:
        return f"Ein {stem}er Hintergrund mit {groups('dat')}."
    if phrasing == 2:
        return f"Man sieht {groups('acc')} vor {stem}em Hintergrund."
    return f"Auf dem Bild {verb} {groups('nom')}, der Hintergrund ist {DE_PREDICATIVE[scene.background]}."


# French ----------------------------------------------------------------------------------

FR_NOUN = {"circle": ("m", "cercle", "cercles"), "square": ("m", "carré", "carrés"),
           "triangle": ("m", "triangle", "triangles"), "star": ("f", "étoile", "étoiles"),
           "heart": ("m", "cœur", "cœurs"), "cross": ("f", "croix", "croix"),
           "diamond": ("m", "losange", "losanges")}  # fmt: skip
# masculine singular, feminine singular, masculine plural, feminine plural
FR_ADJ = {
    "small": (("petit", "petite", "petits", "petites"),),
    "large": (("grand", "grande", "grands", "grandes"), ("gros", "grosse", "gros", "grosses")),
    "red": (("rouge", "rouge", "rouges", "rouges"),),
    "green": (("vert", "verte", "verts", "vertes"),),
    "blue": (("bleu", "bleue", "bleus", "bleues"),),
    "yellow": (("jaune", "jaune", "jaunes", "jaunes"),),
    "purple": (("violet", "violette", "violets", "violettes"),),
    "orange": (("orange", "orange", "orange", "orange"),),  # a noun used as colour: invariable
    "white": (("blanc", "blanche", "blancs", "blanches"),),
    "black": (("noir", "noire", "noirs", "noires"),),
}
FR_BACKGROUND = {"white": "blanc", "grey": "gris", "black": "noir", "beige": "beige"}
FR_COUNT = {2: "deux", 3: "trois"}
FR_POSITION = {"left": ("à gauche",), "right": ("à droite",), "top": ("en haut",),
               "bottom": ("en bas",), "centre": ("au centre", "au milieu")}  # fmt: skip


def _fr_group(group: Group, rng: random.Random) -> str:
    gender, singular, plural = FR_NOUN[group.shape]
    form = (0 if gender == "m" else 1) + (2 if group.count > 1 else 0)
    size = rng.choice(FR_ADJ[group.size])[form]
    colour = FR_ADJ[group.colour][0][form]
    head = FR_COUNT.get(group.count) or ("un" if gender == "m" else "une")
    noun = plural if group.count > 1 else singular
    return f"{head} {size} {noun} {colour} {rng.choice(FR_POSITION[group.position])}"


def _fr(scene: Scene, rng: random.Random, phrasing: int) -> str:
    groups = " et ".join(_fr_group(g, rng) for g in scene.groups)
    bg = FR_BACKGROUND[scene.background]
    return [
        f"{_cap(groups)} sur un fond {bg}.",
        f"Un fond {bg} avec {groups}.",
        f"On voit {groups} sur fond {bg}.",
        f"Il y a {groups} sur un fond {bg}.",
    ][phrasing]


# Czech -----------------------------------------------------------------------------------

# gender, nominative sg, accusative sg, instrumental sg, nominative pl, instrumental pl
CS_NOUN = {
    "circle": ("m", "kruh", "kruh", "kruhem", "kruhy", "kruhy"),
    "square": ("m", "čtverec", "čtverec", "čtvercem", "čtverce", "čtverci"),
    "triangle": (
        "m",
        "trojúhelník",
        "trojúhelník",
        "trojúhelníkem",
        "trojúhelníky",
        "trojúhelníky",
    ),
    "star": ("f", "hvězda", "hvězdu", "hvězdou", "hvězdy", "hvězdami"),
    "heart": ("n", "srdce", "srdce", "srdcem", "srdce", "srdci"),
    "cross": ("m", "kříž", "kříž", "křížem", "kříže", "kříži"),
    "diamond": ("m", "kosočtverec", "kosočtverec", "kosočtvercem", "kosočtverce", "kosočtverci"),
}
CS_STEM = {"small": "mal", "large": "velk", "red": "červen", "green": "zelen", "blue": "modr",
           "yellow": "žlut", "purple": "fialov", "orange": "oranžov", "white": "bíl",
           "black": "čern", "grey": "šed", "beige": "béžov"}  # fmt: skip
# hard adjective endings; masculine is inanimate (shapes are things)
CS_ENDING = {
    ("nom", False): {"m": "ý", "f": "á", "n": "é"},
    ("acc", False): {"m": "ý", "f": "ou", "n": "é"},
    ("ins", False): {"m": "ým", "f": "ou", "n": "ým"},
    ("nom", True): {"m": "é", "f": "é", "n": "á"},
    ("acc", True): {"m": "é", "f": "é", "n": "á"},
    ("ins", True): {"m": "ými", "f": "ými", "n": "ými"},
}
CS_COUNT = {("nom", 2): {"m": "dva", "f": "dvě", "n": "dvě"}, ("ins", 2): "dvěma",
            ("nom", 3): "tři", ("ins", 3): "třemi"}  # fmt: skip
CS_POSITION = {"left": ("vlevo", "na levé straně"), "right": ("vpravo", "na pravé straně"),
               "top": ("nahoře",), "bottom": ("dole",), "centre": ("uprostřed",)}  # fmt: skip


def _cs_with(phrase: str) -> str:
    """The preposition s is spelled se before s, z, š, ž and before dvěma/třemi."""
    return (
        "se " if phrase[:1] in "szšž" or phrase.startswith(("dvěma", "třemi")) else "s "
    ) + phrase


def _cs_group(group: Group, case: str, rng: random.Random) -> str:
    gender, nom, acc, ins, nom_pl, ins_pl = CS_NOUN[group.shape]
    plural = group.count > 1
    ending = CS_ENDING[(case, plural)][gender]
    noun = {("nom", False): nom, ("acc", False): acc, ("ins", False): ins,
            ("nom", True): nom_pl, ("acc", True): nom_pl, ("ins", True): ins_pl}[(case, plural)]  # fmt: skip
    words = [CS_STEM[group.size] + ending, CS_STEM[group.colour] + ending, noun]
    if plural:
        numeral = CS_COUNT[("ins" if case == "ins" else "nom", group.count)]
        words.insert(0, numeral[gender] if isinstance(numeral, dict) else numeral)
    return " ".join(words) + " " + rng.choice(CS_POSITION[group.position])


def _cs(scene: Scene, rng: random.Random, phrasing: int) -> str:
    stem = CS_STEM[scene.background]
    if phrasing == 0:
        groups = " a ".join(_cs_group(g, "nom", rng) for g in scene.groups)
        return f"{_cap(groups)} na {stem}ém pozadí."
    if phrasing == 1:
        groups = " a ".join(_cs_with(_cs_group(g, "ins", rng)) for g in scene.groups)
        return f"{_cap(stem)}é pozadí {groups}."
    if phrasing == 2:
        groups = " a ".join(_cs_group(g, "nom", rng) for g in scene.groups)
        return f"Na obrázku {'je' if _is_single(scene) else 'jsou'} {groups} na {stem}ém pozadí."
    groups = " a ".join(_cs_group(g, "acc", rng) for g in scene.groups)
    return f"Vidíme {groups}, pozadí je {stem}é."


# Spanish ---------------------------------------------------------------------------------

ES_NOUN = {"circle": ("m", "círculo", "círculos"), "square": ("m", "cuadrado", "cuadrados"),
           "triangle": ("m", "triángulo", "triángulos"), "star": ("f", "estrella", "estrellas"),
           "heart": ("m", "corazón", "corazones"), "cross": ("f", "cruz", "cruces"),
           "diamond": ("m", "rombo", "rombos")}  # fmt: skip
ES_ADJ = {  # masculine sg, feminine sg, masculine pl, feminine pl
    "small": ("pequeño", "pequeña", "pequeños", "pequeñas"),
    "large": ("grande", "grande", "grandes", "grandes"),
    "red": ("rojo", "roja", "rojos", "rojas"),
    "green": ("verde", "verde", "verdes", "verdes"),
    "blue": ("azul", "azul", "azules", "azules"),
    "yellow": ("amarillo", "amarilla", "amarillos", "amarillas"),
    "purple": ("morado", "morada", "morados", "moradas"),
    "orange": ("naranja", "naranja", "naranja", "naranja"),  # invariable
    "white": ("blanco", "blanca", "blancos", "blancas"),
    "black": ("negro", "negra", "negros", "negras"),
}
ES_BACKGROUND = {"white": "blanco", "grey": "gris", "black": "negro", "beige": "beige"}
ES_COUNT = {2: "dos", 3: "tres"}
ES_POSITION = {"left": ("a la izquierda",), "right": ("a la derecha",), "top": ("arriba",),
               "bottom": ("abajo",), "centre": ("en el centro",)}  # fmt: skip


def _es_group(group: Group, size_first: bool, rng: random.Random) -> str:
    gender, singular, plural = ES_NOUN[group.shape]
    form = (0 if gender == "m" else 1) + (2 if group.count > 1 else 0)
    head = ES_COUNT.get(group.count) or ("un" if gender == "m" else "una")
    noun = plural if group.count > 1 else singular
    size, colour = ES_ADJ[group.size][form], ES_ADJ[group.colour][form]
    if size_first:  # grande shortens to gran before a singular noun
        size = "gran" if size == "grande" else size
        words = f"{head} {size} {noun} {colour}"
    else:
        words = f"{head} {noun} {colour} {size}"
    return f"{words} {rng.choice(ES_POSITION[group.position])}"


def _es(scene: Scene, rng: random.Random, phrasing: int) -> str:
    groups = " y ".join(_es_group(g, phrasing % 2 == 1, rng) for g in scene.groups)
    bg = ES_BACKGROUND[scene.background]
    return [
        f"{_cap(groups)} sobre un fondo {bg}.",
        f"Un fondo {bg} con {groups}.",
        f"Hay {groups} sobre fondo {bg}.",
        f"Imagen de {groups} en un fondo {bg}.",
    ][phrasing]


# Russian ---------------------------------------------------------------------------------

# nominative sg, genitive sg, genitive pl, instrumental sg, instrumental pl, accusative sg
RU_NOUN = {
    "circle": ("m", "круг", "круга", "кругов", "кругом", "кругами", "круг"),
    "square": ("m", "квадрат", "квадрата", "квадратов", "квадратом", "квадратами", "квадрат"),
    "triangle": (
        "m",
        "треугольник",
        "треугольника",
        "треугольников",
        "треугольником",
        "треугольниками",
        "треугольник",
    ),  # fmt: skip
    "star": ("f", "звезда", "звезды", "звёзд", "звездой", "звёздами", "звезду"),
    "heart": ("n", "сердце", "сердца", "сердец", "сердцем", "сердцами", "сердце"),
    "cross": ("m", "крест", "креста", "крестов", "крестом", "крестами", "крест"),
    "diamond": ("m", "ромб", "ромба", "ромбов", "ромбом", "ромбами", "ромб"),
}
# endings: nom m, nom f, nom n, nom pl, gen pl, ins m/n, ins f, ins pl, acc f, prep m/n
RU_TYPE = {
    "hard": ("ый", "ая", "ое", "ые", "ых", "ым", "ой", "ыми", "ую", "ом"),
    "soft": ("ий", "яя", "ее", "ие", "их", "им", "ей", "ими", "юю", "ем"),
    "velar": ("ий", "ая", "ое", "ие", "их", "им", "ой", "ими", "ую", "ом"),
    "stressed": ("ой", "ая", "ое", "ие", "их", "им", "ой", "ими", "ую", "ом"),
}
RU_ADJ = {"small": ("маленьк", "velar"), "large": ("больш", "stressed"),
          "red": ("красн", "hard"), "green": ("зелён", "hard"), "blue": ("син", "soft"),
          "yellow": ("жёлт", "hard"), "purple": ("фиолетов", "hard"),
          "orange": ("оранжев", "hard"), "white": ("бел", "hard"), "black": ("чёрн", "hard"),
          "grey": ("сер", "hard"), "beige": ("бежев", "hard")}  # fmt: skip
RU_SLOT = {"nom_m": 0, "nom_f": 1, "nom_n": 2, "nom_pl": 3, "gen_pl": 4, "ins_m": 5, "ins_n": 5,
           "ins_f": 6, "ins_pl": 7, "acc_f": 8, "prep": 9}  # fmt: skip
RU_POSITION = {"left": ("слева",), "right": ("справа",), "top": ("сверху", "вверху"),
               "bottom": ("снизу", "внизу"), "centre": ("в центре", "посередине")}  # fmt: skip


def _ru_adj(attribute: str, slot: str) -> str:
    stem, kind = RU_ADJ[attribute]
    return stem + RU_TYPE[kind][RU_SLOT[slot]]


def _ru_group(group: Group, case: str, rng: random.Random) -> str:
    """case: nom, acc or ins. Shapes are inanimate, so accusative equals nominative except
    in the feminine singular (звезду)."""
    gender, nom, gen, gen_pl, ins, ins_pl, acc = RU_NOUN[group.shape]
    if group.count == 1:
        if case == "ins":
            slot, noun = f"ins_{gender}", ins
        elif case == "acc" and gender == "f":
            slot, noun = "acc_f", acc
        else:
            slot, noun = f"nom_{gender}", nom
        head = []
    elif case == "ins":
        slot, noun, head = "ins_pl", ins_pl, ["двумя" if group.count == 2 else "тремя"]
    else:  # два/две/три + genitive singular; adjectives genitive plural, feminine nominative
        slot, noun = ("nom_pl" if gender == "f" else "gen_pl"), gen
        head = [("две" if gender == "f" else "два") if group.count == 2 else "три"]
    words = head + [_ru_adj(group.size, slot), _ru_adj(group.colour, slot), noun]
    return " ".join(words) + " " + rng.choice(RU_POSITION[group.position])


def _ru(scene: Scene, rng: random.Random, phrasing: int) -> str:
    bg_prep, bg_nom = _ru_adj(scene.background, "prep"), _ru_adj(scene.background, "nom_m")
    if phrasing == 1:
        groups = " и ".join("с " + _ru_group(g, "ins", rng) for g in scene.groups)
        return f"{_cap(bg_nom)} фон {groups}."
    case = "acc" if phrasing == 3 else "nom"
    groups = " и ".join(_ru_group(g, case, rng) for g in scene.groups)
    return [
        f"{_cap(groups)} на {bg_prep} фоне.",
        "",
        f"На {bg_prep} фоне {groups}.",
        f"На картинке мы видим {groups} на {bg_prep} фоне.",
    ][phrasing]


# Arabic ----------------------------------------------------------------------------------

# gender, singular, dual (nominative), plural
AR_NOUN = {
    "circle": ("f", "دائرة", "دائرتان", "دوائر"),
    "square": ("m", "مربع", "مربعان", "مربعات"),
    "triangle": ("m", "مثلث", "مثلثان", "مثلثات"),
    "star": ("f", "نجمة", "نجمتان", "نجمات"),
    "heart": ("m", "قلب", "قلبان", "قلوب"),
    "cross": ("m", "صليب", "صليبان", "صلبان"),
    "diamond": ("m", "معين", "معينان", "معينات"),
}
# masculine sg, feminine sg, masculine dual, feminine dual; non-human plurals take feminine sg
AR_ADJ = {
    "small": ("صغير", "صغيرة", "صغيران", "صغيرتان"),
    "large": ("كبير", "كبيرة", "كبيران", "كبيرتان"),
    "red": ("أحمر", "حمراء", "أحمران", "حمراوان"),
    "green": ("أخضر", "خضراء", "أخضران", "خضراوان"),
    "blue": ("أزرق", "زرقاء", "أزرقان", "زرقاوان"),
    "yellow": ("أصفر", "صفراء", "أصفران", "صفراوان"),
    "purple": ("بنفسجي", "بنفسجية", "بنفسجيان", "بنفسجيتان"),
    "orange": ("برتقالي", "برتقالية", "برتقاليان", "برتقاليتان"),
    "white": ("أبيض", "بيضاء", "أبيضان", "بيضاوان"),
    "black": ("أسود", "سوداء", "أسودان", "سوداوان"),
}
AR_BACKGROUND = {"white": "بيضاء", "grey": "رمادية", "black": "سوداء", "beige": "بيج"}
AR_POSITION = {"left": ("على اليسار",), "right": ("على اليمين",), "top": ("في الأعلى",),
               "bottom": ("في الأسفل",), "centre": ("في الوسط",)}  # fmt: skip


def _ar_group(group: Group, size_first: bool, rng: random.Random) -> str:
    gender, singular, dual, plural = AR_NOUN[group.shape]
    if group.count == 1:
        form, words = (0 if gender == "m" else 1), [singular]
    elif group.count == 2:
        form, words = (2 if gender == "m" else 3), [dual]
    else:  # three takes the opposite gender of the singular noun
        form, words = 1, ["ثلاثة" if gender == "m" else "ثلاث", plural]
    adjectives = [AR_ADJ[group.colour][form], AR_ADJ[group.size][form]]
    if size_first:
        adjectives.reverse()
    return " ".join(words + adjectives) + " " + rng.choice(AR_POSITION[group.position])


def _ar(scene: Scene, rng: random.Random, phrasing: int) -> str:
    # و (and) is written joined to the word it precedes
    groups = " و".join(_ar_group(g, phrasing % 2 == 1, rng) for g in scene.groups)
    bg = AR_BACKGROUND[scene.background]
    return [
        f"{groups} على خلفية {bg}.",
        f"خلفية {bg} عليها {groups}.",
        f"صورة فيها {groups} على خلفية {bg}.",
        f"على خلفية {bg} {groups}.",
    ][phrasing]


# Japanese --------------------------------------------------------------------------------

JA_SHAPE = {"circle": ("円", "丸"), "square": ("四角", "正方形"), "triangle": ("三角", "三角形"),
            "star": ("星",), "heart": ("ハート",), "cross": ("十字",), "diamond": ("ひし形",)}  # fmt: skip
JA_ADJ = {"small": ("小さい", "小さな"), "large": ("大きい", "大きな"), "red": ("赤い",),
          "green": ("緑の",), "blue": ("青い",), "yellow": ("黄色い",), "purple": ("紫の",),
          "orange": ("オレンジ色の",), "white": ("白い",), "black": ("黒い",)}  # fmt: skip
JA_BACKGROUND = {
    "white": "白い背景",
    "grey": "灰色の背景",
    "black": "黒い背景",
    "beige": "ベージュの背景",
}
JA_COUNT = {1: "一つ", 2: "二つ", 3: "三つ"}
JA_POSITION = {"left": "左", "right": "右", "top": "上", "bottom": "下", "centre": "中央"}


def _ja_words(group: Group, rng: random.Random) -> tuple[str, str, str, str, str]:
    return (JA_POSITION[group.position], rng.choice(JA_ADJ[group.size]),
            JA_ADJ[group.colour][0], rng.choice(JA_SHAPE[group.shape]), JA_COUNT[group.count])  # fmt: skip


def _ja(scene: Scene, rng: random.Random, phrasing: int) -> str:
    bg = JA_BACKGROUND[scene.background]
    words = [_ja_words(g, rng) for g in scene.groups]
    if phrasing == 0:
        return (
            f"{bg}の" + "、".join(f"{p}に{s}{c}{n}が{k}" for p, s, c, n, k in words) + "あります。"
        )
    if phrasing == 1:
        return "、".join(f"{p}に{c}{s}{n}{k}" for p, s, c, n, k in words) + f"、{bg}。"
    if phrasing == 2:
        return "、".join(f"{s}{c}{n}が{p}に{k}" for p, s, c, n, k in words) + f"ある{bg}の画像。"
    return f"{bg}と" + "と".join(f"{p}の{k}の{s}{c}{n}" for p, s, c, n, k in words) + "。"


def name_phrase(group: Group, language: str, colour: bool) -> str:
    """The group's shape in the singular, optionally with its colour: 'red star', 'roter
    Stern', 'hvězda', '赤い星'. One or two words: the too-short alt-texts of the noise."""
    shape, hue = group.shape, group.colour
    if language == "en":
        return f"{hue} {shape}" if colour else shape
    if language == "ja":
        return (JA_ADJ[hue][0] if colour else "") + JA_SHAPE[shape][0]
    if language == "de":
        gender, noun = DE_NOUN[shape][:2]
        return f"{DE_STEM[hue]}{DE_MIXED['nom'][gender]} {noun}" if colour else noun
    if language == "cs":
        gender, noun = CS_NOUN[shape][:2]
        return f"{CS_STEM[hue]}{CS_ENDING[('nom', False)][gender]} {noun}" if colour else noun
    if language == "ru":
        gender, noun = RU_NOUN[shape][:2]
        return f"{_ru_adj(hue, 'nom_' + gender)} {noun}" if colour else noun
    nouns, adjectives = {"fr": (FR_NOUN, FR_ADJ), "es": (ES_NOUN, ES_ADJ), "ar": (AR_NOUN, AR_ADJ)}[
        language
    ]
    gender, noun = nouns[shape][:2]
    adjective = adjectives[hue][0] if language == "fr" else adjectives[hue]
    return f"{noun} {adjective[0 if gender == 'm' else 1]}" if colour else noun


GRAMMARS: dict[str, Callable[[Scene, random.Random, int], str]] = {
    "en": _en, "de": _de, "fr": _fr, "cs": _cs, "es": _es, "ru": _ru, "ar": _ar, "ja": _ja,
}  # fmt: skip
PHRASINGS = 4  # phrasings per language, numbered 0..3


def caption(scene: Scene, language: str, rng: random.Random, phrasing: int | None = None) -> str:
    """One caption of `scene` in `language`; a random phrasing unless one is given."""
    if language not in GRAMMARS:
        raise ValueError(
            f"no grammar for language {language!r}; choose from {', '.join(LANGUAGES)}"
        )
    if phrasing is None:
        phrasing = rng.randrange(PHRASINGS)
    return GRAMMARS[language](scene, rng, phrasing)
