"""The training forward: captions run in length buckets give the embeddings of one padded pass."""

from __future__ import annotations

import torch

from mling.training.model import DualEncoder, build_model, text_cls
from mling.training.recipe import load_recipe

VOCAB = 60


def mixed_lengths(rows: int = 10, width: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded captions of 2 to 16 tokens, in no order: short Chinese and long Khmer names
    side by side."""
    generator = torch.Generator().manual_seed(5)
    input_ids = torch.randint(4, VOCAB, (rows, width), generator=generator)
    lengths = torch.tensor([2, 16, 5, 3, 12, 7, 16, 4, 9, 6])[:rows]
    attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    return input_ids * attention_mask, attention_mask  # pad id 0 after each caption


def test_buckets_give_the_same_states_and_gradients_as_one_pass():
    align = build_model(load_recipe("tiny", {"max_length": 16}).model, VOCAB, seed=0)
    input_ids, attention_mask = mixed_lengths()
    whole = text_cls(align, input_ids, attention_mask)
    # a random direction: a norm of the final LayerNorm's output would have ~0 gradient below it
    direction = torch.randn(whole.shape, generator=torch.Generator().manual_seed(1))
    (whole * direction).sum().backward()
    expected = {
        n: p.grad.clone() for n, p in align.text_model.named_parameters() if p.grad is not None
    }
    align.zero_grad()
    # float sums in another order, against the largest gradient (a key bias's is ~0: softmax
    # ignores a shift of every key)
    scale = max(g.abs().max().item() for g in expected.values())
    for bucket_rows in (3, 4, 10, 64):
        bucketed = text_cls(align, input_ids, attention_mask, bucket_rows)
        torch.testing.assert_close(bucketed, whole, rtol=1e-5, atol=1e-5)
        (bucketed * direction).sum().backward()
        for name, parameter in align.text_model.named_parameters():
            if name in expected:
                torch.testing.assert_close(
                    parameter.grad, expected[name], rtol=1e-4, atol=1e-5 * scale
                )
        align.zero_grad()


def test_the_dual_encoder_buckets_when_asked():
    align = build_model(load_recipe("tiny", {"max_length": 16}).model, VOCAB, seed=0)
    input_ids, attention_mask = mixed_lengths()
    plain = DualEncoder(align).eval()(None, input_ids, attention_mask)[1]
    bucketed = DualEncoder(align, text_bucket_rows=4).eval()(None, input_ids, attention_mask)[1]
    torch.testing.assert_close(bucketed, plain, rtol=1e-5, atol=1e-5)
