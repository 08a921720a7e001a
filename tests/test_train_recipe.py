"""Presets, command-line overrides, and the model they build."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from transformers.models.align.modeling_align import round_filters

from mling.common.errors import InputError
from mling.train import parse_args
from mling.training.model import (
    DualEncoder,
    align_config,
    build_model,
    enable_gradient_checkpointing,
    image_embed_dim,
)
from mling.training.recipe import CONFIG_DIR, FIELDS, RecipeError, load_recipe, recipe_flag
from mling.training.recipe_cli import recipe_overrides
from tests.helpers.one_line import check_one_line, error_line

ROOT = Path(__file__).resolve().parent.parent
PAPER = {  # preset: (EfficientNet width, depth, embedding dim, BERT layers, hidden)
    "b3-mini": (1.2, 1.4, 384, 4, 256),
    "b5-base": (1.6, 2.2, 512, 12, 768),
    "b7-base": (2.0, 3.1, 640, 12, 768),
    "l2-large": (4.3, 5.3, 1376, 24, 1024),
}


def test_every_preset_file_loads():
    demos = ["tiny", "demo", "emoji"]
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")) == sorted([*PAPER, *demos])
    for name in [*PAPER, *demos]:
        load_recipe(name)
    emoji = load_recipe("emoji")  # the emoji demo's preset: what docs/ablations.md measured
    assert (emoji.model.image_size, emoji.model.temperature_init, emoji.optim.lr) == (64, 0.1, 6e-3)
    assert (emoji.data.flip, emoji.model.max_length, emoji.run.max_steps) == (False, 32, 800)
    assert emoji.data.text_bucket_rows == 64 and not emoji.data.pad_to_max_length


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_presets(name):
    width, depth, dim, layers, hidden = PAPER[name]
    recipe = load_recipe(name)
    model = recipe.model
    assert (model.width_coefficient, model.depth_coefficient) == (width, depth)
    assert (model.text_layers, model.text_hidden, model.image_size, model.max_length) == (
        layers,
        hidden,
        289,
        64,
    )
    config = align_config(model, vocab_size=250_000)
    assert config.projection_dim == dim
    assert round_filters(config.vision_config, 320) == dim  # transformers' own rounding agrees
    assert recipe.data.batch_size == 16384
    optim = recipe.optim
    assert (optim.optimizer, optim.lr, optim.warmup_steps, optim.weight_decay) == (
        "lamb",
        1e-3,
        10_000,
        1e-5,
    )
    assert recipe.run.max_steps == 1_200_000 and recipe.loss.label_smoothing == 0.1
    assert model.temperature_init == 1.0


RUN = ["--config", "tiny", "--train-data", "x", "--tokenizer", "t", "--output-dir", "o"]


def overrides(*flags: str) -> dict:
    """What train.py's parser hands load_recipe for these flags."""
    return recipe_overrides(parse_args([*RUN, *flags]))


def test_overrides_are_flat_and_typed():
    given = overrides("--image-size", "48", "--lr=3e-4", "--block-repeats", "1,1,1,1,1,1,1")
    given.update(overrides("--grad-checkpointing", "true", "--max-steps", "2e3"))
    recipe = load_recipe("tiny", given)
    assert recipe.model.image_size == 48 and recipe.optim.lr == 3e-4
    assert recipe.model.block_repeats == [1] * 7
    assert recipe.run.grad_checkpointing is True and recipe.run.max_steps == 2000
    assert overrides() == {}  # an option left out is no override: the preset's value stands


def test_booleans_and_lists_as_users_type_them():
    recipe = load_recipe("tiny", overrides("--flip", "false", "--pad-to-max-length"))
    assert recipe.data.flip is False and recipe.data.pad_to_max_length is True
    for flags in (["--freeze", "image", "--freeze", "text"], ["--freeze", "image,text"]):
        assert load_recipe("tiny", overrides(*flags)).init.freeze == ["image", "text"]
    with pytest.raises(RecipeError, match="--freeze bogus: choose from image, text, image-bn"):
        load_recipe("tiny", overrides("--freeze", "image,bogus"))
    with pytest.raises(RecipeError, match="--crop middle: choose from random, center"):
        load_recipe("tiny", overrides("--crop", "middle"))
    with pytest.raises(RecipeError, match="--flip: cannot read 'sideways' as true or false"):
        load_recipe("tiny", overrides("--flip", "sideways"))


def test_unknown_or_bad_options_say_what_to_do():
    with pytest.raises(RecipeError, match="did you mean --image-size"):
        load_recipe("tiny", {"image_sise": 64})
    with pytest.raises(RecipeError, match="--batch-size: cannot read 'many'"):
        load_recipe("tiny", {"batch_size": "many"})
    with pytest.raises(RecipeError, match="one of: b3-mini, b5-base"):
        load_recipe("b9-huge")
    with pytest.raises(InputError, match="unexpected argument '64'; see --help"):
        parse_args([*RUN, "64"])
    with pytest.raises(InputError, match=r"unknown option --lrr; did you mean --lr\?"):
        parse_args([*RUN, "--lrr", "1e-3"])
    with pytest.raises(InputError, match="did you mean --micro-batch"):
        parse_args([*RUN, "--micro-batches=4"])


def test_a_mistyped_option_is_one_line_and_exit_2(capsys):
    import mling.train

    assert mling.train.main([*RUN, "--image-sise", "64"]) == 2
    error_line(capsys, "train.py", "unknown option --image-sise; did you mean --image-size")


def test_help_shows_every_recipe_field_with_its_help_and_default():
    """`python mling/train.py --help`, as a user runs it, parsed: each recipe field is an
    option, in its section's group, with a non-empty help and its default."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "mling" / "train.py"), "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        check=True,
    )
    entries: dict[str, str] = {}  # option -> its help text
    section, sections = None, {}
    for line in done.stdout.splitlines():
        heading = re.match(r"^(\w+) \(preset section", line)
        if heading:
            section = heading.group(1)
        option = re.match(r"^  (--[\w-]+)(?: \S+)?(?:\s{2,}(.*))?$", line)
        if option:
            current = option.group(1)
            entries[current] = option.group(2) or ""
            sections[current] = section
        elif line.startswith("    ") and entries:
            entries[current] += " " + line.strip()
    for name, (section_name, item, _) in FIELDS.items():
        flag = recipe_flag(name)
        assert flag in entries, f"{flag} missing from --help"
        assert sections[flag] == section_name, flag
        assert item.metadata["help"].split()[0] in entries[flag], flag
        assert "(default: " in entries[flag], flag
    assert len(FIELDS) >= 54


@pytest.fixture(scope="module")
def tiny() -> DualEncoder:
    recipe = load_recipe("tiny", {"image_size": 32})
    return DualEncoder(build_model(recipe.model, vocab_size=60, seed=0))


def inputs(rows: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 60, (rows, 10), generator=generator)
    return torch.rand(rows, 3, 32, 32, generator=generator) * 2 - 1, ids, torch.ones_like(ids)


def test_embeddings_are_normalized_and_the_temperature_starts_at_one(tiny):
    image_embeds, text_embeds, temperature, bias = tiny.train()(*inputs())
    assert bias is None  # the softmax loss has none (the sigmoid loss's: test_train_sigmoid.py)
    assert image_embeds.shape == text_embeds.shape == (3, image_embed_dim(0.25)) == (3, 80)
    torch.testing.assert_close(image_embeds.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(text_embeds.norm(dim=-1), torch.ones(3))
    assert temperature.item() == 1.0 and temperature.requires_grad


def test_image_embedding_is_the_global_average_of_the_last_feature_map(tiny):
    vision = tiny.align.vision_model.eval()
    out = vision(pixel_values=inputs()[0])
    torch.testing.assert_close(out.pooler_output, out.last_hidden_state.mean(dim=(2, 3)))


def test_text_embedding_is_the_projected_cls_state(tiny):
    pixels, ids, mask = inputs()
    tiny.eval()
    text_embeds = tiny(pixels, ids, mask)[1]
    hidden = tiny.align.text_model(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(
        text_embeds, torch.nn.functional.normalize(tiny.align.text_projection(hidden[:, 0]), dim=-1)
    )
    pooler = tiny.align.text_model.pooler  # not part of ALIGN's embedding: frozen
    assert not any(p.requires_grad for p in pooler.parameters())


def test_gradient_checkpointing_recomputes_and_gives_the_same_gradients():
    recipe = load_recipe("tiny", {"image_size": 32})
    grads, calls = [], []
    for checkpointing in (False, True):
        align = build_model(recipe.model, vocab_size=60, seed=0)
        if checkpointing:
            enable_gradient_checkpointing(align)
        count = Counter()
        vision_op = align.vision_model.encoder.blocks[3].depthwise_conv
        text_op = align.text_model.encoder.layer[1].attention
        vision_op.register_forward_hook(lambda *_, count=count: count.update(["vision"]))
        text_op.register_forward_hook(lambda *_, count=count: count.update(["text"]))
        image_embeds, text_embeds, temperature, _ = DualEncoder(align).train()(*inputs())
        (image_embeds @ text_embeds.T / temperature).logsumexp(dim=1).sum().backward()
        grads.append({n: p.grad for n, p in align.named_parameters() if p.grad is not None})
        calls.append(count)
        names = [n for n, _ in align.named_parameters()]
    assert calls == [{"vision": 1, "text": 1}, {"vision": 2, "text": 2}]  # recomputed in backward
    assert names == [n for n, _ in build_model(recipe.model, 60).named_parameters()]  # same keys
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-7, msg=name)


def test_column_flags_are_spelled_as_on_every_entry_point(tmp_path, capsys):
    """train.py takes --column-preset and a repeated --column SRC=DEST, like filter.py; the old
    --columns A=B,C=D still works for one release and says so."""
    given = overrides("--column-preset", "laion", "--column", "alt=caption", "--column", "w=width")
    assert given == {"column_preset": "laion", "columns": ["alt=caption", "w=width"]}


def test_old_columns_flag_still_works_and_says_so(tmp_path, tiny_tokenizer_dir, capsys):
    import mling.train

    argv = ["--config", "tiny", "--train-data", str(tmp_path / "absent")]
    argv += ["--tokenizer", str(tiny_tokenizer_dir), "--output-dir", str(tmp_path / "run")]
    assert mling.train.main([*argv, "--columns", "TEXT=caption,W=width"]) == 2
    err = capsys.readouterr().err
    assert "train.py: --columns is deprecated; use --column" in err  # a named notice
    check_one_line(err.strip().splitlines(), "train.py", f"input not found: {tmp_path / 'absent'}")


def test_recipe_changes_on_resume_leave_out_what_cannot_alter_the_run():
    """What `--resume` compares (checkpoint.check_resumed_recipe): fields marked resume=FREE
    never count; decay_steps counts by where the decay ends."""
    from mling.training.recipe import field_named, recipe_changes

    saved = load_recipe("tiny", {"max_steps": 2, "decay_steps": 4})
    free = {"max_steps": 4, "decay_steps": 0, "log_every": 7, "save_every": 1, "cpu": True}
    free |= {"eval_every": 3, "grad_checkpointing": True, "init": "x", "temperature_init": 0.5}
    assert recipe_changes(saved, load_recipe("tiny", free)) == []  # the decay still ends at 4
    changed = {"max_steps": 6, "batch_size": 32, "micro_batch": 4, "num_workers": 0}
    assert recipe_changes(saved, load_recipe("tiny", changed)) == [
        ("batch_size", 128, 32),
        ("micro_batch", 0, 4),
        ("num_workers", 1, 0),  # the data would restart
        ("decay_steps", 4, 6),  # 0 now follows --max-steps 6
    ]
    longer = load_recipe("tiny", {"max_steps": 9})  # both follow --max-steps: training longer
    assert recipe_changes(load_recipe("tiny", {"max_steps": 2}), longer) == []
    assert [field_named(n) for n in ("batch_size", "--micro-batch", "column")] == [
        "batch_size",
        "micro_batch",
        "columns",
    ]
    with pytest.raises(RecipeError, match="did you mean batch_size"):
        field_named("bach_size")
