"""Image checks: every missing, empty or undecodable file found up front, in one line."""

from __future__ import annotations

import pytest
from PIL import Image

from mling.common.errors import InputError
from mling.evaluation.image_files import check_images, image_problem, load_rgb
from tests.helpers.eval_fixtures import write_images


def test_problems_by_kind(tmp_path):
    good, empty, garbage, truncated = write_images(tmp_path, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    empty.write_bytes(b"")
    garbage.write_bytes("<html>404 Не найдено</html>".encode())
    truncated.write_bytes(truncated.read_bytes()[:150])
    assert [image_problem(p) for p in (good, empty, garbage, truncated)] == [
        None,
        "empty",
        "undecodable",
        "undecodable",
    ]
    assert image_problem(tmp_path / "nope.jpg") == "missing"


def test_one_line_with_counts_and_first_names(tmp_path):
    paths = write_images(tmp_path, [f"{i}.jpg" for i in range(6)])
    paths[5].write_bytes(b"")
    missing = [tmp_path / f"gone{i}.jpg" for i in range(5)]
    with pytest.raises(InputError) as error:
        check_images([*paths, *missing, paths[0]], hint="pass --images")
    assert str(error.value) == (
        f"6 of 11 images under {tmp_path} are unusable: "
        "5 missing (gone0.jpg, gone1.jpg, gone2.jpg, ...); 1 empty (5.jpg); pass --images"
    )


def test_load_rgb_converts_palette_grey_and_alpha(tmp_path):
    for mode in ("P", "L", "RGBA", "CMYK"):
        suffix = "jpg" if mode in ("L", "CMYK") else "png"
        Image.new(mode, (5, 4)).save(tmp_path / f"x.{suffix}")
        image = load_rgb(tmp_path / f"x.{suffix}")
        assert (image.mode, image.size) == ("RGB", (5, 4))
    check_images([tmp_path / "x.png", tmp_path / "x.jpg"])  # no error
