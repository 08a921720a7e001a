"""Where data lives: a local path, or a URL that fsspec reads (s3://, gs://, hf://, http(s)://).

Readers take either. A URL names a file or a folder (a prefix) as a path does, through `URL`, which
has the few `Path` methods the readers use (`name`, `suffix`, `exists`, `is_dir`, `iterdir`, ...),
so a glob, a brace range or a folder of shards on object storage expands as it does on disk.
Files are opened for reading as they are streamed: nothing is downloaded whole first.

Credentials and endpoints come from the standard environment variables, read by the client
library itself (for s3://, botocore: `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, `AWS_MAX_ATTEMPTS`, ...). A missing optional package,
a server that cannot be reached or a protocol nobody knows is one InputError line.
"""

from __future__ import annotations

import glob
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

from mling.common.errors import InputError, first_line

SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
# protocol -> the package fsspec needs for it (what the one-line error tells the user to install)
PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "http": "aiohttp",
            "https": "aiohttp", "az": "adlfs", "abfs": "adlfs"}  # fmt: skip
EXTRAS = {"s3fs": "mling-align[s3]"}  # packages our own extras install
# what an entry point that reads or writes URLs names in its --help (cli.environment_epilog)
STORAGE_ENVIRONMENT = (
    "a URL's credentials and endpoint come from its client library's own variables (s3://: "
    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_ENDPOINT_URL, "
    "AWS_MAX_ATTEMPTS; hf://: HF_TOKEN)"
)


def is_url(value: object) -> bool:
    """True for a URL with a protocol (`s3://bucket/key`); `file://` and plain paths are local."""
    if isinstance(value, URL):
        return True
    match = SCHEME.match(str(value))
    return bool(match) and match.group(1).lower() != "file"


@contextmanager
def remote_errors(url: object) -> Iterator[None]:
    """A storage client's failure as one InputError line naming the URL; a missing object stays
    FileNotFoundError (the caller says what was looked for)."""
    try:
        yield
    except (InputError, FileNotFoundError):
        raise
    except PermissionError as error:
        raise InputError(
            f"access denied to {url} ({first_line(error)}); check the credentials "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS)"
        ) from None
    except Exception as error:  # botocore, aiohttp, gcsfs: a dozen types, one meaning
        raise InputError(
            f"cannot reach {url}: {first_line(error)}; check the endpoint (AWS_ENDPOINT_URL) "
            "and the network"
        ) from None


def filesystem(url: str):
    """(fsspec filesystem, path inside it) for a URL; one InputError line when the protocol's
    package is missing or the protocol is unknown."""
    import fsspec

    protocol = SCHEME.match(url).group(1).lower()
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError:
        package = PACKAGES.get(protocol, f"the fsspec implementation for {protocol}://")
        extra = f" (or pip install '{EXTRAS[package]}')" if package in EXTRAS else ""
        raise InputError(f"reading {url} needs {package}: pip install {package}{extra}") from None
    except ValueError as error:
        raise InputError(f"{url}: {first_line(error)} (fsspec has no such protocol)") from None


class URL:
    """A file or folder on object storage or the web, with the `Path` methods readers use.

    `kind` ("file" or "directory") is what a listing said, so that a folder of ten thousand
    shards costs one listing, not ten thousand requests.
    """

    __slots__ = ("text", "kind")

    def __init__(self, text: str, kind: str | None = None):
        self.text = str(text).rstrip("/")
        self.kind = kind

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"URL({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URL) and other.text == self.text

    def __lt__(self, other: URL) -> bool:
        return self.text < other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __truediv__(self, name: str) -> URL:
        return URL(f"{self.text}/{name}")

    def as_posix(self) -> str:
        return self.text

    @property
    def protocol(self) -> str:
        return SCHEME.match(self.text).group(1).lower()

    @property
    def name(self) -> str:
        return self.text.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    def with_suffix(self, suffix: str) -> URL:
        stem = self.text[: len(self.text) - len(self.suffix)] if self.suffix else self.text
        return URL(stem + suffix)

    @property
    def parents(self) -> list[URL]:
        """The enclosing folders, nearest first, down to the bucket (or the host)."""
        head = SCHEME.match(self.text).end()
        parts = self.text[head:].split("/")
        return [URL(self.text[:head] + "/".join(parts[:n])) for n in range(len(parts) - 1, 0, -1)]

    @property
    def parent(self) -> URL:
        return (self.parents or [self])[0]

    def _fs(self):
        return filesystem(self.text)

    def exists(self) -> bool:
        fs, path = self._fs()
        with remote_errors(self):
            return fs.exists(path)

    def is_dir(self) -> bool:
        if self.kind is None:
            fs, path = self._fs()
            with remote_errors(self):
                if fs.isdir(path):
                    self.kind = "directory"
        return self.kind == "directory"

    def is_file(self) -> bool:
        if self.kind is None:
            fs, path = self._fs()
            with remote_errors(self):
                if fs.isfile(path):
                    self.kind = "file"
        return self.kind == "file"

    def stat(self) -> SimpleNamespace:
        """Its size in bytes (`st_size`), as far as the readers ask."""
        fs, path = self._fs()
        with remote_errors(self):
            return SimpleNamespace(st_size=fs.info(path).get("size") or 0)

    def iterdir(self) -> Iterator[URL]:
        fs, path = self._fs()
        with remote_errors(self):
            entries = fs.ls(path, detail=True)
        for entry in entries:
            kind = "directory" if entry["type"] == "directory" else "file"
            yield URL(fs.unstrip_protocol(entry["name"]), kind)

    def open(self, mode: str = "rb"):
        fs, path = self._fs()
        try:
            with remote_errors(self):
                return fs.open(path, mode)
        except FileNotFoundError:
            raise InputError(f"input not found: {self}") from None


def as_path(value: str | Path | URL) -> Path | URL:
    """A URL for a URL, a Path otherwise."""
    if isinstance(value, Path | URL):
        return value
    return URL(value) if is_url(value) else Path(value)


def glob_paths(pattern: str) -> list[Path | URL]:
    """What a glob matches, sorted: local files (`**` recurses) or objects under a URL."""
    if not is_url(pattern):
        return [Path(match) for match in sorted(glob.glob(pattern, recursive=True))]
    fs, path = filesystem(pattern)
    with remote_errors(pattern):
        matches = fs.glob(path, detail=True)
    return sorted(
        URL(fs.unstrip_protocol(name), "directory" if info["type"] == "directory" else "file")
        for name, info in matches.items()
    )


def open_file(path: str | Path | URL):
    """A binary file object for reading, local or remote (remote ones stream in blocks and
    seek, with `peek` as local files have it)."""
    path = as_path(path)
    if isinstance(path, URL):
        return io.BufferedReader(path.open("rb"))
    return open(path, "rb")


def arrow_source(path: str | Path | URL):
    """What pyarrow opens best: a local path as a string (its native reader), a URL as a file
    object that streams the byte ranges asked for."""
    path = as_path(path)
    return path.open("rb") if isinstance(path, URL) else str(path)


RENAMES = "checkpoints and scratch need renames, which object storage does not have"


def local_path(value: str | Path | None, flag: str, why: str = RENAMES) -> Path | None:
    """A folder that must be local; a URL is one line saying why."""
    if value is None:
        return None
    if is_url(value):
        raise InputError(f"{flag} {value}: must be a local folder ({why}); give a local path")
    return Path(value)
