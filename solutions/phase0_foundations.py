"""Phase 0 — Foundations in NumPy.

Every piece of a small neural network by hand: a loss and its gradient, activations,
softmax, cross-entropy, a Linear layer, initialisation, regularisation, normalisation,
dropout, and finally an MLP trained with minibatch SGD. Read curriculum.md §0 alongside.

Conventions used throughout:
- Batches are rows: ``x`` has shape (N, D) unless stated otherwise.
- ``f_backward(x, dout)`` receives the forward *input* ``x`` and the upstream gradient
  ``dout = ∂L/∂f(x)`` and returns ``∂L/∂x``; nothing is cached between the two calls.
- Layers cache what they need in ``forward`` and return ``∂L/∂input`` from ``backward``.
  ``backward`` *overwrites* the parameter gradients (it does not accumulate), writing into
  the arrays that ``grads()`` returns, so an optimiser can hold on to them.
- Randomness is an ``rng`` argument: an int seed, a ``np.random.Generator`` or ``None``,
  always normalised with ``np.random.default_rng(rng)``.
- Only NumPy: no torch, scipy or sklearn.
"""

from __future__ import annotations

import math

import numpy as np

Rng = int | np.random.Generator | None

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # the constant inside tanh-approximated GELU
GELU_CUBIC = 0.044715


# ---- 0.1 Linear regression ----


def mse_loss(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float
) -> tuple[float, np.ndarray, float]:
    """Mean squared error of the linear model ŷ = Xw + b, with its gradients.

    X (N, D), y (N,), w (D,), b scalar.
    L = (1/N)·Σₙ (xₙ·w + b − yₙ)²
    ∂L/∂w = (2/N)·Xᵀr,  ∂L/∂b = (2/N)·Σₙ rₙ,  where r = Xw + b − y is the residual.
    Returns (L, ∂L/∂w of shape (D,), ∂L/∂b).
    """
    # BEGIN SOLUTION
    # HINT: every term carries the 1/N of the mean, and the square brings down a 2.
    # KEEP guided
    N = X.shape[0]
    # END KEEP
    r = X @ w + b - y  # (N,)
    return float(r @ r / N), 2.0 / N * (X.T @ r), float(2.0 * r.mean())
    # END SOLUTION


def fit_linear_regression(
    X: np.ndarray, y: np.ndarray, lr: float = 0.1, steps: int = 500
) -> tuple[np.ndarray, float, np.ndarray]:
    """Fit w, b by full-batch gradient descent from w = 0, b = 0.

    X (N, D), y (N,). Each step: (L, dw, db) = mse_loss(X, y, w, b); w ← w − lr·dw; b ← b − lr·db.
    Returns (w (D,), b, losses (steps,)) where losses[t] is the loss *before* update t.
    """
    # BEGIN SOLUTION
    # HINT: record the loss returned by mse_loss before you apply the update.
    w, b = np.zeros(X.shape[1], dtype=X.dtype), 0.0
    # KEEP guided
    losses = np.empty(steps)
    for t in range(steps):
    # END KEEP
        losses[t], dw, db = mse_loss(X, y, w, b)
        w, b = w - lr * dw, b - lr * db
    return w, b, losses
    # END SOLUTION


# ---- 0.2 Activations ----


def relu(x: np.ndarray) -> np.ndarray:
    """ReLU(x) = max(x, 0), elementwise. Any shape."""
    # BEGIN SOLUTION
    return np.maximum(x, 0)
    # END SOLUTION


def relu_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """∂L/∂x = dout·1[x > 0] (the derivative at 0 is taken to be 0, as torch does)."""
    # BEGIN SOLUTION
    return dout * (x > 0)
    # END SOLUTION


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """LeakyReLU(x) = x for x > 0, negative_slope·x otherwise. Any shape."""
    # BEGIN SOLUTION
    return np.where(x > 0, x, negative_slope * x)
    # END SOLUTION


def leaky_relu_backward(
    x: np.ndarray, dout: np.ndarray, negative_slope: float = 0.01
) -> np.ndarray:
    """∂L/∂x = dout for x > 0, negative_slope·dout for x ≤ 0 (as torch)."""
    # BEGIN SOLUTION
    # HINT: the small slope belongs to the negative side, x ≤ 0.
    return np.where(x > 0, dout, negative_slope * dout)
    # END SOLUTION


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1/(1 + e⁻ˣ), computed without overflow for any x.

    With e = e^(−|x|) ∈ (0, 1]:  σ(x) = 1/(1 + e) for x ≥ 0  and  e/(1 + e) for x < 0.
    """
    # BEGIN SOLUTION
    # HINT: np.exp(-x) overflows for x ≈ −1000; np.exp(-|x|) never does.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    # END SOLUTION


def sigmoid_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """∂L/∂x = dout·σ(x)·(1 − σ(x))."""
    # BEGIN SOLUTION
    s = sigmoid(x)
    return dout * s * (1 - s)
    # END SOLUTION


def tanh(x: np.ndarray) -> np.ndarray:
    """tanh(x) = (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ) (np.tanh is allowed: it is already stable)."""
    # BEGIN SOLUTION
    return np.tanh(x)
    # END SOLUTION


def tanh_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """∂L/∂x = dout·(1 − tanh²(x))."""
    # BEGIN SOLUTION
    return dout * (1 - np.tanh(x) ** 2)
    # END SOLUTION


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU (swish): x·σ(x)."""
    # BEGIN SOLUTION
    return x * sigmoid(x)
    # END SOLUTION


def silu_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """∂L/∂x = dout·(σ(x) + x·σ(x)(1 − σ(x))) = dout·σ(x)·(1 + x·(1 − σ(x)))."""
    # BEGIN SOLUTION
    # HINT: product rule on x·σ(x), then reuse σ' = σ(1 − σ).
    s = sigmoid(x)
    return dout * s * (1 + x * (1 - s))
    # END SOLUTION


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation: 0.5·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)."""
    # BEGIN SOLUTION
    u = SQRT_2_OVER_PI * (x + GELU_CUBIC * x**3)
    return 0.5 * x * (1 + np.tanh(u))
    # END SOLUTION


def gelu_tanh_backward(x: np.ndarray, dout: np.ndarray) -> np.ndarray:
    """∂L/∂x = dout·gelu_tanh'(x), the exact derivative of the tanh formula.

    With u = √(2/π)·(x + 0.044715·x³) and t = tanh(u):
    gelu_tanh'(x) = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²).
    """
    # BEGIN SOLUTION
    # HINT: product rule on 0.5·x·(1 + tanh(u)), chain rule through u(x).
    t = np.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x**3))
    du = SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * x**2)
    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * du)
    # END SOLUTION


# ---- 0.3 Softmax ----


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(z)ᵢ = exp(zᵢ − m)/Σⱼ exp(zⱼ − m), m = maxⱼ zⱼ, along `axis`. Same shape as x."""
    # BEGIN SOLUTION
    # HINT: subtracting the max changes nothing mathematically and makes every exp ≤ 1.
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
    # END SOLUTION


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(z)ᵢ = (zᵢ − m) − log Σⱼ exp(zⱼ − m), m = maxⱼ zⱼ, along `axis`."""
    # BEGIN SOLUTION
    # HINT: never np.log(softmax(x)): a probability that underflows to 0 becomes −inf.
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    # END SOLUTION


# ---- 0.4 Losses ----


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels, with its gradient.

    logits (N, C), labels (N,) ints in [0, C).
    L = −(1/N)·Σₙ log softmax(zₙ)[yₙ]
    ∂L/∂z = (softmax(z) − onehot(y))/N, shape (N, C).
    """
    # BEGIN SOLUTION
    # HINT: pick one entry per row with fancy indexing: logp[np.arange(N), labels].
    # KEEP guided
    N = logits.shape[0]
    # END KEEP
    rows = np.arange(N)
    loss = -log_softmax(logits)[rows, labels].mean()
    dlogits = softmax(logits)  # (N, C)
    dlogits[rows, labels] -= 1
    return float(loss), dlogits / N
    # END SOLUTION


def bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of σ(z) against targets t ∈ [0, 1], from the logits z.

    Any shape. L = mean( max(z, 0) − z·t + log(1 + e^(−|z|)) )  (stable form of
    −t·log σ(z) − (1 − t)·log(1 − σ(z))).  ∂L/∂z = (σ(z) − t)/n, n = number of elements.
    """
    # BEGIN SOLUTION
    # HINT: np.log1p(np.exp(-np.abs(z))) never overflows; log(sigmoid(z)) does underflow.
    loss = np.mean(np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits))))
    return float(loss), (sigmoid(logits) - targets) / logits.size
    # END SOLUTION


# ---- 0.5 Linear layer ----


class Linear:
    """Fully connected layer y = x Wᵀ + b, laid out like torch.nn.Linear.

    weight (out, in) and bias (out,) are drawn from U(−1/√in, 1/√in).
    """

    def __init__(self, in_features: int, out_features: int, rng: Rng = None) -> None:
        """weight (out, in) and bias (out,) ~ U(−1/√in, 1/√in); grad_weight, grad_bias zeros."""
        # BEGIN SOLUTION
        # HINT: torch's default: both weight and bias from U(−1/√in, 1/√in).
        rng = np.random.default_rng(rng)
        bound = 1 / math.sqrt(in_features)
        self.weight = rng.uniform(-bound, bound, (out_features, in_features))
        self.bias = rng.uniform(-bound, bound, out_features)
        # END SOLUTION
        # BEGIN SOLUTION hard
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)
        self.x: np.ndarray | None = None
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, in) → x Wᵀ + b (N, out); caches x for backward."""
        # BEGIN SOLUTION
        # KEEP guided
        self.x = x
        # END KEEP
        return x @ self.weight.T + self.bias
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (N, out) → dx = dout W (N, in); sets ∂L/∂W = doutᵀx (out, in), ∂L/∂b = Σₙ doutₙ.

        The gradients are written into grad_weight / grad_bias in place (overwritten, not
        accumulated), so the arrays returned by grads() always hold the latest values.
        """
        # BEGIN SOLUTION
        # HINT: check shapes: (out, N) @ (N, in) is (out, in), the shape of W.
        # HINT: assign with `self.grad_weight[...] = ...` so grads() sees the update.
        self.grad_weight[...] = dout.T @ self.x
        self.grad_bias[...] = dout.sum(axis=0)
        return dout @ self.weight
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


# ---- 0.6 Initialisation ----


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *receptive_field), as torch.nn.init.

    fan_in = shape[1]·∏shape[2:],  fan_out = shape[0]·∏shape[2:]. ValueError below 2 dims.
    """
    # BEGIN SOLUTION
    # HINT: a Linear weight is (out, in): fan_in is shape[1], not shape[0].
    # KEEP guided
    if len(shape) < 2:
    # END KEEP
        raise ValueError(f"fans need a weight with at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive
    # END SOLUTION


def xavier_uniform(shape: tuple[int, ...], gain: float = 1.0, rng: Rng = None) -> np.ndarray:
    """Glorot uniform: U(−a, a), a = gain·√(6/(fan_in + fan_out)).

    U(−a, a) has variance a²/3 = gain²·2/(fan_in + fan_out), the same as xavier_normal.
    """
    # BEGIN SOLUTION
    fan_in, fan_out = compute_fans(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return np.random.default_rng(rng).uniform(-a, a, shape)
    # END SOLUTION


def xavier_normal(shape: tuple[int, ...], gain: float = 1.0, rng: Rng = None) -> np.ndarray:
    """Glorot normal: N(0, std²), std = gain·√(2/(fan_in + fan_out))."""
    # BEGIN SOLUTION
    fan_in, fan_out = compute_fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return np.random.default_rng(rng).normal(0.0, std, shape)
    # END SOLUTION


def he_uniform(shape: tuple[int, ...], mode: str = "fan_in", rng: Rng = None) -> np.ndarray:
    """Kaiming uniform for ReLU: U(−b, b), b = √2·√(3/fan); fan = fan_in or fan_out per `mode`.

    Any other mode raises ValueError.
    """
    # BEGIN SOLUTION
    # HINT: ReLU zeroes half the signal, hence the gain √2; U(−b, b) has variance b²/3.
    fan_in, fan_out = compute_fans(shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out}.get(mode)
    # KEEP guided
    if fan is None:
    # END KEEP
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / fan)
    return np.random.default_rng(rng).uniform(-bound, bound, shape)
    # END SOLUTION


def he_normal(shape: tuple[int, ...], mode: str = "fan_in", rng: Rng = None) -> np.ndarray:
    """Kaiming normal for ReLU: N(0, std²), std = √2/√fan; fan = fan_in or fan_out per `mode`.

    Any other mode raises ValueError.
    """
    # BEGIN SOLUTION
    fan_in, fan_out = compute_fans(shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out}.get(mode)
    # KEEP guided
    if fan is None:
    # END KEEP
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return np.random.default_rng(rng).normal(0.0, math.sqrt(2.0 / fan), shape)
    # END SOLUTION


# ---- 0.7 Regularisation ----


def l1_penalty(params: list[np.ndarray], lam: float) -> tuple[float, list[np.ndarray]]:
    """L1 penalty λ·Σ|w| over every array, and its (sub)gradients λ·sign(w), 0 at w = 0."""
    # BEGIN SOLUTION
    penalty = lam * sum(np.abs(p).sum() for p in params)
    return float(penalty), [lam * np.sign(p) for p in params]
    # END SOLUTION


def l2_penalty(params: list[np.ndarray], lam: float) -> tuple[float, list[np.ndarray]]:
    """L2 penalty (λ/2)·Σw² over every array, and its gradients λ·w.

    The ½ makes the gradient exactly λ·w, i.e. torch.optim.SGD(weight_decay=λ).
    """
    # BEGIN SOLUTION
    # HINT: with the ½ convention the gradient has no factor 2.
    penalty = 0.5 * lam * sum((p**2).sum() for p in params)
    return float(penalty), [lam * p for p in params]
    # END SOLUTION


# ---- 0.8 BatchNorm1d ----


class BatchNorm1d:
    """Batch normalisation over the batch axis of (N, D) inputs, as torch.nn.BatchNorm1d.

    Training: x̂ = (x − μ_B)/√(σ²_B + ε) with the batch mean and *biased* variance;
    y = γ·x̂ + β; running stats ← (1 − m)·running + m·batch stat, where the running variance
    uses the *unbiased* batch variance σ²_B·N/(N − 1). Eval: the running stats replace μ_B, σ²_B.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        """weight = 1, bias = 0, running_mean = 0, running_var = 1, grads 0, all (D,); training."""
        # BEGIN SOLUTION hard
        self.eps, self.momentum = eps, momentum
        self.weight = np.ones(num_features)
        self.bias = np.zeros(num_features)
        self.grad_weight = np.zeros(num_features)
        self.grad_bias = np.zeros(num_features)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)
        self.training = True
        self.cache: tuple[np.ndarray, np.ndarray] | None = None
        # END SOLUTION

    def train(self) -> BatchNorm1d:
        """Use batch statistics (and update the running ones) in forward."""
        # BEGIN SOLUTION hard
        self.training = True
        return self
        # END SOLUTION

    def eval(self) -> BatchNorm1d:
        """Use the running statistics in forward."""
        # BEGIN SOLUTION hard
        self.training = False
        return self
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, D) → γ·x̂ + β (N, D); in training also updates the running statistics.

        Training needs N ≥ 2: the unbiased variance divides by N − 1, so a batch of one sample
        raises ValueError, as torch does.
        """
        # BEGIN SOLUTION
        # HINT: normalise with the biased variance (x.var(axis=0)), but feed the running
        # HINT: variance the unbiased one, ×N/(N − 1), as torch does.
        # KEEP guided
        if not self.training:
        # END KEEP
            x_hat = (x - self.running_mean) / np.sqrt(self.running_var + self.eps)
            return self.weight * x_hat + self.bias
        # KEEP guided
        N = x.shape[0]
        if N < 2:
        # END KEEP
            raise ValueError("BatchNorm1d needs more than one sample per batch in training")
        mu, var = x.mean(axis=0), x.var(axis=0)  # (D,), (D,)
        inv_std = 1 / np.sqrt(var + self.eps)  # (D,)
        x_hat = (x - mu) * inv_std  # (N, D)
        m = self.momentum
        self.running_mean = (1 - m) * self.running_mean + m * mu
        self.running_var = (1 - m) * self.running_var + m * var * N / (N - 1)
        # KEEP guided
        self.cache = (x_hat, inv_std)
        # END KEEP
        return self.weight * x_hat + self.bias
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (N, D) → dx (N, D) through a training-mode forward; sets grad_weight, grad_bias.

        With dx̂ = dout·γ and sums over the batch axis n:
        dx = (1/(N·√(σ² + ε)))·(N·dx̂ − Σₙ dx̂ − x̂·Σₙ(dx̂·x̂)).
        ∂L/∂γ = Σₙ dout·x̂ and ∂L/∂β = Σₙ dout, written in place.
        """
        # BEGIN SOLUTION
        # HINT: μ and σ² depend on every sample, so dx has two extra terms beyond dx̂/√(σ² + ε).
        x_hat, inv_std = self.cache
        # KEEP guided
        N = dout.shape[0]
        # END KEEP
        self.grad_weight[...] = (dout * x_hat).sum(axis=0)
        self.grad_bias[...] = dout.sum(axis=0)
        dx_hat = dout * self.weight  # (N, D)
        sum_dx_hat = dx_hat.sum(axis=0)  # (D,)
        sum_dx_hat_x_hat = (dx_hat * x_hat).sum(axis=0)  # (D,)
        return inv_std / N * (N * dx_hat - sum_dx_hat - x_hat * sum_dx_hat_x_hat)
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


# ---- 0.9 LayerNorm ----


class LayerNorm:
    """Layer normalisation over the last axis of (..., D) inputs, as torch.nn.LayerNorm(D).

    y = γ·(x − μ)/√(σ² + ε) + β, μ and biased σ² taken over the last axis of each row.
    Same statistics in training and eval, so there is no train/eval switch.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-5) -> None:
        """weight = 1, bias = 0, grad_weight = grad_bias = 0, all of shape (D,)."""
        # BEGIN SOLUTION hard
        self.eps = eps
        self.weight = np.ones(normalized_shape)
        self.bias = np.zeros(normalized_shape)
        self.grad_weight = np.zeros(normalized_shape)
        self.grad_bias = np.zeros(normalized_shape)
        self.cache: tuple[np.ndarray, np.ndarray] | None = None
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (..., D) → γ·x̂ + β (..., D)."""
        # BEGIN SOLUTION
        # HINT: keepdims=True keeps μ and σ² broadcastable against x.
        mu = x.mean(axis=-1, keepdims=True)  # (..., 1)
        inv_std = 1 / np.sqrt(x.var(axis=-1, keepdims=True) + self.eps)  # (..., 1)
        x_hat = (x - mu) * inv_std  # (..., D)
        # KEEP guided
        self.cache = (x_hat, inv_std)
        # END KEEP
        return self.weight * x_hat + self.bias
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (..., D) → dx (..., D); sets grad_weight, grad_bias.

        BatchNorm's formula with the sums along the last axis d, and dx̂ = dout·γ:
        dx = (1/(D·√(σ² + ε)))·(D·dx̂ − Σ_d dx̂ − x̂·Σ_d(dx̂·x̂)).
        ∂L/∂γ = Σ dout·x̂ and ∂L/∂β = Σ dout over every leading axis, written in place.
        """
        # BEGIN SOLUTION
        # HINT: the sums in dx run over the last axis; the sums for γ and β over all the others.
        x_hat, inv_std = self.cache
        # KEEP guided
        D = dout.shape[-1]
        # END KEEP
        self.grad_weight[...] = (dout * x_hat).reshape(-1, D).sum(axis=0)
        self.grad_bias[...] = dout.reshape(-1, D).sum(axis=0)
        dx_hat = dout * self.weight  # (..., D)
        sum_dx_hat = dx_hat.sum(axis=-1, keepdims=True)  # (..., 1)
        sum_dx_hat_x_hat = (dx_hat * x_hat).sum(axis=-1, keepdims=True)  # (..., 1)
        return inv_std / D * (D * dx_hat - sum_dx_hat - x_hat * sum_dx_hat_x_hat)
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


# ---- 0.10 Dropout ----


class Dropout:
    """Inverted dropout: in training, zero each element with probability p and scale the
    survivors by 1/(1 − p), so E[output] = input; in eval, the identity.

    The keep mask is `rng.random(x.shape) >= p`, drawn from the layer's own generator.
    """

    def __init__(self, p: float = 0.5, rng: Rng = None) -> None:
        """Drop probability p ∈ [0, 1] (ValueError otherwise); the layer's own Generator, made
        once from rng; training."""
        # BEGIN SOLUTION hard
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        self.rng = np.random.default_rng(rng)
        self.training = True
        self.mask: np.ndarray | None = None
        # END SOLUTION

    def train(self) -> Dropout:
        """Drop units in forward."""
        # BEGIN SOLUTION hard
        self.training = True
        return self
        # END SOLUTION

    def eval(self) -> Dropout:
        """Pass inputs through unchanged."""
        # BEGIN SOLUTION hard
        self.training = False
        return self
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (any shape) → x·mask/(1 − p) in training (zeros when p = 1), x in eval."""
        # BEGIN SOLUTION
        # HINT: scale in training, not in eval; p = 1 must give zeros, not 0/0.
        # KEEP guided
        if not self.training:
            self.mask = None
        # END KEEP
            return x
        keep = self.rng.random(x.shape) >= self.p
        self.mask = keep.astype(x.dtype) * (1 / (1 - self.p) if self.p < 1 else 0.0)
        return x * self.mask
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout → dout·mask/(1 − p), the same mask and scale as the last forward."""
        # BEGIN SOLUTION
        return dout if self.mask is None else dout * self.mask
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


# ---- 0.11 MLP ----


class ReLU:
    """ReLU as a layer: caches its input in forward for relu_backward."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (any shape) → max(x, 0)."""
        # BEGIN SOLUTION
        # KEEP guided
        self.x = x
        # END KEEP
        return relu(x)
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout → dout·1[x > 0]."""
        # BEGIN SOLUTION
        return relu_backward(self.x, dout)
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


class Sequential:
    """A chain of layers: forward in order, backward in reverse (the chain rule)."""

    def __init__(self, *layers) -> None:
        """Keep the layers, in order, in the list `self.layers`."""
        # BEGIN SOLUTION hard
        self.layers = list(layers)
        # END SOLUTION

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x → layers[-1](… layers[0](x))."""
        # BEGIN SOLUTION
        # KEEP guided
        for layer in self.layers:
        # END KEEP
            x = layer.forward(x)
        return x
        # END SOLUTION

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout = ∂L/∂output → ∂L/∂input, filling every layer's grads on the way."""
        # BEGIN SOLUTION
        # HINT: walk the layers in reverse; each backward's output is the next one's dout.
        # KEEP guided
        for layer in reversed(self.layers):
        # END KEEP
            dout = layer.backward(dout)
        return dout
        # END SOLUTION

    def params(self) -> list[np.ndarray]:
        """Every layer's params(), concatenated in layer order."""
        # BEGIN SOLUTION
        return [p for layer in self.layers for p in layer.params()]
        # END SOLUTION

    def grads(self) -> list[np.ndarray]:
        """Every layer's grads(), concatenated in the same order as params()."""
        # BEGIN SOLUTION
        return [g for layer in self.layers for g in layer.grads()]
        # END SOLUTION

    def train(self) -> Sequential:
        """Put every layer that has a training mode into training mode."""
        # BEGIN SOLUTION hard
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train()
        return self
        # END SOLUTION

    def eval(self) -> Sequential:
        """Put every layer that has a training mode into eval mode."""
        # BEGIN SOLUTION hard
        for layer in self.layers:
            if hasattr(layer, "eval"):
                layer.eval()
        return self
        # END SOLUTION


def make_mlp(sizes: tuple[int, ...] = (2, 4, 4, 2), rng: Rng = None) -> Sequential:
    """An MLP: Linear, ReLU, Linear, …, ReLU, Linear through `sizes`, logits out.

    Linear(sizes[0], sizes[1]), ReLU, …, Linear(sizes[-2], sizes[-1]): no ReLU after the last
    layer. Every Linear draws its weights from one generator, in layer order.
    """
    # BEGIN SOLUTION
    # HINT: normalise rng once and pass the same Generator to every Linear.
    rng = np.random.default_rng(rng)
    # KEEP guided
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
    # END KEEP
        layers += [Linear(fan_in, fan_out, rng), ReLU()]
    return Sequential(*layers[:-1])  # drop the last ReLU: the output layer gives logits
    # END SOLUTION


def sgd_step(params: list[np.ndarray], grads: list[np.ndarray], lr: float) -> None:
    """In place, for every pair: p ← p − lr·g. ValueError when the lists differ in length."""
    # BEGIN SOLUTION
    # HINT: `p = p - lr * g` rebinds a local name and leaves the layer's array unchanged.
    for p, g in zip(params, grads, strict=True):
        p -= lr * g
    # END SOLUTION


def train_classifier(
    model: Sequential,
    X: np.ndarray,
    y: np.ndarray,
    lr: float = 0.1,
    steps: int = 4000,
    batch_size: int | None = 64,
    rng: Rng = None,
) -> np.ndarray:
    """Train `model` (logits out) by SGD on softmax_cross_entropy; return the losses (steps,).

    X (N, D), y (N,) ints. Each step: a batch of `batch_size` distinct rows drawn at random
    (the full batch when None), forward, loss, backward, sgd_step(model.params(), model.grads()).
    losses[t] is the loss of step t's batch before its update. The defaults take the
    2-4-4-2 MLP to ≈ 96% on circle data in about a second.
    """
    # BEGIN SOLUTION
    # HINT: forward → softmax_cross_entropy → backward(dlogits) → sgd_step, `steps` times.
    rng = np.random.default_rng(rng)
    # KEEP guided
    losses = np.empty(steps)
    for t in range(steps):
    # END KEEP
        idx = slice(None) if batch_size is None else rng.choice(len(X), batch_size, replace=False)
        losses[t], dlogits = softmax_cross_entropy(model.forward(X[idx]), y[idx])
        model.backward(dlogits)
        sgd_step(model.params(), model.grads(), lr)
    return losses
    # END SOLUTION
