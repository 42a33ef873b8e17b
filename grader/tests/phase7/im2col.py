"""7.1 im2col and col2im, against torch's unfold and fold (the same layout), and adjointness."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from hypothesis import strategies as st

from grader.checks import check, fingerprint
from grader.checks.contracts import Numeric, contract_checks
from grader.checks.oracle import assert_close
from grader.checks.properties import property_holds
from grader.session import run_probe
from grader.tests.phase7._helpers import attempt, normal, tensor, tolerance, unchanged

IM2COL_HINT = (
    "Row (c, i, j) and column (n, p, q) of cols hold x_pad[n, c, p·sh + i·dh, q·sw + j·dw]: "
    "pad only H and W, step the window start by the stride and the kernel taps by the dilation."
)
COL2IM_HINT = (
    "col2im adds (+=) every entry back where im2col read it: overlapping windows sum, and the "
    "padding border is cropped away at the end."
)

# (x shape, kernel, stride, padding, dilation)
CASES = [
    ((2, 3, 6, 7), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((1, 2, 7, 6), (2, 3), (2, 1), (0, 2), (1, 1)),
    ((2, 2, 9, 8), (3, 2), (1, 2), (2, 1), (2, 3)),
    ((1, 4, 5, 5), (1, 1), (2, 2), (0, 0), (1, 1)),
]


def _unfold(x, kernel, stride, padding, dilation):
    """torch's unfold (N, C·kh·kw, L) laid out as im2col's (C·kh·kw, N·L)."""
    cols = F.unfold(tensor(x), kernel, dilation, padding, stride).numpy()
    return cols.transpose(1, 0, 2).reshape(cols.shape[1], -1)


def _fold(cols, x_shape, kernel, stride, padding, dilation):
    N, _, H, W = x_shape
    blocks = tensor(cols.reshape(cols.shape[0], N, -1).transpose(1, 0, 2))
    return F.fold(blocks, (H, W), kernel, dilation, padding, stride).numpy()


@check("cnn_im2col", "oracle")
def im2col_matches_torch_unfold(m):
    """im2col gives torch's unfold layout for every stride, padding, dilation, float64 and 32."""
    for index, (shape, kernel, stride, padding, dilation) in enumerate(CASES):
        for dtype in (np.float64, np.float32):
            x = normal(index, shape, dtype)
            expected = _unfold(x, kernel, stride, padding, dilation)
            got = m.im2col(x, kernel, stride, padding, dilation)
            what = (
                f"im2col of {shape} {np.dtype(dtype).name}, kernel {kernel}, stride {stride}, "
                f"padding {padding}, dilation {dilation}"
            )
            assert_close(got, expected, what, hint=IM2COL_HINT, **tolerance(dtype))


@check("cnn_im2col", "oracle")
def im2col_accepts_ints_for_pairs(m):
    """Plain ints for kernel_size, stride, padding and dilation mean (v, v)."""
    x = normal(7, (2, 2, 7, 7))
    assert_close(
        m.im2col(x, 3, 2, 1, 1),
        _unfold(x, (3, 3), (2, 2), (1, 1), (1, 1)),
        "im2col(x, 3, 2, 1, 1)",
        hint="An int v means the pair (v, v).",
    )
    assert_close(
        m.im2col(x, 3),
        _unfold(x, (3, 3), (1, 1), (0, 0), (1, 1)),
        "im2col(x, 3) with the default stride 1, padding 0, dilation 1",
    )


@check("cnn_im2col", "oracle")
def col2im_matches_torch_fold(m):
    """col2im sums overlapping windows and drops the padding, as torch's fold."""
    for index, (shape, kernel, stride, padding, dilation) in enumerate(CASES):
        for dtype in (np.float64, np.float32):
            rows = shape[1] * kernel[0] * kernel[1]
            columns = _unfold(np.zeros(shape), kernel, stride, padding, dilation).shape[1]
            cols = normal(10 + index, (rows, columns), dtype)
            expected = _fold(cols, shape, kernel, stride, padding, dilation)
            got = m.col2im(cols, shape, kernel, stride, padding, dilation)
            what = (
                f"col2im into {shape} {np.dtype(dtype).name}, kernel {kernel}, stride "
                f"{stride}, padding {padding}, dilation {dilation}"
            )
            assert_close(got, expected, what, hint=COL2IM_HINT, **tolerance(dtype))


@check("cnn_im2col", "invariant")
def col2im_is_the_adjoint_of_im2col(m):
    """⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for random shapes and hyper-parameters."""
    configs = st.tuples(
        st.integers(1, 2),
        st.integers(1, 3),
        st.integers(4, 7),
        st.integers(4, 7),
        st.integers(1, 3),
        st.integers(1, 3),
        st.integers(1, 2),
        st.integers(0, 2),
        st.integers(1, 2),
    )

    def body(config):
        N, C, H, W, kh, kw, s, p, d = config
        if d * (kw - 1) + 1 > W + 2 * p or d * (kh - 1) + 1 > H + 2 * p:
            return
        x = normal(H * W, (N, C, H, W))
        cols = m.im2col(x, (kh, kw), s, p, d)
        c = normal(s + p, np.shape(cols))
        left = float(np.sum(np.asarray(cols) * c))
        right = float(np.sum(x * np.asarray(m.col2im(c, x.shape, (kh, kw), s, p, d))))
        assert_close(
            right,
            left,
            f"⟨x, col2im(c)⟩ against ⟨im2col(x), c⟩ (N, C, H, W = "
            f"{N, C, H, W}, kernel {(kh, kw)}, stride {s}, padding {p}, dilation {d})",
            rtol=1e-9,
            atol=1e-9,
            hint=COL2IM_HINT,
        )

    property_holds(body, configs, examples=15)


@check("cnn_im2col", "invariant")
def im2col_and_col2im_leave_their_inputs_unchanged(m):
    """Neither im2col nor col2im modifies the array it is given."""
    x = normal(3, (2, 2, 5, 5))
    _, arguments = run_probe(m, "phase7.call_with_inputs", m, "im2col", [x, 3, 1, 1, 1])
    unchanged(x, arguments[0], "im2col's x")
    cols = normal(4, (18, 50))
    _, arguments = run_probe(
        m, "phase7.call_with_inputs", m, "col2im", [cols, (2, 2, 5, 5), 3, 1, 1, 1]
    )
    unchanged(cols, arguments[0], "col2im's cols")


@fingerprint("cnn_im2col")
def im2col_outputs(m):
    x = normal(41, (2, 2, 7, 6))
    cols = normal(42, (12, 2 * 4 * 8))  # kernel (2, 3) on 7×6, stride (2, 1), padding (1, 2)
    return {
        "dilated": attempt(m.im2col, x, (3, 2), (1, 1), (1, 2), (2, 1)),
        "square": attempt(m.im2col, x, 3, 2, 1, 1),
        "fold": attempt(m.col2im, cols, (2, 2, 7, 6), (2, 3), (2, 1), (1, 2), 1),
        "fold_overlap": attempt(m.col2im, normal(43, (18, 2 * 25)), (2, 2, 5, 5), 3, 1, 1, 1),
    }


globals().update(
    contract_checks(
        __name__,
        "cnn_im2col",
        [
            Numeric(
                "im2col",
                lambda m, dtype: (
                    m.im2col,
                    [normal(1, (2, 2, 5, 6), dtype), (3, 2), 2, 1, (1, 2)],
                    {},
                ),
            ),
            Numeric(
                "col2im",
                lambda m, dtype: (
                    m.col2im,
                    [normal(2, (12, 18), dtype), (2, 2, 5, 6), (3, 2), 2, 1, (1, 2)],
                    {},
                ),
            ),
        ],
    )
)
