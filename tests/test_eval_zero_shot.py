"""Zero-shot classification: labelled images, multilingual class prompts, the entry point, and
the report at 110 languages in 20 scripts."""

from __future__ import annotations

import json

import pytest
import sacrebleu
from PIL import Image

from mling.common.errors import InputError
from mling.evaluation import zero_shot
from mling.evaluation.language_report import ROW_INCHES
from mling.evaluation.spelling import name_overlap
from mling.evaluation.zero_shot_data import (
    DEFAULT_TEMPLATES,
    ClassPrompts,
    read_class_prompts,
    read_labelled_images,
)
from mling.evaluation.zero_shot_report import write_zero_shot_report
from tests.helpers.eval_fixtures import tiny_models, write_images
from tests.helpers.one_line import error_line

PROMPTS = {
    "templates": {
        "en": ["a photo of a {}.", "a blurry photo of a {}."],
        "ru": ["фотография: {}."],
        "ja": ["{}の写真。"],
        "ar": ["صورة {}."],
    },
    "classes": {
        "dog": {"en": "dog", "ru": ["собака", "пёс"], "ja": "犬", "ar": "كلب"},
        "cat": {"en": "cat", "ru": "кошка", "ja": ["猫", "ネコ"], "ar": "قطة"},
        "golden_retriever": {"en": "golden retriever", "ru": "ретривер", "ja": "ゴールデン", "ar": "كلب ذهبي"},
    },
}  # fmt: skip


def make_folder(root, counts=(("cat", 2), ("dog", 3), ("golden_retriever", 1))):
    for label, count in counts:
        write_images(root / label, [f"{label}{i}.jpg" for i in range(count)])
    return root


def table_rows(markdown, heading):
    """The body rows of the first table under `heading`, as lists of cells."""
    section = markdown.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_labelled_images_from_folders_or_a_labels_file(tmp_path):
    labelled = read_labelled_images(make_folder(tmp_path / "img"))
    assert labelled.labels == ("cat", "cat", "dog", "dog", "dog", "golden_retriever")
    assert labelled.images[0] == tmp_path / "img/cat/cat0.jpg"
    (tmp_path / "labels.jsonl").write_text('{"image": "dog/dog1.jpg", "label": "dog"}\n')
    labelled = read_labelled_images(tmp_path / "img", tmp_path / "labels.jsonl")
    assert labelled.labels == ("dog",) and labelled.images == (tmp_path / "img/dog/dog1.jpg",)


def test_class_prompts_from_file_and_default(tmp_path):
    (tmp_path / "classes.json").write_text(json.dumps(PROMPTS, ensure_ascii=False), "utf-8")
    prompts = read_class_prompts(tmp_path / "classes.json", ["dog", "cat"], ["ru", "ja"])
    assert prompts.classes == ("dog", "cat", "golden_retriever")  # the file's order
    assert prompts.names["ru"] == [["собака", "пёс"], ["кошка"], ["ретривер"]]
    assert prompts.templates == {"ru": ["фотография: {}."], "ja": ["{}の写真。"]}
    default = read_class_prompts(None, ["golden_retriever", "cat", "cat"])
    assert default.classes == ("cat", "golden_retriever")
    assert default.names == {"en": [["cat"], ["golden retriever"]]}
    assert default.templates == DEFAULT_TEMPLATES


@pytest.mark.parametrize(
    ("change", "labels", "languages", "message"),
    [
        ({}, ["dog", "wolf"], None, r"1 labels are not classes in .* \(wolf\)"),
        ({"drop": ("cat", "ja")}, ["dog"], None, "class 'cat' has no name in 'ja'"),
        ({}, ["dog"], ["ko"], "no templates for 'ko'"),
        ({"template": "a photo"}, ["dog"], ["en"], 'every en template needs a "{}"'),
        ({"set": ("templates", {"en": 5})}, ["dog"], None, "\"templates\" in 'en' must be a string or a list of strings, not a number \\(5\\)"),
        ({"set": ("templates", ["a photo of a {}."])}, ["dog"], None, '"templates" must be an object of templates per language'),
        ({"set": ("classes", ["dog", "cat"])}, ["dog"], None, '"classes" must be an object of names per class'),
        ({"set": ("classes", {"dog": "dog"})}, ["dog"], None, "class 'dog' must be an object of names per language"),
        ({"set": ("classes", {"dog": {"en": 5}})}, ["dog"], ["en"], "class 'dog' in 'en' must be a string or a list of strings"),
    ],
)  # fmt: skip
def test_bad_class_files_are_one_line(tmp_path, change, labels, languages, message):
    spec = json.loads(json.dumps(PROMPTS))
    if "drop" in change:
        cls, lang = change["drop"]
        del spec["classes"][cls][lang]
    if "template" in change:
        spec["templates"]["en"].append(change["template"])
    if "set" in change:
        key, value = change["set"]
        spec[key] = value
    (tmp_path / "classes.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    with pytest.raises(InputError, match=message) as error:
        read_class_prompts(tmp_path / "classes.json", labels, languages)
    assert "\n" not in str(error.value)


def test_a_language_left_out_needs_no_class_names(tmp_path):
    spec = json.loads(json.dumps(PROMPTS))
    del spec["classes"]["cat"]["ja"]
    (tmp_path / "classes.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    assert list(read_class_prompts(tmp_path / "classes.json", ["cat"], ["en"]).names) == ["en"]


def test_entry_point_report(tmp_path, tiny_tokenizer_dir, capsys):
    images = make_folder(tmp_path / "img")
    (tmp_path / "classes.json").write_text(json.dumps(PROMPTS, ensure_ascii=False), "utf-8")
    models = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["mling", "en"])
    argv = ["--images", str(images), "--classes", str(tmp_path / "classes.json")]
    argv += ["--output", str(tmp_path / "out")]
    for model in models:
        argv += ["--model", str(model)]
    assert zero_shot.main(argv) == 0
    report = json.loads((tmp_path / "out/report.json").read_text(encoding="utf-8"))
    assert report["languages"] == ["en", "ru", "ja", "ar"]
    assert report["data"] == {
        "classes": 3,
        "images": 6,
        "templates": {"ar": 1, "en": 2, "ja": 1, "ru": 1},
    }
    for by_language in report["models"].values():
        for accuracy in by_language.values():
            assert accuracy["top5"] is None  # 3 classes: top-5 would always be 100
            assert accuracy["top1"] * 6 / 100 == pytest.approx(round(accuracy["top1"] * 6 / 100))
    out = capsys.readouterr().out
    assert "| model | languages | en | mean | median | worst | worst/en | below 0.85x en |" in out
    assert "| language | script | chrF vs en | mling | en |" in out  # 4 languages: printed too
    markdown = (tmp_path / "out/report.md").read_text(encoding="utf-8")
    scripts = {row[0]: row[1] for row in table_rows(markdown, "## Per language")}
    # the script of each language's names and templates; 犬 alone is Han, its template's kana
    # make it Japanese
    assert {lang: scripts[lang] for lang in report["languages"]} == {
        "en": "Latn", "ru": "Cyrl", "ja": "Jpan", "ar": "Arab",
    }  # fmt: skip
    assert "Left out: with 3 classes, top-5 would always be 100." in markdown
    assert "3 classes; templates per language: 2 (en), 1 (ru, ja, ar)." in markdown
    assert (tmp_path / "out/report.png").is_file() and (tmp_path / "out/report.csv").is_file()


@pytest.mark.parametrize(
    ("classes", "says"),
    [
        ({**PROMPTS, "templates": {"en": 5}}, "\"templates\" in 'en' must be a string or a list"),
        ([PROMPTS], 'needs JSON with "templates" and "classes"'),
        ("{not json", "is not a classes file (Expecting property name"),
    ],
)
def test_the_entry_point_refuses_a_bad_classes_file_before_any_work(
    tmp_path, tiny_tokenizer_dir, capsys, classes, says
):
    images = make_folder(tmp_path / "img")
    path = tmp_path / "classes.json"
    path.write_text(classes if isinstance(classes, str) else json.dumps(classes), "utf-8")
    (model,) = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["mling"])
    capsys.readouterr()
    argv = ["--images", str(images), "--classes", str(path), "--model", str(model)]
    assert zero_shot.main([*argv, "--output", str(tmp_path / "out")]) == 2
    assert str(path) in error_line(capsys, "zero_shot.py", says)
    assert not (tmp_path / "out").exists()


def test_the_entry_point_refuses_a_model_cut_short(tmp_path, tiny_tokenizer_dir, capsys):
    images = make_folder(tmp_path / "img")
    (model,) = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["mling"])
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4096])
    capsys.readouterr()
    argv = ["--images", str(images), "--model", str(model), "--output", str(tmp_path / "out")]
    assert zero_shot.main(argv) == 2
    error_line(capsys, "zero_shot.py", "model.safetensors is cut short")
    assert not (tmp_path / "out").exists()


# (script, its languages, a dog and a cat in it): 110 languages in 20 scripts
SCRIPTS = [
    ("Latn", "en de fr es it pt nl sv da nb fi is et lv lt pl cs sk sl hr bs sq ro hu tr az uz vi "
             "id ms tl sw yo ig ha zu xh af ga cy eu ca gl mt lb fo so om rw mg ny sn st tn qu "
             "ht mi sm to haw eo la jv", "dog", "cat"),
    ("Cyrl", "ru uk be bg mk sr kk ky tg mn tt ba cv", "собака", "кошка"),
    ("Arab", "ar fa ur ps sd ckb ug", "كلب", "قطة"),
    ("Deva", "hi mr ne sa mai bho", "कुत्ता", "बिल्ली"),
    ("Hani", "zh yue wuu", "狗", "猫"),
    ("Hebr", "he yi", "כלב", "חתול"),
    ("Beng", "bn as", "কুকুর", "বিড়াল"),
    ("Ethi", "am ti", "ውሻ", "ድመት"),
    ("Thai", "th", "สุนัข", "แมว"),
    ("Hang", "ko", "개", "고양이"),
    ("Jpan", "ja", "いぬ", "ねこ"),
    ("Grek", "el", "σκύλος", "γάτα"),
    ("Geor", "ka", "ძაღლი", "კატა"),
    ("Armn", "hy", "շուն", "կատու"),
    ("Taml", "ta", "நாய்", "பூனை"),
    ("Telu", "te", "కుక్క", "పిల్లి"),
    ("Khmr", "km", "ឆ្កែ", "ឆ្មា"),
    ("Laoo", "lo", "ໝາ", "ແມວ"),
    ("Mymr", "my", "ခွေး", "ကြောင်"),
    ("Sinh", "si", "බල්ලා", "පූසා"),
]  # fmt: skip


def many_languages(count=None):
    """(ClassPrompts, results for two models, {language: script}) over the first `count`."""
    script_of, names = {}, {}
    for code, languages, dog, cat in SCRIPTS:
        for language in languages.split():
            script_of[language], names[language] = code, [[dog], [cat]]
    languages = list(names)[:count]
    prompts = ClassPrompts(
        ("dog", "cat"),
        {lang: names[lang] for lang in languages},
        {lang: ["{}"] for lang in languages},
    )
    results = {
        model: {
            lang: {"top1": (step * i) % 60 + 20.0, "top5": None} for i, lang in enumerate(languages)
        }
        for model, step in (("mling", 7), ("en", 11))
    }
    return prompts, results, {lang: script_of[lang] for lang in languages}


def test_110_languages_each_once_grouped_by_script_summary_first(tmp_path):
    prompts, results, scripts = many_languages()
    assert len(scripts) == 110 and len(set(scripts.values())) == 20
    data = {"images": 4, "classes": 2, "templates": dict.fromkeys(scripts, 1)}
    write_zero_shot_report(tmp_path / "all", "t", results, data, prompts=prompts)
    markdown = (tmp_path / "all/report.md").read_text(encoding="utf-8")

    # the summary, one row per model, comes before any language row
    assert markdown.index("## Fairness across languages") < markdown.index("## Per language")
    summary = table_rows(markdown, "## Fairness across languages")
    assert [row[0] for row in summary] == ["mling", "en"] and summary[0][1] == "110"

    rows = table_rows(markdown, "## Per language")
    assert sorted(row[0] for row in rows) == sorted(scripts)  # each language exactly once
    assert all(row[1] == scripts[row[0]] for row in rows)
    # grouped: each script's languages are one run of rows, the largest group first
    runs = [code for i, (_, code, *_) in enumerate(rows) if i == 0 or rows[i - 1][1] != code]
    assert len(runs) == len(set(runs)) == 20 and runs[:3] == ["Latn", "Cyrl", "Arab"]
    assert rows[0][0] == "en" and rows[0][2] == "—"  # English first, no chrF against itself
    assert len(rows[0]) == 5  # language, script, chrF vs en, mling, en
    assert "Left out: with 2 classes, top-5 would always be 100." in markdown
    assert "1 template in every language" in markdown

    # the chart grows with the languages, by at least an 8-point label's height per language
    # (the figure grows ROW_INCHES per language; the axes take a fixed share of it)
    prompts, results, scripts = many_languages(55)
    data = {"images": 4, "classes": 2, "templates": dict.fromkeys(scripts, 1)}
    write_zero_shot_report(tmp_path / "half", "t", results, data, prompts=prompts)
    with Image.open(tmp_path / "all/report.png") as full, Image.open(tmp_path / "half/report.png") as half:  # fmt: skip
        dpi = full.info["dpi"][1]
        grown = (full.height - half.height) / dpi
    assert 8 / 72 <= grown / 55 <= ROW_INCHES


def test_name_overlap_is_chrf_of_each_name_against_the_same_class_in_english():
    names = {"en": [["dog", "hound"], ["cat"]], "de": [["Hund"], ["Katze", "Kater"]]}
    overlap = name_overlap(names)
    expected = sacrebleu.corpus_chrf(["Hund", "Katze", "Kater"], [["dog", "cat", "cat"],
                                                                  ["hound", None, None]]).score  # fmt: skip
    assert overlap["de"].chrf == pytest.approx(expected) and overlap["de"].captions == 3
    assert overlap["en"].chrf is None and overlap["en"].reason == "the reference"
    same = name_overlap({"en": [["taxi"]], "pt": [["taxi"]]})
    assert same["pt"].chrf == pytest.approx(100.0)


def test_without_english_names_the_chrf_column_is_left_out_and_the_report_says_why(tmp_path):
    prompts, results, scripts = many_languages()
    keep = ["ru", "ar", "ja"]
    prompts = ClassPrompts(
        prompts.classes,
        {lang: prompts.names[lang] for lang in keep},
        {lang: prompts.templates[lang] for lang in keep},
    )
    results = {m: {lang: by[lang] for lang in keep} for m, by in results.items()}
    data = {"images": 4, "classes": 2, "templates": dict.fromkeys(keep, 1)}
    _, printed = write_zero_shot_report(tmp_path, "t", results, data, prompts=prompts)
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "No chrF vs en column: en is not among the languages evaluated" in markdown
    assert "| language | script | mling | en |" in printed  # no English: no ratios, no chrF
    assert "- mling: no en score, so no ratios" in markdown


def test_the_json_keeps_its_shape(tmp_path):
    prompts, results, scripts = many_languages(3)
    data = {"images": 4, "classes": 2, "templates": dict.fromkeys(scripts, 1)}
    write_zero_shot_report(tmp_path, "t", results, data, prompts=prompts)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    # as before the per-language layout: the results and the data, nothing added
    assert report == {
        "data": data,
        "languages": ["en", "de", "fr"],
        "models": results,
        "sources": {},
        "title": "t",
    }
