"""FULL=1 tier of phase 4: a deep stack of your encoder layers over a long sequence."""

from __future__ import annotations

import torch

from grader.checks import check
from grader.checks.oracle import assert_close
from grader.checks.stability import assert_finite
from grader.tests.phase2._helpers import randn, run
from grader.tests.phase4.layers import _causal, _reference_encoder, _student_layer

LAYERS, LENGTH = 12, 512
CONFIG = {"norm_first": True}  # relu: exact, so 12 layers may be held to float64 accuracy


@check("blocks_encoder_layer", "stability", full=True, seconds=180)
def twelve_pre_norm_encoder_layers_over_512_causal_positions_match_torch(m):
    """12 of your pre-norm encoder layers in a row, over 512 causal positions, equal torch's.

    Each layer has its own weights, copied into torch's nn.TransformerEncoderLayer; your stack
    feeds its own outputs forward (float64, eval mode)."""
    x = randn(400, 2, LENGTH, 8)
    mine, theirs = x, x
    causal = _causal(LENGTH)
    for layer in range(LAYERS):
        reference = _reference_encoder(500 + layer, **CONFIG)
        student = _student_layer(m, "TransformerEncoderLayer", reference, **CONFIG)
        mine = torch.from_numpy(run(m, student, mine, src_mask=causal))
        with torch.enable_grad():  # torch's slow path, as the oracle checks use
            theirs = reference(theirs, src_mask=~causal).detach()
    hint = "Pre-norm: x = x + SA(norm1(x)); x = x + FF(norm2(x)) — no norm after the sum."
    assert_finite(mine.numpy(), f"the output of {LAYERS} stacked encoder layers", hint)
    assert_close(
        mine.numpy(),
        theirs.numpy(),
        f"the output of {LAYERS} stacked pre-norm layers over {LENGTH} causal positions",
        rtol=1e-8,
        atol=1e-9,
        hint=hint,
    )
