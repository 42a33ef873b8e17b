"""Phase 0, written independently of the reference from the stubs' docstrings alone.

It keeps every documented contract but takes other routes: log-sum-exp by np.logaddexp.reduce,
softplus by np.logaddexp, einsum for products, explicit loops where a reference would vectorise.
"""

from __future__ import annotations

import math

import numpy as np

Rng = int | np.random.Generator | None

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715


def _float_dtype(*arrays: np.ndarray) -> np.dtype:
    kind = np.result_type(*arrays)
    return kind if np.issubdtype(kind, np.floating) else np.dtype(np.float64)


# ---- 0.1 Linear regression ----


def mse_loss(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float
) -> tuple[float, np.ndarray, float]:
    """L = (1/N)·Σ r², r = Xw + b − y; ∂L/∂w = (2/N)·Xᵀr, ∂L/∂b = (2/N)·Σ r."""
    n = X.shape[0]
    residual = np.einsum("nd,d->n", X, w) + b - y  # (N,)
    loss = float(np.einsum("n,n->", residual, residual)) / n
    grad_w = np.einsum("nd,n->d", X, residual) * (2.0 / n)  # (D,)
    grad_b = 2.0 * float(residual.sum()) / n
    return loss, grad_w, grad_b


def fit_linear_regression(
    X: np.ndarray, y: np.ndarray, lr: float = 0.1, steps: int = 500
) -> tuple[np.ndarray, float, np.ndarray]:
    """Full-batch gradient descent from zero; losses[t] is the loss before update t."""
    w = np.zeros(X.shape[1], dtype=_float_dtype(X, y))
    b = 0.0
    history = []
    for _ in range(steps):
        loss, grad_w, grad_b = mse_loss(X, y, w, b)
        history.append(loss)
        w = w - lr * grad_w
        b = b - lr * grad_b
    return w, b, np.asarray(history, dtype=np.float64).reshape(steps)


# ---- 0.2 Activations ----


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.clip(x, 0, None)


def relu_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """dout·1[x > 0]."""
    return np.where(x > 0, dout, np.zeros_like(dout))


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """x for x > 0, negative_slope·x otherwise."""
    return np.where(x > 0, x, x * negative_slope)


def leaky_relu_backward(
    x: np.ndarray, dout: np.ndarray, negative_slope: float = 0.01
) -> np.ndarray:
    """dout for x > 0, negative_slope·dout for x ≤ 0."""
    return np.where(x > 0, dout, dout * negative_slope)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) from e = e^(−|x|): numerator 1 or e, denominator 1 + e."""
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    numerator = np.where(x >= 0, np.ones_like(e), e)
    return numerator / (1 + e)


def sigmoid_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """dout·σ(1 − σ)."""
    s = sigmoid(x)
    return dout * (s - s * s)


def tanh(x: np.ndarray) -> np.ndarray:
    """np.tanh, already stable."""
    return np.tanh(x)


def tanh_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """dout·(1 − tanh²)."""
    t = np.tanh(x)
    return dout - dout * t * t


def silu(x: np.ndarray) -> np.ndarray:
    """x·σ(x)."""
    return x * sigmoid(x)


def silu_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """dout·(σ + x·σ(1 − σ))."""
    s = sigmoid(x)
    return dout * (s + x * s * (1 - s))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    u = SQRT_2_OVER_PI * x * (1 + GELU_CUBIC * x * x)
    return x * (0.5 + 0.5 * np.tanh(u))


def gelu_tanh_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """dout·(0.5(1 + t) + 0.5·x(1 − t²)·√(2/π)(1 + 3·0.044715·x²))."""
    x2 = x * x
    t = np.tanh(SQRT_2_OVER_PI * x * (1 + GELU_CUBIC * x2))
    du = SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * x2)
    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t) * (1 + t) * du)


# ---- 0.3 Softmax ----


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    return np.logaddexp.reduce(x, axis=axis, keepdims=True)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x − logsumexp(x)) along axis."""
    return np.exp(x - _logsumexp(x, axis))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x − logsumexp(x) along axis."""
    return x - _logsumexp(x, axis)


# ---- 0.4 Losses ----


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """−mean log softmax(z)[y], gradient (softmax − onehot)/N."""
    n, c = logits.shape
    labels = np.asarray(labels).reshape(n, 1)
    logp = log_softmax(logits, axis=1)  # (N, C)
    picked = np.take_along_axis(logp, labels, axis=1)  # (N, 1)
    onehot = labels == np.arange(c)  # (N, C) bool
    grad = (np.exp(logp) - onehot) / n  # (N, C)
    return -float(picked.sum()) / n, grad


def bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """mean(softplus(z) − z·t), softplus(z) = log(1 + eᶻ) by np.logaddexp; grad (σ(z) − t)/n."""
    z = np.asarray(logits)
    count = z.size
    per_element = np.logaddexp(np.zeros_like(z), z) - z * targets
    grad = (sigmoid(z) - targets) / count
    return float(per_element.sum()) / count, grad.astype(_float_dtype(z), copy=False)


# ---- 0.5 Linear layer ----


class Linear:
    """y = x Wᵀ + b, weight (out, in), bias (out,) ~ U(−1/√in, 1/√in)."""

    def __init__(self, in_features: int, out_features: int, rng: Rng = None) -> None:
        gen = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = gen.uniform(-bound, bound, size=(out_features, in_features))
        self.bias = gen.uniform(-bound, bound, size=(out_features,))
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = np.array(x, copy=True)
        return np.matmul(x, self.weight.T) + self.bias  # (N, out)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grad_weight[...] = np.matmul(dout.T, self.x)  # (out, in)
        self.grad_bias[...] = dout.sum(axis=0)  # (out,)
        return np.matmul(dout, self.weight)  # (N, in)

    def params(self) -> list[np.ndarray]:
        return [self.weight, self.bias]

    def grads(self) -> list[np.ndarray]:
        return [self.grad_weight, self.grad_bias]


# ---- 0.6 Initialisation ----


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """fan_in = shape[1]·∏shape[2:], fan_out = shape[0]·∏shape[2:]."""
    dims = tuple(shape)
    if len(dims) < 2:
        raise ValueError(f"fans need a shape of at least 2 dimensions, got {dims}")
    receptive = 1
    for size in dims[2:]:
        receptive *= int(size)
    return int(dims[1]) * receptive, int(dims[0]) * receptive


def _fan(shape: tuple[int, ...], mode: str) -> int:
    fan_in, fan_out = compute_fans(shape)
    fans = {"fan_in": fan_in, "fan_out": fan_out}
    if mode not in fans:
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fans[mode]


def xavier_uniform(shape: tuple[int, ...], gain: float = 1.0, rng: Rng = None) -> np.ndarray:
    """U(−a, a), a = gain·√(6/(fan_in + fan_out))."""
    fan_in, fan_out = compute_fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return np.random.default_rng(rng).uniform(-bound, bound, size=tuple(shape))


def xavier_normal(shape: tuple[int, ...], gain: float = 1.0, rng: Rng = None) -> np.ndarray:
    """N(0, std²), std = gain·√(2/(fan_in + fan_out))."""
    fan_in, fan_out = compute_fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return np.random.default_rng(rng).normal(0.0, std, size=tuple(shape))


def he_uniform(shape: tuple[int, ...], mode: str = "fan_in", rng: Rng = None) -> np.ndarray:
    """U(−b, b), b = √(6/fan)."""
    bound = math.sqrt(6.0 / _fan(shape, mode))
    return np.random.default_rng(rng).uniform(-bound, bound, size=tuple(shape))


def he_normal(shape: tuple[int, ...], mode: str = "fan_in", rng: Rng = None) -> np.ndarray:
    """N(0, 2/fan)."""
    std = math.sqrt(2.0 / _fan(shape, mode))
    return np.random.default_rng(rng).normal(0.0, std, size=tuple(shape))


# ---- 0.7 Regularisation ----


def l1_penalty(params: list[np.ndarray], lam: float) -> tuple[float, list[np.ndarray]]:
    """λ·Σ|w|, gradients λ·sign(w)."""
    total = 0.0
    grads = []
    for p in params:
        total += float(np.abs(p).sum())
        grads.append(np.sign(p) * lam)
    return lam * total, grads


def l2_penalty(params: list[np.ndarray], lam: float) -> tuple[float, list[np.ndarray]]:
    """(λ/2)·Σw², gradients λ·w."""
    total = sum(float(np.vdot(p, p)) for p in params)
    return 0.5 * lam * total, [p * lam for p in params]


# ---- 0.8 BatchNorm1d ----


class BatchNorm1d:
    """Batch normalisation over axis 0 of (N, D), as torch.nn.BatchNorm1d."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.eps, self.momentum = eps, momentum
        self.weight = np.ones(num_features)
        self.bias = np.zeros(num_features)
        self.grad_weight = np.zeros(num_features)
        self.grad_bias = np.zeros(num_features)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)
        self.training = True
        self.cache: tuple[np.ndarray, np.ndarray] | None = None

    def train(self) -> BatchNorm1d:
        self.training = True
        return self

    def eval(self) -> BatchNorm1d:
        self.training = False
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if self.training:
            mean = np.einsum("nd->d", x) / n  # (D,)
            centred = x - mean
            var = np.einsum("nd,nd->d", centred, centred) / n  # biased, (D,)
            m = self.momentum
            unbiased = var * n / (n - 1) if n > 1 else var
            self.running_mean[...] = self.running_mean + m * (mean - self.running_mean)
            self.running_var[...] = self.running_var + m * (unbiased - self.running_var)
        else:
            mean, var = self.running_mean, self.running_var
            centred = x - mean
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (D,)
        x_hat = centred * inv_std  # (N, D)
        self.cache = (x_hat, inv_std)
        return (x_hat * self.weight + self.bias).astype(_float_dtype(x), copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_hat, inv_std = self.cache
        self.grad_weight[...] = np.einsum("nd,nd->d", dout, x_hat)
        self.grad_bias[...] = np.einsum("nd->d", dout)
        d_hat = dout * self.weight  # (N, D)
        mean_d = d_hat.mean(axis=0)
        mean_dx = (d_hat * x_hat).mean(axis=0)
        dx = (d_hat - mean_d - x_hat * mean_dx) * inv_std  # (N, D), the formula divided by N
        return dx.astype(_float_dtype(dout), copy=False)

    def params(self) -> list[np.ndarray]:
        return [self.weight, self.bias]

    def grads(self) -> list[np.ndarray]:
        return [self.grad_weight, self.grad_bias]


# ---- 0.9 LayerNorm ----


class LayerNorm:
    """Layer normalisation over the last axis, as torch.nn.LayerNorm(D)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5) -> None:
        self.eps = eps
        self.weight = np.ones(normalized_shape)
        self.bias = np.zeros(normalized_shape)
        self.grad_weight = np.zeros(normalized_shape)
        self.grad_bias = np.zeros(normalized_shape)
        self.cache: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        d = x.shape[-1]
        mean = np.einsum("...d->...", x)[..., None] / d  # (..., 1)
        centred = x - mean
        var = np.einsum("...d,...d->...", centred, centred)[..., None] / d  # (..., 1)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat = centred * inv_std  # (..., D)
        self.cache = (x_hat, inv_std)
        return (self.bias + self.weight * x_hat).astype(_float_dtype(x), copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x_hat, inv_std = self.cache
        d = dout.shape[-1]
        flat_dout = dout.reshape(-1, d)
        flat_hat = x_hat.reshape(-1, d)
        self.grad_weight[...] = np.einsum("rd,rd->d", flat_dout, flat_hat)
        self.grad_bias[...] = np.einsum("rd->d", flat_dout)
        d_hat = dout * self.weight  # (..., D)
        sum_d = d_hat.sum(axis=-1, keepdims=True)
        sum_dx = (d_hat * x_hat).sum(axis=-1, keepdims=True)
        dx = (inv_std / d) * (d * d_hat - sum_d - x_hat * sum_dx)
        return dx.astype(_float_dtype(dout), copy=False)

    def params(self) -> list[np.ndarray]:
        return [self.weight, self.bias]

    def grads(self) -> list[np.ndarray]:
        return [self.grad_weight, self.grad_bias]


# ---- 0.10 Dropout ----


class Dropout:
    """Inverted dropout; keep mask rng.random(x.shape) >= p from the layer's own generator."""

    def __init__(self, p: float = 0.5, rng: Rng = None) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        self.rng = np.random.default_rng(rng)
        self.training = True
        self.mask: np.ndarray | None = None

    def train(self) -> Dropout:
        self.training = True
        return self

    def eval(self) -> Dropout:
        self.training = False
        return self

    def _apply(self, a: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return np.array(a, copy=True)
        if self.p == 1:
            return np.zeros_like(a)
        return np.where(self.mask, a / (1 - self.p), np.zeros_like(a))

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = self.rng.random(np.shape(x)) >= self.p if self.training else None
        return self._apply(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._apply(dout)

    def params(self) -> list[np.ndarray]:
        return []

    def grads(self) -> list[np.ndarray]:
        return []


# ---- 0.11 MLP ----


class ReLU:
    """ReLU layer caching its input."""

    def __init__(self) -> None:
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = np.array(x, copy=True)
        return relu(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return relu_backward(self.x, dout)

    def params(self) -> list[np.ndarray]:
        return []

    def grads(self) -> list[np.ndarray]:
        return []


class Sequential:
    """Layers chained forward, differentiated in reverse."""

    def __init__(self, *layers) -> None:
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = x
        for layer in self.layers:
            out = layer.forward(out)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        grad = dout
        for index in range(len(self.layers) - 1, -1, -1):
            grad = self.layers[index].backward(grad)
        return grad

    def params(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.params()]

    def grads(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in layer.grads()]

    def train(self) -> Sequential:
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train()
        return self

    def eval(self) -> Sequential:
        for layer in self.layers:
            if hasattr(layer, "eval"):
                layer.eval()
        return self


def make_mlp(sizes: tuple[int, ...] = (2, 4, 4, 2), rng: Rng = None) -> Sequential:
    """Linear, ReLU, …, Linear through sizes; one generator shared in layer order."""
    gen = np.random.default_rng(rng)
    layers: list = []
    pairs = list(zip(sizes[:-1], sizes[1:], strict=False))
    for index, (fan_in, fan_out) in enumerate(pairs):
        layers.append(Linear(fan_in, fan_out, rng=gen))
        if index < len(pairs) - 1:
            layers.append(ReLU())
    return Sequential(*layers)


def sgd_step(params: list[np.ndarray], grads: list[np.ndarray], lr: float) -> None:
    """p ← p − lr·g, in place."""
    for p, g in zip(params, grads, strict=True):
        np.subtract(p, lr * g, out=p, casting="unsafe")


def train_classifier(
    model: Sequential,
    X: np.ndarray,
    y: np.ndarray,
    lr: float = 0.1,
    steps: int = 4000,
    batch_size: int | None = 64,
    rng: Rng = None,
) -> np.ndarray:
    """Minibatch SGD on softmax_cross_entropy; losses (steps,) before each update."""
    gen = np.random.default_rng(rng)
    n = X.shape[0]
    losses = np.empty(steps)
    for step in range(steps):
        if batch_size is None or batch_size >= n:
            rows = np.arange(n)
        else:
            rows = gen.permutation(n)[:batch_size]
        logits = model.forward(X[rows])
        loss, dlogits = softmax_cross_entropy(logits, y[rows])
        losses[step] = loss
        model.backward(dlogits)
        sgd_step(model.params(), model.grads(), lr)
    return losses
