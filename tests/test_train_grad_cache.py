"""Gradient caching gives the gradients of the whole batch at once; batch norm moves once.

In one process, against a plain forward of the micro-batches one after another with autograd
(which draws the same dropout masks in the same order): the same loss and every parameter
gradient, dropout and drop-connect on, and the random state left where the plain forward
leaves it. The running statistics move once, to the mean of what each micro-batch alone would
give. The K-process equivalence is in test_train_grad_cache_processes.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
from accelerate import Accelerator

from mling.training.batch_norm import MeanUpdate, running_stats_frozen, updating_norms
from mling.training.grad_cache import backward_global_batch, micro_batches
from mling.training.loss import contrastive_loss
from mling.training.model import DualEncoder, build_model, enable_gradient_checkpointing
from mling.training.recipe import load_recipe
from mling.training.sigmoid_loss import BIAS_INIT, sigmoid_loss

VOCAB = 60
ROWS = 8


def encoder(
    dropout: bool = True, checkpointing: bool = False, logit_bias: float | None = None
) -> DualEncoder:
    overrides = {"image_size": 32, "max_length": 12}
    if dropout:
        overrides.update(text_dropout=0.2, drop_connect_rate=0.3)
    align = build_model(load_recipe("tiny", overrides).model, VOCAB, seed=0)
    if checkpointing:
        enable_gradient_checkpointing(align)
    return DualEncoder(align, logit_bias=logit_bias).train()


def host_batch(rows: int = ROWS) -> dict:
    """One process's batch as the loader hands it over: uint8 pixels, token ids, masks."""
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(4, VOCAB, (rows, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[::2, 7:] = 0  # mixed lengths: right-to-left and CJK captions pad differently
    return {
        "pixel_values": torch.randint(
            0, 256, (rows, 3, 32, 32), dtype=torch.uint8, generator=generator
        ),
        "input_ids": input_ids,
        "attention_mask": attention_mask,
    }


def loss_fn(image_embeds, text_embeds, temperature, image_ids=None):
    return contrastive_loss(image_embeds, text_embeds, temperature, 0.1, image_ids)


def sigmoid_fn(image_embeds, text_embeds, temperature, image_ids=None, bias=None):
    return sigmoid_loss(image_embeds, text_embeds, temperature, bias, image_ids)


def gradients(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def plain_sequential(model, batch, micro_batch, loss=loss_fn) -> torch.Tensor:
    """The reference: micro-batches forwarded one after another with autograd, one loss."""
    from mling.training.transforms import to_model_pixels

    parts = [
        model(
            to_model_pixels(batch["pixel_values"][rows]),
            batch["input_ids"][rows],
            batch["attention_mask"][rows],
        )
        for rows in micro_batches(ROWS, micro_batch)
    ]
    image_embeds = torch.cat([p[0] for p in parts])
    text_embeds = torch.cat([p[1] for p in parts])
    extra = {} if parts[-1][3] is None else {"bias": parts[-1][3]}
    value = loss(image_embeds, text_embeds, parts[-1][2], batch.get("image_ids"), **extra)
    value.backward()
    return value.detach()


@pytest.fixture(scope="module")
def accelerator() -> Accelerator:
    return Accelerator(cpu=True)


def test_micro_batches_split_evenly_or_refuse():
    assert micro_batches(8, 0) == [slice(0, 8)]
    assert micro_batches(8, 8) == [slice(0, 8)]
    assert micro_batches(8, 2) == [slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]
    with pytest.raises(ValueError, match="does not divide"):
        micro_batches(8, 3)


@pytest.mark.parametrize("micro_batch", [2, 4])
def test_cached_gradients_equal_plain_with_dropout_masks_replayed(accelerator, micro_batch):
    cached, plain = encoder(), encoder()
    batch = host_batch()
    torch.manual_seed(7)
    loss = backward_global_batch(accelerator, cached, batch, loss_fn, micro_batch)
    after_cached = torch.get_rng_state()
    torch.manual_seed(7)
    expected = plain_sequential(plain, batch, micro_batch)
    assert torch.equal(after_cached, torch.get_rng_state())  # the next step draws the same
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    mine, theirs = gradients(cached), gradients(plain)
    assert set(mine) == set(theirs)
    for name, gradient in theirs.items():
        error = (mine[name] - gradient).abs().max().item()
        assert error <= 1e-5 * gradient.abs().max().item() + 1e-10, (name, error)
    # Other masks give another loss: the comparison can tell a pass that draws new ones.
    other = encoder()  # (building a model reseeds)
    torch.manual_seed(8)
    assert plain_sequential(other, batch, micro_batch).item() != expected.item()


@pytest.mark.parametrize("micro_batch", [2, 4])
def test_sigmoid_loss_and_its_bias_under_caching(accelerator, micro_batch):
    # the bias is a leaf like the temperature: its cached gradient reaches the parameter
    cached, plain = encoder(logit_bias=BIAS_INIT), encoder(logit_bias=BIAS_INIT)
    batch = {**host_batch(), "image_ids": torch.tensor([0, 0, 1, 2, 3, 3, 4, 5])}
    torch.manual_seed(7)
    loss = backward_global_batch(accelerator, cached, batch, sigmoid_fn, micro_batch)
    torch.manual_seed(7)
    expected = plain_sequential(plain, batch, micro_batch, sigmoid_fn)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    mine, theirs = gradients(cached), gradients(plain)
    assert set(mine) == set(theirs) and "logit_bias" in theirs
    for name, gradient in theirs.items():
        error = (mine[name] - gradient).abs().max().item()
        assert error <= 1e-5 * gradient.abs().max().item() + 1e-10, (name, error)
    assert theirs["logit_bias"].abs().item() > 1e-3  # not a vacuous comparison


def test_image_ids_reach_the_loss_under_caching(accelerator):
    cached, plain = encoder(dropout=False), encoder(dropout=False)
    batch = {**host_batch(), "image_ids": torch.tensor([0, 0, 1, 1, 2, 3, 4, 4])}
    loss = backward_global_batch(accelerator, cached, batch, loss_fn, micro_batch=4)
    assert loss.item() == pytest.approx(plain_sequential(plain, batch, 4).item(), rel=1e-6)
    without = {k: v for k, v in batch.items() if k != "image_ids"}
    assert loss.item() != pytest.approx(plain_sequential(encoder(dropout=False), without, 4).item())


@pytest.mark.parametrize("micro_batch", [0, 4])
def test_k_captions_per_image_under_caching(accelerator, micro_batch):
    # (B, K, L) captions: every micro-batch's K captions per image go through the text tower
    # together, and each caption's cached gradient finds its way back to its own rows
    cached, plain = encoder(), encoder()
    batch = host_batch()
    second = {**host_batch(), "input_ids": batch["input_ids"].roll(1, dims=1)}  # other captions
    both = {
        **batch,
        "input_ids": torch.stack([batch["input_ids"], second["input_ids"]], dim=1),
        "attention_mask": torch.stack([batch["attention_mask"], batch["attention_mask"]], dim=1),
    }
    torch.manual_seed(7)
    loss = backward_global_batch(accelerator, cached, both, loss_fn, micro_batch)
    torch.manual_seed(7)
    flat = {
        **batch,
        "input_ids": both["input_ids"].reshape(-1, 12),
        "attention_mask": both["attention_mask"].reshape(-1, 12),
    }
    from mling.training.transforms import to_model_pixels

    parts = []
    for rows in micro_batches(ROWS, micro_batch):
        captions = slice(rows.start * 2, rows.stop * 2)
        parts.append(
            plain(
                to_model_pixels(batch["pixel_values"][rows]),
                flat["input_ids"][captions],
                flat["attention_mask"][captions],
            )
        )
    image_embeds = torch.cat([p[0] for p in parts])
    text_embeds = torch.cat([p[1] for p in parts])
    expected = loss_fn(image_embeds, text_embeds, parts[-1][2])
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    mine, theirs = gradients(cached), gradients(plain)
    for name, gradient in theirs.items():
        error = (mine[name] - gradient).abs().max().item()
        assert error <= 1e-5 * gradient.abs().max().item() + 1e-10, (name, error)


def test_running_statistics_move_once_to_the_mean_of_the_micro_batches(accelerator):
    model, batch = encoder(dropout=False), host_batch()
    alone = []  # each micro-batch's own update from the same start: K processes, one step each
    for rows in micro_batches(ROWS, 2):
        copy_ = copy.deepcopy(model)
        with torch.no_grad():
            from mling.training.transforms import to_model_pixels

            copy_(
                to_model_pixels(batch["pixel_values"][rows]),
                batch["input_ids"][rows],
                batch["attention_mask"][rows],
            )
        alone.append(updating_norms(copy_))
    before = [n.running_mean.clone() for n in updating_norms(model)]
    backward_global_batch(accelerator, model, batch, loss_fn, micro_batch=2)
    for i, norm in enumerate(updating_norms(model)):
        mean = torch.stack([a[i].running_mean for a in alone]).mean(0)
        var = torch.stack([a[i].running_var for a in alone]).mean(0)
        torch.testing.assert_close(norm.running_mean, mean, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(norm.running_var, var, rtol=1e-5, atol=1e-7)
        assert int(norm.num_batches_tracked) == 1
        assert not torch.equal(norm.running_mean, before[i])


def test_mean_update_with_cumulative_momentum_is_torchs_own_update():
    norm = torch.nn.BatchNorm1d(3, momentum=None).train()
    reference = copy.deepcopy(norm)
    rows = torch.randn(6, 3)
    update = MeanUpdate(norm)
    with update.collecting():
        norm(rows)
    update.apply()
    reference(rows)
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    torch.testing.assert_close(norm.running_var, reference.running_var)
    assert int(norm.num_batches_tracked) == int(reference.num_batches_tracked) == 1


def test_frozen_running_statistics_leave_everything_as_it_was():
    norm = torch.nn.BatchNorm1d(3).train()
    state = {k: v.clone() for k, v in norm.state_dict().items()}
    with running_stats_frozen(norm):
        out = norm(torch.randn(5, 3) * 4 + 2)
    for key, value in norm.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert out.mean(0).abs().max() < 1e-5  # still normalized with the batch's statistics


def test_gradient_checkpointing_recompute_moves_running_statistics_once(accelerator):
    plain, recomputed = encoder(dropout=False), encoder(dropout=False, checkpointing=True)
    batch = host_batch()
    torch.manual_seed(1)
    backward_global_batch(accelerator, plain, batch, loss_fn)
    torch.manual_seed(1)
    backward_global_batch(accelerator, recomputed, batch, loss_fn)
    for a, b in zip(updating_norms(plain), updating_norms(recomputed), strict=True):
        torch.testing.assert_close(a.running_mean, b.running_mean, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(a.running_var, b.running_var, rtol=1e-6, atol=1e-8)
        assert int(a.num_batches_tracked) == int(b.num_batches_tracked) == 1
    for name, gradient in gradients(plain).items():
        error = (gradients(recomputed)[name] - gradient).abs().max().item()
        assert error <= 1e-5 * gradient.abs().max().item() + 1e-10, (name, error)


@pytest.mark.parametrize("tower", ["image", "text"])
def test_a_frozen_tower_gets_no_gradient_under_caching(accelerator, tower):
    model = encoder()
    for parameter in getattr(
        model.align, f"{tower}_model" if tower == "text" else "vision_model"
    ).parameters():
        parameter.requires_grad_(False)
    model = DualEncoder(model.align, frozen=(tower,)).train()
    frozen_module = model.align.vision_model if tower == "image" else model.align.text_model
    calls = []
    frozen_module.register_forward_hook(lambda *_: calls.append(1))
    backward_global_batch(accelerator, model, host_batch(), loss_fn, micro_batch=4)
    assert len(calls) == 2  # the first pass only: nothing to back-propagate into it
    grads = gradients(model)
    prefix = "align.vision_model" if tower == "image" else "align.text_model"
    assert not any(name.startswith(prefix) for name in grads)
    assert "align.temperature" in grads


# The training entry point with micro-batches: the same run, refusal in one line.

from tests.helpers import train_fixtures  # noqa: E402
from tests.helpers.train_fixtures import tiny_argv  # noqa: E402

toy_pairs = train_fixtures.toy_pairs  # fixture
toy_tokenizer = train_fixtures.toy_tokenizer  # fixture


def logged_losses(output) -> list[float]:
    import json

    lines = (output / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["loss"] for line in lines]


def test_training_with_micro_batches_logs_the_losses_of_whole_batches(
    tmp_path, toy_pairs, toy_tokenizer
):
    import mling.train

    whole, micro = tmp_path / "whole", tmp_path / "micro"
    # static padding: the shapes (and so the dropout masks) these tolerances were set on
    common = ("--max-steps", "3", "--text-dropout", "0.1", "--pad-to-max-length", "true")
    assert mling.train.main(tiny_argv(toy_pairs, toy_tokenizer, whole, *common)) == 0
    argv = tiny_argv(toy_pairs, toy_tokenizer, micro, *common, "--micro-batch", "4")
    assert mling.train.main(argv) == 0
    # step 1 is exactly the same function; later steps follow the running statistics (moved
    # once, to the mean of 4 micro-batches, instead of by the whole batch), which training
    # mode does not read, and dropout masks drawn per micro-batch: close, not equal
    first, *rest = logged_losses(micro)
    assert first == pytest.approx(logged_losses(whole)[0], rel=1e-3)
    assert all(abs(a - b) < 0.05 * b for a, b in zip(rest, logged_losses(whole)[1:], strict=True))


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one process-wide state whose precision cannot change once set."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_micro_batches_with_bf16_checkpointing_a_frozen_tower_and_resume(
    tmp_path, toy_pairs, toy_tokenizer, fresh_accelerate_state
):
    import mling.train

    extra = (
        "--micro-batch", "8", "--precision", "bf16", "--grad-checkpointing", "true",
        "--freeze", "text", "--drop-connect-rate", "0.2", "--decay-steps", "4",
    )  # fmt: skip
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert (
        mling.train.main(tiny_argv(toy_pairs, toy_tokenizer, straight, *extra, "--max-steps", "4"))
        == 0
    )
    argv = tiny_argv(toy_pairs, toy_tokenizer, resumed, *extra)
    assert mling.train.main([*argv, "--max-steps", "2"]) == 0
    assert mling.train.main([*argv, "--max-steps", "4", "--resume", "latest"]) == 0
    assert logged_losses(resumed) == logged_losses(straight)


def test_a_micro_batch_that_does_not_divide_the_batch_is_refused(
    tmp_path, toy_pairs, toy_tokenizer, capsys
):
    import mling.train

    argv = tiny_argv(toy_pairs, toy_tokenizer, tmp_path / "run", "--micro-batch", "5")
    assert mling.train.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("train.py: --micro-batch 5 does not divide"), err
