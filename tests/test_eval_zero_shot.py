"""Zero-shot classification: labelled images, multilingual class prompts, the entry point."""

from __future__ import annotations

import json

import pytest

from mling.common.errors import InputError
from mling.evaluation import zero_shot
from mling.evaluation.zero_shot_data import (
    DEFAULT_TEMPLATES,
    read_class_prompts,
    read_labelled_images,
)
from tests.helpers.eval_fixtures import tiny_models, write_images

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
    ],
)
def test_bad_class_files_are_one_line(tmp_path, change, labels, languages, message):
    spec = json.loads(json.dumps(PROMPTS))
    if "drop" in change:
        cls, lang = change["drop"]
        del spec["classes"][cls][lang]
    if "template" in change:
        spec["templates"]["en"].append(change["template"])
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
    assert "| model | en | ru | ja | ar | mean | spread |" in capsys.readouterr().out
    assert (tmp_path / "out/report.png").is_file() and (tmp_path / "out/report.csv").is_file()
