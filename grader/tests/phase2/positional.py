"""2.9 Sinusoidal and learned positional encodings, and 2.10 rotary embeddings (RoPE), against
their closed forms (RoPE as multiplication of complex numbers, as in the RoFormer paper)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import as_array, assert_close
from grader.checks.properties import property_holds
from grader.session import fetch, operator_call, run_probe
from grader.tests.phase2._helpers import copy_weights, gradients, numpy, randn

TABLE_HINT = ("PE[p, 2i] = sin(p·ωᵢ), PE[p, 2i+1] = cos(p·ωᵢ) with ωᵢ = base^(−2i/dim): sin "
              "in the even columns, cos in the odd ones, interleaved (not two halves).")
ROPE_HINT = ("Rotate the interleaved pairs (x₀, x₁), (x₂, x₃), … — x[..., 0::2] with "
             "x[..., 1::2] — by p·θᵢ, θᵢ = base^(−2i/dim): (a cos − b sin, a sin + b cos). "
             "Rotating the halves (x[..., :d/2], x[..., d/2:]) is GPT-NeoX's variant, not "
             "RoFormer's.")


def table_expected(length: int, dim: int, base: float = 10000.0) -> np.ndarray:
    angles = np.arange(length)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
    table = np.empty((length, dim))
    table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table


def rope_expected(x: torch.Tensor, positions: np.ndarray, base: float = 10000.0) -> np.ndarray:
    """x rotated as complex numbers: (x₂ᵢ + i·x₂ᵢ₊₁)·e^{i·p·θᵢ}."""
    array = x.numpy()
    dim = array.shape[-1]
    z = array[..., 0::2] + 1j * array[..., 1::2]
    angles = positions[:, None] * base ** (-np.arange(0, dim, 2) / dim)
    rotated = z * np.exp(1j * angles)
    out = np.empty_like(array)
    out[..., 0::2], out[..., 1::2] = rotated.real, rotated.imag
    return out


@check("attn_positional", "oracle")
def sinusoidal_table_matches_vaswani(m):
    """sinusoidal_table(length, dim, base, dtype) equals sin/cos of p·base^(−2i/dim),
    interleaved, in float64 and float32."""
    assert_close(m.sinusoidal_table(50, 16, dtype=torch.float64), table_expected(50, 16),
                 "sinusoidal_table(50, 16, dtype=float64)", hint=TABLE_HINT)
    assert_close(m.sinusoidal_table(9, 6, base=100.0, dtype=torch.float64),
                 table_expected(9, 6, 100.0), "sinusoidal_table(9, 6, base=100)", hint=TABLE_HINT)
    assert_close(m.sinusoidal_table(50, 16), table_expected(50, 16).astype(np.float32),
                 "sinusoidal_table(50, 16) (float32 by default)", rtol=1e-5, atol=1e-5,
                 hint="Compute the angles in float64, then cast to dtype.")


@check("attn_positional", "invariant")
def sinusoidal_shift_by_k_is_a_fixed_rotation(m):
    """PE(p + k) = M_k·PE(p) for every p, with M_k rotating each (sin, cos) pair by k·ωᵢ; every
    row has norm √(dim/2)."""
    dim, length = 8, 40
    table = as_array(m.sinusoidal_table(length, dim, dtype=torch.float64), "sinusoidal_table")
    omega = 10000.0 ** (-np.arange(0, dim, 2) / dim)
    for k in (1, 5, 17):
        c, s = np.cos(k * omega), np.sin(k * omega)
        shifted = np.empty((length - k, dim))
        sin_p, cos_p = table[:length - k, 0::2], table[:length - k, 1::2]
        shifted[:, 0::2] = c * sin_p + s * cos_p  # sin((p + k)ω)
        shifted[:, 1::2] = c * cos_p - s * sin_p  # cos((p + k)ω)
        assert_close(table[k:], shifted, f"PE(p + {k}) vs the rotation M_{k} applied to PE(p)",
                     hint="This holds only for interleaved (sin, cos) pairs with the same "
                          "frequency: " + TABLE_HINT)
    assert_close(np.linalg.norm(table, axis=-1), np.full(length, np.sqrt(dim / 2)),
                 "the norm of each row of the table")


@check("attn_positional", "oracle")
def positional_modules_add_their_tables_from_an_offset(m):
    """SinusoidalPositionalEncoding adds the fixed buffer `pe`; LearnedPositionalEmbedding adds
    its parameter `weight`; both start at `offset`."""
    x = randn(0, 2, 5, 8, dtype=torch.float32)
    fixed = m.SinusoidalPositionalEncoding(8, max_len=64)
    if run_probe(m, "phase2.parameter_shapes", fixed):
        raise CheckFailed("SinusoidalPositionalEncoding has trainable parameters; its table is "
                          "fixed.", "register_buffer('pe', table) instead of nn.Parameter.")
    table = table_expected(64, 8).astype(np.float32)
    assert_close(fetch(fixed.pe), table, "SinusoidalPositionalEncoding.pe", rtol=1e-5, atol=1e-5,
                 hint=TABLE_HINT)
    for offset in (0, 7):
        assert_close(fixed(x, offset=offset), x.numpy() + table[offset:offset + 5],
                     f"SinusoidalPositionalEncoding(x, offset={offset})", rtol=1e-5, atol=1e-5,
                     hint="x + pe[offset : offset + T].")
    learned = m.LearnedPositionalEmbedding(10, 8).double()
    weight = randn(1, 10, 8)
    copy_weights(learned, {"weight": weight}, "LearnedPositionalEmbedding")
    x = randn(2, 2, 4, 8)
    for offset in (0, 3):
        assert_close(learned(x, offset=offset), (x + weight[offset:offset + 4]).numpy(),
                     f"LearnedPositionalEmbedding(x, offset={offset})",
                     hint="x + weight[offset : offset + T].")


@check("attn_positional", "invariant")
def sinusoidal_table_stays_out_of_the_state_dict(m):
    """The buffer `pe` is not persistent: it is computed from (max_len, dim, base), so a
    checkpoint does not store it (and loads into a module of another max_len)."""
    fixed = m.SinusoidalPositionalEncoding(8, max_len=16)
    assert_close(fetch(fixed.pe), table_expected(16, 8).astype(np.float32), "the buffer pe",
                 rtol=1e-5, atol=1e-5, hint=TABLE_HINT)
    keys = fixed.state_dict()
    keys = list(keys) if isinstance(keys, dict) else operator_call(fixed, "list", keys)
    if keys:
        raise CheckFailed(f"SinusoidalPositionalEncoding's state_dict holds {sorted(keys)}; a "
                          f"recomputable table is no state.",
                          "register_buffer('pe', table, persistent=False).")


@check("attn_positional", "gradient")
def learned_positions_train_only_the_rows_used(m):
    """The gradient of LearnedPositionalEmbedding reaches weight rows offset … offset + T − 1
    (summed over the batch) and no other row."""
    learned = m.LearnedPositionalEmbedding(10, 4).double()
    x, upstream = randn(3, 2, 3, 4), randn(4, 2, 3, 4)
    result = gradients(m, learned, [x], upstream, "LearnedPositionalEmbedding", offset=2)
    expected = np.zeros((10, 4))
    expected[2:5] = upstream.sum(0).numpy()
    grad = result["params"].get("weight")
    if grad is None:
        raise CheckFailed("no gradient reaches LearnedPositionalEmbedding.weight.")
    assert_close(grad, expected, "∂(v·output)/∂weight with offset=2",
                 hint="Add the slice weight[offset : offset + T] (a view of the parameter).")


@fingerprint("attn_positional")
def positional_outputs(m):
    x = randn(5, 1, 4, 6)
    learned = m.LearnedPositionalEmbedding(9, 6).double()
    copy_weights(learned, {"weight": randn(6, 9, 6)}, "LearnedPositionalEmbedding")
    fixed = m.SinusoidalPositionalEncoding(6, max_len=16)
    return {"table": numpy(m.sinusoidal_table(12, 8, dtype=torch.float64)),
            "fixed": numpy(fixed(x.float(), offset=3)),
            "learned": numpy(learned(x, offset=2))}


# ------------------------------------------------------------------ 2.10 RoPE


@check("attn_rope", "oracle")
def rope_equals_complex_rotation(m):
    """RotaryEmbedding(x, positions) equals (x₂ᵢ + i·x₂ᵢ₊₁)·e^{i·p·θᵢ} for default and given
    positions and another base."""
    x = randn(0, 2, 3, 7, 8)
    rope = m.RotaryEmbedding(8)
    assert_close(rope(x), rope_expected(x, np.arange(7)), "RotaryEmbedding(8)(x), positions "
                 "0…6", hint=ROPE_HINT)
    positions = torch.tensor([5, 6, 7, 100, 1000, 3, 0])
    assert_close(rope(x, positions), rope_expected(x, positions.numpy()),
                 f"RotaryEmbedding(8)(x, positions={positions.tolist()})",
                 hint="Use the given positions, not 0…T − 1.")
    x = randn(1, 4, 6)
    assert_close(m.RotaryEmbedding(6, base=500.0)(x), rope_expected(x, np.arange(4), 500.0),
                 "RotaryEmbedding(6, base=500)(x)", hint=ROPE_HINT)


@check("attn_rope", "invariant")
def rope_preserves_norms_and_scores_depend_only_on_the_offset(m):
    """|R(x, p)| = |x| for every token, and R(q, a)·R(k, b) = R(q, a + s)·R(k, b + s)."""
    rope = m.RotaryEmbedding(8)
    q, k = randn(10, 1, 8), randn(11, 1, 8)

    def prop(a, b, shift):
        rotated = [as_array(rope(v, torch.tensor([p])), "RotaryEmbedding output")
                   for v, p in ((q, a), (k, b), (q, a + shift), (k, b + shift))]
        assert_close(np.linalg.norm(rotated[0]), float(np.linalg.norm(q.numpy())),
                     f"|R(q, {a})| vs |q|", hint="A rotation preserves norms: " + ROPE_HINT)
        score, moved = np.sum(rotated[0] * rotated[1]), np.sum(rotated[2] * rotated[3])
        if not np.isclose(score, moved, rtol=1e-9, atol=1e-12):
            raise CheckFailed(f"R(q, {a})·R(k, {b}) = {score:.12g} but R(q, {a + shift})·"
                              f"R(k, {b + shift}) = {moved:.12g}: the score must depend only "
                              f"on the offset {a - b}.", ROPE_HINT)

    property_holds(prop, st.integers(0, 60), st.integers(0, 60), st.integers(1, 500), examples=8)
    assert_close(rope(q, torch.tensor([0])), q.numpy(), "RotaryEmbedding at position 0",
                 hint="At position 0 every angle is 0: the identity.")


@check("attn_rope", "stability")
def rope_is_exact_at_large_positions_in_float32(m):
    """In float32 at positions up to 65535 the output keeps its dtype and matches the exact
    rotation to 1e-5 (angles computed in float64)."""
    x = randn(20, 2, 4, 16)
    positions = torch.tensor([0, 4095, 16384, 65535])
    got = m.RotaryEmbedding(16)(x.float(), positions)
    assert_close(got, rope_expected(x, positions.numpy()).astype(np.float32),
                 "RotaryEmbedding in float32 at positions 0, 4095, 16384, 65535", rtol=1e-5,
                 atol=1e-5, hint="p·θ in float32 is off by ~p·6e-8 rad (≈ 4e-3 at 65535): "
                 "compute the angles in float64, then cast cos and sin to x's dtype.")


@fingerprint("attn_rope")
def rope_outputs(m):
    x = randn(30, 2, 5, 8)
    rope = m.RotaryEmbedding(8)
    far = torch.tensor([0, 3, 1000, 30000, 65535])
    return {"default": numpy(rope(x)), "positions": numpy(rope(x, torch.tensor([9, 2, 0, 40, 7]))),
            "float32_far": numpy(rope(x.float(), far))}
