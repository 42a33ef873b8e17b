"""Phase 1, written independently of the reference from the stubs' docstrings alone.

It keeps every documented contract but takes other routes: einsum for every projection, the
gate blocks sliced by index instead of chunked, the reverse direction walked by a descending
index instead of flipping the input, and counting by explicit loops in the metrics.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

LSTMState = tuple[Tensor, Tensor]  # (h, c), each (B, H)

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def _project(v: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """v Wᵀ + b by einsum; v (B, K), weight (N, K), bias (N,) or None → (B, N)."""
    out = torch.einsum("bk,nk->bn", v, weight)
    return out if bias is None else out + bias


def _fill_uniform(module: nn.Module, hidden_size: int) -> None:
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            p.uniform_(-bound, bound)


def _block(t: Tensor, k: int, h: int) -> Tensor:
    return t[:, k * h : (k + 1) * h]


# ---- 1.1 The Elman RNN cell ----


def rnn_step(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    nonlinearity: str = "tanh",
) -> Tensor:
    """h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh); act is tanh or relu, else ValueError."""
    if nonlinearity not in _ACTIVATIONS:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    pre = _project(h, weight_hh, bias_hh) + _project(x, weight_ih, bias_ih)  # (B, H)
    return _ACTIVATIONS[nonlinearity](pre)


class RNNCell(nn.Module):
    """An Elman RNN cell with nn.RNNCell's parameters and equation."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.nonlinearity = nonlinearity
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(hidden_size)) if bias else None
        _fill_uniform(self, hidden_size)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        return rnn_step(
            x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity
        )


# ---- 1.2 The LSTM cell ----


def lstm_step(
    x: Tensor,
    state: LSTMState,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> LSTMState:
    """[i, f, g, o] = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh.

    c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);  h' = σ(o) ⊙ tanh(c')
    """
    h, c = state
    H = h.shape[1]
    pre = _project(x, weight_ih, bias_ih) + _project(h, weight_hh, bias_hh)  # (B, 4H)
    i = torch.sigmoid(_block(pre, 0, H))
    f = torch.sigmoid(_block(pre, 1, H))
    g = torch.tanh(_block(pre, 2, H))
    o = torch.sigmoid(_block(pre, 3, H))
    c_new = torch.addcmul(f * c, i, g)
    return o * torch.tanh(c_new), c_new


class LSTMCell(nn.Module):
    """An LSTM cell with nn.LSTMCell's parameters and equations."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        _fill_uniform(self, hidden_size)

    def forward(self, x: Tensor, state: LSTMState | None = None) -> LSTMState:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros.clone())
        return lstm_step(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


# ---- 1.3 The GRU cell ----


def gru_step(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> Tensor:
    """r, z = σ(x_· + h_·); n = tanh(x_n + r ⊙ h_n); h' = n + z ⊙ (h − n)."""
    H = h.shape[1]
    gx = _project(x, weight_ih, bias_ih)  # (B, 3H)
    gh = _project(h, weight_hh, bias_hh)  # (B, 3H)
    r = torch.sigmoid(_block(gx, 0, H) + _block(gh, 0, H))
    z = torch.sigmoid(_block(gx, 1, H) + _block(gh, 1, H))
    n = torch.tanh(_block(gx, 2, H) + r * _block(gh, 2, H))
    return n + z * (h - n)


class GRUCell(nn.Module):
    """A GRU cell with nn.GRUCell's parameters and equations."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        _fill_uniform(self, hidden_size)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        return gru_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


# ---- 1.4 The peephole LSTM ----


class PeepholeLSTMCell(nn.Module):
    """LSTM whose i, f gates see c and whose o gate sees c' through diagonal weights (H,)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.weight_ci = nn.Parameter(torch.empty(hidden_size))
        self.weight_cf = nn.Parameter(torch.empty(hidden_size))
        self.weight_co = nn.Parameter(torch.empty(hidden_size))
        _fill_uniform(self, hidden_size)

    def forward(self, x: Tensor, state: LSTMState | None = None) -> LSTMState:
        H = self.hidden_size
        if state is None:
            zeros = x.new_zeros(x.shape[0], H)
            state = (zeros, zeros.clone())
        h, c = state
        pre = _project(h, self.weight_hh, self.bias_hh) + _project(
            x, self.weight_ih, self.bias_ih
        )  # (B, 4H)
        i = torch.sigmoid(_block(pre, 0, H) + self.weight_ci * c)
        f = torch.sigmoid(_block(pre, 1, H) + self.weight_cf * c)
        g = torch.tanh(_block(pre, 2, H))
        c_new = f * c + i * g
        o = torch.sigmoid(_block(pre, 3, H) + self.weight_co * c_new)
        return o * torch.tanh(c_new), c_new


# ---- 1.5 Stacked and bidirectional RNNs ----

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


class MultiLayerRNN(nn.Module):
    """A stack of recurrent layers, optionally bidirectional, as nn.RNN / nn.LSTM / nn.GRU."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        cell_type: str = "lstm",
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        if cell_type not in GATES:
            raise ValueError(f"cell_type must be one of {sorted(GATES)}, got {cell_type!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.cell_type, self.bias, self.batch_first = cell_type, bias, batch_first
        self.dropout, self.bidirectional = dropout, bidirectional
        self.num_directions = 2 if bidirectional else 1
        rows = GATES[cell_type] * hidden_size
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes():
                w_ih, w_hh, b_ih, b_hh = self._names(layer, suffix)
                setattr(self, w_ih, nn.Parameter(torch.empty(rows, width)))
                setattr(self, w_hh, nn.Parameter(torch.empty(rows, hidden_size)))
                if bias:
                    setattr(self, b_ih, nn.Parameter(torch.empty(rows)))
                    setattr(self, b_hh, nn.Parameter(torch.empty(rows)))
                else:
                    setattr(self, b_ih, None)
                    setattr(self, b_hh, None)
        _fill_uniform(self, hidden_size)

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse")[: self.num_directions]

    def _names(self, layer: int, suffix: str) -> list[str]:
        return [
            f"{kind}_l{layer}{suffix}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ]

    def _step(self, x_t: Tensor, state, params):
        if self.cell_type == "lstm":
            return lstm_step(x_t, state, *params)
        if self.cell_type == "gru":
            return gru_step(x_t, state, *params)
        return rnn_step(x_t, state, *params)

    def _run_direction(self, x: Tensor, state, layer: int, suffix: str):
        """Run one layer and direction over x (B, T, I_l); the reverse one walks t downwards."""
        params = [getattr(self, name) for name in self._names(layer, suffix)]
        T = x.shape[1]
        order = range(T - 1, -1, -1) if suffix else range(T)
        outputs: list[Tensor | None] = [None] * T
        for t in order:
            state = self._step(x[:, t], state, params)
            outputs[t] = state[0] if self.cell_type == "lstm" else state
        return torch.stack(outputs, dim=1), state  # (B, T, H) in time order

    def forward(self, x: Tensor, h_0=None):
        if not self.batch_first:
            x = x.transpose(0, 1)
        B, H, D = x.shape[0], self.hidden_size, self.num_directions
        is_lstm = self.cell_type == "lstm"
        if h_0 is None:
            zeros = x.new_zeros(self.num_layers * D, B, H)
            h_0 = (zeros, zeros.clone()) if is_lstm else zeros
        finals_h, finals_c = [], []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0 and self.training and self.dropout > 0:
                layer_input = nn.functional.dropout(layer_input, self.dropout, training=True)
            outs = []
            for d, suffix in enumerate(self._suffixes()):
                k = layer * D + d
                state = (h_0[0][k], h_0[1][k]) if is_lstm else h_0[k]
                out, final = self._run_direction(layer_input, state, layer, suffix)
                outs.append(out)
                if is_lstm:
                    finals_h.append(final[0])
                    finals_c.append(final[1])
                else:
                    finals_h.append(final)
            layer_input = torch.cat(outs, dim=2)  # (B, T, D·H)
        output = layer_input if self.batch_first else layer_input.transpose(0, 1)
        h_n = torch.stack(finals_h)  # (L·D, B, H)
        return (output, (h_n, torch.stack(finals_c))) if is_lstm else (output, h_n)


# ---- 1.6 Backpropagation through time, by hand ----


class TanhRNNFunction(torch.autograd.Function):
    """A tanh-RNN layer whose backward pass is derived by hand (no autograd)."""

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        h0: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
    ) -> Tensor:
        # The input projection of every step at once, then only the recurrence is sequential.
        xproj = torch.einsum("bti,hi->bth", x, weight_ih) + (bias_ih + bias_hh)  # (B, T, H)
        hs = []
        h = h0
        for t in range(x.shape[1]):
            h = torch.tanh(xproj[:, t] + torch.einsum("bk,hk->bh", h, weight_hh))
            hs.append(h)
        out = torch.stack(hs, dim=1)  # (B, T, H)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, out)
        return out

    @staticmethod
    def backward(ctx, grad_hs: Tensor):
        x, h0, weight_ih, weight_hh, hs = ctx.saved_tensors
        T = x.shape[1]
        da = torch.empty_like(hs)  # (B, T, H): da_t for every step
        carry = torch.zeros_like(h0)
        for t in reversed(range(T)):
            da_t = (grad_hs[:, t] + carry) * (1 - hs[:, t] ** 2)
            da[:, t] = da_t
            carry = torch.einsum("bh,hk->bk", da_t, weight_hh)
        h_prev = torch.cat([h0.unsqueeze(1), hs[:, :-1]], dim=1)  # (B, T, H): h_{t−1}
        dx = torch.einsum("bth,hi->bti", da, weight_ih)
        dw_ih = torch.einsum("bth,bti->hi", da, x)
        dw_hh = torch.einsum("bth,btk->hk", da, h_prev)
        db = da.sum(dim=(0, 1))
        return dx, carry, dw_ih, dw_hh, db, db.clone()


# ---- 1.7 A sequence classifier ----


class SequenceClassifier(nn.Module):
    """Classify a sequence from the top layer's final hidden state(s) of a MultiLayerRNN."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_classes: int,
        cell_type: str = "gru",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.rnn = MultiLayerRNN(
            input_size,
            hidden_size,
            num_layers,
            cell_type,
            batch_first=True,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        self.head = nn.Linear(hidden_size * self.rnn.num_directions, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        _, h_n = self.rnn(x)
        if isinstance(h_n, tuple):
            h_n = h_n[0]
        D = self.rnn.num_directions
        top = [h_n[h_n.shape[0] - D + d] for d in range(D)]
        return self.head(torch.cat(top, dim=1))  # (B, C)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        was_training = self.training
        try:
            self.train(False)
            return self(x).argmax(dim=1)
        finally:
            self.train(was_training)


# ---- 1.8 Classification metrics ----


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Fraction of positions where pred == target."""
    hits = sum(int(p) == int(t) for p, t in zip(pred.tolist(), target.tolist(), strict=True))
    return hits / len(target)


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """M (C, C) int64, M[i, j] = #{n : target_n = i, pred_n = j}."""
    m = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for t, p in zip(target.tolist(), pred.tolist(), strict=True):
        m[t, p] += 1
    return m


def _safe_ratio(num: Tensor, den: Tensor) -> Tensor:
    return num / den.clamp(min=1)


def precision_recall_f1(
    pred: Tensor, target: Tensor, num_classes: int, average: str | None = "macro"
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class, macro or micro precision, recall and F1 (float64; 0/0 = 0)."""
    if average not in (None, "macro", "micro"):
        raise ValueError(f"average must be None, 'macro' or 'micro', got {average!r}")
    m = confusion_matrix(pred, target, num_classes).to(torch.float64)
    tp = m.diagonal()
    fp = m.sum(dim=0) - tp
    fn = m.sum(dim=1) - tp
    if average == "micro":
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    p = _safe_ratio(tp, tp + fp)
    r = _safe_ratio(tp, tp + fn)
    f1 = _safe_ratio(2 * tp, 2 * tp + fp + fn)
    if average == "macro":
        return p.mean(), r.mean(), f1.mean()
    return p, r, f1
