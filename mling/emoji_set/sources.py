"""The emoji set's sources: npm package tarballs at pinned versions, integrity-checked, cached.

Each source is one tarball from the npm registry, `REGISTRY/NAME/-/BASE-VERSION.tgz`, pinned
by its version and its `dist.integrity` (sha512, base64, as `npm view NAME@VERSION dist`
prints it). The cache holds them under the names `npm pack NAME@VERSION` gives them
(`@iconify-json/fluent-emoji-flat` -> `iconify-json-fluent-emoji-flat-1.2.6.tgz`), in
`CACHE/npm/`, where CACHE is `--cache`, else `$MLING_CACHE`, else `~/.cache/mling`. Nothing is
downloaded unless asked (`--fetch`); a file is checked against its pin every time it is read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tarfile
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from mling.common.atomic import write_atomic
from mling.common.errors import InputError
from mling.common.json_shapes import expect, read_json

REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    name: str  # npm package name, scoped or not
    version: str  # exact version
    integrity: str  # "sha512-<base64>", the registry's dist.integrity
    license: str  # SPDX id, from the package's own package.json (checked when read)
    layout: str  # how to read it: "openmoji", "iconify" (drawings) or "cldr" (names)
    title: str  # what people call it
    homepage: str

    @property
    def filename(self) -> str:
        """The tarball's name as `npm pack` writes it."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"

    def url(self, registry: str = REGISTRY) -> str:
        base = self.name.rsplit("/", 1)[-1]
        return f"{registry.rstrip('/')}/{self.name}/-/{base}-{self.version}.tgz"


# The training drawings (several artists: a model that sees one style learns that style, not
# the things drawn), the held-out drawings (another artist's, for evaluation) and the two name
# packages. Pinned 2026-11: the newest of each. Licenses as each package.json states them;
# docs/emoji.md says why these sets (and not Noto or Twemoji, which an independent check uses).
# A key "train" or "train-*" is a training set; the others are one each.
REQUIRED = ("train", "heldout", "names", "names_derived")
ROLES = {
    "train": "training drawings",
    "heldout": "held-out drawings",
    "names": "names",
    "names_derived": "names of sequences",
}


def role_of(key: str) -> str:
    return ROLES["train"] if is_training(key) else ROLES[key]


def is_training(key: str) -> bool:
    return key == "train" or key.startswith("train-")


FIELDS = [field.name for field in fields(Package)]
DRAWING_LAYOUTS = ("openmoji", "iconify")  # the readers of mling/emoji_set/drawings.py
NAME_LAYOUTS = ("cldr",)  # mling/emoji_set/cldr.py

PINS: dict[str, Package] = {
    "train": Package(
        name="openmoji",
        version="17.0.0",
        integrity="sha512-EBnYrNGdcdw+OSXmENeNE1yBNRu6tOraTmoOyUbJkTmvT/+XETp8RZLSJFzD3lrPc5N9CzsyPnRTk0Vp4UaI9w==",
        license="CC-BY-SA-4.0",
        layout="openmoji",
        title="OpenMoji",
        homepage="https://openmoji.org",
    ),
    # Iconify sets without a chars.json: their icons are found by the CLDR English name
    "train-emojione": Package(
        name="@iconify-json/emojione",
        version="1.2.3",
        integrity="sha512-T9+T3HIbJNLKKsmxYKlaYhvnHYkz/HNYTV7SHCXVZPfeUi4FqskY70YeN8yYAZT8cCv7w5vJxS4Q1m8zb9CMMg==",
        license="CC-BY-4.0",
        layout="iconify",
        title="EmojiOne 2.3 (colored), as packaged by Iconify",
        homepage="https://github.com/EmojiTwo/emojitwo",
    ),
    "train-emojione-v1": Package(
        name="@iconify-json/emojione-v1",
        version="1.2.3",
        integrity="sha512-UjI2VQEXVtGlPBvQuxEizro7QCgBcJDOYwKUupquvvZ8UV4xOlvm45IU82JYWegiAWLerY79gFLMZ26U6Ms+ww==",
        license="CC-BY-SA-4.0",
        layout="iconify",
        title="EmojiOne 1, as packaged by Iconify",
        homepage="https://github.com/joypixels/emojione-legacy",
    ),
    "train-fxemoji": Package(
        name="@iconify-json/fxemoji",
        version="1.2.2",
        integrity="sha512-UAasRaxzFUKfIGSmLwnoarsssA4LX0VLLuEmplIqM6ZNQqIQRtav8tZ4H1neTlBreXuMQyAifr5jP4kn78DpiQ==",
        license="Apache-2.0",
        layout="iconify",
        title="Firefox OS Emoji, as packaged by Iconify",
        homepage="https://github.com/mozilla/fxemoji",
    ),
    "train-streamline": Package(
        name="@iconify-json/streamline-emojis",
        version="1.2.4",
        integrity="sha512-iNr9T9XuZVTyQPJO8ZlLxBzPkpi7qMl+z1l0C31vpEMqhPMelth3n7CeWQYtixdetDPdI81yeG4ROqjWpYJE6A==",
        license="CC-BY-4.0",
        layout="iconify",
        title="Streamline Emoji, as packaged by Iconify",
        homepage="https://github.com/webalys-hq/streamline-vectors",
    ),
    "heldout": Package(
        name="@iconify-json/fluent-emoji-flat",
        version="1.2.6",
        integrity="sha512-RY47RgPb47fYUiyrA64sIOL0+UU02s29sXpNBbIQRBUlPlfNFTKUmZDERGuxDs/7yNGWqQYvuaSYM1M4fRXlUw==",
        license="MIT",
        layout="iconify",
        title="Microsoft Fluent Emoji (flat), as packaged by Iconify",
        homepage="https://github.com/microsoft/fluentui-emoji",
    ),
    "names": Package(
        name="cldr-annotations-full",
        version="48.2.0",
        integrity="sha512-DV7A+rEcgUSNTRsVGNGqBZRmAkGfwhGHO5Q1dRwzBoBnVrHWp804JP7/QJdEc66iHmx3+zLWVIMCFLm0lW7PUQ==",
        license="Unicode-3.0",
        layout="cldr",
        title="Unicode CLDR emoji annotations",
        homepage="https://cldr.unicode.org",
    ),
    "names_derived": Package(
        name="cldr-annotations-derived-full",
        version="48.2.0",
        integrity="sha512-log62km+AOzI7n/NEuNNFV0mg9DWnt67EYCh1RwxZq9dyRuyteB586LT83Ke8TchEfnwI9cIk2P31zO4nTvZmw==",
        license="Unicode-3.0",
        layout="cldr",
        title="Unicode CLDR emoji annotations, derived (skin tones, flags, sequences)",
        homepage="https://cldr.unicode.org",
    ),
}


def read_pins(path: str | Path | None) -> dict[str, Package]:
    """The built-in PINS, or packages from a JSON file `{"KEY": {Package fields}}` (the test
    fixture's, or newer versions tried without a code change): every REQUIRED key, and any
    number of further training sets as "train-NAME"."""
    if path is None:
        return dict(PINS)
    path = Path(path)
    loaded = read_json(path, "a JSON object of packages", "give --pins a JSON file")
    expect(loaded, dict, f"--pins {path}", 'an object of packages ({"train": {"name": ...}})')
    missing = [key for key in REQUIRED if key not in loaded]
    if missing:
        raise InputError(
            f"--pins {path} lacks {', '.join(missing)}; it needs {', '.join(REQUIRED)}"
        )
    unknown = [key for key in loaded if key not in REQUIRED and not is_training(key)]
    if unknown:
        raise InputError(
            f"--pins {path}: unknown key(s) {', '.join(unknown)}; a further training set is "
            "named train-NAME"
        )
    return {key: _package(path, key, entry) for key, entry in loaded.items()}


def _package(path: Path, key: str, entry: object) -> Package:
    """One entry of a pins file, every field a string, its layout one that fits its role."""
    where = f"--pins {path}: {key!r}"
    expect(entry, dict, where, f"an object with {', '.join(FIELDS)}")
    missing = [name for name in FIELDS if name not in entry]
    unknown = [name for name in entry if name not in FIELDS]
    if missing or unknown:
        wrong = f"lacks {', '.join(missing)}" if missing else f"has unknown {', '.join(unknown)}"
        raise InputError(f"{where} {wrong}; a package has {', '.join(FIELDS)}")
    for name in FIELDS:
        expect(entry[name], str, f"{where}: {name!r}", "a string")
    names = key.startswith("names")
    layouts = NAME_LAYOUTS if names else DRAWING_LAYOUTS
    if entry["layout"] not in layouts:
        raise InputError(
            f"{where}: unknown layout {entry['layout']!r} for {'names' if names else 'drawings'}; "
            f"choose from {', '.join(layouts)}"
        )
    return Package(**entry)


def training_sets(pins: dict[str, Package]) -> list[str]:
    """The keys of the training drawing sets, "train" first."""
    return sorted((key for key in pins if is_training(key)), key=lambda k: (k != "train", k))


def pins_json(pins: dict[str, Package]) -> str:
    return json.dumps({k: asdict(p) for k, p in pins.items()}, indent=2, ensure_ascii=False)


def cache_root(flag: str | Path | None = None) -> Path:
    """`--cache`, else `$MLING_CACHE`, else `$XDG_CACHE_HOME/mling` (`~/.cache/mling`)."""
    if flag:
        return Path(flag).expanduser()
    if os.environ.get("MLING_CACHE"):
        return Path(os.environ["MLING_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "mling"


def integrity_of(data: bytes) -> str:
    """npm's `dist.integrity` of a file: "sha512-" and the base64 of its SHA-512."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _check(package: Package, data: bytes, where: str) -> bytes:
    found = integrity_of(data)
    if found != package.integrity:
        raise InputError(
            f"{where} is not {package.name}@{package.version}: its integrity is "
            f"{found[:23]}... where the pin says {package.integrity[:23]}...; delete it and "
            "fetch again (--fetch)"
        )
    return data


def _how_to_fetch(package: Package, folder: Path, registry: str) -> str:
    return (
        f"{package.name}@{package.version} is not in the cache {folder}; run again with --fetch, "
        f"or `npm pack {package.name}@{package.version} --pack-destination {folder}`, or "
        f"download {package.url(registry)} as {folder / package.filename}"
    )


def download(package: Package, registry: str = REGISTRY, timeout: float = 120.0) -> bytes:
    """The tarball's bytes from the registry, checked against the pin."""
    url = package.url(registry)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise InputError(
            f"cannot download {url} ({reason}); check the network, or fetch it elsewhere with "
            f"`npm pack {package.name}@{package.version}` and put it in the cache"
        ) from None
    return _check(package, data, url)


def tarball(package: Package, cache: Path, fetch: bool = False, registry: str = REGISTRY) -> Path:
    """The cached tarball of `package`, checked against its pin; downloaded first when it is
    missing and `fetch` is set, else one InputError line that says how to get it."""
    folder = cache / "npm"
    path = folder / package.filename
    if path.is_file():
        _check(package, path.read_bytes(), str(path))
        return path
    if not fetch:
        raise InputError(_how_to_fetch(package, folder, registry))
    write_atomic(path, download(package, registry))
    return path


def check_license(package: Package, path: Path) -> None:
    """One InputError line unless the tarball's package.json declares the pinned license (a
    new version under another license must be looked at, not built on)."""
    with tarfile.open(path, "r:gz") as tar:
        try:
            declared = json.load(tar.extractfile("package/package.json")).get("license")
        except (KeyError, ValueError, AttributeError):
            declared = None
    if declared != package.license:
        raise InputError(
            f"{path}: {package.name}@{package.version} declares the license {declared!r}, the "
            f"pin says {package.license!r}; check the package's terms before changing the pin"
        )


def tarballs(
    pins: dict[str, Package], cache: Path, fetch: bool = False, registry: str = REGISTRY
) -> dict[str, Path]:
    """Every pinned tarball (key -> path), all checked before any is used."""
    if not fetch:  # name every missing one at once, not one per run
        folder = cache / "npm"
        missing = [p for p in pins.values() if not (folder / p.filename).is_file()]
        if len(missing) > 1:
            commands = " ".join(f"{p.name}@{p.version}" for p in missing)
            raise InputError(
                f"{len(missing)} packages are not in the cache {folder}; run again with --fetch, "
                f"or `npm pack {commands} --pack-destination {folder}`"
            )
    paths = {key: tarball(package, cache, fetch, registry) for key, package in pins.items()}
    for key, package in pins.items():
        check_license(package, paths[key])
    return paths
