"""Benchmark of the evaluation: the demo's Multi30k run, embedding and metric speed, each with a
baseline measured in the same process. Prints medians and ratios; writes OUTPUT/bench.{json,md}.

    python -m benchmarks.bench_eval --output bench-output/eval

1. Multi30k end to end (`eval/multi30k.py`): a synthetic 1,000-image test_2016 set in the real
   layout (64 px JPEGs; 5,000 en, 5,000 de, 1,000 fr, 1,000 cs captions) and 3 tiny models, as
   the demo runs it. Cold (no cache) against warm (every embedding from the cache).
2. Caption embedding: length-sorted batches padded to their own longest caption, against
   AlignProcessor's default of padding every caption to 64 tokens.
3. Recall: our sliced rank counting against the common full argsort of the similarity matrix,
   on Multi30k (1k x 5k) and COCO-Karpathy (5k x 25k) sizes; both must agree on tie-free data.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from mling.common.provenance import code_state
from mling.common.report import markdown_table, write_report
from mling.evaluation import multi30k
from mling.evaluation.embed import EmbedConfig, Embedder
from mling.evaluation.recall import retrieval_metrics
from tests.helpers.tiny_model import build_tiny_align, build_tiny_tokenizer

# What the benchmark measures (mling/common/provenance.py; `benchmarks/update_docs.py --check`).
MEASURED_MODULES = ("mling/evaluation/",)

WORDS = {  # (subjects, verbs, places) per language, for captions with a Multi30k-like length
    "en": (
        ["A man", "Two dogs", "A young girl", "An old woman"],
        ["runs", "sits", "plays"],
        ["on the beach.", "in a green park.", "next to a red car on a busy street."],
    ),
    "de": (
        ["Ein Mann", "Zwei Hunde", "Ein junges Mädchen", "Eine alte Frau"],
        ["läuft", "sitzt"],
        ["am Strand.", "in einem grünen Park.", "neben einem roten Auto auf der Straße."],
    ),
    "fr": (
        ["Un homme", "Deux chiens", "Une jeune fille"],
        ["court", "joue", "s'assoit"],
        ["sur la plage.", "dans un parc vert.", "à côté d'une voiture rouge."],
    ),
    "cs": (
        ["Muž", "Dva psi", "Mladá dívka"],
        ["běží", "sedí", "hraje si"],
        ["na pláži.", "v zeleném parku.", "vedle červeného auta na rušné ulici."],
    ),
}


@dataclass
class BenchConfig:
    images: int = 1000  # test_2016 has 1,000
    models: int = 3  # the demo compares three
    image_px: int = 64  # side of the square images the tiny models see
    repeats: int = 3  # timed runs per measurement; the median is reported
    threads: int = 1  # torch threads: the demo machine is shared


def median_seconds(fn: Callable[..., object], repeats: int, *args: object) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_synthetic_multi30k(root: Path, images: Path, count: int, px: int) -> list[str]:
    from PIL import Image

    rng = random.Random(0)
    names = [f"{n}.jpg" for n in rng.sample(range(10**9, 10**10), count)]
    images.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.effect_mandelbrot((px, px), (-2 + i / count, -1.2, 1, 1.2), 30 + i % 70).convert(
            "RGB"
        ).save(images / name, quality=90)

    def captions(language: str) -> list[str]:
        subjects, verbs, places = WORDS[language]
        return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(places)}" for _ in names]

    def write(path: Path, lines: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")

    for task, split, suffix in (
        ("task1", "test_2016_flickr", ""),
        ("task2", "test_2016", "_images"),
    ):
        (root / f"data/{task}/image_splits").mkdir(parents=True, exist_ok=True)
        (root / f"data/{task}/image_splits/{split}{suffix}.txt").write_text("\n".join(names) + "\n")
    for language in WORDS:
        write(root / f"data/task1/raw/test_2016_flickr.{language}.gz", captions(language))
    for language in ("en", "de"):
        for k in range(1, 6):
            write(root / f"data/task2/raw/test_2016.{k}.{language}.gz", captions(language))
    return names


def argsort_metrics(image_embeds, text_embeds, text_to_image, ks=(1, 5, 10)) -> dict:
    """The common implementation: sort every row and column of the full similarity matrix."""
    similarity = image_embeds @ text_embeds.T
    n = similarity.shape[0]
    order = similarity.T.argsort(dim=1, descending=True)  # (M, N) images per caption
    t2i = (order == text_to_image.view(-1, 1)).float().argmax(1)
    order = similarity.argsort(dim=1, descending=True)  # (N, M) captions per image
    i2t = (text_to_image[order] == torch.arange(n).view(-1, 1)).float().argmax(1)
    recall = {
        d: {f"R@{k}": 100.0 * (r < k).double().mean().item() for k in ks}
        for d, r in (("i2t", i2t), ("t2i", t2i))
    }
    values = [*recall["i2t"].values(), *recall["t2i"].values()]
    return {**recall, "mR": sum(values) / len(values)}


def main(argv: list[str] | None = None) -> int:
    # config
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output/eval"))
    for field, value in asdict(BenchConfig()).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=value)
    args = parser.parse_args(argv)
    cfg = BenchConfig(**{f: getattr(args, f) for f in asdict(BenchConfig())})
    code = code_state(MEASURED_MODULES)
    torch.set_num_threads(cfg.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows: list[list] = []

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        tmp = Path(tmp)

        # data and models, as the demo has them
        write_synthetic_multi30k(tmp / "multi30k", tmp / "images", cfg.images, cfg.image_px)
        texts = [phrase for words in WORDS.values() for group in words for phrase in group] * 3
        tokenizer = build_tiny_tokenizer(tmp / "tokenizer", texts, vocab_size=500)
        models = [
            build_tiny_align(tmp / f"m{i}/model", tokenizer, seed=i, image_size=cfg.image_px)
            for i in range(cfg.models)
        ]
        argv_run = ["--multi30k", str(tmp / "multi30k"), "--images", str(tmp / "images")]
        for i, model in enumerate(models):
            argv_run += ["--model", str(model), "--name", f"model{i}"]
        argv_run += ["--output", str(tmp / "out"), "--workers", str(max(1, cfg.threads))]

        # 1. end to end, cold then warm
        def evaluate(argv: list[str]) -> None:  # a failed run is no measurement
            if multi30k.main(argv) != 0:
                raise SystemExit("bench_eval.py: multi30k.py failed (above)")

        cold = median_seconds(lambda: evaluate([*argv_run, "--no-cache"]), cfg.repeats)
        evaluate(argv_run)  # fill the cache
        warm = median_seconds(lambda: evaluate(argv_run), cfg.repeats)
        rows.append(
            [
                f"multi30k.py, {cfg.models} models, {cfg.images} images, 4 languages",
                "no cache",
                round(cold, 2),
                "cache",
                round(warm, 2),
                round(cold / warm, 1),
            ]
        )

        # 2. captions: dynamic padding of length-sorted batches vs padding to 64
        from mling.evaluation.multi30k_data import read_multi30k

        captions = list(read_multi30k(tmp / "multi30k", "en").captions)
        embedder = Embedder(models[0], EmbedConfig(cache_dir=None), log=lambda _: None)
        processor, model = embedder.processor, embedder.model

        @torch.inference_mode()
        def padded_to_64() -> None:
            for i in range(0, len(captions), 64):
                tokens = processor(text=captions[i : i + 64], return_tensors="pt")
                model.get_text_features(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                )

        ours = median_seconds(lambda: embedder.texts(captions), cfg.repeats)
        base = median_seconds(padded_to_64, cfg.repeats)
        rows.append(
            [
                f"embed {len(captions)} captions",
                "pad to 64",
                round(base, 2),
                "sorted, pad to longest",
                round(ours, 2),
                round(base / ours, 1),
            ]
        )

        # 3. recall: sliced rank counts vs full argsort
        for n, per_image, dim in ((1000, 5, 640), (5000, 5, 640)):
            generator = torch.Generator().manual_seed(n)
            image_embeds = torch.nn.functional.normalize(
                torch.randn(n, dim, generator=generator), dim=-1
            )
            text_to_image = torch.arange(n).repeat_interleave(per_image)
            noise = torch.randn(n * per_image, dim, generator=generator)
            text_embeds = torch.nn.functional.normalize(
                image_embeds[text_to_image] + 1.5 * noise, dim=-1
            )
            ours_metrics = retrieval_metrics(image_embeds, text_embeds, text_to_image)
            base_metrics = argsort_metrics(image_embeds, text_embeds, text_to_image)
            assert abs(ours_metrics["mR"] - base_metrics["mR"]) < 1e-9, (ours_metrics, base_metrics)
            repeats = cfg.repeats if n <= 1000 else 1
            embeds = (image_embeds, text_embeds, text_to_image)
            ours = median_seconds(retrieval_metrics, repeats, *embeds)
            base = median_seconds(argsort_metrics, repeats, *embeds)
            rows.append(
                [
                    f"recall {n} x {n * per_image}, mR {ours_metrics['mR']:.1f} (equal)",
                    "full argsort",
                    round(base, 3),
                    "sliced rank counts",
                    round(ours, 3),
                    round(base / ours, 1),
                ]
            )

    # report
    headers = ["measurement", "baseline", "baseline s", "ours", "ours s", "speed-up x"]
    shown = [[f"{c:.3g}" if isinstance(c, float) else c for c in row] for row in rows]
    table = markdown_table(headers, shown)
    title = f"Evaluation benchmark (median of {cfg.repeats}, {cfg.threads} torch thread(s))"
    write_report(
        args.output,
        "bench",
        {"config": asdict(cfg), "headers": headers, "rows": rows, "provenance": code},
        f"# {title}\n\n{table}\n",
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
