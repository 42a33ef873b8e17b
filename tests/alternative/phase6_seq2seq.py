"""An alternative §6.7–6.8 of phase6_models (encoder–decoder Transformer, decoding, BLEU),
written unlike the reference by its author: explicit causal masks instead of tgt_is_causal,
Python lists for greedy rows, a per-hypothesis beam over heapq.nlargest, Counter intersection
for clipped counts. tests/test_phase6_seq2seq.py splices it into a copy of the reference module
in place of the reference's §6.7–6.8 and grades those three exercises. Not importable alone."""

import heapq
import math
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .phase2_attention import SinusoidalPositionalEncoding
from .phase4_blocks import LayerNorm, TransformerDecoderLayer, TransformerEncoderLayer


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int = 32
    tgt_vocab_size: int = 32
    d_model: int = 64
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 256
    dropout: float = 0.1
    activation: str = "relu"
    norm_first: bool = False
    max_len: int = 512


class Seq2SeqTransformer(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        c = self.config = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.d_model)
        self.positional = SinusoidalPositionalEncoding(c.d_model, c.max_len)
        self.dropout = nn.Dropout(c.dropout)
        self.encoder_layers = nn.ModuleList()
        for _ in range(c.num_encoder_layers):
            self.encoder_layers.append(TransformerEncoderLayer(
                c.d_model, c.nhead, c.dim_feedforward, c.dropout, c.activation,
                norm_first=c.norm_first))
        self.decoder_layers = nn.ModuleList()
        for _ in range(c.num_decoder_layers):
            self.decoder_layers.append(TransformerDecoderLayer(
                c.d_model, c.nhead, c.dim_feedforward, c.dropout, c.activation,
                norm_first=c.norm_first))
        if c.norm_first:
            self.encoder_norm, self.decoder_norm = LayerNorm(c.d_model), LayerNorm(c.d_model)
        else:
            self.encoder_norm = self.decoder_norm = None
        self.head = nn.Linear(c.d_model, c.tgt_vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for _, p in self.named_parameters():
            if p.ndim >= 2:
                nn.init.xavier_uniform_(p)

    def embed(self, ids, table):
        scale = self.config.d_model ** 0.5
        return self.dropout(self.positional(scale * F.embedding(ids, table.weight)))

    def encode(self, src, src_padding_mask=None):
        h = self.embed(src, self.src_embed)
        for layer in self.encoder_layers:
            h = layer(h, None, src_padding_mask)
        if self.encoder_norm is not None:
            h = self.encoder_norm(h)
        return h

    def decode(self, tgt, memory, src_padding_mask=None, tgt_padding_mask=None):
        n = tgt.shape[1]
        allowed = torch.ones(n, n, dtype=torch.bool, device=tgt.device).tril()
        h = self.embed(tgt, self.tgt_embed)
        for layer in self.decoder_layers:
            h = layer(h, memory, tgt_mask=allowed, tgt_key_padding_mask=tgt_padding_mask,
                      memory_key_padding_mask=src_padding_mask)
        if self.decoder_norm is not None:
            h = self.decoder_norm(h)
        return self.head(h)

    def forward(self, src, tgt, src_padding_mask=None, tgt_padding_mask=None):
        return self.decode(tgt, self.encode(src, src_padding_mask), src_padding_mask,
                           tgt_padding_mask)


def greedy_decode(model, src, max_len, bos, eos, src_padding_mask=None):
    mode = model.training
    model.train(False)
    with torch.no_grad():
        memory = model.encode(src, src_padding_mask)
        rows = [[bos] for _ in range(len(src))]
        done = [False] * len(src)
        for _ in range(max_len):
            if all(done):
                break
            prefix = torch.tensor(rows, dtype=torch.int64)
            best = model.decode(prefix, memory, src_padding_mask)[:, -1].argmax(-1).tolist()
            for b, token in enumerate(best):
                rows[b].append(eos if done[b] else token)
                done[b] = done[b] or token == eos
    model.train(mode)
    return torch.tensor(rows, dtype=torch.int64)


def length_penalty_factor(length, alpha):
    return math.exp(alpha * math.log((5 + length) / 6))


def beam_search(model, src, beam_width, max_len, bos, eos, length_penalty=0.0):
    if beam_width <= 0:
        raise ValueError("beam_width")
    mode = model.training
    model.eval()
    with torch.no_grad():
        memory = model.encode(src.unsqueeze(0))
        live, done = [(0.0, [bos])], []
        for _ in range(max_len):
            pool = []
            for score, tokens in live:
                logp = model.decode(torch.tensor([tokens]), memory)[0, -1].log_softmax(-1)
                pool += [(score + float(lp), tokens + [y]) for y, lp in enumerate(logp)]
            live = []
            for score, tokens in heapq.nlargest(beam_width, pool, key=lambda c: c[0]):
                (done if tokens[-1] == eos else live).append((score, tokens))
            if not live:
                break
    model.train(mode)
    everything = done + live
    everything.sort(key=lambda c: -c[0] / length_penalty_factor(len(c[1]) - 1, length_penalty))
    return [(torch.tensor(t), s) for s, t in everything[:beam_width]]


def ngram_counts(tokens, n):
    return Counter(zip(*(tokens[k:] for k in range(n)), strict=False))


def corpus_bleu(hypotheses, references, max_order=4, smooth="exp"):
    if smooth not in {"none", "exp"} or len(hypotheses) != len(references):
        raise ValueError("bad arguments")
    c = sum(len(h) for h in hypotheses)
    r = sum(len(x) for x in references)
    logs, k = [], 0
    for n in range(1, max_order + 1):
        hit = sum(sum((ngram_counts(h, n) & ngram_counts(x, n)).values())
                  for h, x in zip(hypotheses, references, strict=True))
        seen = sum(sum(ngram_counts(h, n).values()) for h in hypotheses)
        logs.append((hit, seen))
    if all(h == 0 for h, _ in logs) or any(s == 0 for _, s in logs):
        return 0.0
    total = 0.0
    for hit, seen in logs:
        if hit == 0:
            if smooth == "none":
                return 0.0
            k += 1
            total += -math.log(2 ** k * seen)
        else:
            total += math.log(hit / seen)
    penalty = min(1.0, math.exp(1 - r / c))
    return 100 * penalty * math.exp(total / max_order)


