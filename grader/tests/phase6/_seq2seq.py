"""Shared pieces of the 6.7 / 6.8 checks: an encoder–decoder model assembled in the judge from
nn.Transformer, nn.Embedding and nn.Linear with the sinusoidal table written from its formula,
its weights copied into the student's Seq2SeqTransformer by name, and its teacher-forced
log-probabilities (the oracle of the decoding checks).

nn.Transformer always ends both stacks with a LayerNorm; the course's post-norm model does not
(its layers already end with one), so the reference drops them when norm_first is False.
torch's bool masks mean True = masked out: the course's padding masks (True = a real token)
reach torch as (B·H, Tq, Tk) attention masks, which also keeps torch off its fast path.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from grader.checks import CheckFailed
from grader.session import run_probe
from grader.tests.phase4._helpers import randomise

# The judge's references are many tiny forward passes: one intra-op thread is fastest, and on
# a busy machine a thread pool makes them an order of magnitude slower (see checks/reference.py).
torch.set_num_threads(1)
F64 = torch.float64
SIZES = {"src_vocab_size": 11, "tgt_vocab_size": 9, "d_model": 16, "nhead": 2,
         "num_encoder_layers": 2, "num_decoder_layers": 2, "dim_feedforward": 32,
         "dropout": 0.1, "max_len": 24}
NAMES_HINT = ("Name the submodules as the docstring says: src_embed, tgt_embed, positional (the "
              "phase-2 table, a buffer), encoder_layers and decoder_layers (nn.ModuleLists of "
              "your phase-4 layers), encoder_norm and decoder_norm (LayerNorms with norm_first, "
              "else None), head.")


def sinusoidal(length: int, dim: int) -> torch.Tensor:
    """PE[p, 2i] = sin(p·10000^(−2i/dim)), PE[p, 2i+1] = cos(…), in float64."""
    table = torch.zeros(length, dim, dtype=F64)
    for i in range(dim // 2):
        omega = 10000.0 ** (-2 * i / dim)
        for p in range(length):
            table[p, 2 * i], table[p, 2 * i + 1] = math.sin(p * omega), math.cos(p * omega)
    return table


class ReferenceSeq2Seq(nn.Module):
    """nn.Transformer between scaled embeddings plus the sinusoidal table and a linear head."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int, nhead: int,
                 num_encoder_layers: int, num_decoder_layers: int, dim_feedforward: int,
                 max_len: int, activation: str = "relu", norm_first: bool = False,
                 **_: object) -> None:
        super().__init__()
        self.nhead, self.d_model = nhead, d_model
        self.src_embed = nn.Embedding(src_vocab_size, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model)
        with warnings.catch_warnings():  # "enable_nested_tensor is True, but …" for pre-norm
            warnings.simplefilter("ignore")
            self.transformer = nn.Transformer(
                d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward,
                dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first)
        if not norm_first:
            self.transformer.encoder.norm = None
            self.transformer.decoder.norm = None
        self.head = nn.Linear(d_model, tgt_vocab_size)
        # your phase-2 module keeps its table as a float32 buffer: the same values here
        self.register_buffer("table", sinusoidal(max_len, d_model).float().double())

    def _embed(self, ids: torch.Tensor, table: nn.Embedding) -> torch.Tensor:
        x = table(ids) * math.sqrt(self.d_model)
        return x + self.table[: ids.shape[1]].to(x.dtype)

    def forward(self, src, tgt, src_keep=None, tgt_keep=None) -> torch.Tensor:
        """Logits (B, T, V); src_keep (B, S) and tgt_keep (B, T) True at real tokens."""
        (b, s), t, h = src.shape, tgt.shape[1], self.nhead
        hidden_src = torch.zeros(b, s, dtype=torch.bool) if src_keep is None else ~src_keep
        hidden_tgt = torch.zeros(b, t, dtype=torch.bool) if tgt_keep is None else ~tgt_keep
        future = ~torch.ones(t, t, dtype=torch.bool).tril()

        def heads(mask):  # (B, Tq, Tk) → (B·H, Tq, Tk)
            return mask[:, None].expand(b, h, *mask.shape[1:]).reshape(b * h, *mask.shape[1:])

        with torch.enable_grad():  # torch's slow path: the fast path zeroes padded positions
            out = self.transformer(
                self._embed(src, self.src_embed), self._embed(tgt, self.tgt_embed),
                src_mask=heads(hidden_src[:, None, :].expand(b, s, s)),
                tgt_mask=heads(hidden_tgt[:, None, :] | future[None]),
                memory_mask=heads(hidden_src[:, None, :].expand(b, t, s)))
        return self.head(out)


def student_name(name: str) -> str:
    """The student's name of a reference parameter."""
    for torch_prefix, ours in (("transformer.encoder.layers.", "encoder_layers."),
                               ("transformer.decoder.layers.", "decoder_layers."),
                               ("transformer.encoder.norm.", "encoder_norm."),
                               ("transformer.decoder.norm.", "decoder_norm.")):
        if name.startswith(torch_prefix):
            return ours + name[len(torch_prefix):]
    return name


def reference_model(seed: int, **config) -> ReferenceSeq2Seq:
    """A float64 reference with random weights (norm weights 1 ± 0.5), in eval mode."""
    torch.manual_seed(seed)
    return randomise(ReferenceSeq2Seq(**{**SIZES, **config}), seed).eval()


def student_model(m, **config):
    """The student's Seq2SeqTransformer(Seq2SeqConfig(**SIZES | config))."""
    return m.Seq2SeqTransformer(m.Seq2SeqConfig(**{**SIZES, **config}))


def copy_into(m, student, reference: nn.Module, dtype: torch.dtype = F64) -> None:
    """Load the reference's parameters into the student's model by name (cast to dtype)."""
    state = {student_name(n): p.detach().to(dtype).clone()
             for n, p in reference.named_parameters()}
    report = run_probe(m, "phase2.load_state", student, state, True)
    problems = []
    if report["missing"]:
        problems.append(f"it has no parameter named {', '.join(report['missing'][:6])}")
    for name, shape in report["wrong_shape"].items():
        problems.append(f"its {name} has shape {tuple(shape)}, expected "
                        f"{tuple(state[name].shape)}")
    if report["extra"]:
        problems.append(f"it has parameters nn.Transformer's model does not: "
                        f"{', '.join(report['extra'][:6])}")
    if problems:
        raise CheckFailed("cannot copy the weights of an nn.Transformer model into your "
                          "Seq2SeqTransformer: " + "; ".join(problems) + ".", NAMES_HINT)


def paired_models(m, seed: int, dtype: torch.dtype = F64, **config):
    """(reference with random weights, the student's model holding the same weights)."""
    reference = reference_model(seed, **config)
    student = student_model(m, **config)
    copy_into(m, student, reference, dtype)
    return reference, student


@torch.no_grad()
def sequence_log_probs(reference: nn.Module, src: torch.Tensor, hypotheses: list[list[int]],
                       bos: int) -> list[float]:
    """log p(Y | src) = Σ_t log softmax(logits_t)[y_t] of each hypothesis (its tokens after
    bos), by teacher forcing: a forward pass over [bos] + Y[:-1], one batch per length."""
    scores = [0.0] * len(hypotheses)
    for length in sorted({len(tokens) for tokens in hypotheses}):
        rows = [k for k, tokens in enumerate(hypotheses) if len(tokens) == length]
        targets = torch.tensor([hypotheses[k] for k in rows])  # (N, |Y|)
        inputs = torch.cat((torch.full((len(rows), 1), bos), targets[:, :-1]), dim=1)
        logits = reference(src[None].expand(len(rows), -1), inputs)  # (N, |Y|, V)
        picked = logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0]  # (N, |Y|)
        for k, total in zip(rows, picked.sum(-1).tolist(), strict=True):
            scores[k] = total
    return scores


def gnmt_penalty(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha
