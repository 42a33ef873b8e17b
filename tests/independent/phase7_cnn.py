"""Phase 7, written independently of the reference from the stubs' docstrings alone.

Other routes than the obvious ones: im2col by strided slices per kernel offset instead of a
sliding-window view, col2im as one scatter-add by np.bincount over flat pixel indices, grouped
convolutions as a loop of plain matrix products, max pooling as a running maximum over the
kernel offsets (strict > keeps the first maximum), Adam in the paper's folded form
(α_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ), ε̂ = ε·√(1 − β₂ᵗ)), and the crop by fancy indexing.
"""

from __future__ import annotations

import math

import numpy as np

from .phase0_foundations import Linear, ReLU, Sequential, relu, relu_backward

Rng = int | np.random.Generator | None
Pair = int | tuple[int, int]
DType = type | np.dtype | str


def _two(value: Pair) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """⌊(size + 2·padding − dilation·(kernel − 1) − 1)/stride⌋ + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _geometry(x_shape, kernel_size, stride, padding, dilation):
    """(kh, kw), (sh, sw), (ph, pw), (dh, dw), (Ho, Wo) of a convolution over x_shape."""
    k, s, p, d = _two(kernel_size), _two(stride), _two(padding), _two(dilation)
    out = tuple(conv_output_size(x_shape[2 + a], k[a], s[a], p[a], d[a]) for a in range(2))
    return k, s, p, d, out


# ---- 7.1 im2col and col2im ----


def im2col(
    x: np.ndarray, kernel_size: Pair, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1
) -> np.ndarray:
    """cols[(c, i, j), (n, p, q)] = x_pad[n, c, p·sh + i·dh, q·sw + j·dw]."""
    n, c = x.shape[:2]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (ho, wo) = _geometry(
        x.shape, kernel_size, stride, padding, dilation
    )
    padded = np.zeros((n, c, x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), dtype=x.dtype)
    padded[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            block = padded[
                :, :, top : top + sh * (ho - 1) + 1 : sh, left : left + sw * (wo - 1) + 1 : sw
            ]
            cols[:, i, j] = block.transpose(1, 0, 2, 3)  # (C, N, Ho, Wo)
    return cols.reshape(c * kh * kw, n * ho * wo)


def _source_pixels(x_shape, kernel_size, stride, padding, dilation) -> tuple[np.ndarray, tuple]:
    """The flat index into the padded image of every entry of cols, shaped like cols."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (ho, wo) = _geometry(
        x_shape, kernel_size, stride, padding, dilation
    )
    hp, wp = h + 2 * ph, w + 2 * pw
    rows = np.arange(kh)[:, None] * dh + np.arange(ho)[None, :] * sh  # (kh, Ho)
    columns = np.arange(kw)[:, None] * dw + np.arange(wo)[None, :] * sw  # (kw, Wo)
    index = (
        (
            np.arange(n)[None, None, None, :, None, None] * c
            + np.arange(c)[:, None, None, None, None, None]
        )
        * hp
        + rows[None, :, None, None, :, None]
    ) * wp + columns[None, None, :, None, None, :]  # (C, kh, kw, N, Ho, Wo)
    return index.reshape(c * kh * kw, n * ho * wo), (n, c, hp, wp, ph, pw)


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
) -> np.ndarray:
    """The adjoint of im2col: every entry of cols summed onto the pixel it was read from."""
    index, (n, c, hp, wp, ph, pw) = _source_pixels(
        tuple(x_shape), kernel_size, stride, padding, dilation
    )
    totals = np.bincount(index.ravel(), weights=cols.ravel(), minlength=n * c * hp * wp)
    image = totals.reshape(n, c, hp, wp)[:, :, ph : hp - ph, pw : wp - pw]
    return np.ascontiguousarray(image, dtype=cols.dtype)


# ---- 7.2 Conv2d ----


class Conv2d:
    """torch.nn.Conv2d's cross-correlation, by im2col and one matrix product per group."""

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
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _two(kernel_size), _two(stride)
        self.padding, self.dilation = _two(padding), _two(dilation)
        draw = np.random.default_rng(rng)
        per_group = in_channels // groups
        limit = 1.0 / math.sqrt(per_group * self.kernel_size[0] * self.kernel_size[1])
        shape = (out_channels, per_group, *self.kernel_size)
        self.weight = draw.uniform(-limit, limit, size=shape).astype(dtype)
        self.bias = draw.uniform(-limit, limit, size=out_channels).astype(dtype) if bias else None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)
        self.cache: tuple[tuple[int, ...], np.ndarray] | None = None

    def _options(self) -> tuple:
        return self.kernel_size, self.stride, self.padding, self.dilation

    def _group_slices(self) -> list[tuple[slice, slice]]:
        """(rows of cols, output channels) of each group."""
        rows = self.weight[0].size
        outs = self.out_channels // self.groups
        return [
            (slice(g * rows, (g + 1) * rows), slice(g * outs, (g + 1) * outs))
            for g in range(self.groups)
        ]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) → (N, O, Ho, Wo)."""
        cols = im2col(x, *self._options())  # (C·kh·kw, N·Ho·Wo)
        _, _, _, _, (ho, wo) = _geometry(x.shape, *self._options())
        flat_w = self.weight.reshape(self.out_channels, -1)  # (O, C/G·kh·kw)
        out = np.empty((self.out_channels, cols.shape[1]), dtype=np.result_type(x, self.weight))
        for rows, outs in self._group_slices():
            out[outs] = flat_w[outs] @ cols[rows]  # (O/G, N·Ho·Wo)
        if self.bias is not None:
            out += self.bias[:, None]
        self.cache = (x.shape, cols)
        out = out.reshape(self.out_channels, x.shape[0], ho, wo)
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (N, O, Ho, Wo) → dx (N, C, H, W); overwrites grad_weight and grad_bias."""
        x_shape, cols = self.cache
        grad_out = dout.transpose(1, 0, 2, 3).reshape(self.out_channels, -1)  # (O, N·Ho·Wo)
        flat_w = self.weight.reshape(self.out_channels, -1)
        grad_w = self.grad_weight.reshape(self.out_channels, -1)  # a view: writes land in place
        grad_cols = np.empty_like(cols, dtype=np.result_type(dout, self.weight))
        for rows, outs in self._group_slices():
            grad_w[outs] = grad_out[outs] @ cols[rows].T
            grad_cols[rows] = flat_w[outs].T @ grad_out[outs]
        if self.grad_bias is not None:
            self.grad_bias[...] = grad_out.sum(axis=1)
        return col2im(grad_cols, x_shape, *self._options())

    def params(self) -> list[np.ndarray]:
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def grads(self) -> list[np.ndarray]:
        return [self.grad_weight] if self.bias is None else [self.grad_weight, self.grad_bias]


# ---- 7.3 Pooling ----


def _offset_slices(kernel, stride, out_hw):
    """For each kernel offset (i, j), in row-major order: the strided slices of the padded
    image that the windows read at that offset."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield (
                slice(None),
                slice(None),
                slice(i, i + sh * (ho - 1) + 1, sh),
                slice(j, j + sw * (wo - 1) + 1, sw),
            )


def _padded(x: np.ndarray, padding: tuple[int, int], fill: float) -> np.ndarray:
    ph, pw = padding
    out = np.full((*x.shape[:2], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), fill, dtype=x.dtype)
    out[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
    return out


class MaxPool2d:
    """torch.nn.MaxPool2d: −∞ padding; the gradient goes to each window's first maximum."""

    def __init__(self, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0) -> None:
        self.kernel_size = _two(kernel_size)
        self.stride = self.kernel_size if stride is None else _two(stride)
        self.padding = _two(padding)
        self.cache: tuple[tuple[int, ...], np.ndarray] | None = None

    def _out(self, x_shape) -> tuple[int, int]:
        return tuple(
            conv_output_size(
                x_shape[2 + a], self.kernel_size[a], self.stride[a], self.padding[a], 1
            )
            for a in range(2)
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) → (N, C, Ho, Wo)."""
        padded = _padded(x, self.padding, -np.inf)
        out_hw = self._out(x.shape)
        best = winner = None
        for offset, where in enumerate(_offset_slices(self.kernel_size, self.stride, out_hw)):
            value = padded[where]
            if best is None:
                best = value.copy()
                winner = np.zeros(value.shape, dtype=np.int64)
                continue
            better = value > best  # strict: an equal later value leaves the first maximum
            best = np.where(better, value, best)
            winner[better] = offset
        self.cache = (x.shape, winner)
        return best

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Each dout entry added at its window's first maximum."""
        x_shape, winner = self.cache
        ph, pw = self.padding
        grad = np.zeros((*x_shape[:2], x_shape[2] + 2 * ph, x_shape[3] + 2 * pw), dtype=dout.dtype)
        for offset, where in enumerate(
            _offset_slices(self.kernel_size, self.stride, winner.shape[2:])
        ):
            grad[where] += np.where(winner == offset, dout, 0)
        return grad[:, :, ph : ph + x_shape[2], pw : pw + x_shape[3]].copy()

    def params(self) -> list[np.ndarray]:
        return []

    def grads(self) -> list[np.ndarray]:
        return []


class AvgPool2d:
    """torch.nn.AvgPool2d with count_include_pad=True."""

    def __init__(self, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0) -> None:
        self.kernel_size = _two(kernel_size)
        self.stride = self.kernel_size if stride is None else _two(stride)
        self.padding = _two(padding)
        self.x_shape: tuple[int, ...] | None = None

    def _out(self, x_shape) -> tuple[int, int]:
        return tuple(
            conv_output_size(
                x_shape[2 + a], self.kernel_size[a], self.stride[a], self.padding[a], 1
            )
            for a in range(2)
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The mean of every zero-padded window."""
        padded = _padded(x, self.padding, 0.0)
        out_hw = self._out(x.shape)
        total = np.zeros((*x.shape[:2], *out_hw), dtype=x.dtype)
        for where in _offset_slices(self.kernel_size, self.stride, out_hw):
            total += padded[where]
        self.x_shape = x.shape
        return total / (self.kernel_size[0] * self.kernel_size[1])

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout/(kh·kw) added over every window."""
        ph, pw = self.padding
        n, c, h, w = self.x_shape
        grad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
        share = dout / (self.kernel_size[0] * self.kernel_size[1])
        for where in _offset_slices(self.kernel_size, self.stride, dout.shape[2:]):
            grad[where] += share
        return grad[:, :, ph : ph + h, pw : pw + w].copy()

    def params(self) -> list[np.ndarray]:
        return []

    def grads(self) -> list[np.ndarray]:
        return []


# ---- 7.4 BatchNorm2d ----


def _normalise_backward(
    dxhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, axes: tuple[int, ...]
) -> np.ndarray:
    """dx = (dx̂ − mean dx̂ − x̂·mean(dx̂·x̂))/√(σ² + ε), the means over `axes`."""
    centred = dxhat - dxhat.mean(axis=axes, keepdims=True)
    return (centred - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)) * inv_std


class BatchNorm2d:
    """Per-channel statistics over (N, H, W), as torch.nn.BatchNorm2d."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        dtype: DType = np.float64,
    ) -> None:
        self.eps, self.momentum = eps, momentum
        self.weight = np.ones(num_features, dtype=dtype)
        self.bias = np.zeros(num_features, dtype=dtype)
        self.grad_weight = np.zeros(num_features, dtype=dtype)
        self.grad_bias = np.zeros(num_features, dtype=dtype)
        self.running_mean = np.zeros(num_features, dtype=dtype)
        self.running_var = np.ones(num_features, dtype=dtype)
        self.training = True
        self.cache: tuple[np.ndarray, np.ndarray] | None = None

    def train(self) -> BatchNorm2d:
        self.training = True
        return self

    def eval(self) -> BatchNorm2d:
        self.training = False
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        """γ·(x − μ_c)/√(σ²_c + ε) + β."""
        channels = x.shape[1]
        as_rows = np.moveaxis(x, 1, 0).reshape(channels, -1)  # (C, M)
        count = as_rows.shape[1]
        if self.training:
            if count < 2:
                raise ValueError(f"BatchNorm2d needs more than one value per channel, got {count}")
            mean = as_rows.mean(axis=1)
            var = np.square(as_rows - mean[:, None]).mean(axis=1)
            self.running_mean[...] = (1 - self.momentum) * self.running_mean + self.momentum * mean
            unbiased = var * (count / (count - 1))
            self.running_var[...] = (
                1 - self.momentum
            ) * self.running_var + self.momentum * unbiased
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype).reshape(1, channels, 1, 1)
        xhat = (x - mean.reshape(1, channels, 1, 1)) * inv_std
        self.cache = (xhat, inv_std)
        return xhat * self.weight.reshape(1, channels, 1, 1) + self.bias.reshape(1, channels, 1, 1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx through a training-mode forward; overwrites grad_weight, grad_bias."""
        xhat, inv_std = self.cache
        axes = (0, 2, 3)
        self.grad_weight[...] = (dout * xhat).sum(axis=axes)
        self.grad_bias[...] = dout.sum(axis=axes)
        dxhat = dout * self.weight.reshape(1, -1, 1, 1)
        return _normalise_backward(dxhat, xhat, inv_std, axes)

    def params(self) -> list[np.ndarray]:
        return [self.weight, self.bias]

    def grads(self) -> list[np.ndarray]:
        return [self.grad_weight, self.grad_bias]


# ---- 7.5 GroupNorm ----


class GroupNorm:
    """Statistics per (sample, group of C/G channels), an affine per channel."""

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, dtype: DType = np.float64
    ) -> None:
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"num_groups={num_groups} must divide num_channels={num_channels}")
        self.num_groups, self.eps = num_groups, eps
        self.weight = np.ones(num_channels, dtype=dtype)
        self.bias = np.zeros(num_channels, dtype=dtype)
        self.grad_weight = np.zeros(num_channels, dtype=dtype)
        self.grad_bias = np.zeros(num_channels, dtype=dtype)
        self.cache: tuple[np.ndarray, np.ndarray] | None = None

    def _channel_view(self, a: np.ndarray, ndim: int) -> np.ndarray:
        return a.reshape(1, -1, *([1] * (ndim - 2)))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, *spatial) → γ·x̂ + β."""
        n, c = x.shape[:2]
        grouped = x.reshape(n, self.num_groups, c // self.num_groups, -1)  # (N, G, C/G, S)
        mean = grouped.mean(axis=(2, 3), keepdims=True)
        var = np.square(grouped - mean).mean(axis=(2, 3), keepdims=True)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = ((grouped - mean) * inv_std).reshape(x.shape)
        self.cache = (xhat, inv_std)
        gamma, beta = self._channel_view(self.weight, x.ndim), self._channel_view(self.bias, x.ndim)
        return xhat * gamma + beta

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx; overwrites grad_weight, grad_bias."""
        xhat, inv_std = self.cache
        n, c = dout.shape[:2]
        others = (0, *range(2, dout.ndim))
        self.grad_weight[...] = (dout * xhat).sum(axis=others)
        self.grad_bias[...] = dout.sum(axis=others)
        dxhat = dout * self._channel_view(self.weight, dout.ndim)
        shape = (n, self.num_groups, c // self.num_groups, -1)
        dx = _normalise_backward(dxhat.reshape(shape), xhat.reshape(shape), inv_std, (2, 3))
        return dx.reshape(dout.shape)

    def params(self) -> list[np.ndarray]:
        return [self.weight, self.bias]

    def grads(self) -> list[np.ndarray]:
        return [self.grad_weight, self.grad_bias]


# ---- 7.6 Adam ----


class Adam:
    """torch.optim.Adam, in Kingma & Ba's folded form: p ← p − α_t·m/(√v + ε̂)."""

    def __init__(
        self,
        params: list[np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad
        self.t = 0
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.v_max = [np.zeros_like(p) for p in self.params] if amsgrad else []

    def step(self, grads: list[np.ndarray]) -> None:
        """One update of every parameter in place."""
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"{len(grads)} gradients for {len(self.params)} parameters")
        self.t += 1
        beta1, beta2 = self.betas
        root_correction = math.sqrt(1 - beta2**self.t)
        step_size = self.lr * root_correction / (1 - beta1**self.t)
        eps_hat = self.eps * root_correction
        for index, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            if self.weight_decay:
                g = g + self.weight_decay * p
            m, v = self.m[index], self.v[index]
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * np.square(g)
            if self.amsgrad:
                np.maximum(self.v_max[index], v, out=self.v_max[index])
                v = self.v_max[index]
            p -= step_size * m / (np.sqrt(v) + eps_hat)


# ---- 7.7 Residual blocks ----


class BasicBlock:
    """ReLU(conv3×3 → BN → ReLU → conv3×3 → BN  +  identity or conv1×1 → BN)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        rng: Rng = None,
        dtype: DType = np.float64,
    ) -> None:
        draw = np.random.default_rng(rng)
        self.residual = Sequential(
            Conv2d(in_channels, out_channels, 3, stride, 1, bias=False, rng=draw, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype),
            ReLU(),
            Conv2d(out_channels, out_channels, 3, 1, 1, bias=False, rng=draw, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype),
        )
        self.shortcut = _projection(in_channels, out_channels, stride, draw, dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """ReLU(F(x) + shortcut(x))."""
        skip = x if self.shortcut is None else self.shortcut.forward(x)
        self.total = self.residual.forward(x) + skip
        return relu(self.total)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Both branches' gradients, added."""
        dtotal = relu_backward(self.total, dout)
        dskip = dtotal if self.shortcut is None else self.shortcut.backward(dtotal)
        return self.residual.backward(dtotal) + dskip

    def params(self) -> list[np.ndarray]:
        extra = [] if self.shortcut is None else self.shortcut.params()
        return self.residual.params() + extra

    def grads(self) -> list[np.ndarray]:
        extra = [] if self.shortcut is None else self.shortcut.grads()
        return self.residual.grads() + extra

    def train(self) -> BasicBlock:
        for part in (self.residual, self.shortcut):
            if part is not None:
                part.train()
        return self

    def eval(self) -> BasicBlock:
        for part in (self.residual, self.shortcut):
            if part is not None:
                part.eval()
        return self


def _projection(
    in_channels: int, out_channels: int, stride: int, draw: np.random.Generator, dtype: DType
) -> Sequential | None:
    """conv1×1(stride) → BN when the shape changes, else None (the identity)."""
    if stride == 1 and in_channels == out_channels:
        return None
    return Sequential(
        Conv2d(in_channels, out_channels, 1, stride, bias=False, rng=draw, dtype=dtype),
        BatchNorm2d(out_channels, dtype=dtype),
    )


class Bottleneck(BasicBlock):
    """ReLU(1×1 → BN → ReLU → 3×3(stride) → BN → ReLU → 1×1 (4·width) → BN  +  shortcut)."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        rng: Rng = None,
        dtype: DType = np.float64,
    ) -> None:
        draw = np.random.default_rng(rng)
        wide = self.expansion * width
        layers = []
        plan = [(in_channels, width, 1, 1, 0), (width, width, 3, stride, 1), (width, wide, 1, 1, 0)]
        for index, (cin, cout, kernel, step, pad) in enumerate(plan):
            if index:
                layers.append(ReLU())
            layers.append(Conv2d(cin, cout, kernel, step, pad, bias=False, rng=draw, dtype=dtype))
            layers.append(BatchNorm2d(cout, dtype=dtype))
        self.residual = Sequential(*layers)
        self.shortcut = _projection(in_channels, wide, stride, draw, dtype)


# ---- 7.8 A small ResNet ----


class ResNet:
    """stem → stages of BasicBlocks → global average pool → Linear."""

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
        if len(widths) != len(depths):
            raise ValueError(f"{len(widths)} widths for {len(depths)} depths")
        draw = np.random.default_rng(rng)
        stem = [
            Conv2d(in_channels, widths[0], 3, 1, 1, bias=False, rng=draw, dtype=dtype),
            BatchNorm2d(widths[0], dtype=dtype),
            ReLU(),
        ]
        self.stem = Sequential(*stem, *([MaxPool2d(2)] if stem_pool else []))
        self.blocks: list[BasicBlock] = []
        channels = widths[0]
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for index in range(depth):
                stride = 2 if stage > 0 and index == 0 else 1
                self.blocks.append(BasicBlock(channels, width, stride, rng=draw, dtype=dtype))
                channels = width
        self.head = Linear(widths[-1], num_classes, rng=draw)
        for name in ("weight", "bias", "grad_weight", "grad_bias"):
            setattr(self.head, name, getattr(self.head, name).astype(dtype))
        self.pooled_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) → logits (N, classes)."""
        h = self.stem.forward(x)
        for block in self.blocks:
            h = block.forward(h)
        self.pooled_shape = h.shape
        return self.head.forward(h.mean(axis=(2, 3)))  # (N, classes)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dlogits → dx, filling every gradient."""
        dpooled = self.head.backward(dout)  # (N, C)
        n, c, h, w = self.pooled_shape
        grad = np.repeat(dpooled / (h * w), h * w, axis=1).reshape(n, c, h, w)
        for block in reversed(self.blocks):
            grad = block.backward(grad)
        return self.stem.backward(grad)

    def params(self) -> list[np.ndarray]:
        blocks = [p for block in self.blocks for p in block.params()]
        return self.stem.params() + blocks + self.head.params()

    def grads(self) -> list[np.ndarray]:
        blocks = [g for block in self.blocks for g in block.grads()]
        return self.stem.grads() + blocks + self.head.grads()

    def train(self) -> ResNet:
        self.stem.train()
        for block in self.blocks:
            block.train()
        return self

    def eval(self) -> ResNet:
        self.stem.eval()
        for block in self.blocks:
            block.eval()
        return self


# ---- 7.9 Augmentation ----


def random_crop(images: np.ndarray, padding: int, rng: Rng = None) -> np.ndarray:
    """out[n] = zero-padded[n, :, dy:dy + H, dx:dx + W], (dy, dx) drawn in one call."""
    n, _, h, w = images.shape
    offsets = np.random.default_rng(rng).integers(0, 2 * padding + 1, size=(n, 2))
    padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    rows = offsets[:, :1] + np.arange(h)  # (N, H)
    cols = offsets[:, 1:] + np.arange(w)  # (N, W)
    picked = padded[np.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return np.ascontiguousarray(picked.transpose(0, 3, 1, 2))  # (N, H, W, C) → (N, C, H, W)


def random_horizontal_flip(images: np.ndarray, p: float = 0.5, rng: Rng = None) -> np.ndarray:
    """images[n, :, :, ::-1] where a uniform draw is < p."""
    flip = np.random.default_rng(rng).random(images.shape[0]) < p
    return np.where(flip[:, None, None, None], images[..., ::-1], images)
