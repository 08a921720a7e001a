"""Streaming training batches from pair shards, deterministic and resumable to the row.

Sources: parquet shards with image bytes and webdataset tar shards (read through mling.pairs,
so every column preset works) and `datasets` saved with save_to_disk. Every source is cut into
blocks of at most block_rows rows. Each epoch the blocks are shuffled with the seed and dealt
round-robin to the readers (training processes x loader workers): each reader reads only its
own blocks. A reader mixes the rows of several consecutive blocks (a window of shuffle_rows),
decodes and augments them, skips undecodable ones (counted by reason), and yields full batches
of static shape.

A reader's stream is a pure function of (seed, reader, readers), so its position is one number,
the rows it has consumed; resuming skips whole windows without reading them.

With an `id_column` (the recipe's `positives`, e.g. the emoji set's `image_id`), each batch also
carries `image_ids`: a stable 64-bit hash of that column per row, equal for the rows of one
image, which the loss makes positives of each other. With `group_rows` K > 1 a window is mixed
in chunks of up to K rows of one image (`grouped_order`), so a batch holds several captions
of an image; rows of one image must then sit close together in the shards (the emoji set's
`--order drawings`), since only the rows of one window are grouped.

With `captions_per_image` K > 1 (and an id column), each row brings K captions of its image:
its own and K - 1 others drawn from the captions of the rows with its id anywhere in the data
(its names in other languages), so a batch holds B images and B x K captions. The captions of
every row (not the images) are indexed by id in memory once per reader: sets of millions of
rows, not billions.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import warnings
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from mling.common.errors import InputError
from mling.common.text import nfc
from mling.pairs.shards import (
    count_tar_samples,
    expand_inputs,
    iter_pair_batches,
    layout_columns,
    load_saved_dataset,
    open_parquet,
    sidecars,
)
from mling.training.image_cache import image_digest
from mling.training.transforms import (
    center_offset,
    decode_image,
    random_crops,
    resize_size,
    train_crop,
)

SKIP_REASONS = ("missing_caption", "missing_image", "corrupt_image")


@dataclass(frozen=True)
class Source:
    path: str
    kind: str  # parquet, tar, or arrow (a `datasets` directory)
    part_rows: tuple[int, ...]  # rows per part: parquet row groups; one part otherwise


@dataclass(frozen=True)
class Block:
    source: int  # index into the source list
    part: int  # row group of a parquet source; 0 otherwise
    start: int  # first row within the part
    stop: int  # one past the last row

    @property
    def rows(self) -> int:
        return self.stop - self.start


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in ("state.json", "dataset_dict.json"))


def _load_saved_dataset(path: str):
    """A `datasets` directory as an Arrow-formatted Dataset (its train split for a DatasetDict);
    one InputError line for one that `datasets` cannot load (`load_saved_dataset`)."""
    import datasets

    loaded = load_saved_dataset(Path(path))
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise InputError(
                f"{path} has splits {list(loaded)} but no 'train'; save the split itself"
            )
        loaded = loaded["train"]
    return loaded.with_format("arrow")


def _require_columns(
    path: object, names: set[str], wanted: dict[str, str], id_column: str = "", anchor: str = ""
) -> None:
    for column in ("caption", "image"):
        if wanted.get(column, column) not in names:
            raise InputError(
                f"{path} has no {column} column {wanted.get(column, column)!r} (it has "
                f"{', '.join(sorted(names))}); pass --column SRC={column} or --column-preset"
            )
    if id_column and wanted.get(id_column, id_column) not in names:
        raise InputError(
            f"{path} has no column {wanted.get(id_column, id_column)!r} for --positives "
            f"{id_column} (it has {', '.join(sorted(names))}); pass --positives '' for one "
            "positive per row, or the column that names each row's image"
        )
    if anchor and wanted.get("language", "language") not in names:
        raise InputError(
            f"{path} has no language column for --anchor-language {anchor} (it has "
            f"{', '.join(sorted(names))}); pass --column SRC=language or --anchor-language ''"
        )


def image_id_hash(values: list) -> np.ndarray:
    """Id strings (or numbers) -> (B,) int64: the first 8 bytes of blake2b of str(value).

    The same in every process, worker and resume (Python's hash() is salted per process).
    """
    digests = b"".join(
        hashlib.blake2b(str(value).encode("utf-8"), digest_size=8).digest() for value in values
    )
    return np.frombuffer(digests, dtype="<i8").astype(np.int64)


def index_sources(
    paths: list[str | Path], mapping: dict[str, str], id_column: str = "", anchor: str = ""
) -> list[Source]:
    """Every input (files, directories, globs, `datasets` directories) -> sources with row counts.

    Raises InputError when a parquet shard lacks a caption or image column (or `id_column`).
    """
    wanted = {dest: src for src, dest in mapping.items()}
    sources = []
    for raw in paths:
        if is_saved_dataset(Path(raw)):
            dataset = _load_saved_dataset(str(raw))
            _require_columns(raw, set(dataset.column_names), wanted, id_column, anchor)
            sources.append(Source(str(raw), "arrow", (len(dataset),)))
            continue
        files = expand_inputs([raw])
        metadata_only = sidecars(files)  # every row they hold with an image is in the tar
        for path in files:
            if path.name.endswith(".tar"):
                sources.append(Source(str(path), "tar", (count_tar_samples(path),)))
                continue
            if path in metadata_only:
                continue
            if path.name.endswith((".arrow", ".tsv", ".tsv.gz")):  # WIT, an Arrow file alone
                raise InputError(
                    f"{path} is not a parquet or webdataset shard; training reads those and "
                    "`datasets` folders with images (fetch a URL list's images with img2dataset)"
                )
            parquet = open_parquet(path)
            metadata = parquet.metadata  # its schema names leaves: an Image struct's `bytes`
            _require_columns(path, set(parquet.schema_arrow.names), wanted, id_column, anchor)
            rows = tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))
            sources.append(Source(str(path), "parquet", rows))
    return sources


def train_columns(
    paths: list[str | Path], preset: str | None, specs: list[str]
) -> tuple[dict[str, str], str | None]:
    """The column mapping for the training inputs: the preset asked for, or the layout their
    first shard's columns call for (`layout_columns`), with `specs` on top."""
    return layout_columns(expand_inputs(paths), preset, specs)


def make_blocks(sources: list[Source], block_rows: int, readers: int) -> list[Block]:
    """Cut every part into blocks; small corpora get smaller blocks so each reader has ~4+.

    Raises InputError when there are fewer rows than readers.
    """
    total = sum(sum(s.part_rows) for s in sources)
    if total < readers:
        raise InputError(
            f"{total} pairs cannot feed {readers} loader processes; lower --num-workers"
        )
    size = max(1, min(block_rows, total // (4 * readers)))
    blocks = []
    for index, source in enumerate(sources):
        for part, rows in enumerate(source.part_rows):
            blocks.extend(
                Block(index, part, start, min(start + size, rows)) for start in range(0, rows, size)
            )
    return blocks


def grouped_order(rng: np.random.Generator, ids: list, k: int) -> np.ndarray:
    """A permutation of range(len(ids)) in chunks of up to k consecutive rows with equal ids:
    each id's rows in a random order, cut into chunks of k (the last may be shorter), the
    chunks in a random order. (N,) ids -> (N,) row indices."""
    by_id: dict = {}
    for row, key in enumerate(ids):  # a row without an id shows an image of its own
        by_id.setdefault(("row", row) if key is None else key, []).append(row)
    chunks = []
    for rows in by_id.values():
        mixed = [rows[j] for j in rng.permutation(len(rows))]
        chunks += [mixed[start : start + k] for start in range(0, len(mixed), k)]
    order = [row for index in rng.permutation(len(chunks)) for row in chunks[index]]
    return np.asarray(order, dtype=np.int64)


def _image_bytes(column: pa.ChunkedArray) -> list[bytes | None]:
    """Binary column, or a `datasets` Image struct {bytes, path} -> encoded bytes per row."""
    if pa.types.is_struct(column.type):
        column = pc.struct_field(column, "bytes")
    return column.to_pylist()


PAD_MULTIPLE = 8  # batches padded to the longest caption are rounded up to this many tokens


def padded_length(lengths: list[int], max_length: int, static: bool) -> int:
    """Tokens per caption of one batch: max_length when static (one shape: XLA compiles once),
    else the longest caption rounded up to PAD_MULTIPLE, at most max_length (a few shapes).
    Padding is masked, so both give the same embeddings; short captions cost less compute."""
    if static or not lengths:
        return max_length
    longest = max(lengths)
    return min(max_length, -(-longest // PAD_MULTIPLE) * PAD_MULTIPLE)


def caption_encoder(tokenizer_dir: str, max_length: int, static: bool = True):
    """captions -> (input_ids, attention_mask), (B, L) int64, truncated to max_length tokens and
    padded to L = padded_length(...): max_length when static, else the batch's longest.

    Calls the Rust tokenizer directly (3x faster than the transformers wrapper, which it
    matches token for token); slow tokenizers go through the wrapper.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:

        def encode_slow(captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            out = tokenizer([nfc(caption) for caption in captions], truncation=True,
                            max_length=max_length)  # fmt: skip
            length = padded_length([len(ids) for ids in out["input_ids"]], max_length, static)
            out = tokenizer.pad(out, padding="max_length", max_length=length)
            return torch.tensor(out["input_ids"]), torch.tensor(out["attention_mask"])

        return encode_slow
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(backend.to_str())  # a copy: the settings below stay ours
    backend.no_padding()
    backend.enable_truncation(max_length)
    pad_id = tokenizer.pad_token_id

    def encode(captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encodings = backend.encode_batch([nfc(caption) for caption in captions])
        length = padded_length([len(e.ids) for e in encodings], max_length, static)
        ids = np.full((len(encodings), length), pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), length), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        return torch.from_numpy(ids), torch.from_numpy(mask)

    return encode


@dataclass
class PairStream(IterableDataset):
    """Yields per-process training batches forever (see the module docstring).

    Each batch: pixel_values (B, 3, S, S) uint8 (with an image_index, image_rows (B,) int64
    instead: each row's image in the image-embedding cache), input_ids and attention_mask (B, L) int64
    (L = max_length with pad_to_max_length, else the batch's longest caption rounded up to 8),
    (B, K, L) with captions_per_image K > 1 (each image's own caption first),
    reader (int), position (rows the reader has consumed after this batch), skipped (reason ->
    rows dropped while filling this batch); with an id_column, image_ids (B,) int64. Bad input
    a loader process meets comes as {"error": the one line}, raised by StreamState.consume.
    """

    sources: list[Source]
    tokenizer_dir: str
    batch_size: int  # pairs per batch of this process
    image_size: int  # px
    max_length: int  # tokens
    mapping: dict[str, str] = field(default_factory=dict)  # source column -> pair column
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    num_workers: int = 0
    block_rows: int = 1024
    shuffle_rows: int = 8192
    cache_mb: int = 512
    flip: bool = True  # random horizontal flips; the draws are made either way, so a stream's
    # crops do not depend on it
    positions: dict[int, int] = field(default_factory=dict)  # reader -> rows consumed (resume)
    worker_offset: int = 0  # logical worker served first (resume mid round-robin)
    id_column: str = ""  # pair column naming each row's image (image_id); "" for none
    group_rows: int = 1  # rows of one id kept together, in chunks of up to this many
    pad_to_max_length: bool = False  # every batch max_length tokens (XLA); else its longest
    captions_per_image: int = 1  # K captions per row: its own and K - 1 of its id's others
    crop: str = "random"  # "random" offsets (paper) or "center" (the evaluation crop)
    anchor_language: str = ""  # with K > 1: the id's caption in this language comes second
    # image digest -> row of the image-embedding cache (image_cache.py): rows carry that row
    # instead of pixels and no image is decoded; a digest not in it did not decode
    image_index: dict | None = None

    def __post_init__(self) -> None:
        super().__init__()
        self.workers = max(1, self.num_workers)
        self.readers = self.world_size * self.workers
        self.blocks = make_blocks(self.sources, self.block_rows, self.readers)
        self.total_rows = sum(b.rows for b in self.blocks)
        self._parts: OrderedDict[tuple[int, int], pa.Table] = OrderedDict()
        self._datasets: dict[int, object] = {}
        self._captions_by_id: dict | None = None
        self._anchors: dict = {}  # id -> its caption in anchor_language
        if self.captions_per_image > 1 and not self.id_column:
            raise InputError(
                f"--captions-per-image {self.captions_per_image} needs --positives (e.g. "
                "image_id): the column that says which rows show one image"
            )

    # ---- which rows, in which order (no I/O) ----

    def windows(self, reader: int, epoch: int) -> list[list[Block]]:
        """This reader's blocks for an epoch, grouped into windows of >= shuffle_rows rows."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.blocks))
        windows: list[list[Block]] = [[]]
        rows = 0
        for index in order[reader :: self.readers]:
            if rows >= self.shuffle_rows:
                windows.append([])
                rows = 0
            windows[-1].append(self.blocks[index])
            rows += self.blocks[index].rows
        return windows

    # ---- reading ----

    def _columns(self) -> list[str]:
        return ["caption", "image"] + ([self.id_column] if self.id_column else [])

    def _part(self, source_index: int, part: int) -> pa.Table:
        """A whole parquet row group or tar shard as (caption, image[, id]), LRU-cached by bytes."""
        key = (source_index, part)
        if key in self._parts:
            self._parts.move_to_end(key)
            return self._parts[key]
        source = self.sources[source_index]
        wanted = {dest: src for src, dest in self.mapping.items()}
        if source.kind == "parquet":
            columns = [wanted.get(name, name) for name in self._columns()]
            table = open_parquet(source.path).read_row_group(part, columns=columns)
            table = table.rename_columns(self._columns())
        else:
            batches = iter_pair_batches([source.path], self.mapping, columns=self._columns())
            table = pa.Table.from_batches(list(batches))
        self._parts[key] = table
        budget = self.cache_mb * 2**20
        while len(self._parts) > 1 and sum(t.nbytes for t in self._parts.values()) > budget:
            self._parts.popitem(last=False)
        return table

    def _dataset(self, source_index: int):
        """A `datasets` source, loaded once per reader."""
        if source_index not in self._datasets:
            path = self.sources[source_index].path
            self._datasets[source_index] = _load_saved_dataset(path)
        return self._datasets[source_index]

    def read_block(self, block: Block) -> tuple[list, list, list]:
        """-> (captions, encoded images, ids) of the block's rows, values as stored; ids are
        Nones without an id_column."""
        source = self.sources[block.source]
        if source.kind == "arrow":
            table = self._dataset(block.source)[block.start : block.stop]
            table = table.rename_columns([self.mapping.get(n, n) for n in table.column_names])
        else:
            table = self._part(block.source, block.part).slice(block.start, block.rows)
        captions = table.column("caption").to_pylist()
        ids = table.column(self.id_column).to_pylist() if self.id_column else [None] * len(captions)
        return captions, _image_bytes(table.column("image")), ids

    def captions_by_id(self) -> dict:
        """id -> the distinct captions of the rows with that id, over every source (read once:
        the caption and id columns only, and the language column with an anchor_language,
        never the images)."""
        if self._captions_by_id is None:
            index: dict = {}
            anchors: dict = {}
            names = ["caption", self.id_column] + (["language"] if self.anchor_language else [])
            for table in self._column_parts(names):
                captions = table.column("caption").to_pylist()
                ids = table.column(self.id_column).to_pylist()
                languages = (
                    table.column("language").to_pylist()
                    if self.anchor_language
                    else [None] * len(captions)
                )
                for caption, key, language in zip(captions, ids, languages, strict=True):
                    if key is not None and isinstance(caption, str) and caption.strip():
                        found = index.setdefault(key, [])
                        if caption not in found:
                            found.append(caption)
                        if language == self.anchor_language:
                            anchors.setdefault(key, caption)
            self._captions_by_id, self._anchors = index, anchors
        return self._captions_by_id

    def image_payloads(self) -> Iterator[list]:
        """Every source's encoded images (bytes or None), a part at a time, in source order:
        what the image-embedding cache embeds once (image_cache.py)."""
        for table in self._column_parts(["image"]):
            yield _image_bytes(table.column("image"))

    def _column_parts(self, names: list[str]) -> Iterator[pa.Table]:
        """Every source's columns `names` (pair names, the mapping applied), a part at a time."""
        wanted = {dest: src for src, dest in self.mapping.items()}
        for index, source in enumerate(self.sources):
            if source.kind == "parquet":
                parquet = open_parquet(source.path)
                for part in range(len(source.part_rows)):
                    table = parquet.read_row_group(part, columns=[wanted.get(n, n) for n in names])
                    yield table.rename_columns(names)
            elif source.kind == "arrow":
                columns = [wanted.get(n, n) for n in names]
                yield self._dataset(index).select_columns(columns)[:].rename_columns(names)
            else:
                batches = iter_pair_batches([source.path], self.mapping, columns=names)
                yield pa.Table.from_batches(list(batches))

    def more_captions(self, rng: np.random.Generator, caption, key) -> tuple:
        """(caption, K - 1 others of its id): distinct ones while the id has enough, then
        repeats. A row without an id (or whose id has no other caption) repeats its own. With
        an anchor_language, the id's caption in that language comes second whenever the row's
        own is another (the transfer recipe's English: each name beside its English one)."""
        others = [c for c in self.captions_by_id().get(key, ()) if c != caption] or [caption]
        wanted = self.captions_per_image - 1
        anchor = self._anchors.get(key) if self.anchor_language else None
        first = []
        if anchor is not None and anchor != caption:
            first = [anchor]
            others = [c for c in others if c != anchor] or [anchor]
            wanted -= 1
        picks = rng.permutation(len(others))[:wanted].tolist()
        picks += rng.integers(0, len(others), size=wanted - len(picks)).tolist()
        return (caption, *first, *(others[i] for i in picks))

    def rows(
        self, reader: int, start: int = 0
    ) -> Iterator[tuple[int, object, object, tuple, bool, object]]:
        """(position after this row, caption, image bytes, crop offset, flip, id), forever;
        with captions_per_image K > 1 the caption is a tuple of K (the row's own first).

        Rows before `start` are skipped; whole windows are skipped without reading them.
        """
        position = 0
        for epoch in itertools.count():
            for number, window in enumerate(self.windows(reader, epoch)):
                size = sum(b.rows for b in window)
                if position + size <= start:
                    position += size
                    continue
                captions, images, ids = [], [], []
                for block in window:
                    block_captions, block_images, block_ids = self.read_block(block)
                    captions += block_captions
                    images += block_images
                    ids += block_ids
                if len(captions) != size:  # positions would no longer mean the same rows
                    paths = sorted({self.sources[b.source].path for b in window})
                    raise InputError(f"shard changed while training, restart the run: {paths}")
                rng = np.random.default_rng([self.seed, epoch, reader, number])
                if self.group_rows > 1 and self.id_column:
                    order = grouped_order(rng, ids, self.group_rows)
                else:
                    order = rng.permutation(size)
                offsets, flips = random_crops(rng, size, self.image_size)  # drawn either way:
                if self.crop == "center":  # the stream's other draws do not depend on the crop
                    offsets[:] = center_offset(self.image_size)
                for i in range(max(0, start - position), size):
                    j = order[i]
                    caption = captions[j]
                    if self.captions_per_image > 1 and isinstance(caption, str) and caption.strip():
                        # a stream of the row's own: K = 1 streams and resumed ones unchanged
                        extra = np.random.default_rng([self.seed, epoch, reader, number, i, 1])
                        caption = self.more_captions(extra, caption, ids[j])
                    yield (
                        position + i + 1,
                        caption,
                        images[j],
                        tuple(offsets[i]),
                        self.flip and bool(flips[i]),
                        ids[j],
                    )
                position += size

    # ---- batching ----

    def _reader(self) -> int:
        info = get_worker_info()
        physical = info.id if info is not None else 0
        logical = (physical + self.worker_offset) % self.workers
        return self.rank * self.workers + logical

    def __iter__(self) -> Iterator[dict]:
        try:
            yield from self._batches()
        except InputError as error:
            if get_worker_info() is None:
                raise
            # a loader process's exception reaches the trainer with its traceback in the
            # message: the one line goes as an item instead, raised by StreamState.consume
            yield {"error": str(error)}

    def _batches(self) -> Iterator[dict]:
        warnings.filterwarnings("ignore", module="PIL")  # e.g. palette transparency notices
        encode = caption_encoder(self.tokenizer_dir, self.max_length, self.pad_to_max_length)
        reader = self._reader()
        size, draft = self.image_size, resize_size(self.image_size)
        cached = self.image_index is not None
        pixels = np.empty((0 if cached else self.batch_size, 3, size, size), dtype=np.uint8)
        image_rows = np.empty(self.batch_size if cached else 0, dtype=np.int64)
        captions: list[str] = []
        ids: list = []
        skipped: Counter = Counter()
        dropped: Counter = Counter()  # reason -> rows dropped since the last usable one
        for position, caption, payload, offset, flip, image_id in self.rows(
            reader, self.positions.get(reader, 0)
        ):
            reason = None
            captioned = caption if isinstance(caption, tuple) else (caption,)
            if not isinstance(caption, (str, tuple)) or not captioned[0].strip():
                reason = "missing_caption"
            elif payload is None:
                reason = "missing_image"
            elif cached:
                row = self.image_index.get(image_digest(payload))
                if row is None:  # the cache tried it and it did not decode
                    reason = "corrupt_image"
                else:
                    image_rows[len(captions)] = row
            else:
                try:
                    pixels[len(captions)] = train_crop(
                        decode_image(payload, draft), size, offset, flip
                    )
                except Exception:  # PIL raises a dozen types for broken bytes; all mean "skip"
                    reason = "corrupt_image"
            if reason:
                skipped[reason] += 1
                dropped[reason] += 1
                if dropped.total() >= self.total_rows:
                    raise InputError(
                        f"no usable pair in {self.total_rows} rows ({dict(dropped)}); check that "
                        "the data has captions and image bytes, or name their columns "
                        "(--column SRC=caption, --column SRC=image)"
                    )
                continue
            dropped.clear()
            captions.append(caption)
            # a row without an id shares its image with no other: its stream position is unique
            ids.append(f"\0row {reader}:{position}" if image_id is None else image_id)
            if len(captions) == self.batch_size:
                if self.captions_per_image > 1:  # (B, K, L): K captions per image
                    input_ids, attention_mask = encode([c for row in captions for c in row])
                    shape = (self.batch_size, self.captions_per_image, -1)
                    input_ids, attention_mask = input_ids.view(shape), attention_mask.view(shape)
                else:
                    input_ids, attention_mask = encode(captions)
                batch = {
                    "input_ids": input_ids,
                    "attention_mask": attention_mask,
                    "reader": reader,
                    "position": position,
                    "skipped": dict(skipped),
                }
                if cached:
                    batch["image_rows"] = torch.from_numpy(image_rows)
                else:
                    batch["pixel_values"] = torch.from_numpy(pixels)
                if self.id_column:
                    batch["image_ids"] = torch.from_numpy(image_id_hash(ids))
                yield batch
                pixels, image_rows = np.empty_like(pixels), np.empty_like(image_rows)
                captions, ids, skipped = [], [], Counter()


@dataclass
class StreamState:
    """What the trainer has consumed of a PairStream; checkpointed, it resumes the stream."""

    readers: int  # processes x workers of the run that consumed it
    positions: dict[int, int] = field(default_factory=dict)  # reader -> rows consumed
    batches: int = 0  # batches consumed by this process
    skipped: Counter = field(default_factory=Counter)  # reason -> rows dropped

    def consume(self, batch: dict) -> None:
        """Count a batch as consumed; the InputError a loader process met, raised here."""
        if "error" in batch:
            raise InputError(batch["error"])
        self.positions[batch["reader"]] = batch["position"]
        self.skipped.update(batch["skipped"])
        self.batches += 1

    def to_dict(self) -> dict:
        positions = {str(k): v for k, v in self.positions.items()}
        return {"readers": self.readers, "positions": positions, "batches": self.batches,
                "skipped": dict(self.skipped)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> StreamState:
        positions = {int(k): v for k, v in data["positions"].items()}
        return cls(data["readers"], positions, data["batches"], Counter(data["skipped"]))

    def resume(self, stream: PairStream) -> bool:
        """Point the stream at the next unconsumed row of every reader; False (and nothing
        changed) when the stream has other readers than the run that saved this state."""
        if self.readers != stream.readers:
            return False
        stream.positions = dict(self.positions)
        stream.worker_offset = self.batches % stream.workers  # the next batch's worker
        return True


def build_loader(stream: PairStream, prefetch: int = 4) -> DataLoader:
    """Workers run the readers; batches come back in round-robin worker order (deterministic).

    The loader has its own generator so creating it never draws from the global torch RNG
    (which must stay exactly as a resumed checkpoint left it).
    """
    workers = stream.num_workers
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=prefetch if workers else None,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(0),
    )


def per_process_batch(batch_size: int, world_size: int) -> int:
    """The global batch split evenly; contrastive negatives need equal shapes on every process."""
    if batch_size % world_size:
        raise InputError(
            f"--batch-size {batch_size} is not divisible by {world_size} processes; "
            f"use {math.ceil(batch_size / world_size) * world_size}"
        )
    return batch_size // world_size
