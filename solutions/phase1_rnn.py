"""Phase 1 — Recurrent networks in PyTorch.

The three classic cells (Elman RNN, LSTM, GRU) exactly as PyTorch computes them, a cell of
your own design (the peephole LSTM), a stacked and bidirectional RNN, backpropagation
through time written by hand, a sequence classifier and the metrics that judge it.
Read curriculum.md §1 alongside.

Conventions used throughout:
- Batch first: a sequence batch is (B, T, D); one cell step takes x (B, I) and h (B, H).
- Parameters have PyTorch's names, shapes and gate order, so weights copied from
  nn.RNNCell / nn.LSTMCell / nn.GRUCell / nn.RNN / nn.LSTM / nn.GRU give identical results:
  the gate blocks are stacked row-wise in weight_ih (G·H, I) and weight_hh (G·H, H), in the
  order (i, f, g, o) for the LSTM and (r, z, n) for the GRU.
- Every parameter starts from U(−1/√H, 1/√H), PyTorch's default for recurrent layers.
- Nothing casts: float32 in, float32 out; float64 in, float64 out (call .double() on a module).
- Forbidden: torch.nn.RNN/LSTM/GRU, their cells, and torch's fused recurrences (torch.lstm,
  torch.gru_cell, torch._VF, …). Everything else in torch is yours, including autograd —
  except in §1.6, whose backward pass you write by hand.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LSTMState = tuple[Tensor, Tensor]  # (h, c), each (B, H)


# ---- 1.1 The Elman RNN cell ----


def rnn_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None,
             nonlinearity: str = "tanh") -> Tensor:
    """One step of an Elman RNN: h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh).

    x (B, I), h (B, H), weight_ih (H, I), weight_hh (H, H), biases (H,) or None.
    act is tanh or relu (`nonlinearity`; anything else raises ValueError). Returns h' (B, H).
    """
    # BEGIN SOLUTION
    # HINT: F.linear(x, W, b) computes x Wᵀ + b and accepts b = None.
    pre = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)  # (B, H)
    # KEEP guided
    if nonlinearity == "tanh":
    # END KEEP
        return torch.tanh(pre)
    # KEEP guided
    if nonlinearity == "relu":
    # END KEEP
        return torch.relu(pre)
    raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    # END SOLUTION


class RNNCell(nn.Module):
    """An Elman RNN cell with nn.RNNCell's parameters and equation.

    weight_ih (H, I), weight_hh (H, H), bias_ih (H,), bias_hh (H,) (None when bias=False),
    every one drawn from U(−1/√H, 1/√H).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh") -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.nonlinearity = nonlinearity
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(hidden_size)) if bias else None
        # END SOLUTION
        # BEGIN SOLUTION
        # HINT: the bound depends on the hidden size only, even for weight_ih.
        bound = 1 / math.sqrt(hidden_size)
        # KEEP guided
        for parameter in self.parameters():
        # END KEEP
            nn.init.uniform_(parameter, -bound, bound)
        # END SOLUTION

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """x (B, I), h (B, H) or None for zeros → h' (B, H)."""
        # BEGIN SOLUTION
        # KEEP guided
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        # END KEEP
        return rnn_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                        self.nonlinearity)
        # END SOLUTION


# ---- 1.2 The LSTM cell ----


def lstm_step(x: Tensor, state: LSTMState, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> LSTMState:
    """One LSTM step, as nn.LSTMCell. With the four gate blocks in the order (i, f, g, o):

        [i, f, g, o] = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh        (each block (B, H))
        i, f, o = σ(i), σ(f), σ(o);  g = tanh(g)
        c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c')

    x (B, I), state = (h, c) each (B, H), weight_ih (4H, I), weight_hh (4H, H), biases (4H,).
    Returns (h', c').
    """
    # BEGIN SOLUTION
    # HINT: compute all four gates with one matmul each, then tensor.chunk(4, dim=1).
    # KEEP guided
    h, c = state
    # END KEEP
    gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)  # (B, H) each
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g  # (B, H)
    return o * torch.tanh(c), c
    # END SOLUTION


class LSTMCell(nn.Module):
    """An LSTM cell with nn.LSTMCell's parameters and equations.

    weight_ih (4H, I), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,) (None when bias=False),
    every one drawn from U(−1/√H, 1/√H); rows [kH, (k+1)H) belong to gate k of (i, f, g, o).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        # END SOLUTION
        # BEGIN SOLUTION
        bound = 1 / math.sqrt(hidden_size)
        # KEEP guided
        for parameter in self.parameters():
        # END KEEP
            nn.init.uniform_(parameter, -bound, bound)
        # END SOLUTION

    def forward(self, x: Tensor, state: LSTMState | None = None) -> LSTMState:
        """x (B, I), state (h, c) each (B, H), or None for zeros → (h', c')."""
        # BEGIN SOLUTION
        # KEEP guided
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        # END KEEP
        return lstm_step(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        # END SOLUTION


# ---- 1.3 The GRU cell ----


def gru_step(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    """One GRU step, as nn.GRUCell. With the three gate blocks in the order (r, z, n):

        [x_r, x_z, x_n] = x W_ihᵀ + b_ih;   [h_r, h_z, h_n] = h W_hhᵀ + b_hh
        r = σ(x_r + h_r);  z = σ(x_z + h_z)
        n = tanh(x_n + r ⊙ h_n)            (r scales W_hn·h + b_hn, after the matmul)
        h' = (1 − z) ⊙ n + z ⊙ h           (z = 1 keeps the old state)

    x (B, I), h (B, H), weight_ih (3H, I), weight_hh (3H, H), biases (3H,). Returns h' (B, H).
    """
    # BEGIN SOLUTION
    # HINT: keep the input and hidden projections apart: r multiplies only the hidden part of n.
    # HINT: PyTorch's z weights the *old* state, the reverse of the textbook h' = (1 − z)h + z·h̃.
    x_r, x_z, x_n = F.linear(x, weight_ih, bias_ih).chunk(3, dim=1)  # (B, H) each
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=1)  # (B, H) each
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h
    # END SOLUTION


class GRUCell(nn.Module):
    """A GRU cell with nn.GRUCell's parameters and equations.

    weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,) (None when bias=False),
    every one drawn from U(−1/√H, 1/√H); rows [kH, (k+1)H) belong to gate k of (r, z, n).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        # END SOLUTION
        # BEGIN SOLUTION
        bound = 1 / math.sqrt(hidden_size)
        # KEEP guided
        for parameter in self.parameters():
        # END KEEP
            nn.init.uniform_(parameter, -bound, bound)
        # END SOLUTION

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """x (B, I), h (B, H) or None for zeros → h' (B, H)."""
        # BEGIN SOLUTION
        # KEEP guided
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        # END KEEP
        return gru_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        # END SOLUTION


# ---- 1.4 A cell of your own: the peephole LSTM ----


class PeepholeLSTMCell(nn.Module):
    """An LSTM whose gates also look at the cell state (Gers, Schraudolph & Schmidhuber 2002).

    Parameters: those of LSTMCell (same names, shapes and gate order) plus three diagonal
    peephole weights weight_ci, weight_cf, weight_co (H,), all drawn from U(−1/√H, 1/√H).
    With [i, f, g, o] the four blocks of x W_ihᵀ + b_ih + h W_hhᵀ + b_hh as in LSTMCell:

        i = σ(i + w_ci ⊙ c);  f = σ(f + w_cf ⊙ c);  g = tanh(g)
        c' = f ⊙ c + i ⊙ g
        o = σ(o + w_co ⊙ c')               (the output gate peeks at the *new* cell state)
        h' = o ⊙ tanh(c')

    With the three peephole weights at zero it is exactly LSTMCell.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        # END SOLUTION
        # BEGIN SOLUTION
        # HINT: nn.Parameter, not a plain tensor: an optimizer only sees registered parameters.
        self.weight_ci = nn.Parameter(torch.empty(hidden_size))
        self.weight_cf = nn.Parameter(torch.empty(hidden_size))
        self.weight_co = nn.Parameter(torch.empty(hidden_size))
        bound = 1 / math.sqrt(hidden_size)
        # KEEP guided
        for parameter in self.parameters():
        # END KEEP
            nn.init.uniform_(parameter, -bound, bound)
        # END SOLUTION

    def forward(self, x: Tensor, state: LSTMState | None = None) -> LSTMState:
        """x (B, I), state (h, c) each (B, H), or None for zeros → (h', c')."""
        # BEGIN SOLUTION
        # KEEP guided
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        # END KEEP
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh,
                                                                     self.bias_hh)  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=1)  # (B, H) each
        i = torch.sigmoid(i + self.weight_ci * c)
        f = torch.sigmoid(f + self.weight_cf * c)
        c = f * c + i * torch.tanh(g)  # (B, H)
        o = torch.sigmoid(o + self.weight_co * c)
        return o * torch.tanh(c), c
        # END SOLUTION


# ---- 1.5 Stacked and bidirectional RNNs ----

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # gate blocks per cell type


class MultiLayerRNN(nn.Module):
    """A stack of recurrent layers, optionally bidirectional, as nn.RNN / nn.LSTM / nn.GRU.

    cell_type: "rnn" (tanh), "lstm" or "gru" (anything else raises ValueError). Layer l of
    direction d has the parameters weight_ih_l{l}{s} (G·H, I_l), weight_hh_l{l}{s} (G·H, H),
    bias_ih_l{l}{s}, bias_hh_l{l}{s} (G·H,), with s = "" forward and "_reverse" backward, G the
    cell's gate count, I_0 = input_size and I_l = H·num_directions above: exactly nn.LSTM's
    state_dict keys.
    Layer l > 0 reads the concatenated [forward, backward] outputs of layer l − 1, after
    dropout (training mode only; never after the last layer).

    forward(x, h_0=None) → (output, h_n):
      x (B, T, I) (batch_first=True, the default here; (T, B, I) otherwise);
      output (B, T, D·H): the last layer's hidden states, [forward, backward] on the last axis;
      h_n (L·D, B, H): the final state of every layer and direction, index l·D + d (for the
      backward direction "final" means after reading x_0); h_0 likewise, zeros when None.
      For the LSTM, h_0 and h_n are (h, c) tuples.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 cell_type: str = "lstm", bias: bool = True, batch_first: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        if cell_type not in GATES:
            raise ValueError(f"cell_type must be one of {sorted(GATES)}, got {cell_type!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.cell_type, self.bias, self.batch_first = cell_type, bias, batch_first
        self.dropout, self.bidirectional = dropout, bidirectional
        self.num_directions = 2 if bidirectional else 1
        # END SOLUTION
        # BEGIN SOLUTION
        # HINT: setattr(self, name, nn.Parameter(...)) registers a parameter under any name.
        rows = GATES[cell_type] * hidden_size
        # KEEP guided
        for layer in range(num_layers):
        # END KEEP
            width = input_size if layer == 0 else hidden_size * self.num_directions
            # KEEP guided
            for suffix in self._suffixes():
            # END KEEP
                names = self._names(layer, suffix)
                setattr(self, names[0], nn.Parameter(torch.empty(rows, width)))
                setattr(self, names[1], nn.Parameter(torch.empty(rows, hidden_size)))
                # KEEP guided
                if bias:
                # END KEEP
                    setattr(self, names[2], nn.Parameter(torch.empty(rows)))
                    setattr(self, names[3], nn.Parameter(torch.empty(rows)))
        bound = 1 / math.sqrt(hidden_size)
        # KEEP guided
        for parameter in self.parameters():
        # END KEEP
            nn.init.uniform_(parameter, -bound, bound)
        # END SOLUTION

    def _suffixes(self) -> tuple[str, ...]:
        """("",) or ("", "_reverse"): the parameter-name suffix of each direction."""
        # BEGIN SOLUTION hard
        return ("", "_reverse")[: self.num_directions]
        # END SOLUTION

    def _names(self, layer: int, suffix: str) -> list[str]:
        """The parameter names of one layer and direction, e.g. weight_ih_l1_reverse."""
        # BEGIN SOLUTION hard
        return [f"{kind}_l{layer}{suffix}" for kind in
                ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        # END SOLUTION

    def _run_direction(self, x: Tensor, state, layer: int, suffix: str):
        """Run one layer and direction over x (B, T, I_l), first step first.

        Returns (outputs (B, T, H) in the order the steps were taken, final state).
        """
        # BEGIN SOLUTION
        names = self._names(layer, suffix)
        weights = [getattr(self, name) for name in (names if self.bias else names[:2])]
        step = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}[self.cell_type]
        # KEEP guided
        outputs = []
        for t in range(x.shape[1]):
        # END KEEP
            state = step(x[:, t], state, *weights)
            # KEEP guided
            outputs.append(state[0] if self.cell_type == "lstm" else state)
            # END KEEP
        return torch.stack(outputs, dim=1), state
        # END SOLUTION

    def forward(self, x: Tensor, h_0=None):
        """x (B, T, I) → (output (B, T, D·H), h_n (L·D, B, H)); (h_n, c_n) for the LSTM."""
        # BEGIN SOLUTION
        # HINT: the backward direction reads x.flip(1); flip its outputs back before concatenating.
        # HINT: h_n is layer-major: [layer 0 forward, layer 0 backward, layer 1 forward, …].
        # KEEP guided
        if not self.batch_first:
        # END KEEP
            x = x.transpose(0, 1)  # (B, T, I)
        lstm = self.cell_type == "lstm"
        # KEEP guided
        if h_0 is None:
            zeros = x.new_zeros(self.num_layers * self.num_directions, x.shape[0],
                                self.hidden_size)
        # END KEEP
            h_0 = (zeros, zeros) if lstm else zeros
        # KEEP guided
        finals = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(self._suffixes()):
        # END KEEP
                k = layer * self.num_directions + d
                state = (h_0[0][k], h_0[1][k]) if lstm else h_0[k]
                sequence = layer_input if d == 0 else layer_input.flip(1)
                out, state = self._run_direction(sequence, state, layer, suffix)
                # KEEP guided
                outputs.append(out if d == 0 else out.flip(1))
                finals.append(state)
                # END KEEP
            layer_input = torch.cat(outputs, dim=2)  # (B, T, D·H)
            # KEEP guided
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
            # END KEEP
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output = layer_input if self.batch_first else layer_input.transpose(0, 1)
        # KEEP guided
        if lstm:
        # END KEEP
            h_n, c_n = zip(*finals, strict=True)
            return output, (torch.stack(h_n), torch.stack(c_n))  # (L·D, B, H) each
        return output, torch.stack(finals)  # (L·D, B, H)
        # END SOLUTION


# ---- 1.6 Backpropagation through time, by hand ----


class TanhRNNFunction(torch.autograd.Function):
    """A whole tanh-RNN layer as one autograd Function whose backward you derive yourself.

    hs = TanhRNNFunction.apply(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    x (B, T, I), h0 (B, H), weight_ih (H, I), weight_hh (H, H), biases (H,) → hs (B, T, H),
    with h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh) and h_{−1} = h0.

    backward receives G = ∂L/∂hs (B, T, H) and returns ∂L/∂ each input, using no autograd.
    Going from t = T − 1 down to 0 with a carry that starts at zero:
        dh_t = G_t + carry                   (h_t reaches the loss directly and through h_{t+1})
        da_t = dh_t ⊙ (1 − h_t²)             (through tanh: tanh′ = 1 − tanh²)
        ∂L/∂x_t = da_t W_ih;  ∂L/∂W_ih += da_tᵀ x_t;  ∂L/∂W_hh += da_tᵀ h_{t−1}
        ∂L/∂b_ih = ∂L/∂b_hh += Σ_batch da_t;  carry = da_t W_hh   (= ∂L/∂h_{t−1} via step t)
    and ∂L/∂h0 is the carry left after step 0.
    """

    @staticmethod
    def forward(ctx, x: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                bias_ih: Tensor, bias_hh: Tensor) -> Tensor:
        """Run the recurrence and save what backward needs; returns hs (B, T, H)."""
        # BEGIN SOLUTION
        # HINT: ctx.save_for_backward(...) the inputs and the hidden states you computed.
        h, hs = h0, []
        # KEEP guided
        for t in range(x.shape[1]):
        # END KEEP
            h = torch.tanh(x[:, t] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)  # (B, H)
            # KEEP guided
            hs.append(h)
            # END KEEP
        hs = torch.stack(hs, dim=1)  # (B, T, H)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, hs)
        return hs
        # END SOLUTION

    @staticmethod
    def backward(ctx, grad_hs: Tensor):
        """grad_hs (B, T, H) → (dx, dh0, dweight_ih, dweight_hh, dbias_ih, dbias_hh)."""
        # BEGIN SOLUTION
        # HINT: tanh′ = 1 − tanh², and tanh is what you saved: the derivative is 1 − h_t².
        # HINT: h_t feeds the loss directly (G_t) and through h_{t+1}: add both before going on.
        x, h0, weight_ih, weight_hh, hs = ctx.saved_tensors
        # KEEP guided
        dx = torch.empty_like(x)
        # END KEEP
        dweight_ih, dweight_hh = torch.zeros_like(weight_ih), torch.zeros_like(weight_hh)
        # KEEP guided
        dbias = hs.new_zeros(hs.shape[2])
        carry = torch.zeros_like(h0)  # ∂L/∂h_t through h_{t+1}, (B, H)
        for t in reversed(range(x.shape[1])):
        # END KEEP
            h_prev = hs[:, t - 1] if t > 0 else h0
            da = (grad_hs[:, t] + carry) * (1 - hs[:, t] ** 2)  # (B, H)
            dx[:, t] = da @ weight_ih
            dweight_ih += da.T @ x[:, t]
            dweight_hh += da.T @ h_prev
            dbias += da.sum(dim=0)
            carry = da @ weight_hh
        return dx, carry, dweight_ih, dweight_hh, dbias, dbias.clone()
        # END SOLUTION


# ---- 1.7 A sequence classifier ----


class SequenceClassifier(nn.Module):
    """Classify a whole sequence from the final hidden state of a MultiLayerRNN.

    Attributes: rnn = MultiLayerRNN(input_size, hidden_size, num_layers, cell_type,
    batch_first=True, dropout=dropout, bidirectional=bidirectional) and head =
    nn.Linear(D·H, num_classes). The features are the last layer's final hidden state(s):
    h_n of the top layer's forward direction, concatenated [forward, backward] with the
    backward direction's when bidirectional (for the LSTM: h, not the cell state c).
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int,
                 cell_type: str = "gru", num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        # END SOLUTION
        # BEGIN SOLUTION
        self.rnn = MultiLayerRNN(input_size, hidden_size, num_layers, cell_type,
                                 batch_first=True, dropout=dropout, bidirectional=bidirectional)
        self.head = nn.Linear(hidden_size * self.rnn.num_directions, num_classes)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, I) → logits (B, num_classes) (no softmax: cross-entropy takes logits)."""
        # BEGIN SOLUTION
        # HINT: h_n[-D:] holds the top layer's directions; output[:, -1] is wrong backwards.
        _, h_n = self.rnn(x)
        # KEEP guided
        if self.rnn.cell_type == "lstm":
        # END KEEP
            h_n = h_n[0]
        top = h_n[-self.rnn.num_directions:]  # (D, B, H)
        return self.head(torch.cat(list(top), dim=1))  # (B, C)
        # END SOLUTION

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Class indices (B,) int64 in eval mode; the module's previous mode is restored."""
        # BEGIN SOLUTION
        was_training = self.training
        self.eval()
        labels = self(x).argmax(dim=1)
        self.train(was_training)
        return labels
        # END SOLUTION


# ---- 1.8 Classification metrics ----


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Fraction of positions where pred == target; pred and target (N,) int64, N ≥ 1."""
    # BEGIN SOLUTION
    return (pred == target).double().mean().item()
    # END SOLUTION


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """M (C, C) int64 with M[i, j] = #{n : target_n = i and pred_n = j}.

    Rows are the true class, columns the predicted one (sklearn's convention), so the
    diagonal counts the correct predictions and each row sums to that class's support.
    """
    # BEGIN SOLUTION
    # HINT: one bincount over the flat index target·C + pred counts every cell at once.
    index = target * num_classes + pred  # (N,)
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)
    # END SOLUTION


def precision_recall_f1(pred: Tensor, target: Tensor, num_classes: int,
                        average: str | None = "macro") -> tuple[Tensor, Tensor, Tensor]:
    """Precision, recall and F1 from the confusion matrix M, as float64 tensors.

    Per class k: TP = M[k, k], FP = Σ_i M[i, k] − TP, FN = Σ_j M[k, j] − TP;
    precision = TP/(TP + FP), recall = TP/(TP + FN), F1 = 2·P·R/(P + R) = 2·TP/(2·TP + FP + FN),
    and every 0/0 is 0 (sklearn's zero_division=0: a class never predicted has precision 0).
    average=None → three (C,) tensors, one value per class;
    "macro" → the unweighted mean of the per-class values over all C classes (F1 included:
              the mean of the per-class F1s, not the F1 of the mean P and R);
    "micro" → P, R and F1 from the summed TP, FP, FN (0-d tensors; all equal accuracy);
    any other average raises ValueError.
    """
    # BEGIN SOLUTION
    # HINT: torch.where(den > 0, num / den, 0) still computes 0/0 = nan in the branch it drops
    # HINT: (and nan poisons gradients); den.clamp(min=1) is exact, since den is a count.
    M = confusion_matrix(pred, target, num_classes).double()
    tp = M.diagonal()  # (C,)
    predicted, actual = M.sum(dim=0), M.sum(dim=1)  # (C,) each: TP + FP, TP + FN
    if average == "micro":
        tp, predicted, actual = tp.sum(), predicted.sum(), actual.sum()
    elif average not in (None, "macro"):
        raise ValueError(f"average must be None, 'macro' or 'micro', got {average!r}")
    precision = tp / predicted.clamp(min=1)
    recall = tp / actual.clamp(min=1)
    f1 = 2 * tp / (predicted + actual).clamp(min=1)  # 2TP/(2TP + FP + FN)
    # KEEP guided
    if average == "macro":
    # END KEEP
        return precision.mean(), recall.mean(), f1.mean()
    return precision, recall, f1
    # END SOLUTION
