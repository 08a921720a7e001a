"""Checkpoints that a kill cannot break, and that load without unpickling anything.

Layout of OUTPUT_DIR/checkpoints:

    step-00001000/            one finished checkpoint
        model.safetensors     AlignModel weights
        loss.safetensors      the sigmoid loss's bias (only with --loss sigmoid: it is not
                              part of the AlignModel, so not of model.safetensors or exports)
        config.json           its transformers config
        recipe.yaml           the resolved training recipe
        tokenizer/            the vocabulary the model was trained with
        optimizer.safetensors + optimizer.json   optimizer tensors + everything else
        trainer.json          step, samples seen, skipped rows by reason, loss scaler
        process-{rank}.safetensors + process-{rank}.json   RNG states, loader positions, the
                              losses since the last logged point, evaluations run and failed
    latest                    text file naming the newest finished checkpoint

A checkpoint is written into `.tmp-step-...` and renamed when complete; `latest` is replaced
atomically after the rename, so it never names a partial directory. A write the file system
refuses (a full disk) is one line naming the checkpoint; the earlier ones stay as they were.

A resumed run's recipe is compared with the checkpoint's `recipe.yaml` (`check_resumed_recipe`):
a change that alters the run is refused unless the user allows it by name.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mling.common.atomic import publish_dir, write_atomic
from mling.common.errors import InputError, file_system_errors
from mling.training.recipe import (
    Recipe,
    field_named,
    load_recipe,
    recipe_changes,
    recipe_flag,
    save_recipe,
)

LATEST = "latest"
LOSS_FILE, LOSS_BIAS = "loss.safetensors", "logit_bias"  # the sigmoid loss's bias


class CheckpointError(InputError):
    """A missing or unusable checkpoint, named in one line."""


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def temp_dir(root: Path, step: int) -> Path:
    """Where every process writes its part of the checkpoint for `step` before publishing."""
    return root / f".tmp-{step_name(step)}"


# ---- nested state (optimizer, RNG) as JSON + safetensors ----


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], path: str = "t") -> Any:
    """Replace every tensor in a nested structure by {"__tensor__": key}, collecting the tensors.

    Dicts with non-string keys (an optimizer's parameter ids) become {"__items__": [[k, v], ...]}.
    """
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(obj, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__ndarray__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: flatten_state(v, tensors, f"{path}.{k}") for k, v in obj.items()}
        return {
            "__items__": [[k, flatten_state(v, tensors, f"{path}.{k}")] for k, v in obj.items()]
        }
    if isinstance(obj, list | tuple):
        return [flatten_state(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__items__" in obj:
            return {k: unflatten_state(v, tensors) for k, v in obj["__items__"]}
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def save_state(directory: Path, stem: str, state: Any) -> None:
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten_state(state, tensors)
    save_file(tensors, str(directory / f"{stem}.safetensors"))
    (directory / f"{stem}.json").write_text(json.dumps(skeleton), encoding="utf-8")


def load_state(directory: Path, stem: str) -> Any:
    skeleton = json.loads((directory / f"{stem}.json").read_text(encoding="utf-8"))
    return unflatten_state(skeleton, load_file(str(directory / f"{stem}.safetensors")))


# ---- random number generators ----


def rng_state() -> dict:
    """Every generator a training process draws from: torch (CPU, CUDA), numpy, Python."""
    state = {"torch": torch.get_rng_state(), "numpy": list(np.random.get_state())}
    state["python"] = random.getstate()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(tuple(state["numpy"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_tokenizer(tokenizer, out_dir: str | Path) -> None:
    """save_pretrained, plus the WordPiece vocab.txt it was loaded with (transformers 5 writes
    only tokenizer.json; the toolkit's vocabulary contract has both)."""
    tokenizer.save_pretrained(out_dir)
    vocab = Path(getattr(tokenizer, "name_or_path", "") or ".") / "vocab.txt"
    if vocab.is_file() and not (Path(out_dir) / "vocab.txt").exists():
        shutil.copyfile(vocab, Path(out_dir) / "vocab.txt")


# ---- finding and publishing ----


def publish(root: Path, step: int) -> Path:
    """Rename the finished temp dir into place, then point `latest` at it."""
    final = publish_dir(temp_dir(root, step), root / step_name(step), overwrite=True)
    write_atomic(root / LATEST, final.name.encode())
    return final


def prune(root: Path, keep: int) -> None:
    """Keep the `keep` most recent finished checkpoints."""
    finished = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in finished[: max(0, len(finished) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def clear_temp(root: Path) -> None:
    """Remove what a killed run left half-written."""
    for stale in root.glob(".tmp-step-*"):
        shutil.rmtree(stale, ignore_errors=True)


def damage(path: Path) -> str | None:
    """Why a checkpoint directory cannot be loaded (a file missing, a safetensors file cut
    short: its header promises more bytes than the file holds), or None when it is whole."""
    for name in ("config.json", "recipe.yaml", "model.safetensors", "optimizer.safetensors"):
        if not (path / name).is_file():
            return f"{name} is missing"
    for tensors in sorted(path.glob("*.safetensors")):
        size = tensors.stat().st_size
        try:
            with open(tensors, "rb") as file:
                length = int.from_bytes(file.read(8), "little")
                header = json.loads(file.read(length)) if 8 + length <= size else None
        except (OSError, ValueError):
            header = None
        if header is None:
            return f"{tensors.name} has no readable header"
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
        if 8 + length + max(ends, default=0) > size:
            return f"{tensors.name} is cut short ({size} of {8 + length + max(ends)} bytes)"
    return None


def resolve(
    resume: str, output_dir: Path, advice: str = "pass --resume latest to continue the run"
) -> Path | None:
    """`latest` (None when the run has no checkpoint yet) or a checkpoint directory.

    A damaged checkpoint is refused in one line; under `latest`, the newest whole one is taken
    instead, with a note on stderr (a crash or a full disk may cut the newest one short).
    `advice` ends the line for a path that is no checkpoint: what the caller's user can pass."""
    if resume != "latest":
        path = Path(resume)
        if not (path / "model.safetensors").exists():
            raise CheckpointError(f"{path} is not a checkpoint (no model.safetensors); {advice}")
        problem = damage(path)
        if problem:
            raise CheckpointError(f"checkpoint {path} is damaged: {problem}")
        return path
    marker = output_dir / "checkpoints" / LATEST
    if not marker.exists():
        return None
    latest = output_dir / "checkpoints" / marker.read_text(encoding="utf-8").strip()
    candidates = [latest] + sorted(
        (p for p in (output_dir / "checkpoints").glob("step-*") if p.is_dir() and p != latest),
        reverse=True,
    )
    for path in candidates:
        problem = damage(path)
        if problem is None:
            return path
        print(
            f"checkpoint {path.name} is damaged ({problem}); trying an earlier one", file=sys.stderr
        )
    raise CheckpointError(f"no whole checkpoint in {output_dir / 'checkpoints'}")


# ---- the whole checkpoint, written by every process of a run ----


def save_checkpoint(
    accelerator,
    root: Path,
    step: int,
    align,
    optimizer,
    recipe,
    tokenizer,
    process: dict,
    bias: torch.Tensor | None = None,
) -> Path:
    """Every process writes its RNG and loader state; the main process writes the rest and
    publishes. Collective: all processes must call it at the same step. bias: the sigmoid
    loss's (DualEncoder.logit_bias), or None."""
    tmp = temp_dir(root, step)
    final = root / step_name(step)
    try:
        with file_system_errors(final):
            if accelerator.is_main_process:
                clear_temp(root)
                tmp.mkdir(parents=True)
            accelerator.wait_for_everyone()
            state = {"rng": rng_state(), **process}
            save_state(tmp, f"process-{accelerator.process_index}", state)
            if accelerator.is_main_process:
                _save_main(accelerator, tmp, step, align, optimizer, recipe, tokenizer)
                if bias is not None:
                    save_file({LOSS_BIAS: bias.detach().cpu().reshape(())}, str(tmp / LOSS_FILE))
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                publish(root, step)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)  # give back the space a full disk needs
        raise
    accelerator.wait_for_everyone()
    return final


def _save_main(accelerator, tmp: Path, step: int, align, optimizer, recipe, tokenizer) -> None:
    """The main process's part of a checkpoint: weights, config, recipe, tokenizer, optimizer."""
    weights = {k: v.detach().cpu().contiguous() for k, v in align.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    align.config.to_json_file(tmp / "config.json")
    save_recipe(recipe, tmp / "recipe.yaml")
    save_tokenizer(tokenizer, tmp / "tokenizer")
    save_state(tmp, "optimizer", optimizer.state_dict())
    scaler = accelerator.scaler.state_dict() if accelerator.scaler is not None else None
    trainer = {"step": step, "world_size": accelerator.num_processes, "scaler": scaler}
    save_state(tmp, "trainer", trainer)


def load_checkpoint(
    accelerator, path: Path, align, optimizer, bias: torch.Tensor | None = None
) -> dict:
    """Restore weights, the sigmoid loss's bias (when the run has one and the checkpoint too; a
    checkpoint of the softmax loss leaves it at its start), optimizer and loss scaler; returns
    this process's saved state (call set_rng_state(state["rng"]) last, after anything else that
    draws random numbers)."""
    align.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    if bias is not None and (path / LOSS_FILE).is_file():
        with torch.no_grad():
            bias.copy_(load_file(str(path / LOSS_FILE))[LOSS_BIAS])
    optimizer.load_state_dict(load_state(path, "optimizer"))
    trainer = load_state(path, "trainer")
    if trainer.get("scaler") and accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(trainer["scaler"])
    stem = f"process-{accelerator.process_index}"
    if not (path / f"{stem}.json").exists():  # more processes than the run that saved it
        return {"step": trainer["step"]}
    return {**load_state(path, stem), "step": trainer["step"]}


def check_resumed_recipe(checkpoint: Path, recipe: Recipe, allowed: list[str]) -> list[str]:
    """Compare the recipe a resumed run is given with the checkpoint's. A change that alters the
    run (a field not marked resume=FREE) is refused in one line naming each changed field,
    unless `allowed` names it. Returns the allowed changes, `--batch-size 16 → 32` each."""
    names = {field_named(part) for given in allowed for part in given.split(",") if part.strip()}
    changes = recipe_changes(load_recipe(checkpoint / "recipe.yaml"), recipe)
    shown = {name: f"{recipe_flag(name)} {old} → {new}" for name, old, new in changes}
    refused = [name for name, _, _ in changes if name not in names]
    if refused:
        raise CheckpointError(
            f"--resume: {', '.join(shown[n] for n in refused)} differ(s) from checkpoint "
            f"{checkpoint.name}'s recipe and would change the run; resume with the "
            f"checkpoint's values, or pass --allow-recipe-change {','.join(refused)}"
        )
    return list(shown.values())


def checkpoint_architecture(checkpoint: Path, seed: int = 0):
    """An AlignModel with the checkpoint's architecture (its config.json: a model that started
    from trained towers need not match the preset), seeded, before its weights are loaded."""
    from transformers import AlignConfig, AlignModel

    torch.manual_seed(seed)
    return AlignModel(AlignConfig.from_json_file(checkpoint / "config.json"))
