"""The emoji set (data/emoji_set.py) on a committed fixture cut from the real npm tarballs
(tests/fixtures/emoji/make.py: 8 emoji, 13 locales): outputs in the pair schema and the
retrieval-set format, counts that add up, licenses recorded, and the network touched only by
--fetch (here from a registry served on 127.0.0.1)."""

from __future__ import annotations

import http.server
import io
import json
import shutil
import threading
import unicodedata
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from mling.common.atomic import MARKER
from mling.emoji_set import build
from mling.emoji_set.cldr import emoji_key, is_regional
from mling.emoji_set.drawings import READERS, name_slugs
from mling.emoji_set.sources import DRAWING_LAYOUTS, PINS, Package, integrity_of, read_pins
from mling.evaluation.caption_sets import read_caption_file
from mling.pairs.schema import PAIR_SCHEMA
from tests.helpers.one_line import error_line

PROG = "emoji_set.py"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "emoji"
PINS_FILE = FIXTURE / "pins.json"
# what the fixture holds: 7 emoji both sets draw, and a flag (1f1ef-1f1f5) only OpenMoji draws
SHARED = ["0023-20e3", "1f363", "1f431", "1f44b-1f3fd", "1f600", "1f9ad", "2764"]
# every fixture locale but en-AU (regional: a patch of en) and ast (names one shared emoji)
LANGUAGES = ["ar", "de", "el", "en", "he", "hi", "ja", "ko", "ru", "th", "zh"]
# who draws which of them: OpenMoji by file name, the Iconify sets without a chars.json by
# the CLDR English name ("cat-face", "waving-hand-medium-skin-tone")
DRAWN = {
    "openmoji": SHARED,
    "emojione": ["1f363", "1f431", "1f44b-1f3fd", "1f600", "2764"],
    "emojione-v1": ["1f363", "1f431", "1f600", "2764"],
    "fxemoji": ["1f363", "2764"],
    "streamline": ["1f363", "1f431", "1f600"],
}


def _build(output: Path, *extra: str) -> int:
    argv = ["--cache", str(FIXTURE), "--pins", str(PINS_FILE), "--output", str(output)]
    return build.main([*argv, "--workers", "1", *extra])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("emoji") / "set"
    assert _build(out, "--min-names", "3") == 0
    return out


# -- pure parts, by hand ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, key",
    [
        ("😀", "1f600"),
        ("❤️", "2764"),  # U+FE0F dropped: sources write it or not
        ("❤", "2764"),
        ("#️⃣", "0023-20e3"),
        ("👋🏽", "1f44b-1f3fd"),
        ("🇯🇵", "1f1ef-1f1f5"),
        ("👨‍👩‍👧", "1f468-200d-1f469-200d-1f467"),
    ],
)
def test_emoji_key(text, key):
    assert emoji_key(text) == key


@pytest.mark.parametrize(
    "locale, regional",
    [("en", False), ("sr-Latn", False), ("zh-Hant", False), ("ff-Adlm", False),
     ("en-GB", True), ("es-419", True), ("zh-Hant-HK", True), ("ca-ES-valencia", True)],
)  # fmt: skip
def test_regional_locales(locale, regional):
    assert is_regional(locale) is regional


def test_integrity_and_names_as_npm_gives_them():
    # `printf '' | openssl dgst -sha512 -binary | base64`
    assert integrity_of(b"") == (
        "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
    )
    scoped = PINS["heldout"]
    assert scoped.filename == f"iconify-json-fluent-emoji-flat-{scoped.version}.tgz"
    assert scoped.url() == (
        "https://registry.npmjs.org/@iconify-json/fluent-emoji-flat/-/"
        f"fluent-emoji-flat-{scoped.version}.tgz"
    )
    assert PINS["train"].url() == "https://registry.npmjs.org/openmoji/-/openmoji-17.0.0.tgz"


def test_fixture_pins_match_the_fixture_files_and_the_real_licenses():
    pins = read_pins(PINS_FILE)
    for key, pin in pins.items():
        data = (FIXTURE / "npm" / pin.filename).read_bytes()
        assert integrity_of(data) == pin.integrity
        assert pin.license == PINS[key].license and pin.version == PINS[key].version + "-fixture"
    assert sum(p.stat().st_size for p in FIXTURE.rglob("*")) < 300_000


# -- the built set --------------------------------------------------------------------------


def test_pairs_in_the_pair_schema_one_row_per_drawing_and_language(built):
    table = pq.read_table(built / "pairs")
    assert table.schema.names == [*PAIR_SCHEMA.names, "language", "image_id", "emoji"]
    for field in PAIR_SCHEMA:
        assert table.schema.field(field.name).type == field.type
    rows = table.to_pylist()
    assert len(rows) == sum(map(len, DRAWN.values())) * len(LANGUAGES) == 231
    drawn: dict[str, set] = {}
    for row in rows:
        drawn.setdefault(row["key"].split(".")[1], set()).add(row["image_id"])
    assert {name: sorted(keys) for name, keys in drawn.items()} == DRAWN
    assert sorted({r["language"] for r in rows}) == LANGUAGES
    assert len({r["key"] for r in rows}) == len(rows)
    by_drawing: dict[str, set] = {}
    for row in rows:
        by_drawing.setdefault(row["key"].rsplit(".", 1)[0], set()).add(row["image"])
        assert unicodedata.is_normalized("NFC", row["caption"])
        assert emoji_key(row["emoji"]) == row["image_id"]
        assert row["url"].startswith("npm:") and row["url"].endswith("#" + row["image_id"])
    assert all(len(images) == 1 for images in by_drawing.values())  # one image per drawing
    # and the artists' drawings of one emoji differ
    cat = {images.pop() for key, images in by_drawing.items() if key.startswith("1f431.")}
    assert len(cat) == len([name for name, keys in DRAWN.items() if "1f431" in keys])
    image = Image.open(io.BytesIO(rows[0]["image"]))
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (64, 64))
    assert (rows[0]["width"], rows[0]["height"]) == (64, 64)
    # a drawing, not a blank: some pixels are not white
    assert image.getextrema() != ((255, 255),) * 3


def test_rows_are_shuffled_by_the_seed(built, tmp_path):
    """Not emoji by emoji (a streaming loader's window would hold few emoji): the first rows
    already mix emoji and artists; the same seed gives the same order, another seed another."""
    keys = pq.read_table(built / "pairs", columns=["key"])["key"].to_pylist()
    assert len({key.split(".")[0] for key in keys[:20]}) >= 4
    assert len({key.split(".")[1] for key in keys[:20]}) >= 3
    assert _build(tmp_path / "same", "--min-names", "3", "--drawings", "openmoji,emojione") == 0
    assert _build(tmp_path / "seed1", "--min-names", "3", "--drawings", "openmoji,emojione",
                  "--seed", "1") == 0  # fmt: skip
    again = _build(tmp_path / "again", "--min-names", "3", "--drawings", "openmoji,emojione")
    assert again == 0
    same, other, second = (
        pq.read_table(tmp_path / name / "pairs", columns=["key"])["key"].to_pylist()
        for name in ("same", "seed1", "again")
    )
    assert same == second and same != other and sorted(same) == sorted(other)
    assert len(same) == (len(DRAWN["openmoji"]) + len(DRAWN["emojione"])) * len(LANGUAGES)


def test_order_drawings_puts_each_drawings_languages_side_by_side(tmp_path, capsys):
    """For training with --group-rows: drawings shuffled, each one's rows together."""
    out = tmp_path / "by-drawing"
    assert _build(out, "--min-names", "3", "--order", "drawings") == 0
    keys = pq.read_table(out / "pairs", columns=["key"])["key"].to_pylist()
    drawings = [key.rsplit(".", 1)[0] for key in keys]  # 1f431.openmoji.ja -> 1f431.openmoji
    runs = [d for i, d in enumerate(drawings) if i == 0 or d != drawings[i - 1]]
    assert len(runs) == len(set(runs)) == sum(map(len, DRAWN.values()))  # one run per drawing
    assert _build(tmp_path / "by-row", "--min-names", "3") == 0
    assert sorted(keys) == sorted(pq.read_table(tmp_path / "by-row" / "pairs")["key"].to_pylist())
    assert _build(tmp_path / "bad", "--order", "languages") == 2  # argparse's choices, one line
    error_line(capsys, PROG, "--order")


@pytest.mark.parametrize(
    "name, slugs",
    [
        ("cat face", ("cat-face", "catface")),
        ("Japanese “here” button", ("japanese-here-button", "japaneseherebutton")),
        ("waving hand: medium skin tone", ("waving-hand-medium-skin-tone", "wavinghandmediumskintone")),
        ("man’s shoe", ("mans-shoe", "mansshoe")),
    ],
)  # fmt: skip
def test_icon_names_are_english_name_slugs(name, slugs):
    assert name_slugs(name) == slugs


def test_drawings_choose_the_training_sets(tmp_path, capsys):
    assert _build(tmp_path / "one", "--min-names", "3", "--drawings", "openmoji") == 0
    rows = pq.read_table(tmp_path / "one" / "pairs").to_pylist()
    assert len(rows) == len(SHARED) * len(LANGUAGES) == 77
    assert len({(r["image_id"], r["language"]) for r in rows}) == 77
    summary = json.loads((tmp_path / "one" / "report.json").read_text(encoding="utf-8"))
    assert summary["drawings"] == {"openmoji": len(SHARED)}
    assert _build(tmp_path / "bad", "--drawings", "openmoji,noto") == 2
    line = error_line(capsys, PROG)
    assert "--drawings" in line and "noto" in line and "emojione" in line


@pytest.mark.parametrize(
    "language, caption",
    [("en", "cat face"), ("de", "Katzengesicht"), ("ar", "وجه قطة"), ("he", "פני חתול"),
     ("ja", "ネコの顔"), ("zh", "猫脸"), ("ko", "고양이 얼굴"), ("hi", "बिल्ली का चेहरा"),
     ("th", "หน้าแมว"), ("ru", "морда кошки"), ("el", "πρόσωπο γάτας")],
)  # fmt: skip
def test_captions_are_the_cldr_names(built, language, caption):
    table = pq.read_table(built / "pairs", filters=[("image_id", "=", "1f431")])
    captions = dict(zip(table["language"].to_pylist(), table["caption"].to_pylist(), strict=True))
    assert captions[language] == caption


def test_sequences_take_their_names_from_the_derived_package(built):
    table = pq.read_table(built / "pairs", filters=[("language", "=", "en")])
    captions = dict(zip(table["image_id"].to_pylist(), table["caption"].to_pylist(), strict=True))
    assert captions["1f44b-1f3fd"] == "waving hand: medium skin tone"
    assert captions["0023-20e3"] == "keycap: #"


def test_the_retrieval_set_loads_with_the_evaluators_reader(built):
    sets = read_caption_file(built / "heldout" / "captions.jsonl", built / "heldout" / "images")
    assert [s.language for s in sets] == LANGUAGES
    for caption_set in sets:
        assert len(caption_set.images) == len(SHARED)
        assert len(caption_set.captions) == len(SHARED)  # one caption per language per image
        assert sorted(caption_set.text_to_image) == list(range(len(SHARED)))
        assert all(path.is_file() for path in caption_set.images)
    english = next(s for s in sets if s.language == "en")
    assert "grinning face" in english.captions


def test_the_report_adds_up(built):
    report = json.loads((built / "report.json").read_text(encoding="utf-8"))
    rows = pq.read_table(built / "pairs").num_rows
    per_language = report["per_language"]
    assert report["pairs"] == rows == sum(c["pairs"] for c in per_language.values())
    assert sum(g["pairs"] for g in report["per_script"].values()) == rows
    assert sum(g["languages"] for g in report["per_script"].values()) == len(LANGUAGES)
    assert report["heldout_captions"] == len(SHARED) * len(LANGUAGES)
    assert per_language["ja"]["script"] == "Jpan" and per_language["he"]["script"] == "Hebr"
    # 7 emoji named, 21 drawings of them, each a pair
    assert per_language["hi"] == {"script": "Deva", "named": 7, "pairs": 21, "heldout_captions": 7}
    assert report["drawings"] == {name: len(keys) for name, keys in DRAWN.items()}
    assert report["languages_with_many_names"] == []  # 7 names each, under 200
    assert "| ko | Kore | 7 | 21 | 7 |" in (built / "report.md").read_text(encoding="utf-8")


def test_the_readme_records_sources_versions_integrity_and_licenses(built):
    readme = (built / "README.md").read_text(encoding="utf-8")
    for pin in read_pins(PINS_FILE).values():
        assert f"`{pin.name}@{pin.version}`" in readme
        assert pin.integrity in readme
    for license_id in ("CC-BY-SA-4.0", "MIT", "Unicode-3.0"):
        assert license_id in readme
    licenses = sorted(p.name for p in (built / "licenses").iterdir())
    assert licenses == ["names-LICENSE", "names_derived-LICENSE", "train-LICENSE.txt"]
    assert "Attribution-ShareAlike 4.0" in (built / "licenses" / "train-LICENSE.txt").read_text()
    assert (built / MARKER).is_file()


# -- options --------------------------------------------------------------------------------


def test_keywords_and_all_emoji(tmp_path):
    out = tmp_path / "set"
    assert _build(out, "--languages", "en,ja", "--caption", "keywords", "--emoji", "all") == 0
    table = pq.read_table(out / "pairs", filters=[("language", "=", "en")])
    captions = dict(zip(table["image_id"].to_pylist(), table["caption"].to_pylist(), strict=True))
    assert captions["1f431"] == "cat face (animal, cat, face, kitten, kitty, pet)"
    assert captions["1f1ef-1f1f5"] == "flag: Japan (flag)"  # drawn by OpenMoji only ...
    heldout = (out / "heldout" / "captions.jsonl").read_text(encoding="utf-8")
    assert "1f1ef-1f1f5" not in heldout and heldout.count("\n") == len(SHARED)  # ... not held out


@pytest.mark.parametrize(
    "extra, says",
    [
        ([], "no CLDR locale names 100 of the 7 emoji"),  # the default on 8 emoji
        (["--languages", "en,xx"], "CLDR has no annotations for xx"),
        (["--languages", "en-AU"], "en-AU name(s) none of the 7 emoji"),
        (["--image-px", "4"], "--image-px 4"),
    ],
)
def test_bad_choices_one_line(tmp_path, capsys, extra, says):
    assert _build(tmp_path / "set", *extra) == 2
    assert says in error_line(capsys, PROG)
    assert not (tmp_path / "set").exists()


# -- sources: offline, integrity, licenses, --fetch -------------------------------------------


def test_offline_with_no_cache_says_what_to_fetch(tmp_path, capsys):
    empty = tmp_path / "cache"
    assert build.main(["--cache", str(empty), "--output", str(tmp_path / "set")]) == 2
    line = error_line(capsys, PROG)
    assert "--fetch" in line and "npm pack openmoji@17.0.0 " in line
    assert f"--pack-destination {empty / 'npm'}" in line
    assert not (tmp_path / "set").exists() and not empty.exists()


def test_one_missing_package_names_its_url(tmp_path, capsys):
    cache = tmp_path / "cache"
    shutil.copytree(FIXTURE / "npm", cache / "npm")
    pins = read_pins(PINS_FILE)
    (cache / "npm" / pins["heldout"].filename).unlink()
    assert _build_with(cache, tmp_path / "set") == 2
    line = error_line(capsys, PROG)
    assert pins["heldout"].url() in line and str(cache / "npm" / pins["heldout"].filename) in line


def _build_with(cache: Path, output: Path, pins: Path = PINS_FILE, *extra: str) -> int:
    argv = ["--cache", str(cache), "--pins", str(pins), "--output", str(output), *extra]
    return build.main([*argv, "--workers", "1", "--min-names", "3"])


def test_integrity_mismatch_one_line(tmp_path, capsys):
    cache = tmp_path / "cache"
    shutil.copytree(FIXTURE / "npm", cache / "npm")
    tarball = cache / "npm" / read_pins(PINS_FILE)["train"].filename
    data = bytearray(tarball.read_bytes())
    data[-1] ^= 1
    tarball.write_bytes(bytes(data))
    assert _build_with(cache, tmp_path / "set") == 2
    line = error_line(capsys, PROG)
    assert str(tarball) in line and "integrity" in line and "delete it" in line
    assert not (tmp_path / "set").exists()


def test_a_license_other_than_the_pinned_one_is_refused(tmp_path, capsys):
    pins = json.loads(PINS_FILE.read_text(encoding="utf-8"))
    pins["train"]["license"] = "MIT"
    changed = tmp_path / "pins.json"
    changed.write_text(json.dumps(pins), encoding="utf-8")
    assert _build_with(FIXTURE, tmp_path / "set", changed) == 2
    assert "declares the license 'CC-BY-SA-4.0', the pin says 'MIT'" in error_line(capsys, PROG)


@pytest.fixture
def registry():
    """The fixture's tarballs served at the registry's paths on 127.0.0.1; `served` maps a
    path to bytes (tests may replace one), `requests` records what was asked."""
    pins = read_pins(PINS_FILE)
    served = {
        "/" + p.url("").split("/", 1)[1]: (FIXTURE / "npm" / p.filename).read_bytes()
        for p in pins.values()
    }
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            requests.append(self.path)
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", served, requests
    server.shutdown()


def test_fetch_fills_the_cache_then_builds_offline(tmp_path, registry):
    url, _, requests = registry
    cache = tmp_path / "cache"
    argv = ["--cache", str(cache), "--pins", str(PINS_FILE), "--registry", url, "--fetch"]
    assert build.main(argv) == 0
    assert sorted(p.name for p in (cache / "npm").iterdir()) == sorted(
        p.filename for p in read_pins(PINS_FILE).values()
    )
    assert "/@iconify-json/fluent-emoji-flat/-/fluent-emoji-flat-1.2.6-fixture.tgz" in requests
    asked = len(requests)
    assert _build_with(cache, tmp_path / "set") == 0  # from the cache: nothing downloaded
    assert len(requests) == asked


def test_a_download_that_fails_its_integrity_is_not_cached(tmp_path, registry, capsys):
    url, served, _ = registry
    path = "/openmoji/-/openmoji-17.0.0-fixture.tgz"
    served[path] = served[path][:-1]
    cache = tmp_path / "cache"
    argv = ["--cache", str(cache), "--pins", str(PINS_FILE), "--registry", url, "--fetch"]
    assert build.main(argv) == 2
    assert f"{url}{path} is not openmoji@17.0.0-fixture" in error_line(capsys, PROG)
    assert not (cache / "npm" / "openmoji-17.0.0-fixture.tgz").exists()


# -- never destructive ----------------------------------------------------------------------


def test_outputs_are_never_destructive(tmp_path, capsys):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    assert _build_with(FIXTURE, theirs) == 2
    assert "did not write" in error_line(capsys, PROG)
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]

    ours = tmp_path / "ours"
    assert _build_with(FIXTURE, ours, PINS_FILE, "--languages", "en") == 0
    capsys.readouterr()
    assert _build_with(FIXTURE, ours, PINS_FILE, "--languages", "en,ja") == 2
    assert "--overwrite" in error_line(capsys, PROG)
    assert pq.read_table(ours / "pairs").num_rows == sum(map(len, DRAWN.values()))  # untouched
    assert _build_with(FIXTURE, ours, PINS_FILE, "--languages", "en,ja", "--overwrite") == 0
    assert pq.read_table(ours / "pairs").num_rows == 2 * sum(map(len, DRAWN.values()))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_pins_file_must_name_every_package(tmp_path, capsys):
    partial = tmp_path / "pins.json"
    partial.write_text(json.dumps({"train": json.loads(PINS_FILE.read_text())["train"]}))
    assert _build_with(FIXTURE, tmp_path / "set", partial) == 2
    assert "lacks heldout, names, names_derived" in error_line(capsys, PROG)
    pins = json.loads(PINS_FILE.read_text())
    pins["noto"] = pins["train"]  # a key that is neither required nor a training set
    partial.write_text(json.dumps(pins))
    assert _build_with(FIXTURE, tmp_path / "set", partial) == 2
    assert "unknown key(s) noto" in error_line(capsys, PROG)


def test_package_fields_are_what_the_pins_file_holds():
    # pins.json is written from the dataclass: a field added to one must reach the other
    assert set(json.loads(PINS_FILE.read_text())["train"]) == set(Package.__dataclass_fields__)


def _pins_with(change) -> dict:
    pins = json.loads(PINS_FILE.read_text())
    change(pins)
    return pins


@pytest.mark.parametrize(
    ("pins", "says"),
    [
        ([], "--pins {} must be an object of packages"),
        (None, "--pins {} must be an object of packages ({{\"train\": {{\"name\": ...}}}}), not null"),
        ("{not json", "is not a JSON object of packages (Expecting property name"),
        (_pins_with(lambda p: p["heldout"].update(layout="noto")), "'heldout': unknown layout 'noto'"),
        (_pins_with(lambda p: p["names"].update(layout="iconify")), "'names': unknown layout 'iconify'"),
        (_pins_with(lambda p: p.update(train=["openmoji"])), "'train' must be an object with name"),
        (_pins_with(lambda p: p["train"].update(version=17)), "'version' must be a string, not a number (17)"),
        (_pins_with(lambda p: p["train"].pop("integrity")), "'train' lacks integrity; a package has"),
    ],
)  # fmt: skip
def test_a_pins_file_of_the_wrong_shape_is_one_line(tmp_path, capsys, pins, says):
    path = tmp_path / "pins.json"
    path.write_text(pins if isinstance(pins, str) else json.dumps(pins))
    assert _build_with(FIXTURE, tmp_path / "set", path) == 2
    error_line(capsys, PROG, says.format(path))
    assert not (tmp_path / "set").exists()


def test_the_layouts_a_pin_may_name_are_the_readers_there_are():
    assert set(READERS) == set(DRAWING_LAYOUTS)


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--workers", "-3", "--workers -3: must be at least 1"),
        ("--workers", "0", "--workers 0: must be at least 1"),
        ("--min-names", "0", "--min-names 0: must be at least 1"),
        ("--shard-rows", "0", "--shard-rows 0: must be at least 1"),
        ("--seed", "-1", "--seed -1: must be at least 0"),
        ("--image-px", "4", "--image-px 4: must be at least 8"),
    ],
)
def test_a_numeric_option_out_of_range_is_one_line_before_any_work(
    tmp_path, capsys, flag, value, says
):
    assert _build(tmp_path / "set", flag, value) == 2
    assert error_line(capsys, PROG).endswith(says)
    assert not (tmp_path / "set").exists()
