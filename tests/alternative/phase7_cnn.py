"""An alternative correct phase-7 implementation, written unlike the reference on purpose.

Its author also wrote the reference, so it is not independent (tests/independent/ holds
implementations written from the stubs alone); it shows that the checks accept code that
differs from the reference in form. tests/test_alternative.py grades it at full marks.

It must keep full marks (the checks test the contract, not the reference's code): convolution
by a loop over kernel offsets with tensordot (no unfolded matrix), im2col by fancy indexing,
pooling by running maxima, BatchNorm2d through channel-last reshapes, GroupNorm through
moveaxis, Adam in torch's own form (denominator √v/√(1 − β₂ᵗ) + ε), and blocks that keep their
layers in plain attributes instead of Sequentials. """

from __future__ import annotations

import math

import numpy as np

from .phase0_foundations import Linear, relu, relu_backward


def _two(v):
    return (v, v) if isinstance(v, int) else tuple(int(a) for a in v)


def _out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _indices(shape, kernel, stride, padding, dilation):
    """Row and column index grids (kh, kw, Ho, Wo) into the padded image."""
    _, _, H, W = shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    Ho, Wo = _out(H, kh, sh, ph, dh), _out(W, kw, sw, pw, dw)
    rows = (np.arange(kh) * dh)[:, None, None, None] + (np.arange(Ho) * sh)[None, None, :, None]
    cols = (np.arange(kw) * dw)[None, :, None, None] + (np.arange(Wo) * sw)[None, None, None, :]
    return np.broadcast_to(rows, (kh, kw, Ho, Wo)), np.broadcast_to(cols, (kh, kw, Ho, Wo))


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    kernel, stride, padding, dilation = map(_two, (kernel_size, stride, padding, dilation))
    N, C = x.shape[:2]
    ph, pw = padding
    padded = np.zeros((N, C, x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), dtype=x.dtype)
    padded[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
    rows, cols = _indices(x.shape, kernel, stride, padding, dilation)
    gathered = padded[:, :, rows, cols]  # (N, C, kh, kw, Ho, Wo)
    return np.moveaxis(gathered, 0, 3).reshape(C * kernel[0] * kernel[1], -1)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    kernel, stride, padding, dilation = map(_two, (kernel_size, stride, padding, dilation))
    N, C, H, W = x_shape
    rows, columns = _indices(x_shape, kernel, stride, padding, dilation)
    blocks = np.moveaxis(cols.reshape(C, kernel[0], kernel[1], N, *rows.shape[2:]), 3, 0)
    ph, pw = padding
    padded = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    np.add.at(padded, (slice(None), slice(None), rows, columns), blocks)
    return padded[:, :, ph : ph + H, pw : pw + W].copy()


class Conv2d:
    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        rng=None,
        dtype=np.float64,
    ):
        if in_channels % groups != 0 or out_channels % groups != 0:
            raise ValueError("groups must divide both channel counts")
        generator = np.random.default_rng(rng)
        self.k, self.s = _two(kernel_size), _two(stride)
        self.p, self.d, self.groups = _two(padding), _two(dilation), groups
        fan_in = in_channels // groups * self.k[0] * self.k[1]
        limit = math.sqrt(1.0 / fan_in)
        self.weight = generator.uniform(
            -limit, limit, (out_channels, in_channels // groups, *self.k)
        ).astype(dtype)
        self.bias = generator.uniform(-limit, limit, out_channels).astype(dtype) if bias else None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if bias is False else np.zeros_like(self.bias)

    def _padded(self, x):
        ph, pw = self.p
        return np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])

    def _taps(self, shape):
        """For every kernel offset (i, j): the strided slices of the padded image it reads."""
        _, _, H, W = shape
        (kh, kw), (sh, sw), (dh, dw) = self.k, self.s, self.d
        Ho = _out(H, kh, sh, self.p[0], dh)
        Wo = _out(W, kw, sw, self.p[1], dw)
        for i in range(kh):
            for j in range(kw):
                yield (
                    i,
                    j,
                    (
                        slice(i * dh, i * dh + (Ho - 1) * sh + 1, sh),
                        slice(j * dw, j * dw + (Wo - 1) * sw + 1, sw),
                    ),
                    Ho,
                    Wo,
                )

    def forward(self, x):
        self.x = x
        padded = self._padded(x)
        G, O = self.groups, self.weight.shape[0]
        Cg = x.shape[1] // G
        result = None
        for i, j, (rows, cols), Ho, Wo in self._taps(x.shape):
            patch = padded[:, :, rows, cols].reshape(x.shape[0], G, Cg, Ho, Wo)
            w = self.weight[:, :, i, j].reshape(G, O // G, Cg)
            term = np.einsum("ngchw,goc->ngohw", patch, w).reshape(x.shape[0], O, Ho, Wo)
            result = term if result is None else result + term
        if self.bias is not None:
            result = result + self.bias.reshape(1, -1, 1, 1)
        return result

    def backward(self, dout):
        x = self.x
        padded = self._padded(x)
        G, O = self.groups, self.weight.shape[0]
        N, C = x.shape[:2]
        Cg = C // G
        d = dout.reshape(N, G, O // G, *dout.shape[2:])
        grad_padded = np.zeros_like(padded, dtype=dout.dtype)
        for i, j, (rows, cols), Ho, Wo in self._taps(x.shape):
            patch = padded[:, :, rows, cols].reshape(N, G, Cg, Ho, Wo)
            self.grad_weight[:, :, i, j] = np.einsum("ngohw,ngchw->goc", d, patch).reshape(O, Cg)
            w = self.weight[:, :, i, j].reshape(G, O // G, Cg)
            grad_padded[:, :, rows, cols] += np.einsum("ngohw,goc->ngchw", d, w).reshape(
                N, C, Ho, Wo
            )
        if self.bias is not None:
            self.grad_bias[...] = np.einsum("nohw->o", dout)
        ph, pw = self.p
        return grad_padded[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]

    def params(self):
        return [p for p in (self.weight, self.bias) if p is not None]

    def grads(self):
        return [g for g in (self.grad_weight, self.grad_bias) if g is not None]


class _Pool:
    def __init__(self, kernel_size, stride=None, padding=0):
        self.k = _two(kernel_size)
        self.s = self.k if stride is None else _two(stride)
        self.p = _two(padding)

    def _slices(self, H, W):
        (kh, kw), (sh, sw), (ph, pw) = self.k, self.s, self.p
        Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
        for i in range(kh):
            for j in range(kw):
                yield (slice(i, i + (Ho - 1) * sh + 1, sh), slice(j, j + (Wo - 1) * sw + 1, sw))

    def params(self):
        return []

    def grads(self):
        return []


class MaxPool2d(_Pool):
    def forward(self, x):
        ph, pw = self.p
        padded = np.full(
            (*x.shape[:2], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), -np.inf, dtype=x.dtype
        )
        padded[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
        best = winner = None
        for offset, (rows, cols) in enumerate(self._slices(*x.shape[2:])):
            value = padded[:, :, rows, cols]
            if best is None:
                best, winner = value.copy(), np.zeros(value.shape, dtype=np.int64)
            else:
                better = value > best  # strictly greater: the first maximum keeps the window
                best = np.where(better, value, best)
                winner = np.where(better, offset, winner)
        self.shape, self.winner = x.shape, winner
        return best

    def backward(self, dout):
        N, C, H, W = self.shape
        ph, pw = self.p
        grad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dout.dtype)
        for offset, (rows, cols) in enumerate(self._slices(H, W)):
            grad[:, :, rows, cols] += dout * (self.winner == offset)
        return grad[:, :, ph : ph + H, pw : pw + W]


class AvgPool2d(_Pool):
    def forward(self, x):
        self.shape = x.shape
        ph, pw = self.p
        padded = np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
        total = sum(padded[:, :, r, c] for r, c in self._slices(*x.shape[2:]))
        return total / (self.k[0] * self.k[1])

    def backward(self, dout):
        N, C, H, W = self.shape
        ph, pw = self.p
        grad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dout.dtype)
        for rows, cols in self._slices(H, W):
            grad[:, :, rows, cols] += dout / (self.k[0] * self.k[1])
        return grad[:, :, ph : ph + H, pw : pw + W]


class BatchNorm2d:
    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float64):
        self.eps, self.momentum, self.training = eps, momentum, True
        self.weight, self.bias = np.ones(num_features, dtype), np.zeros(num_features, dtype)
        self.grad_weight, self.grad_bias = (
            np.zeros(num_features, dtype),
            np.zeros(num_features, dtype),
        )
        self.running_mean, self.running_var = (
            np.zeros(num_features, dtype),
            np.ones(num_features, dtype),
        )

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])  # (N·H·W, C)
        if self.training:
            count = rows.shape[0]
            if count <= 1:
                raise ValueError("need at least two values per channel")
            mean = rows.mean(0)
            centred = rows - mean
            var = (centred**2).mean(0)
            self.running_mean = self.running_mean + self.momentum * (mean - self.running_mean)
            self.running_var = self.running_var + self.momentum * (
                var * count / (count - 1) - self.running_var
            )
        else:
            mean, var = self.running_mean, self.running_var
            centred = rows - mean
        self.scale = 1 / np.sqrt(var + self.eps)
        self.normalised = centred * self.scale
        out = self.normalised * self.weight + self.bias
        return np.moveaxis(out.reshape(x.shape[0], *x.shape[2:], x.shape[1]), -1, 1)

    def backward(self, dout):
        g = np.moveaxis(dout, 1, -1).reshape(-1, dout.shape[1])
        self.grad_bias[...] = g.sum(0)
        self.grad_weight[...] = (g * self.normalised).sum(0)
        gh = g * self.weight
        dx = self.scale * (gh - gh.mean(0) - self.normalised * (gh * self.normalised).mean(0))
        shape = (dout.shape[0], *dout.shape[2:], dout.shape[1])
        return np.moveaxis(dx.reshape(shape), -1, 1)

    def params(self):
        return [self.weight, self.bias]

    def grads(self):
        return [self.grad_weight, self.grad_bias]


class GroupNorm:
    def __init__(self, num_groups, num_channels, eps=1e-5, dtype=np.float64):
        if num_channels % num_groups:
            raise ValueError("num_groups must divide num_channels")
        self.G, self.eps = num_groups, eps
        self.weight, self.bias = np.ones(num_channels, dtype), np.zeros(num_channels, dtype)
        self.grad_weight = np.zeros(num_channels, dtype)
        self.grad_bias = np.zeros(num_channels, dtype)

    def forward(self, x):
        N, C = x.shape[:2]
        groups = x.reshape(N * self.G, -1)
        centred = groups - groups.mean(1, keepdims=True)
        self.scale = (np.mean(centred**2, 1, keepdims=True) + self.eps) ** -0.5
        self.normalised = (centred * self.scale).reshape(x.shape)
        shape = [1, C] + [1] * (x.ndim - 2)
        return self.normalised * self.weight.reshape(shape) + self.bias.reshape(shape)

    def backward(self, dout):
        N, C = dout.shape[:2]
        channel_last = np.moveaxis(dout, 1, -1).reshape(-1, C)
        self.grad_bias[...] = channel_last.sum(0)
        self.grad_weight[...] = (np.moveaxis(dout * self.normalised, 1, -1).reshape(-1, C)).sum(0)
        shape = [1, C] + [1] * (dout.ndim - 2)
        gh = (dout * self.weight.reshape(shape)).reshape(N * self.G, -1)
        xh = self.normalised.reshape(N * self.G, -1)
        dx = self.scale * (gh - gh.mean(1, keepdims=True) - xh * (gh * xh).mean(1, keepdims=True))
        return dx.reshape(dout.shape)

    def params(self):
        return [self.weight, self.bias]

    def grads(self):
        return [self.grad_weight, self.grad_bias]


class Adam:
    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False
    ):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.weight_decay, self.amsgrad, self.step_count = weight_decay, amsgrad, 0
        self.state = [
            dict(m=np.zeros_like(p), v=np.zeros_like(p), vmax=np.zeros_like(p)) for p in params
        ]

    def step(self, grads):
        if len(grads) != len(self.params):
            raise ValueError("one gradient per parameter")
        self.step_count += 1
        b1, b2 = self.betas
        for p, g, s in zip(self.params, grads, self.state, strict=False):
            g = g + self.weight_decay * p if self.weight_decay else g
            s["m"] = b1 * s["m"] + (1 - b1) * g
            s["v"] = b2 * s["v"] + (1 - b2) * g**2
            v = s["v"]
            if self.amsgrad:
                s["vmax"] = np.maximum(s["vmax"], v)
                v = s["vmax"]
            denom = np.sqrt(v) / math.sqrt(1 - b2**self.step_count) + self.eps
            p -= self.lr / (1 - b1**self.step_count) * s["m"] / denom


class BasicBlock:
    def __init__(self, in_channels, out_channels, stride=1, rng=None, dtype=np.float64):
        rng = np.random.default_rng(rng)
        self.layers = [
            Conv2d(in_channels, out_channels, 3, stride, 1, bias=False, rng=rng, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype),
            Conv2d(out_channels, out_channels, 3, 1, 1, bias=False, rng=rng, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype),
        ]
        self.projection = []
        if stride > 1 or in_channels != out_channels:
            self.projection = [
                Conv2d(in_channels, out_channels, 1, stride, bias=False, rng=rng, dtype=dtype),
                BatchNorm2d(out_channels, dtype=dtype),
            ]
        self.relu_after = [1]  # ReLU after these layer indices of the residual branch

    def forward(self, x):
        h, self.pre = x, []
        for index, layer in enumerate(self.layers):
            h = layer.forward(h)
            if index in self.relu_after:
                self.pre.append(h)
                h = relu(h)
        skip = x
        for layer in self.projection:
            skip = layer.forward(skip)
        self.total = h + skip
        return relu(self.total)

    def backward(self, dout):
        d = relu_backward(self.total, dout)
        h, pre = d, list(self.pre)
        for index in reversed(range(len(self.layers))):
            if index in self.relu_after:
                h = relu_backward(pre.pop(), h)
            h = self.layers[index].backward(h)
        skip = d
        for layer in reversed(self.projection):
            skip = layer.backward(skip)
        return h + skip

    def params(self):
        return [p for layer in self.layers + self.projection for p in layer.params()]

    def grads(self):
        return [g for layer in self.layers + self.projection for g in layer.grads()]

    def train(self):
        for layer in self.layers + self.projection:
            if isinstance(layer, BatchNorm2d):
                layer.train()
        return self

    def eval(self):
        for layer in self.layers + self.projection:
            if isinstance(layer, BatchNorm2d):
                layer.eval()
        return self


class Bottleneck(BasicBlock):
    expansion = 4

    def __init__(self, in_channels, width, stride=1, rng=None, dtype=np.float64):
        rng = np.random.default_rng(rng)
        out = 4 * width

        def conv(a, b, k, s=1, p=0):
            return Conv2d(a, b, k, s, p, bias=False, rng=rng, dtype=dtype)

        self.layers = [
            conv(in_channels, width, 1),
            BatchNorm2d(width, dtype=dtype),
            conv(width, width, 3, stride, 1),
            BatchNorm2d(width, dtype=dtype),
            conv(width, out, 1),
            BatchNorm2d(out, dtype=dtype),
        ]
        self.projection = []
        if stride > 1 or in_channels != out:
            self.projection = [conv(in_channels, out, 1, stride), BatchNorm2d(out, dtype=dtype)]
        self.relu_after = [1, 3]


class ResNet:
    def __init__(
        self,
        in_channels=1,
        num_classes=10,
        widths=(16, 32, 64),
        depths=(1, 1, 1),
        stem_pool=False,
        rng=None,
        dtype=np.float64,
    ):
        if len(widths) != len(depths):
            raise ValueError("one depth per width")
        rng = np.random.default_rng(rng)
        self.stem_conv = Conv2d(in_channels, widths[0], 3, 1, 1, bias=False, rng=rng, dtype=dtype)
        self.stem_bn = BatchNorm2d(widths[0], dtype=dtype)
        self.pool = MaxPool2d(2) if stem_pool else None
        self.blocks, previous = [], widths[0]
        for s, width in enumerate(widths):
            for b in range(depths[s]):
                first_of_later_stage = s > 0 and b == 0
                self.blocks.append(
                    BasicBlock(
                        previous, width, 2 if first_of_later_stage else 1, rng=rng, dtype=dtype
                    )
                )
                previous = width
        self.head = Linear(previous, num_classes, rng)
        self.head.weight = self.head.weight.astype(dtype)
        self.head.bias = self.head.bias.astype(dtype)
        self.head.grad_weight = np.zeros_like(self.head.weight)
        self.head.grad_bias = np.zeros_like(self.head.bias)

    def forward(self, x):
        self.stem_pre = self.stem_bn.forward(self.stem_conv.forward(x))
        h = relu(self.stem_pre)
        if self.pool is not None:
            h = self.pool.forward(h)
        for block in self.blocks:
            h = block.forward(h)
        self.spatial = h.shape
        return self.head.forward(h.sum(axis=(2, 3)) / (h.shape[2] * h.shape[3]))

    def backward(self, dout):
        g = self.head.backward(dout)
        N, C, h, w = self.spatial
        g = np.repeat(np.repeat(g[:, :, None, None] / (h * w), h, axis=2), w, axis=3)
        for block in self.blocks[::-1]:
            g = block.backward(g)
        if self.pool is not None:
            g = self.pool.backward(g)
        return self.stem_conv.backward(self.stem_bn.backward(relu_backward(self.stem_pre, g)))

    def params(self):
        out = self.stem_conv.params() + self.stem_bn.params()
        for block in self.blocks:
            out += block.params()
        return out + self.head.params()

    def grads(self):
        out = self.stem_conv.grads() + self.stem_bn.grads()
        for block in self.blocks:
            out += block.grads()
        return out + self.head.grads()

    def train(self):
        self.stem_bn.train()
        for block in self.blocks:
            block.train()
        return self

    def eval(self):
        self.stem_bn.eval()
        for block in self.blocks:
            block.eval()
        return self


def random_crop(images, padding, rng=None):
    generator = np.random.default_rng(rng)
    N, C, H, W = images.shape
    shifts = generator.integers(0, 2 * padding + 1, size=(N, 2))
    out = np.zeros_like(images)
    for n, (dy, dx) in enumerate(shifts):
        big = np.zeros((C, H + 2 * padding, W + 2 * padding), dtype=images.dtype)
        big[:, padding : padding + H, padding : padding + W] = images[n]
        out[n] = big[:, dy : dy + H, dx : dx + W]
    return out


def random_horizontal_flip(images, p=0.5, rng=None):
    draws = np.random.default_rng(rng).random(images.shape[0])
    out = images.copy()
    out[draws < p] = out[draws < p][..., ::-1]
    return out
