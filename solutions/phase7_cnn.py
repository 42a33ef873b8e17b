"""Phase 7 — Convolutional networks and a ResNet in NumPy.

Convolution by im2col, pooling, BatchNorm2d and GroupNorm, Adam, residual blocks and a small
ResNet, all on top of your phase-0 library (Linear, ReLU, Sequential, relu_backward). Read
curriculum.md §7 alongside.

Conventions used throughout (those of phase 0, plus):
- Images are NCHW: ``x`` has shape (N, C, H, W); a conv weight is (C_out, C_in/groups, kh, kw),
  laid out like torch.nn.Conv2d, so weights copy across. Like torch, "convolution" here is
  cross-correlation: the kernel is not flipped.
- ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are an int or an (h, w) pair.
- Layers cache what they need in ``forward``; ``backward(dout)`` returns ∂L/∂input and
  *overwrites* the parameter gradients in place, in the arrays ``grads()`` returns.
- Layers take a ``dtype`` (float64 by default, like phase 0; anything np.dtype accepts, such
  as "float32"): a float32 layer fed float32 gives float32 everywhere, twice as fast to train.
- Inputs are never modified in place. Only NumPy: no torch, scipy or sklearn.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .phase0_foundations import Linear, ReLU, Sequential, relu, relu_backward

Rng = int | np.random.Generator | None
Pair = int | tuple[int, int]
DType = type | np.dtype | str  # np.float32, np.dtype("float32") or "float32"


def _pair(value: Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """⌊(size + 2·padding − dilation·(kernel − 1) − 1)/stride⌋ + 1, as torch.nn.Conv2d."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


# ---- 7.1 im2col and col2im ----


def im2col(
    x: np.ndarray, kernel_size: Pair, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1
) -> np.ndarray:
    """Unfold every receptive field of x into a column: x (N, C, H, W) → cols (C·kh·kw, N·Ho·Wo).

    Row (c, i, j) (c-major, then kernel row i, then column j) and column (n, p, q) hold
    x_pad[n, c, p·sh + i·dh, q·sw + j·dw], where x_pad is x zero-padded by (ph, pw) on both
    sides of H and W, and Ho = ⌊(H + 2ph − dh·(kh − 1) − 1)/sh⌋ + 1 (Wo likewise).
    A convolution is then one matrix product: weight.reshape(C_out, C·kh·kw) @ cols.
    """
    # BEGIN SOLUTION
    # HINT: np.pad the two spatial axes only, then sliding_window_view over axes (2, 3) with
    # HINT: the *dilated* window size dh·(kh − 1) + 1, and step it by the stride and dilation.
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel_size, stride, padding, dilation))
    # KEEP guided
    N, C, H, W = x.shape
    # END KEEP
    Ho, Wo = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H + 2ph, W + 2pw)
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    windows = sliding_window_view(x_pad, span, axis=(2, 3))  # (N, C, H', W', span_h, span_w)
    windows = windows[:, :, : sh * (Ho - 1) + 1 : sh, : sw * (Wo - 1) + 1 : sw, ::dh, ::dw]
    # (N, C, Ho, Wo, kh, kw) → (C, kh, kw, N, Ho, Wo): the copy that makes the matrix
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(C * kh * kw, N * Ho * Wo)
    # END SOLUTION


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
) -> np.ndarray:
    """The adjoint of im2col: fold columns (C·kh·kw, N·Ho·Wo) back into an image x_shape.

    Every entry of cols is added to the pixel im2col read it from, so a pixel that sits in
    several receptive fields receives the *sum* of their entries; entries that came from the
    padding are dropped. ⟨im2col(x), cols⟩ = ⟨x, col2im(cols)⟩ for every x and cols, which is
    why col2im of ∂L/∂cols is ∂L/∂x.
    """
    # BEGIN SOLUTION
    # HINT: loop over the kh·kw kernel offsets (never over pixels) and add each offset's
    # HINT: (N, C, Ho, Wo) block into a strided slice of a zero padded image with `+=`.
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel_size, stride, padding, dilation))
    # KEEP guided
    N, C, H, W = x_shape
    # END KEEP
    Ho, Wo = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
    blocks = cols.reshape(C, kh, kw, N, Ho, Wo)
    # accumulate channel-first, like the rows of cols, so every `+=` reads contiguous memory
    # KEEP guided
    x_pad = np.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
    # END KEEP
            rows = slice(i * dh, i * dh + sh * (Ho - 1) + 1, sh)
            columns = slice(j * dw, j * dw + sw * (Wo - 1) + 1, sw)
            x_pad[:, :, rows, columns] += blocks[:, i, j]  # (C, N, Ho, Wo)
    return x_pad[:, :, ph : ph + H, pw : pw + W].transpose(1, 0, 2, 3)  # (N, C, H, W)
    # END SOLUTION


# ---- 7.2 Conv2d ----


class Conv2d:
    """2-D cross-correlation with backward, as torch.nn.Conv2d (no kernel flip).

    x (N, C, H, W) → out (N, O, Ho, Wo). G = groups splits the channels: output channel o of
    group g = o // (O/G) sees only input channels g·C/G … (g + 1)·C/G − 1, so groups = C is a
    depthwise conv, and a depthwise conv followed by a 1×1 conv is depthwise-separable.
    out[n, o, p, q] = b[o] + Σ_{c,i,j} W[o, c, i, j]·x_pad[n, g·C/G + c, p·sh + i·dh, q·sw + j·dw]
    By im2col, per group: out_g = W_g (O/G, C/G·kh·kw) @ cols_g (C/G·kh·kw, N·Ho·Wo).

    weight (O, C/groups, kh, kw) and bias (O,) (None when bias=False) are drawn from
    U(−1/√fan_in, 1/√fan_in), fan_in = C/groups·kh·kw (torch's default).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Pair,
        stride: Pair = 1,
        padding: Pair = 0,
        dilation: Pair = 1,
        groups: int = 1,
        bias: bool = True,
        rng: Rng = None,
        dtype: DType = np.float64,
    ) -> None:
        """Keep the hyper-parameters; draw weight and bias; zero grads (grad_bias None if no bias).

        ValueError unless groups divides both in_channels and out_channels.
        """
        # BEGIN SOLUTION
        # HINT: fan_in counts what one output sees: C/groups channels × kh × kw taps.
        # KEEP guided
        if in_channels % groups or out_channels % groups:
        # END KEEP
            raise ValueError(
                f"groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        # KEEP guided
        self.groups = groups
        # END KEEP
        rng = np.random.default_rng(rng)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        bound = 1 / math.sqrt(math.prod(shape[1:]))
        self.weight = rng.uniform(-bound, bound, shape).astype(dtype)
        self.bias = rng.uniform(-bound, bound, out_channels).astype(dtype) if bias else None
        # END SOLUTION
        # BEGIN SOLUTION hard
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)
        self.cache: tuple[tuple[int, ...], np.ndarray] | None = None
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) → out (N, O, Ho, Wo); caches im2col(x) for backward."""
        # BEGIN SOLUTION
        # HINT: im2col's rows are channel-major, so cols.reshape(G, C/G·kh·kw, -1) splits the
        # HINT: groups, and one batched matmul (G, O/G, K) @ (G, K, N·Ho·Wo) does them all.
        # KEEP guided
        N, C, H, W = x.shape
        O = self.weight.shape[0]
        # END KEEP
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        (ph, pw), (dh, dw) = self.padding, self.dilation
        Ho, Wo = conv_output_size(H, kh, sh, ph, dh), conv_output_size(W, kw, sw, pw, dw)
        cols = im2col(x, self.kernel_size, self.stride, self.padding, self.dilation)
        G = self.groups
        out = self.weight.reshape(G, O // G, -1) @ cols.reshape(G, -1, N * Ho * Wo)
        out = out.reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3)  # (N, O, Ho, Wo)
        # KEEP guided
        if self.bias is not None:
        # END KEEP
            out = out + self.bias[:, None, None]
        self.cache = (x.shape, cols)
        return np.ascontiguousarray(out)
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (N, O, Ho, Wo) → dx (N, C, H, W); sets grad_weight and grad_bias in place.

        Per group g, with D_g = dout's channels of g as a matrix (O/G, N·Ho·Wo):
        ∂L/∂W_g = D_g @ cols_gᵀ,  ∂L/∂cols_g = W_gᵀ @ D_g,  dx = col2im(∂L/∂cols),
        ∂L/∂b = Σ_{n,p,q} dout.
        """
        # BEGIN SOLUTION
        # HINT: dout.transpose(1, 0, 2, 3) puts the channels first, like the rows of W @ cols.
        x_shape, cols = self.cache
        O, G = self.weight.shape[0], self.groups
        d = dout.transpose(1, 0, 2, 3).reshape(G, O // G, -1)  # (G, O/G, N·Ho·Wo)
        cols_g = cols.reshape(G, -1, cols.shape[1])  # (G, K, N·Ho·Wo)
        self.grad_weight[...] = (d @ cols_g.transpose(0, 2, 1)).reshape(self.weight.shape)
        # KEEP guided
        if self.bias is not None:
        # END KEEP
            self.grad_bias[...] = dout.sum(axis=(0, 2, 3))
        w_g = self.weight.reshape(G, O // G, -1)  # (G, O/G, K)
        dcols = (w_g.transpose(0, 2, 1) @ d).reshape(cols.shape)  # (C·kh·kw, N·Ho·Wo)
        return col2im(dcols, x_shape, self.kernel_size, self.stride, self.padding, self.dilation)
        # END SOLUTION

    def params(self) -> list[np.ndarray]:
        """[weight, bias], or [weight] when bias=False."""
        # BEGIN SOLUTION hard
        return [self.weight] if self.bias is None else [self.weight, self.bias]
        # END SOLUTION

    def grads(self) -> list[np.ndarray]:
        """[grad_weight, grad_bias] (or [grad_weight]), in the order of params()."""
        # BEGIN SOLUTION hard
        return [self.grad_weight] if self.bias is None else [self.grad_weight, self.grad_bias]
        # END SOLUTION


# ---- 7.3 Pooling ----


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """The pooling windows of an (already padded) x as a view (N, C, Ho, Wo, kh, kw)."""
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]


class MaxPool2d:
    """Max pooling, as torch.nn.MaxPool2d(kernel_size, stride, padding).

    stride defaults to kernel_size; padding (at most half the kernel) pads with −∞, so a
    padded position is never the max. out[n, c, p, q] = max over the window at (p·sh, q·sw).
    The gradient of each window goes to *one* element: the first maximum in row-major order
    within the window, as torch does on ties; overlapping windows add up.
    """

    def __init__(self, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0) -> None:
        """Keep the hyper-parameters as pairs (stride = kernel_size when None)."""
        # BEGIN SOLUTION hard
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)
        self.padding = _pair(padding)
        self.cache: tuple[tuple[int, ...], np.ndarray] | None = None
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) → (N, C, Ho, Wo); caches the index of each window's maximum."""
        # BEGIN SOLUTION
        # HINT: np.argmax returns the *first* maximum, the element torch routes a tie to.
        (ph, pw), (kh, kw) = self.padding, self.kernel_size
        x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        windows = _windows(x_pad, self.kernel_size, self.stride)  # (N, C, Ho, Wo, kh, kw)
        flat = windows.reshape(*windows.shape[:4], kh * kw)  # (N, C, Ho, Wo, kh·kw)
        argmax = flat.argmax(axis=-1)  # (N, C, Ho, Wo)
        self.cache = (x.shape, argmax)
        return np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (N, C, Ho, Wo) → dx (N, C, H, W): each dout entry added at its window's argmax."""
        # BEGIN SOLUTION
        # HINT: for each kernel offset (i, j), the windows whose argmax is i·kw + j send their
        # HINT: dout to the pixels at that offset: add (argmax == i·kw + j)·dout into a slice.
        (N, C, H, W), argmax = self.cache
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        # KEEP guided
        Ho, Wo = argmax.shape[2:]
        dx_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dout.dtype)
        for i in range(kh):
            for j in range(kw):
        # END KEEP
                rows = slice(i, i + sh * (Ho - 1) + 1, sh)
                columns = slice(j, j + sw * (Wo - 1) + 1, sw)
                dx_pad[:, :, rows, columns] += np.where(argmax == i * kw + j, dout, 0)
        return dx_pad[:, :, ph : ph + H, pw : pw + W]
        # END SOLUTION

    def params(self) -> list[np.ndarray]:
        """No parameters."""
        # BEGIN SOLUTION hard
        return []
        # END SOLUTION

    def grads(self) -> list[np.ndarray]:
        """No parameters."""
        # BEGIN SOLUTION hard
        return []
        # END SOLUTION


class AvgPool2d:
    """Average pooling, as torch.nn.AvgPool2d(kernel_size, stride, padding).

    stride defaults to kernel_size; zero padding counts in the average (torch's
    count_include_pad=True): out[n, c, p, q] = (1/(kh·kw))·Σ window. Each dout entry is
    spread evenly, dout/(kh·kw), over its window; overlapping windows add up.
    """

    def __init__(self, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0) -> None:
        """Keep the hyper-parameters as pairs (stride = kernel_size when None)."""
        # BEGIN SOLUTION hard
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)
        self.padding = _pair(padding)
        self.x_shape: tuple[int, ...] | None = None
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) → (N, C, Ho, Wo), the mean of each zero-padded window."""
        # BEGIN SOLUTION
        (ph, pw) = self.padding
        x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        # KEEP guided
        self.x_shape = x.shape
        # END KEEP
        return _windows(x_pad, self.kernel_size, self.stride).mean(axis=(-2, -1))
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (N, C, Ho, Wo) → dx (N, C, H, W): dout/(kh·kw) added over each window."""
        # BEGIN SOLUTION
        # HINT: the divisor is kh·kw even where the window covers padding.
        N, C, H, W = self.x_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        # KEEP guided
        Ho, Wo = dout.shape[2:]
        # END KEEP
        share = dout / (kh * kw)
        # KEEP guided
        dx_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dout.dtype)
        for i in range(kh):
            for j in range(kw):
        # END KEEP
                rows = slice(i, i + sh * (Ho - 1) + 1, sh)
                columns = slice(j, j + sw * (Wo - 1) + 1, sw)
                dx_pad[:, :, rows, columns] += share
        return dx_pad[:, :, ph : ph + H, pw : pw + W]
        # END SOLUTION

    def params(self) -> list[np.ndarray]:
        """No parameters."""
        # BEGIN SOLUTION hard
        return []
        # END SOLUTION

    def grads(self) -> list[np.ndarray]:
        """No parameters."""
        # BEGIN SOLUTION hard
        return []
        # END SOLUTION


# ---- 7.4 BatchNorm2d ----


class BatchNorm2d:
    """Batch normalisation per channel of (N, C, H, W) inputs, as torch.nn.BatchNorm2d.

    Phase 0's BatchNorm1d with the statistics of channel c taken over the M = N·H·W values
    x[:, c, :, :]. Training: x̂ = (x − μ_c)/√(σ²_c + ε) with the *biased* σ²_c; y = γ_c·x̂ + β_c;
    running ← (1 − momentum)·running + momentum·stat, the running variance fed the unbiased
    σ²_c·M/(M − 1). Eval: the running statistics replace μ_c, σ²_c and are left alone.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        dtype: DType = np.float64,
    ) -> None:
        """weight = 1, bias = 0, running_mean = 0, running_var = 1, grads 0, all (C,); training."""
        # BEGIN SOLUTION hard
        self.eps, self.momentum = eps, momentum
        self.weight = np.ones(num_features, dtype=dtype)
        self.bias = np.zeros(num_features, dtype=dtype)
        self.grad_weight = np.zeros(num_features, dtype=dtype)
        self.grad_bias = np.zeros(num_features, dtype=dtype)
        self.running_mean = np.zeros(num_features, dtype=dtype)
        self.running_var = np.ones(num_features, dtype=dtype)
        self.training = True
        self.cache: tuple[np.ndarray, np.ndarray] | None = None
        # END SOLUTION

    def train(self) -> BatchNorm2d:
        """Use batch statistics (and update the running ones) in forward."""
        # BEGIN SOLUTION hard
        self.training = True
        return self
        # END SOLUTION

    def eval(self) -> BatchNorm2d:
        """Use the running statistics in forward."""
        # BEGIN SOLUTION hard
        self.training = False
        return self
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) → γ·x̂ + β (N, C, H, W); in training also updates the running stats.

        Training needs more than one value per channel (N·H·W ≥ 2): ValueError otherwise, as torch.
        """
        # BEGIN SOLUTION
        # HINT: reduce over axes (0, 2, 3) with keepdims=True; M = N·H·W for the unbiased factor.
        gamma, beta = self.weight[:, None, None], self.bias[:, None, None]  # (C, 1, 1)
        # KEEP guided
        if not self.training:
        # END KEEP
            inv_std = 1 / np.sqrt(self.running_var + self.eps)  # (C,)
            return (x - self.running_mean[:, None, None]) * (gamma * inv_std[:, None, None]) + beta
        M = x.size // x.shape[1]
        # KEEP guided
        if M < 2:
        # END KEEP
            raise ValueError("BatchNorm2d needs more than one value per channel in training")
        mu = x.mean(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
        var = x.var(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
        inv_std = 1 / np.sqrt(var + self.eps)  # (1, C, 1, 1)
        x_hat = (x - mu) * inv_std  # (N, C, H, W)
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * mu.ravel()
        self.running_var = (1 - m) * self.running_var + m * var.ravel() * M / (M - 1)
        # KEEP guided
        self.cache = (x_hat, inv_std)
        # END KEEP
        return gamma * x_hat + beta
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (N, C, H, W) → dx through a training-mode forward; sets grad_weight, grad_bias.

        Phase 0's formula with sums over the M = N·H·W values of each channel, dx̂ = dout·γ:
        dx = (1/(M·√(σ² + ε)))·(M·dx̂ − Σ dx̂ − x̂·Σ(dx̂·x̂)); ∂L/∂γ = Σ dout·x̂, ∂L/∂β = Σ dout.
        """
        # BEGIN SOLUTION
        x_hat, inv_std = self.cache
        M = dout.size // dout.shape[1]
        axes = (0, 2, 3)
        self.grad_weight[...] = (dout * x_hat).sum(axis=axes)
        self.grad_bias[...] = dout.sum(axis=axes)
        dx_hat = dout * self.weight[:, None, None]  # (N, C, H, W)
        sum_dx_hat = dx_hat.sum(axis=axes, keepdims=True)  # (1, C, 1, 1)
        sum_dx_hat_x_hat = (dx_hat * x_hat).sum(axis=axes, keepdims=True)  # (1, C, 1, 1)
        return inv_std / M * (M * dx_hat - sum_dx_hat - x_hat * sum_dx_hat_x_hat)
        # END SOLUTION

    def params(self) -> list[np.ndarray]:
        """[weight, bias]."""
        # BEGIN SOLUTION hard
        return [self.weight, self.bias]
        # END SOLUTION

    def grads(self) -> list[np.ndarray]:
        """[grad_weight, grad_bias], in the order of params()."""
        # BEGIN SOLUTION hard
        return [self.grad_weight, self.grad_bias]
        # END SOLUTION


# ---- 7.5 GroupNorm ----


class GroupNorm:
    """Group normalisation, as torch.nn.GroupNorm(num_groups, num_channels, eps).

    The C channels of each sample are split into G groups of C/G; each (sample, group) is
    normalised by the mean and biased variance of its M = (C/G)·H·W values, then every channel
    gets its own affine γ_c, β_c. No batch statistics, so training and eval are the same.
    """

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, dtype: DType = np.float64
    ) -> None:
        """weight = 1, bias = 0, grads 0, all (C,); ValueError unless G divides C."""
        # BEGIN SOLUTION hard
        if num_channels % num_groups:
            raise ValueError(f"num_groups={num_groups} must divide num_channels={num_channels}")
        self.num_groups, self.eps = num_groups, eps
        self.weight = np.ones(num_channels, dtype=dtype)
        self.bias = np.zeros(num_channels, dtype=dtype)
        self.grad_weight = np.zeros(num_channels, dtype=dtype)
        self.grad_bias = np.zeros(num_channels, dtype=dtype)
        self.cache: tuple[np.ndarray, np.ndarray] | None = None
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, *spatial) → γ·x̂ + β, same shape; statistics per (sample, group)."""
        # BEGIN SOLUTION
        # HINT: x.reshape(N, G, -1) puts each group's values on the last axis.
        # KEEP guided
        N, C = x.shape[:2]
        # END KEEP
        grouped = x.reshape(N, self.num_groups, -1)  # (N, G, C/G·H·W)
        mu = grouped.mean(axis=-1, keepdims=True)  # (N, G, 1)
        inv_std = 1 / np.sqrt(grouped.var(axis=-1, keepdims=True) + self.eps)  # (N, G, 1)
        x_hat = ((grouped - mu) * inv_std).reshape(x.shape)  # (N, C, *spatial)
        # KEEP guided
        self.cache = (x_hat, inv_std)
        # END KEEP
        affine = (C,) + (1,) * (x.ndim - 2)
        return self.weight.reshape(affine) * x_hat + self.bias.reshape(affine)
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout → dx; sets grad_weight, grad_bias.

        BatchNorm's formula within each (sample, group) of M values, dx̂ = dout·γ_c:
        dx = (1/(M·√(σ² + ε)))·(M·dx̂ − Σ dx̂ − x̂·Σ(dx̂·x̂)); ∂L/∂γ_c = Σ dout·x̂ over every
        axis but the channel, ∂L/∂β_c = Σ dout likewise.
        """
        # BEGIN SOLUTION
        # HINT: the sums for dx run within a group; the sums for γ and β over samples and space.
        x_hat, inv_std = self.cache
        # KEEP guided
        N, C = dout.shape[:2]
        # END KEEP
        axes = (0, *range(2, dout.ndim))
        self.grad_weight[...] = (dout * x_hat).sum(axis=axes)
        self.grad_bias[...] = dout.sum(axis=axes)
        G = self.num_groups
        dx_hat = (dout * self.weight.reshape((C,) + (1,) * (dout.ndim - 2))).reshape(N, G, -1)
        x_hat = x_hat.reshape(N, G, -1)  # (N, G, M)
        # KEEP guided
        M = x_hat.shape[-1]
        # END KEEP
        sum_dx_hat = dx_hat.sum(axis=-1, keepdims=True)  # (N, G, 1)
        sum_dx_hat_x_hat = (dx_hat * x_hat).sum(axis=-1, keepdims=True)  # (N, G, 1)
        dx = inv_std / M * (M * dx_hat - sum_dx_hat - x_hat * sum_dx_hat_x_hat)  # (N, G, M)
        return dx.reshape(dout.shape)
        # END SOLUTION

    def params(self) -> list[np.ndarray]:
        """[weight, bias]."""
        # BEGIN SOLUTION hard
        return [self.weight, self.bias]
        # END SOLUTION

    def grads(self) -> list[np.ndarray]:
        """[grad_weight, grad_bias], in the order of params()."""
        # BEGIN SOLUTION hard
        return [self.grad_weight, self.grad_bias]
        # END SOLUTION


# ---- 7.6 Adam ----


class Adam:
    """Adam for the NumPy library, with torch.optim.Adam's semantics and defaults.

    For each parameter p with gradient g, at step t = 1, 2, …:
      g ← g + λ·p (weight_decay λ, L2 added to the gradient as torch does)
      m ← β₁·m + (1 − β₁)·g,  v ← β₂·v + (1 − β₂)·g²
      v_max ← max(v_max, v) when amsgrad, and v̂ uses v_max instead of v
      m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ),  p ← p − lr·m̂/(√v̂ + ε)
    Parameters are updated in place; the gradients passed to step are not modified.
    """

    def __init__(
        self,
        params: list[np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        """Keep `params` (the arrays themselves) and zero m, v (and v_max) per parameter; t = 0."""
        # BEGIN SOLUTION hard
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad
        self.t = 0
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.v_max = [np.zeros_like(p) for p in self.params] if amsgrad else []
        # END SOLUTION

    def step(self, grads: list[np.ndarray]) -> None:
        """One Adam update of every parameter in place, from grads in the order of params.

        ValueError when grads and params differ in length.
        """
        # BEGIN SOLUTION
        # HINT: update p with `p -= …` (in place): the layers own these arrays.
        # HINT: the bias corrections 1 − βᵗ use the step count after incrementing it.
        self.t += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1**self.t, 1 - beta2**self.t
        # KEEP guided
        for index, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            if self.weight_decay:
        # END KEEP
                g = g + self.weight_decay * p
            m, v = self.m[index], self.v[index]
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            # KEEP guided
            if self.amsgrad:
            # END KEEP
                np.maximum(self.v_max[index], v, out=self.v_max[index])
                v = self.v_max[index]
            p -= (self.lr / correction1) * m / (np.sqrt(v / correction2) + self.eps)
        # END SOLUTION


# ---- 7.7 Residual blocks ----


class BasicBlock:
    """The ResNet-18/34 block: out = ReLU(F(x) + shortcut(x)).

    F = conv3×3(stride) → BN → ReLU → conv3×3 → BN, both convs without bias (BN has a β).
    shortcut = identity, or a projection conv1×1(stride, no bias) → BN when the stride is not 1
    or the channel count changes. Layers: `residual` (a phase-0 Sequential of
    conv1, bn1, ReLU, conv2, bn2) and `shortcut` (a Sequential of conv, bn; or None).
    params() order: conv1.weight, bn1.weight, bn1.bias, conv2.weight, bn2.weight, bn2.bias,
    then the projection's conv weight, bn weight, bn bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        rng: Rng = None,
        dtype: DType = np.float64,
    ) -> None:
        """Build `residual` and `shortcut`, drawing the conv weights from one generator in order."""
        # BEGIN SOLUTION
        rng = np.random.default_rng(rng)
        self.residual = Sequential(
            Conv2d(in_channels, out_channels, 3, stride, 1, bias=False, rng=rng, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype),
            ReLU(),
            Conv2d(out_channels, out_channels, 3, 1, 1, bias=False, rng=rng, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype),
        )
        # KEEP guided
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
        # END KEEP
            self.shortcut = Sequential(
                Conv2d(in_channels, out_channels, 1, stride, bias=False, rng=rng, dtype=dtype),
                BatchNorm2d(out_channels, dtype=dtype),
            )
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C_in, H, W) → ReLU(F(x) + shortcut(x)) (N, C_out, H/stride, W/stride)."""
        # BEGIN SOLUTION
        identity = x if self.shortcut is None else self.shortcut.forward(x)
        self.z = self.residual.forward(x) + identity  # (N, C_out, Ho, Wo)
        return relu(self.z)
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout → dx: the gradient flows through both branches and the two parts add up."""
        # BEGIN SOLUTION
        # HINT: the skip connection copies x, so ∂L/∂x is the sum of both branches' gradients.
        dz = relu_backward(self.z, dout)
        dx = self.residual.backward(dz)
        return dx + (dz if self.shortcut is None else self.shortcut.backward(dz))
        # END SOLUTION

    def params(self) -> list[np.ndarray]:
        """The residual branch's params, then the projection's (if any)."""
        # BEGIN SOLUTION hard
        extra = [] if self.shortcut is None else self.shortcut.params()
        return self.residual.params() + extra
        # END SOLUTION

    def grads(self) -> list[np.ndarray]:
        """Gradients in the order of params()."""
        # BEGIN SOLUTION hard
        extra = [] if self.shortcut is None else self.shortcut.grads()
        return self.residual.grads() + extra
        # END SOLUTION

    def train(self) -> BasicBlock:
        """Training mode for every BatchNorm."""
        # BEGIN SOLUTION hard
        for part in (self.residual, self.shortcut):
            if part is not None:
                part.train()
        return self
        # END SOLUTION

    def eval(self) -> BasicBlock:
        """Eval mode for every BatchNorm."""
        # BEGIN SOLUTION hard
        for part in (self.residual, self.shortcut):
            if part is not None:
                part.eval()
        return self
        # END SOLUTION


class Bottleneck(BasicBlock):
    """The ResNet-50 block: out = ReLU(F(x) + shortcut(x)), with out_channels = 4·width.

    F = conv1×1 → BN → ReLU → conv3×3(stride) → BN → ReLU → conv1×1 (to 4·width) → BN, no conv
    bias; the stride sits on the 3×3 conv (torchvision's "ResNet v1.5"). shortcut = identity,
    or conv1×1(stride) → BN when stride ≠ 1 or in_channels ≠ 4·width.
    params() order: conv1.weight, bn1.weight, bn1.bias, conv2.weight, bn2.…, conv3.weight,
    bn3.weight, bn3.bias, then the projection's conv weight, bn weight, bn bias.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        rng: Rng = None,
        dtype: DType = np.float64,
    ) -> None:
        """Build `residual` and `shortcut`, drawing the conv weights from one generator in order."""
        # BEGIN SOLUTION
        # HINT: forward, backward, params, grads, train and eval are BasicBlock's: only the
        # HINT: layers differ.
        rng = np.random.default_rng(rng)
        out_channels = self.expansion * width
        self.residual = Sequential(
            Conv2d(in_channels, width, 1, bias=False, rng=rng, dtype=dtype),
            BatchNorm2d(width, dtype=dtype),
            ReLU(),
            Conv2d(width, width, 3, stride, 1, bias=False, rng=rng, dtype=dtype),
            BatchNorm2d(width, dtype=dtype),
            ReLU(),
            Conv2d(width, out_channels, 1, bias=False, rng=rng, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype),
        )
        # KEEP guided
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
        # END KEEP
            self.shortcut = Sequential(
                Conv2d(in_channels, out_channels, 1, stride, bias=False, rng=rng, dtype=dtype),
                BatchNorm2d(out_channels, dtype=dtype),
            )
        # END SOLUTION


# ---- 7.8 A small ResNet ----


class ResNet:
    """A small ResNet for small images, from BasicBlocks and your phase-0 Linear.

    stem: conv3×3(in_channels → widths[0], padding 1, no bias) → BN → ReLU, then
    MaxPool2d(2) when stem_pool (a 4× cheaper network for images as large as 28×28);
    stage s: depths[s] BasicBlocks of widths[s] channels, the first with stride 2 for s > 0;
    head: global average pool over H, W → Linear(widths[-1], num_classes) → logits (N, classes).
    Layers are drawn in that order from one generator; every array has the layer dtype (the
    phase-0 Linear's float64 arrays are converted). params() follows the same order.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: tuple[int, ...] = (16, 32, 64),
        depths: tuple[int, ...] = (1, 1, 1),
        stem_pool: bool = False,
        rng: Rng = None,
        dtype: DType = np.float64,
    ) -> None:
        """Build `stem` (a Sequential), `blocks` (a list of BasicBlock) and `head` (a Linear).

        ValueError when widths and depths differ in length.
        """
        # BEGIN SOLUTION
        rng = np.random.default_rng(rng)
        self.stem = Sequential(
            Conv2d(in_channels, widths[0], 3, 1, 1, bias=False, rng=rng, dtype=dtype),
            BatchNorm2d(widths[0], dtype=dtype),
            ReLU(),
            *([MaxPool2d(2)] if stem_pool else []),
        )
        # KEEP guided
        self.blocks: list[BasicBlock] = []
        # END KEEP
        channels = widths[0]
        # KEEP guided
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for index in range(depth):
        # END KEEP
                stride = 2 if stage > 0 and index == 0 else 1
                # KEEP guided
                self.blocks.append(BasicBlock(channels, width, stride, rng=rng, dtype=dtype))
                channels = width
                # END KEEP
        self.head = Linear(channels, num_classes, rng)
        # KEEP guided
        for name in ("weight", "bias", "grad_weight", "grad_bias"):
        # END KEEP
            setattr(self.head, name, getattr(self.head, name).astype(dtype))
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, in_channels, H, W) → logits (N, num_classes)."""
        # BEGIN SOLUTION
        x = self.stem.forward(x)
        # KEEP guided
        for block in self.blocks:
        # END KEEP
            x = block.forward(x)
        # KEEP guided
        self.pooled_shape = x.shape  # (N, C, h, w)
        # END KEEP
        return self.head.forward(x.mean(axis=(2, 3)))  # (N, classes)
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dlogits (N, num_classes) → dx (N, in_channels, H, W), filling every layer's grads."""
        # BEGIN SOLUTION
        # HINT: the average pool's backward spreads each gradient evenly over the h·w positions.
        N, C, h, w = self.pooled_shape
        dpooled = self.head.backward(dout)  # (N, C)
        dx = np.broadcast_to(dpooled[:, :, None, None] / (h * w), self.pooled_shape)
        # KEEP guided
        for block in reversed(self.blocks):
        # END KEEP
            dx = block.backward(dx)
        return self.stem.backward(dx)
        # END SOLUTION

    def params(self) -> list[np.ndarray]:
        """Stem, blocks in order, head."""
        # BEGIN SOLUTION hard
        blocks = [p for block in self.blocks for p in block.params()]
        return self.stem.params() + blocks + self.head.params()
        # END SOLUTION

    def grads(self) -> list[np.ndarray]:
        """Gradients in the order of params()."""
        # BEGIN SOLUTION hard
        blocks = [g for block in self.blocks for g in block.grads()]
        return self.stem.grads() + blocks + self.head.grads()
        # END SOLUTION

    def train(self) -> ResNet:
        """Training mode for every BatchNorm."""
        # BEGIN SOLUTION hard
        self.stem.train()
        for block in self.blocks:
            block.train()
        return self
        # END SOLUTION

    def eval(self) -> ResNet:
        """Eval mode for every BatchNorm."""
        # BEGIN SOLUTION hard
        self.stem.eval()
        for block in self.blocks:
            block.eval()
        return self
        # END SOLUTION


# ---- 7.9 Augmentation ----


def random_crop(images: np.ndarray, padding: int, rng: Rng = None) -> np.ndarray:
    """Zero-pad each image by `padding` on every side, then crop back to H×W at a random offset.

    images (N, C, H, W). The offsets are drawn in one call, (dy, dx) = rng.integers(0,
    2·padding + 1, size=(N, 2)) (row n for image n), and out[n] = padded[n, :, dy:dy + H,
    dx:dx + W]: a shift by (padding − dy, padding − dx) filling in zeros. padding = 0 is the
    identity.
    """
    # BEGIN SOLUTION
    # HINT: sliding_window_view(padded, (H, W), axis=(2, 3)) holds every crop; pick one per image.
    rng = np.random.default_rng(rng)
    # KEEP guided
    N, C, H, W = images.shape
    # END KEEP
    offsets = rng.integers(0, 2 * padding + 1, size=(N, 2))  # (N, 2)
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    crops = sliding_window_view(padded, (H, W), axis=(2, 3))  # (N, C, 2p + 1, 2p + 1, H, W)
    return crops[np.arange(N), :, offsets[:, 0], offsets[:, 1]]  # (N, C, H, W)
    # END SOLUTION


def random_horizontal_flip(images: np.ndarray, p: float = 0.5, rng: Rng = None) -> np.ndarray:
    """Mirror each image left–right with probability p.

    images (N, C, H, W). flip = rng.random(N) < p, drawn in one call; out[n] = images[n, :, :,
    ::-1] where flip[n], else images[n]. A new array: the input is not modified.
    """
    # BEGIN SOLUTION
    rng = np.random.default_rng(rng)
    flip = rng.random(len(images)) < p  # (N,)
    return np.where(flip[:, None, None, None], images[..., ::-1], images)
    # END SOLUTION
