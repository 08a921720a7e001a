"""Pair shards: image-text pairs in the pair schema, read and written as parquet or webdataset.

Parquet shards carry `key`, `caption`, `url`, `width`, `height` (original size in pixels) and
`image` (encoded bytes, optional). Webdataset tar shards carry `{key}.jpg`, `{key}.txt` and
`{key}.json` per sample. Other layouts (LAION, WIT, COYO) map their column names onto ours;
WIT's TSV (`.tsv`, `.tsv.gz`) and folders written by `datasets`' `save_to_disk` (Arrow files
beside a state.json) are read as they are.

Readers return values as stored: a caption that is a number or a width that is a string stays
so, and the filter gives it a reason instead of this module coercing it away.
"""

from __future__ import annotations

import glob
import io
import json
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mling.common.atomic import check_published, staged_output
from mling.common.errors import InputError, first_line
from mling.common.json_shapes import expect, json_kind
from mling.common.storage import URL, arrow_source, as_path, glob_paths, open_file
from mling.pairs.schema import (
    IMAGE_SUFFIXES,
    PAIR_COLUMNS,
    PAIR_SCHEMA,
    STATUS_COLUMN,
    STATUS_OK,
    as_text,
    column_map,
    detect_preset,
    image_type_problem,
)

BRACES = re.compile(r"\{([^{}]*)\}")
TSV_SUFFIXES = (".tsv", ".tsv.gz")  # WIT publishes gzipped TSV with a header line


def expand_braces(text: str) -> list[str]:
    """Brace ranges and lists as webdataset and img2dataset users write shard names:
    `shards/{00000..00002}.tar` -> 00000, 00001, 00002 (zero padding kept), `{a,b}` -> a, b."""
    match = BRACES.search(text)
    if not match:
        return [text]
    body, head, tail = match.group(1), text[: match.start()], text[match.end() :]
    first, dots, last = body.partition("..")
    if dots and first.isdigit() and last.isdigit():
        width = len(first) if first.startswith("0") else 0
        step = 1 if int(last) >= int(first) else -1
        items = [f"{n:0{width}d}" for n in range(int(first), int(last) + step, step)]
    elif "," in body:
        items = body.split(",")
    else:
        return [text]  # not a range or a list: a literal brace in a file name
    return [name for item in items for name in expand_braces(head + item + tail)]


def saved_dataset_splits(path: Path) -> dict[str, list[Path]] | None:
    """The Arrow files of each split of a folder written by `datasets`' `save_to_disk`
    (`{"": files}` for a Dataset, `{split: files}` for a DatasetDict), or None for a folder
    without its state.json or dataset_dict.json. Every JSON file it holds is checked first
    (dataset_dict.json, state.json, dataset_info.json): junk or the wrong shape there is one
    InputError line naming the file."""
    listing = path / "dataset_dict.json"
    if listing.is_file():
        where = f'{listing}: "splits"'
        splits = _saved_json(listing, "a `datasets` split list").get("splits")
        expect(splits, list, where, "a list of split names")
        for split in splits:
            if not isinstance(split, str) or not split or "/" in split:
                raise InputError(f"{where} must name split folders, not {json_kind(split)}")
        return {split: _saved_split(path / split) for split in splits}
    if not (path / "state.json").is_file():
        return None
    return {"": _saved_split(path)}


def load_saved_dataset(path: Path):
    """A folder written by `datasets`' `save_to_disk`, as `datasets.load_from_disk` loads it (a
    Dataset, or a DatasetDict of every split). Its JSON files are checked first
    (`saved_dataset_splits`), and what load_from_disk still cannot load is one InputError line
    too, never a traceback."""
    import datasets

    saved_dataset_splits(path)
    try:
        return datasets.load_from_disk(str(path))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise InputError(
            f"cannot read the `datasets` folder {path} ({first_line(error)}); save the dataset "
            "again"
        ) from None


def saved_dataset_files(path: Path) -> list[Path] | None:
    """The Arrow files of a folder written by `datasets`' `save_to_disk` (recognized by its
    state.json; of a DatasetDict, the `train` split, as training reads it), or None."""
    splits = saved_dataset_splits(path)
    if splits is None:
        return None
    if "" in splits:  # a Dataset, not a DatasetDict
        return splits[""]
    if "train" not in splits:
        raise InputError(
            f"{path} has splits {sorted(splits)} but no 'train'; pass the split folder"
        )
    return splits["train"]


def _saved_json(path: Path, what: str) -> dict:
    """A JSON object that `save_to_disk` wrote, or one InputError line naming the file."""
    try:
        with open_file(path) as file:
            loaded = json.load(file)
    except FileNotFoundError:
        raise InputError(f"{path} is missing; save the dataset again") from None
    except ValueError as error:  # not JSON, not UTF-8
        reason = getattr(error, "msg", None) or "not UTF-8"
        raise InputError(f"{path} is not {what} ({reason}); save the dataset again") from None
    if not isinstance(loaded, dict):
        raise InputError(
            f"{path} must be {what} (a JSON object), not {json_kind(loaded)}; save the dataset again"
        )
    return loaded


def _saved_split(folder: Path) -> list[Path]:
    """The Arrow files one split's state.json lists, its dataset_info.json checked too."""
    state = folder / "state.json"
    files = _saved_json(state, "a `datasets` state file").get("_data_files")
    expect(files, list, f'{state}: "_data_files"', 'a list of {"filename": NAME}')
    names = [entry.get("filename") if isinstance(entry, dict) else None for entry in files]
    if not names or not all(isinstance(n, str) and n and "/" not in n for n in names):
        raise InputError(
            f'{state}: "_data_files" must name the Arrow files ({{"filename": NAME}} each); '
            "save the dataset again"
        )
    if (folder / "dataset_info.json").is_file():
        _saved_json(folder / "dataset_info.json", "a `datasets` info file")
    return [folder / name for name in names]


def expand_inputs(
    paths: Iterable[str | Path], suffixes: tuple[str, ...] = (".parquet", ".tar", *TSV_SUFFIXES)
) -> list[Path]:
    """Files, directories, globs and brace ranges (`shards/{00000..00099}.tar`) -> shard files.

    A directory contributes the shards directly inside it, not those in subfolders, so a filter
    output's `rejected/` and `webdataset/` never leak into training; use a `**` glob to recurse.
    A folder written by `datasets`' `save_to_disk` contributes its Arrow files.

    Any of them may be a URL (`s3://bucket/laion/{00000..00099}.tar`, read with fsspec); an
    output of ours there whose upload has not finished is refused (`check_published`).

    Raises InputError naming the first path that matches nothing.
    """
    found: list[Path | URL] = []
    for raw in (name for given in paths for name in expand_braces(str(given))):
        text = str(raw)
        matches = glob_paths(text) if glob.has_magic(text) else [as_path(text)]
        if not matches or not matches[0].exists():
            raise InputError(f"input not found: {text}")
        for match in matches:
            saved = saved_dataset_files(match) if match.is_dir() else None
            if saved is not None:
                found.extend(saved)
            elif match.is_dir():
                found.extend(
                    p for p in sorted(match.iterdir()) if p.is_file() and p.name.endswith(suffixes)
                )
            else:
                found.append(match)
    unique = list(dict.fromkeys(found))
    if not unique:
        raise InputError(f"no {'/'.join(suffixes)} files in: {', '.join(map(str, paths))}")
    check_published(unique)
    return unique


def _rename(table: pa.Table, mapping: dict[str, str], columns: list[str] | None) -> pa.Table:
    """Apply the column mapping, add missing optional pair columns as nulls, select columns."""
    names = [mapping.get(name, name) for name in table.column_names]
    table = table.rename_columns(names)
    image = table.column("image") if "image" in names else None
    if image is not None and pa.types.is_dictionary(image.type):
        image = image.cast(image.type.value_type)
        table = table.set_column(names.index("image"), "image", image)
    if (
        image is not None
        and pa.types.is_struct(image.type)
        and image.type.get_field_index("bytes") >= 0
    ):  # `datasets`' Image: {bytes, path}
        image = pc.struct_field(image, "bytes")
        table = table.set_column(names.index("image"), "image", image)
    if image is not None and "width" not in names and "height" not in names:
        # A source with images but no sizes (a `datasets` folder): the sizes in the images'
        # headers, so the image filters judge them; null where the bytes are not an image.
        sizes = [_header_size(data) for data in image.to_pylist()]
        table = table.append_column("width", pa.array([s[0] for s in sizes], pa.int64()))
        table = table.append_column("height", pa.array([s[1] for s in sizes], pa.int64()))
    for field in PAIR_SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field.name, pa.nulls(len(table), field.type))
    if columns is not None:
        table = table.select(columns)
    return table


def _header_size(data: bytes | None) -> tuple[int | None, int | None]:
    """(width, height) in px from an encoded image's header (no pixels decoded)."""
    from PIL import Image

    if not data:
        return None, None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # Pillow raises many types for bytes that are not an image
        return None, None


def open_parquet(path: Path) -> pq.ParquetFile:
    """A parquet shard opened (its footer read); one InputError line for a damaged file."""
    source = arrow_source(path)  # a URL streams the byte ranges asked for
    try:
        parquet = pq.ParquetFile(source)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise InputError(f"cannot read parquet {path}: {str(error).splitlines()[0]}") from None
    check_unique_columns(path, parquet.schema_arrow.names)
    return parquet


def check_unique_columns(path: object, names: list[str], mapping: dict | None = None) -> None:
    """One InputError line when two columns have one name, as stored or after `mapping`."""
    renamed = [(mapping or {}).get(name, name) for name in names]
    twice = sorted({name for name in renamed if renamed.count(name) > 1})
    if twice:
        how = "after renaming " if renamed != names else ""
        raise InputError(
            f"{path} has two columns named {', '.join(map(repr, twice))} {how}(columns: "
            f"{', '.join(names)}); keep one, or rename one with --column SRC=DEST"
        )


def _iter_parquet(path: Path, batch_rows: int) -> Iterator[pa.Table]:
    for batch in open_parquet(path).iter_batches(batch_size=batch_rows):
        yield pa.Table.from_batches([batch])


def iter_arrow(path: Path, batch_rows: int = 0) -> Iterator[pa.Table]:
    """An Arrow IPC file as `datasets` writes it (the stream format; the file format too), in
    the record batches it was written in (`batch_rows` is not used: a reader's signature)."""
    try:
        source = arrow_source(path)
        source = pa.memory_map(source) if isinstance(source, str) else source
        try:
            batches = iter(pa.ipc.open_stream(source))
        except pa.ArrowInvalid:
            source.seek(0)
            reader = pa.ipc.open_file(source)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        for batch in batches:
            yield pa.Table.from_batches([batch])
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(f"cannot read Arrow file {path}: {str(error).splitlines()[0]}") from None


def _iter_tsv(path: Path, batch_rows: int) -> Iterator[pa.Table]:
    """TSV with a header line (gzipped or not), as WIT publishes it: every value read as text
    (the filter parses sizes itself), an empty field as null, quoted fields may span lines."""
    from pyarrow import csv

    def stream():  # a local path: pyarrow reads the gzip itself; a URL: a file object
        source = arrow_source(path)
        gzipped = not isinstance(source, str) and path.name.endswith(".gz")
        return pa.CompressedInputStream(source, "gzip") if gzipped else source

    parse = csv.ParseOptions(delimiter="\t", newlines_in_values=True)
    try:
        header = csv.open_csv(stream(), parse_options=parse).schema.names
        text = {name: pa.string() for name in header}
        convert = csv.ConvertOptions(column_types=text, null_values=[""], strings_can_be_null=True)
        for batch in csv.open_csv(stream(), parse_options=parse, convert_options=convert):
            yield pa.Table.from_batches([batch])
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(f"cannot read TSV {path}: {str(error).splitlines()[0]}") from None


def _reader(path: Path):
    """The reader for a shard, by its name: tar, Arrow, TSV, else parquet."""
    name = path.name
    if name.endswith(".tar"):
        return _iter_tar
    if name.endswith(".arrow"):
        return iter_arrow
    return _iter_tsv if name.endswith(TSV_SUFFIXES) else _iter_parquet


def _with_keys(table: pa.Table, path: Path, first_row: int) -> pa.Table:
    """Sources without a key column (LAION-5B, WIT, `datasets`) get one: the file's name and
    the row's number in it (`wit_v1_train_all-00000-of-00010-000000017`), the same on every
    read, without a dot or a slash (a webdataset key ends at the first dot)."""
    name = path.name.removesuffix(".gz")
    name = name.rsplit(".", 1)[0] if name.endswith((".parquet", ".tar", ".tsv", ".arrow")) else name
    if path.name.endswith(".arrow"):  # `datasets` names every folder's files data-*.arrow
        name = f"{path.parent.name}-{name}"
    stem = re.sub(r"[^0-9A-Za-z_-]+", "_", name)
    keys = [f"{stem}-{first_row + i:09d}" for i in range(table.num_rows)]
    return table.append_column("key", pa.array(keys, pa.string()))


def _sample_key(member_name: str) -> tuple[str, str]:
    """Webdataset convention: the key is everything before the first dot of the basename."""
    directory, _, base = member_name.rpartition("/")
    stem, _, extension = base.partition(".")
    return (f"{directory}/{stem}" if directory else stem), extension.lower()


def _iter_tar(path: Path, batch_rows: int) -> Iterator[pa.Table]:
    rows: list[dict] = []
    current_key: str | None = None
    sample: dict = {}

    def finish(sample: dict) -> dict:
        meta = sample.pop("json", {})
        if not isinstance(meta, dict):  # a list, a number: no metadata, as unparseable JSON
            meta = {}
        row = {name: meta.get(name) for name in PAIR_COLUMNS if name != "image"}
        row.update({k: v for k, v in meta.items() if k not in row})
        row["key"] = meta.get("key") or sample["__key__"]
        if "txt" in sample:
            row["caption"] = sample["txt"]
        row["image"] = next((sample[s[1:]] for s in IMAGE_SUFFIXES if s[1:] in sample), None)
        return row

    try:
        with open_file(path) as file, tarfile.open(fileobj=file, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, extension = _sample_key(member.name)
                # A new key starts a new sample; so does a member the sample already has (two
                # samples with one key, one after the other): never merged, the filter sees
                # both and names the second a duplicate_key.
                repeated = extension in sample
                if (key != current_key or repeated) and sample:
                    rows.append(finish(sample))
                    sample = {}
                    if len(rows) >= batch_rows:
                        yield _rows_to_table(rows)
                        rows = []
                current_key = key
                payload = tar.extractfile(member).read()
                sample["__key__"] = key
                if extension == "json":
                    try:
                        sample["json"] = json.loads(payload)
                    except ValueError:
                        sample["json"] = {}
                elif extension == "txt":
                    # Undecodable text stays visible as U+FFFD so the filter can reject it.
                    sample["txt"] = payload.decode("utf-8", errors="replace")
                else:
                    sample[extension] = payload
            end = tar.offset
    except tarfile.TarError as error:
        raise InputError(f"cannot read webdataset shard {path}: {error}") from error
    _check_complete(path, end)
    if sample:
        rows.append(finish(sample))
    if rows:
        yield _rows_to_table(rows)


def count_tar_samples(path: Path) -> int:
    """Samples in a webdataset shard, from member headers alone, by the rules the reader
    follows (a new key, or a member the sample already has, starts a sample)."""
    samples, key, extensions = 0, None, set()
    try:
        with open_file(path) as file, tarfile.open(fileobj=file, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name, extension = _sample_key(member.name)
                if name != key or extension in extensions:
                    samples, key, extensions = samples + 1, name, set()
                extensions.add(extension)
            end = tar.offset
    except tarfile.TarError as error:
        raise InputError(f"cannot read webdataset shard {path}: {error}") from error
    _check_complete(path, end)
    return samples


def _check_complete(path: Path, end: int) -> None:
    """A tar ends with two zero blocks after its last member (at byte `end`); one cut at a
    member boundary reads as complete without them: one InputError line."""
    with open_file(path) as file:
        file.seek(end)
        tail = file.read(2 * tarfile.BLOCKSIZE)
    if len(tail) < 2 * tarfile.BLOCKSIZE or tail.strip(b"\0") != b"":
        raise InputError(
            f"webdataset shard {path} is cut short (it ends at byte {end} without the tar "
            "end-of-archive blocks); copy it again"
        )


def _rows_to_table(rows: list[dict]) -> pa.Table:
    """Rows from tar metadata; values kept as stored (mixed types become strings)."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else str(v) for v in values])
    return pa.table(columns)


def source_columns(path: Path) -> list[str]:
    """A shard's column names as stored: the parquet schema, or its first rows' (a tar's
    first sample, a TSV's header, an Arrow file's first batch)."""
    if path.name.endswith(".parquet"):
        return open_parquet(path).schema_arrow.names
    for table in _reader(path)(path, 1):
        return table.column_names
    return []


def layout_columns(
    paths: list[Path], preset: str | None, specs: Iterable[str] | None
) -> tuple[dict[str, str], str | None]:
    """(column mapping, the preset it came from): `preset` as given, or, without one, the
    layout the first shard's columns call for (`detect_preset`); `specs` win over either."""
    if preset is None and paths:
        preset = detect_preset(source_columns(paths[0]))
    return column_map(preset, specs), preset


def sidecars(paths: Iterable[Path]) -> set[Path]:
    """img2dataset's webdataset output keeps a parquet of every row's metadata beside each tar
    (`00000.tar`, `00000.parquet`): the rows it fetched are in the tar, with their images."""
    paths = set(paths)
    return {p for p in paths if p.suffix == ".parquet" and p.with_suffix(".tar") in paths}


def _failed_rows(table: pa.Table) -> pa.Table:
    """A sidecar's rows that are not in its tar: those the downloader failed to fetch."""
    if STATUS_COLUMN not in table.column_names:
        return table.slice(0, 0)
    status = as_text(table.column(STATUS_COLUMN))
    return table.filter(pc.fill_null(pc.not_equal(status, STATUS_OK), False))


def iter_pair_batches(
    paths: Iterable[str | Path],
    column_map: dict[str, str] | None = None,
    batch_rows: int = 8192,
    columns: list[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream pair-schema record batches from parquet, webdataset, Arrow and TSV shards.

    Each batch has at most `batch_rows` rows, the pair columns (missing optional ones as
    nulls) plus any extra source columns, or exactly `columns` when given. Each row is read
    once: from a tar's metadata sidecar (`sidecars`), only the rows the tar lacks.
    """
    mapping = column_map or {}
    paths = list(paths)
    files = expand_inputs(paths) if paths else []  # no shards (a filter that kept nothing)
    beside_a_tar = sidecars(files)
    for path in files:
        row = 0
        for table in _reader(path)(path, batch_rows):
            if "key" not in (mapping.get(name, name) for name in table.column_names):
                table = _with_keys(table, path, row)
            row += table.num_rows
            if path in beside_a_tar:
                table = _failed_rows(table)
            check_unique_columns(path, table.column_names, mapping)
            table = _rename(table, mapping, columns)
            problem = (
                image_type_problem(table.schema.field("image").type)
                if "image" in (table.column_names)
                else None
            )
            if problem:
                raise InputError(f"{path}: {problem}")
            yield from table.to_batches(max_chunksize=batch_rows)


def _regroup(batches: Iterable[pa.RecordBatch], shard_rows: int) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(shard_rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            batch = batch.slice(take)
            count += take
            if count == shard_rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def record_batches(
    rows: Iterable[dict], schema: pa.Schema, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Rows as dicts -> record batches of `schema`, at most `batch_rows` rows each (what the
    shard writers take from a generator of rows)."""
    pending: list[dict] = []
    for row in rows:
        pending.append(row)
        if len(pending) == batch_rows:
            yield pa.RecordBatch.from_pylist(pending, schema=schema)
            pending = []
    if pending:
        yield pa.RecordBatch.from_pylist(pending, schema=schema)


def write_pair_shards(
    batches: Iterable[pa.RecordBatch],
    out_dir: str | Path,
    shard_rows: int = 50_000,
    overwrite: bool = False,
    dictionary_pagesize_limit: int | None = None,
) -> list[Path]:
    """Write `part-00000.parquet`, ... atomically into `out_dir` (an earlier output of ours is
    replaced only with `overwrite`). Returns the shard paths. `dictionary_pagesize_limit`
    (bytes) raises parquet's 1 MiB dictionary for columns that repeat large values."""
    out_dir = Path(out_dir)
    if shard_rows < 1:
        raise InputError(f"--shard-rows must be at least 1, not {shard_rows}")
    names = []
    with staged_output(out_dir, overwrite) as staged:
        for index, table in enumerate(_regroup(batches, shard_rows)):
            name = f"part-{index:05d}.parquet"
            pq.write_table(
                table, staged / name, dictionary_pagesize_limit=dictionary_pagesize_limit
            )
            names.append(name)
    return [out_dir / name for name in names]


def write_webdataset_shards(
    batches: Iterable[pa.RecordBatch],
    out_dir: str | Path,
    shard_rows: int = 10_000,
    overwrite: bool = False,
) -> list[Path]:
    """Write `{key}.jpg/.txt/.json` samples into `shard-00000.tar`, ... atomically.

    Rows without image bytes are written without a `.jpg` member.
    """
    out_dir = Path(out_dir)
    if shard_rows < 1:
        raise InputError(f"--shard-rows must be at least 1, not {shard_rows}")
    names = []
    with staged_output(out_dir, overwrite) as staged:
        for index, table in enumerate(_regroup(batches, shard_rows)):
            name = f"shard-{index:05d}.tar"
            with tarfile.open(staged / name, "w") as tar:
                for row in table.to_pylist():
                    image = row.pop("image", None)
                    key = str(row["key"])
                    members = {"txt": (row.get("caption") or "").encode("utf-8")}
                    members["json"] = json.dumps(row, ensure_ascii=False, default=str).encode()
                    if image is not None:
                        members["jpg"] = image
                    for extension, payload in members.items():
                        info = tarfile.TarInfo(f"{key}.{extension}")
                        info.size = len(payload)
                        tar.addfile(info, io.BytesIO(payload))
            names.append(name)
    return [out_dir / name for name in names]
