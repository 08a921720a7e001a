"""Generic retrieval sets: our JSONL, Crossmodal-3600 and Karpathy files, and the entry point."""

from __future__ import annotations

import json

import pytest

from mling.common.errors import InputError
from mling.evaluation import retrieval_set
from mling.evaluation.caption_sets import read_caption_file
from tests.helpers.eval_fixtures import tiny_models, write_images
from tests.helpers.multilingual import CAPTIONS
from tests.helpers.one_line import error_line

LANGUAGES = ("en", "ar", "th", "ja", "zh", "hi")  # Latin, RTL, no spaces, CJK, Devanagari


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")


def test_jsonl_all_languages_per_line_or_one_caption_per_line(tmp_path):
    write_jsonl(
        tmp_path / "xtd.jsonl",
        [
            {"image": "a.jpg", "captions": {"en": [CAPTIONS["en"][0]], "ar": CAPTIONS["ar"][0]}},
            {"image": "b.jpg", "captions": {"en": [CAPTIONS["en"][1], CAPTIONS["en"][2]]}},
            {"image": "b.jpg", "caption": CAPTIONS["ar"][1], "language": "ar"},
            {"image": "c.jpg", "captions": [CAPTIONS["th"][2]], "language": "th"},
        ],
    )
    sets = read_caption_file(tmp_path / "xtd.jsonl", tmp_path / "img")
    assert [s.language for s in sets] == ["ar", "en", "th"]
    ar, en, th = sets
    # the three images are candidates in every language, in order of first appearance
    images = tuple(tmp_path / "img" / name for name in ("a.jpg", "b.jpg", "c.jpg"))
    assert en.images == ar.images == th.images == images
    assert en.captions == tuple(CAPTIONS["en"][:3]) and en.text_to_image == (0, 1, 1)
    assert ar.captions == (CAPTIONS["ar"][0], CAPTIONS["ar"][1]) and ar.text_to_image == (0, 1)
    assert th.text_to_image == (2,)
    assert en.describe()["queries_i2t"] == 2  # image c has no English caption: a distractor


def test_xm3600_and_karpathy_formats(tmp_path):
    write_jsonl(
        tmp_path / "captions.jsonl",
        [
            {"image/key": "000411001ff7dd4f", "ja": {"caption": [CAPTIONS["ja"][0]],
             "caption/tokenized": ["x"]}, "sw": {"caption": ["Mbwa anakimbia."]}},
        ],
    )  # fmt: skip
    ja, sw = read_caption_file(tmp_path / "captions.jsonl", tmp_path, "xm3600")
    assert ja.images == (tmp_path / "000411001ff7dd4f.jpg",) and ja.captions == (CAPTIONS["ja"][0],)
    assert sw.language == "sw"
    karpathy = {
        "images": [
            {"filepath": "val2014", "filename": "x.jpg", "split": "test",
             "sentences": [{"raw": "A dog."}, {"raw": "A brown dog."}]},
            {"filepath": "val2014", "filename": "y.jpg", "split": "train",
             "sentences": [{"raw": "A cat."}]},
        ]
    }  # fmt: skip
    (tmp_path / "dataset_coco.json").write_text(json.dumps(karpathy))
    (en,) = read_caption_file(tmp_path / "dataset_coco.json", tmp_path, "karpathy")
    assert en.images == (tmp_path / "val2014/x.jpg",) and en.text_to_image == (0, 0)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"image": "a.jpg", "captions": {"en": ["A dog."]}}', "{oops"],
            r"xtd.jsonl:2 is not JSON",
        ),
        (['{"captions": ["A dog."]}'], r'xtd.jsonl:1 has no "image" path'),
        (['{"image": "a.jpg", "captions": [1, 2]}'], "must be a string or a list of strings"),
        ([""], "holds no captions"),
        (['{"image": "a.jpg", "captions": "A dog.", "language": 5}'], '"language" must be a code'),
        (
            ['{"image": "a.jpg", "captions": {"en": {"text": "A dog."}}}'],
            "in 'en' must be a string",
        ),
        (["[1, 2]"], "xtd.jsonl:1 must be a JSON object, not a list"),
    ],
)
def test_bad_caption_files_are_one_line(tmp_path, lines, message):
    (tmp_path / "xtd.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message) as error:
        read_caption_file(tmp_path / "xtd.jsonl", tmp_path)
    assert "\n" not in str(error.value)


ENTRY = {
    "filepath": "val2014",
    "filename": "x.jpg",
    "split": "test",
    "sentences": [{"raw": "A dog."}],
}


@pytest.mark.parametrize(
    ("karpathy", "says"),
    [
        ({"images": 5}, '"images" must be a list of image entries, not a number (5)'),
        ({"images": {"x.jpg": ENTRY}}, '"images" must be a list of image entries, not an object'),
        ([ENTRY], 'is not a Karpathy split file (JSON with "images")'),
        ({"images": [ENTRY, "y.jpg"]}, "image entry 1 must be an object with \"filename\""),
        ({"images": [{**ENTRY, "filename": None}]}, 'image entry 0 has no "filename"'),
        ({"images": [{k: v for k, v in ENTRY.items() if k != "filename"}]}, 'image entry 0 has no "filename"'),
        ({"images": [{**ENTRY, "sentences": "A dog."}]}, 'image entry 0 (x.jpg): "sentences" must be a list'),
        ({"images": [{**ENTRY, "sentences": [{"tokens": ["a"]}]}]}, 'a sentence without its "raw" text'),
        ({"images": [{**ENTRY, "filepath": 2014}]}, '"filepath" must be a folder name, not a number'),
        ("{not json", "is not a Karpathy split file (Expecting property name"),
    ],
)  # fmt: skip
def test_a_karpathy_file_of_the_wrong_shape_is_one_line(tmp_path, karpathy, says):
    path = tmp_path / "dataset_coco.json"
    path.write_text(karpathy if isinstance(karpathy, str) else json.dumps(karpathy))
    with pytest.raises(InputError) as error:
        read_caption_file(path, tmp_path, "karpathy")
    assert says in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_the_entry_point_refuses_a_bad_caption_file_or_a_cut_model_before_any_work(
    tmp_path, tiny_tokenizer_dir, capsys
):
    write_images(tmp_path / "images", ["x.jpg"])
    (model,) = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["mling"])
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": 5}))
    argv = ["--images", str(tmp_path / "images"), "--model", str(model), "--format", "karpathy"]
    argv += ["--output", str(tmp_path / "out")]
    capsys.readouterr()
    assert retrieval_set.main([*argv, "--captions", str(tmp_path / "dataset_coco.json")]) == 2
    error_line(capsys, "retrieval_set.py", '"images" must be a list of image entries')
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": [ENTRY]}))
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1])
    assert retrieval_set.main([*argv, "--captions", str(tmp_path / "dataset_coco.json")]) == 2
    error_line(capsys, "retrieval_set.py", "model.safetensors is cut short")
    assert not (tmp_path / "out").exists()


def test_asking_for_a_language_the_file_lacks(tmp_path):
    write_jsonl(tmp_path / "xtd.jsonl", [{"image": "a.jpg", "captions": {"en": "A dog."}}])
    with pytest.raises(InputError, match="no captions in ko; found: en"):
        read_caption_file(tmp_path / "xtd.jsonl", tmp_path, languages=["en", "ko"])


def test_entry_point_writes_the_multi30k_style_report(tmp_path, tiny_tokenizer_dir, capsys):
    names = [f"{i:04d}.png" for i in range(4)]
    write_images(tmp_path / "images", names)
    records = [
        {"image": name, "captions": {lang: [CAPTIONS[lang][i]] for lang in LANGUAGES}}
        for i, name in enumerate(names)
    ]
    write_jsonl(tmp_path / "xtd10.jsonl", records)
    (model,) = tiny_models(tmp_path / "runs", tiny_tokenizer_dir, ["mling"])
    argv = ["--captions", str(tmp_path / "xtd10.jsonl"), "--images", str(tmp_path / "images")]
    argv += ["--model", str(model), "--output", str(tmp_path / "out"), "--languages", "ja,ar,hi"]
    assert retrieval_set.main(argv) == 0
    report = json.loads((tmp_path / "out/report.json").read_text(encoding="utf-8"))
    assert report["languages"] == ["ja", "ar", "hi"]
    assert sorted(report["models"]["mling"]) == ["ar", "hi", "ja"]
    assert report["models"]["mling"]["ja"]["t2i"]["R@5"] == 100.0  # 4 images: all in the top 5
    assert report["reference"] is None
    stdout = capsys.readouterr().out
    # languages as rows, one script each (one language per group: by ISO 15924 code); no
    # English in the set, so no chrF and no ratios, each saying why
    assert (
        "| model | languages | en | mean | median | worst | worst/en | below 0.85x en |" in stdout
    )
    assert "- mling: no en score, so no ratios" in stdout
    rows = [line.split(" | ")[:3] for line in stdout.splitlines() if line.startswith("| ")]
    assert rows[-3:] == [["| ar", "Arab", "—"], ["| hi", "Deva", "—"], ["| ja", "Jpan", "—"]]
    markdown = (tmp_path / "out/report.md").read_text(encoding="utf-8")
    assert "No chrF for ja, ar, hi (no English captions in the set)." in markdown

    (tmp_path / "images" / names[1]).unlink()
    assert retrieval_set.main(argv) == 2
    line = error_line(capsys, "retrieval_set.py", "1 missing (0001.png)")
    assert line.startswith("retrieval_set.py: 1 of 4 images")
