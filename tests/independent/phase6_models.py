"""Phase 6, written independently of the reference from the stubs alone.

Other routes than the obvious ones: BPE training keeps its pair counts in buckets by count (the
top count only falls, so a pointer walks down) instead of a heap; encoding caches each piece;
encode_iterable commits text by where the special-token scan is final; the causal mask is built
by comparing positions; top-p measures the mass before a token by a shifted cumulative sum;
GPT-2's init goes by parameter name; the RNG states travel as tensors and dicts (NumPy's
non-legacy state); checkpoints copy every tensor so a kept state_dict never drifts.

Part 2 (6.7 – 6.11): the decoder's causal mask is an explicit tgt_mask; greedy decoding writes
into an eos-filled buffer; beam search keeps Python hypotheses and takes the global top-k from
each row's own top-k; BLEU counts every order in one Counter and clips by Counter intersection;
the associative scan is an odd–even recursion (work-efficient) instead of Hillis–Steele; the
causal conv is an unfold of the left-padded input; softplus is logaddexp(x, 0); pooling is one
einsum with per-row weights 1/length.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from .phase2_attention import SinusoidalPositionalEncoding, scaled_dot_product_attention
from .phase3_optim import clip_grad_norm_, cross_entropy
from .phase4_blocks import (
    GELU,
    LayerNorm,
    PositionwiseFeedForward,
    RMSNorm,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
)

# ---- 6.1 Tokenizers ----


class CharTokenizer:
    """One id per distinct character, ids in code-point order."""

    def __init__(self, chars: Iterable[str], unk: str | None = None) -> None:
        self.chars = list(chars)
        self.unk = unk
        self.index = {c: i for i, c in enumerate(self.chars)}
        if len(self.index) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("chars must be distinct single characters")
        if unk is not None and unk not in self.index:
            raise ValueError(f"unk {unk!r} is not in the vocabulary")

    @classmethod
    def fit(cls, text: str, unk: str | None = None) -> CharTokenizer:
        """sorted(set(text) ∪ {unk})."""
        alphabet = set(text)
        if unk is not None:
            alphabet.add(unk)
        return cls(sorted(alphabet), unk)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """The id of every character; unknown ones raise or become unk."""
        fallback = None if self.unk is None else self.index[self.unk]
        ids = []
        for position, char in enumerate(text):
            found = self.index.get(char, fallback)
            if found is None:
                raise ValueError(f"unknown character {char!r} at index {position}")
            ids.append(found)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of ids."""
        pieces = []
        for i in ids:
            if not 0 <= i < len(self.chars):
                raise ValueError(f"id {i} is outside [0, {len(self.chars)})")
            pieces.append(self.chars[i])
        return "".join(pieces)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"unk": self.unk, "chars": "".join(self.chars)}))

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        saved = json.loads(Path(path).read_text())
        return cls(list(saved["chars"]), saved["unk"])


PRETOKENIZE = re.compile(r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")


def _special_pattern(special_tokens: Sequence[str]) -> re.Pattern:
    longest_first = sorted(special_tokens, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, longest_first)))


def split_special_tokens(text: str, special_tokens: Sequence[str]) -> list[str]:
    """[ordinary, special, ordinary, …, ordinary]; the longer of two overlapping specials wins."""
    if not special_tokens:
        return [text]
    return re.split("(" + _special_pattern(special_tokens).pattern + ")", text)


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Every non-overlapping occurrence of pair, left to right, replaced by new_id."""
    first, second = pair
    merged: list[int] = []
    top_is_open = False  # whether merged[-1] is an input id that may still start the pair
    for token in ids:
        if top_is_open and merged[-1] == first and token == second:
            merged[-1] = new_id
            top_is_open = False
        else:
            merged.append(token)
            top_is_open = True
    return merged


def _pair_counts(ids: list[int]) -> Counter:
    return Counter(zip(ids, ids[1:], strict=False))


class _CountBuckets:
    """Pair counts with the most frequent (smallest on ties) pair found without a full scan.

    Pairs live in buckets by count. The top count never rises during training — a new pair
    occurs at most as often as the pair merged to make it — so the search walks one pointer
    down, O(largest count) over the whole run."""

    def __init__(self, counts: Counter) -> None:
        self.count: dict[tuple[int, int], int] = {}
        self.bucket: dict[int, set[tuple[int, int]]] = {}
        self.top = 0
        for pair, n in counts.items():
            self.add(pair, n)

    def add(self, pair: tuple[int, int], delta: int) -> None:
        old = self.count.get(pair, 0)
        new = old + delta
        if old:
            self.bucket[old].discard(pair)
        if new > 0:
            self.count[pair] = new
            self.bucket.setdefault(new, set()).add(pair)
            self.top = max(self.top, new)
        else:
            self.count.pop(pair, None)

    def best(self) -> tuple[int, int] | None:
        while self.top > 0 and not self.bucket.get(self.top):
            self.top -= 1
        return min(self.bucket[self.top]) if self.top > 0 else None


def _corpus(text: str, special_tokens: Sequence[str]) -> Counter:
    """Each distinct pre-tokenised piece (as a tuple of bytes) with its frequency."""
    pieces: Counter = Counter()
    for part in split_special_tokens(text, special_tokens)[::2]:
        pieces.update(PRETOKENIZE.findall(part))
    return Counter({tuple(piece.encode("utf-8")): n for piece, n in pieces.items()})


def train_bpe(
    text: str, vocab_size: int, special_tokens: Sequence[str] = ()
) -> list[tuple[int, int]]:
    """merges[k] = the most frequent adjacent pair (ties: smallest) after merges 0 … k − 1."""
    budget = vocab_size - 256 - len(special_tokens)
    if budget < 0:
        raise ValueError(
            f"vocab_size {vocab_size} < 256 bytes + {len(special_tokens)} special tokens"
        )
    corpus = _corpus(text, special_tokens)
    words = [list(ids) for ids in corpus]
    weights = list(corpus.values())
    counts: Counter = Counter()
    holders: dict[tuple[int, int], set[int]] = {}
    for w, (ids, weight) in enumerate(zip(words, weights, strict=True)):
        for pair, n in _pair_counts(ids).items():
            counts[pair] += n * weight
            holders.setdefault(pair, set()).add(w)
    buckets = _CountBuckets(counts)
    merges: list[tuple[int, int]] = []
    while len(merges) < budget:
        pair = buckets.best()
        if pair is None:
            break
        new_id = 256 + len(merges)
        merges.append(pair)
        for w in holders.pop(pair, set()):
            before = _pair_counts(words[w])
            words[w] = merge_pair(words[w], pair, new_id)
            after = _pair_counts(words[w])
            for changed in before.keys() | after.keys():
                delta = (after.get(changed, 0) - before.get(changed, 0)) * weights[w]
                if delta:
                    buckets.add(changed, delta)
                if changed in after:
                    holders.setdefault(changed, set()).add(w)
                elif changed != pair:
                    holders.get(changed, set()).discard(w)
    return merges


class BPETokenizer:
    """Byte-level BPE: bytes 0–255, merge k → 256 + k, then the special tokens."""

    def __init__(self, merges: Sequence[tuple[int, int]], special_tokens: Sequence[str] = ()):
        self.merges = [(int(a), int(b)) for a, b in merges]
        self.special_tokens = list(special_tokens)
        self.tokens: list[bytes] = [bytes([b]) for b in range(256)]
        self.rank: dict[tuple[int, int], int] = {}
        for k, (a, b) in enumerate(self.merges):
            defined = 256 + k
            if not (0 <= a < defined and 0 <= b < defined):
                raise ValueError(f"merge {k} = {(a, b)} names an id not defined before {defined}")
            if (a, b) in self.rank:
                raise ValueError(f"the pair {(a, b)} is merged twice")
            self.rank[(a, b)] = k
            self.tokens.append(self.tokens[a] + self.tokens[b])
        if any(not token for token in self.special_tokens):
            raise ValueError("special tokens must not be empty")
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ValueError("special tokens must not repeat")
        first_special = 256 + len(self.merges)
        self.special_ids = {tok: first_special + i for i, tok in enumerate(self.special_tokens)}
        self.tokens.extend(tok.encode("utf-8") for tok in self.special_tokens)
        self._special_re = _special_pattern(self.special_tokens) if self.special_tokens else None
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: Sequence[str] = ()) -> BPETokenizer:
        return cls(train_bpe(text, vocab_size, special_tokens), special_tokens)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges) + len(self.special_tokens)

    def encode(self, text: str) -> list[int]:
        """Special tokens whole; every other piece merged in training order."""
        ids: list[int] = []
        for piece in self._pieces(text):
            ids.extend(self._encode_piece(piece))
        return ids

    def _pieces(self, text: str) -> list[str]:
        """The special tokens and the PRETOKENIZE pieces between them, in order."""
        parts = split_special_tokens(text, self.special_tokens)
        pieces: list[str] = []
        for position, part in enumerate(parts):
            if position % 2:
                pieces.append(part)
            else:
                pieces.extend(PRETOKENIZE.findall(part))
        return pieces

    def _encode_piece(self, piece: str) -> list[int]:
        """A special token's id, or the bytes with the lowest-ranked pair merged until none is."""
        if piece in self.special_ids:
            return [self.special_ids[piece]]
        if piece not in self._cache:
            ids = list(piece.encode("utf-8"))
            while len(ids) > 1:
                ranked = [
                    (self.rank[p], p) for p in zip(ids, ids[1:], strict=False) if p in self.rank
                ]
                if not ranked:
                    break
                k, pair = min(ranked)
                ids = merge_pair(ids, pair, 256 + k)
            self._cache[piece] = ids
        return list(self._cache[piece])

    def decode(self, ids: Iterable[int]) -> str:
        """The bytes of all ids joined, decoded once with U+FFFD for invalid UTF-8."""
        raw = bytearray()
        for i in ids:
            if not 0 <= i < len(self.tokens):
                raise ValueError(f"id {i} is outside [0, {len(self.tokens)})")
            raw += self.tokens[i]
        return raw.decode("utf-8", errors="replace")

    def _committed(self, buffer: str) -> int:
        """How much of buffer's front encodes the same whatever text follows it."""
        if self._special_re is None:
            decided, last_end = len(buffer), 0
        else:
            longest = max(len(tok) for tok in self.special_tokens)
            # the scan's choice at position p reads buffer[p : p + longest] only
            decided = len(buffer) - longest + 1
            last_end = 0
            for match in self._special_re.finditer(buffer):
                if match.start() >= decided:
                    break
                last_end = match.end()
            decided = max(decided, last_end)
        tail = buffer[last_end:decided]
        starts = [m.start() for m in PRETOKENIZE.finditer(tail)]
        # the last piece of the tail may still grow (" d" + "og"): it stays in the buffer
        return last_end + (starts[-1] if starts else len(tail))

    def encode_iterable(self, chunks: Iterable[str]) -> Iterator[int]:
        """encode("".join(chunks)), yielded as the chunks arrive."""
        buffer = ""
        for chunk in chunks:
            buffer += chunk
            cut = self._committed(buffer)
            if cut > 0:
                yield from self.encode(buffer[:cut])
                buffer = buffer[cut:]
        yield from self.encode(buffer)

    def save(self, path: str | Path) -> None:
        saved = {"special_tokens": self.special_tokens, "merges": [list(m) for m in self.merges]}
        Path(path).write_text(json.dumps(saved))

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        saved = json.loads(Path(path).read_text())
        return cls([tuple(m) for m in saved["merges"]], saved["special_tokens"])


# ---- 6.2 GPT ----


@dataclass
class GPTConfig:
    """The size of a GPT (nanoGPT's CPU Shakespeare model by default)."""

    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; with a KVCache the new queries see every cached key."""

    def __init__(self, config: GPTConfig, layer: int = 0) -> None:
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd {config.n_embd} is not divisible by n_head {config.n_head}")
        self.n_head, self.layer, self.dropout = config.n_head, layer, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def _heads(self, t: Tensor) -> Tensor:
        """(B, T, C) → (B, nh, T, hs)."""
        return t.unflatten(-1, (self.n_head, t.shape[-1] // self.n_head)).transpose(1, 2)

    def forward(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """x (B, T, C) → (B, T, C)."""
        T = x.shape[1]
        q, k, v = (self._heads(part) for part in self.c_attn(x).chunk(3, dim=-1))  # (B, nh, T, hs)
        start = 0
        if kv_cache is not None:
            start = kv_cache.length
            k, v = kv_cache.update(self.layer, k, v)  # (B, nh, start + T, hs)
        query_pos = torch.arange(start, start + T, device=x.device)[:, None]  # (T, 1)
        key_pos = torch.arange(start + T, device=x.device)[None, :]  # (1, start + T)
        allowed = key_pos <= query_pos  # (T, start + T)
        p = self.dropout if self.training else 0.0
        y, _ = scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        y = y.transpose(1, 2).flatten(2)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    """x + attn(ln_1(x)), then + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig, layer: int = 0) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = PositionwiseFeedForward(
            config.n_embd,
            4 * config.n_embd,
            config.dropout,
            activation=GELU("tanh"),
            bias=config.bias,
        )

    def forward(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """x (B, T, C) → (B, T, C)."""
        x = x + self.attn(self.ln_1(x), kv_cache)
        return x + self.mlp(self.ln_2(x))


RESIDUAL_PROJECTIONS = ("attn.c_proj.weight", "mlp.linear2.weight")


class GPT(nn.Module):
    """GPT-2: token + position embeddings, pre-norm blocks, ln_f, a head tied to wte."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config, layer) for layer in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Tie lm_head to wte; N(0, 0.02²) weights, 0.02/√(2·n_layer) on residual projections."""
        self.lm_head.weight = self.wte.weight
        norms = {id(p) for m in self.modules() if isinstance(m, LayerNorm) for p in m.parameters()}
        small = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if id(p) in norms:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, small if name.endswith(RESIDUAL_PROJECTIONS) else 0.02)

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, kv_cache: KVCache | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) → (logits (B, T, V), mean cross-entropy or None)."""
        T = idx.shape[1]
        start = 0 if kv_cache is None else kv_cache.length
        if start + T > self.config.block_size:
            raise ValueError(
                f"positions {start} … {start + T - 1} exceed block_size {self.config.block_size}"
            )
        positions = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(positions))  # (B, T, C)
        for block in self.h:
            x = block(x, kv_cache)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        if kv_cache is not None:
            kv_cache.length += T
        if targets is None:
            return logits, None
        return logits, cross_entropy(logits.flatten(0, 1), targets.flatten())

    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> Tensor:
        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, generator, use_cache)


# ---- 6.3 Sampling ----


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """logits with every token outside the top-k, then the top-p, set set to −inf."""
    kept = logits.clone()
    if top_k is not None:
        k = min(int(top_k), logits.shape[-1])
        chosen = torch.zeros_like(kept, dtype=torch.bool)
        chosen.scatter_(-1, torch.topk(kept, k, dim=-1).indices, True)
        kept = kept.masked_fill(~chosen, float("-inf"))
    if top_p is not None:
        ordered, order = torch.sort(kept, dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)  # (B, V), decreasing
        mass_before = torch.cat(
            [torch.zeros_like(probs[..., :1]), torch.cumsum(probs, dim=-1)[..., :-1]], dim=-1
        )
        stays_sorted = mass_before < top_p
        stays = torch.zeros_like(stays_sorted).scatter(-1, order, stays_sorted)
        kept = kept.masked_fill(~stays, float("-inf"))
    return kept


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B, V) → (B, 1) int64: argmax at temperature 0, else a draw from the filtered softmax."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


@torch.no_grad()
def generate(
    model: GPT,
    idx: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> Tensor:
    """idx (B, T) → (B, T + max_new_tokens), with or without a KV cache (the same tokens)."""
    window = model.config.block_size
    was_training = model.training
    model.eval()
    try:
        tokens = idx
        cache: KVCache | None = None
        for _ in range(max_new_tokens):
            if not use_cache:
                logits, _ = model(tokens[:, -window:])
            elif cache is None or cache.length >= window:
                # a fresh prefill of the cropped context: the old cache has no room left
                cache = KVCache(model.config.n_layer)
                logits, _ = model(tokens[:, -window:], kv_cache=cache)
            else:
                logits, _ = model(tokens[:, -1:], kv_cache=cache)
            chosen = sample_next(logits[:, -1], temperature, top_k, top_p, generator)  # (B, 1)
            tokens = torch.cat([tokens, chosen.to(tokens.dtype)], dim=1)
        return tokens.clone() if tokens is idx else tokens
    finally:
        model.train(was_training)


# ---- 6.4 The KV cache ----


class KVCache:
    """Every layer's keys and values (B, nh, length, hs) of the tokens seen so far."""

    def __init__(self, n_layer: int) -> None:
        self.length = 0
        self.keys: list[Tensor | None] = [None] * n_layer
        self.values: list[Tensor | None] = [None] * n_layer

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append k, v (B, nh, T, hs); return all of the layer's, oldest first."""
        old_k, old_v = self.keys[layer], self.values[layer]
        self.keys[layer] = k if old_k is None else torch.cat([old_k, k], dim=2)
        self.values[layer] = v if old_v is None else torch.cat([old_v, v], dim=2)
        return self.keys[layer], self.values[layer]


# ---- 6.5 The Trainer ----


class EpochLoader:
    """Batches in torch.randperm(seed + epoch) order, resumable from {"epoch", "position"}."""

    def __init__(
        self,
        dataset,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.dataset, self.batch_size, self.seed, self.shuffle = dataset, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.size = len(dataset[0]) if isinstance(dataset, tuple) else len(dataset)
        self.steps_per_epoch = self.size // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{self.size} examples cannot fill one batch of {batch_size * world_size}"
            )
        self.epoch, self.position = 0, 0
        self._order: tuple[int, Tensor] | None = None  # (epoch, its permutation)

    def order(self, epoch: int) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + epoch))

    def next_batch(self):
        """This rank's slice of step `position` of the current epoch."""
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, self.order(self.epoch))
        first = (self.position * self.world_size + self.rank) * self.batch_size
        picked = self._order[1][first : first + self.batch_size]
        self.epoch, self.position = divmod(
            self.epoch * self.steps_per_epoch + self.position + 1, self.steps_per_epoch
        )
        if isinstance(self.dataset, tuple):
            return tuple(part[picked] for part in self.dataset)
        return self.dataset[picked]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def language_model_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, int]:
    """(Σ cross-entropy over the counted targets, their number); −100 is ignored."""
    inputs, targets = batch
    output = model(inputs)
    logits = output[0] if isinstance(output, tuple) else output
    if logits.dtype in (torch.bfloat16, torch.float16):
        logits = logits.float()  # the sum is taken in float32 under autocast
    flat_targets = targets.reshape(-1)
    total = cross_entropy(logits.reshape(flat_targets.shape[0], -1), flat_targets, reduction="sum")
    return total, int((flat_targets != -100).sum())


@dataclass
class TrainerConfig:
    """How the Trainer trains; every *_every counts optimizer steps, 0 = never."""

    accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    bf16: bool = False
    eval_every: int = 0
    log_every: int = 1
    checkpoint_every: int = 0
    log_path: str | None = None
    checkpoint_path: str | None = None
    progress: bool = True


def _every(period: int, step: int) -> bool:
    return bool(period) and step % period == 0


class Trainer:
    """Any model, optimizer and scheduler: exact accumulation, clipping, logs, checkpoints."""

    def __init__(
        self,
        model: nn.Module,
        optimizer,
        train_loader: EpochLoader,
        scheduler=None,
        val_batches: list | None = None,
        config: TrainerConfig | None = None,
        loss_fn: Callable = language_model_loss,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train_loader, self.val_batches = train_loader, val_batches or []
        self.config = config or TrainerConfig()
        self.loss_fn = loss_fn
        self.step = 0
        self.history: list[dict] = []
        self.distributed = dist.is_available() and dist.is_initialized()
        self.is_main = not self.distributed or dist.get_rank() == 0

    @property
    def raw_model(self) -> nn.Module:
        return getattr(self.model, "module", self.model)

    def parameters(self) -> list[Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _forward(self, batch) -> tuple[Tensor, int]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.bf16):
            return self.loss_fn(self.model, batch)

    def train_step(self) -> float:
        """One optimizer step: ∇ = (1/N) Σ over all micro-batches' tokens; returns the mean loss."""
        micro = self.config.accumulation_steps
        self.model.train()  # the model may come in eval mode (after a generate, say)
        summed = torch.zeros((), dtype=torch.float64)
        counted = 0
        for index in range(micro):
            batch = self.train_loader.next_batch()
            last = index == micro - 1
            # DDP all-reduces on every backward unless told otherwise: only the last one syncs
            quiet = self.distributed and not last and hasattr(self.model, "no_sync")
            with self.model.no_sync() if quiet else contextlib.nullcontext():
                loss, count = self._forward(batch)
                loss.backward()
            summed += loss.detach().double()
            counted += int(count)
        totals = torch.tensor([float(counted), summed.item()], dtype=torch.float64)
        if self.distributed:
            dist.all_reduce(totals)
        tokens = totals[0].item()
        # DDP averages the gradients over the processes: × world size makes it their sum
        world = dist.get_world_size() if self.distributed else 1
        factor = world / tokens if tokens else 0.0
        for p in self.parameters():
            if p.grad is not None:
                p.grad.mul_(factor)
        if self.config.max_grad_norm is not None:
            clip_grad_norm_(self.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad()
        self.step += 1
        # no counted token: the sum is 0 and so is the step's (zero-gradient) loss
        return totals[1].item() / max(tokens, 1.0)

    @torch.no_grad()
    def evaluate(self) -> float:
        """The token mean of the loss over val_batches, in eval mode."""
        was_training = self.model.training
        self.model.eval()
        try:
            summed, counted = 0.0, 0
            for batch in self.val_batches:
                loss, count = self._forward(batch)
                summed += loss.double().item()
                counted += int(count)
        finally:
            self.model.train(was_training)
        return summed / max(counted, 1)

    def fit(self, steps: int) -> list[dict]:
        """train_step until step == steps, with logs, validation and checkpoints."""
        cfg = self.config
        started = time.perf_counter()
        bar = tqdm(
            total=steps,
            initial=self.step,
            desc="training",
            unit="step",
            disable=not (cfg.progress and self.is_main),
        )
        try:
            while self.step < steps:
                lr = self.optimizer.param_groups[0]["lr"]  # the rate this step uses
                loss = self.train_step()
                final = self.step == steps
                validate = bool(cfg.eval_every) and (_every(cfg.eval_every, self.step) or final)
                if _every(cfg.log_every, self.step) or validate:
                    row = {
                        "step": self.step,
                        "loss": loss,
                        "lr": float(lr),
                        "seconds": time.perf_counter() - started,
                    }
                    if validate:
                        row["val_loss"] = self.evaluate()
                    self.history.append(row)
                    self._log(row)
                    bar.set_postfix(loss=f"{loss:.4f}")
                # with a checkpoint_path the last step always saves, even at checkpoint_every 0
                if cfg.checkpoint_path and (_every(cfg.checkpoint_every, self.step) or final):
                    self.save_checkpoint(cfg.checkpoint_path)
                bar.update(1)
        finally:
            bar.close()
        return self.history

    def _log(self, row: dict) -> None:
        if self.config.log_path and self.is_main:
            with open(self.config.log_path, "a") as log:
                log.write(json.dumps(row) + "\n")

    def state_dict(self) -> dict:
        return trainer_state(self)

    def load_state_dict(self, state: dict) -> None:
        load_trainer_state(self, state)

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        if self.is_main:
            save_atomically(self.state_dict(), path)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        self.load_state_dict(torch.load(path, weights_only=True))


# ---- 6.6 Checkpoints and exact resumption ----


def save_atomically(obj, path: str | os.PathLike) -> None:
    """torch.save to a unique file beside `path`, fsync, os.replace onto it, fsync the folder."""
    target = Path(path)
    folder = target.parent
    scratch = folder / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.partial"
    try:
        with open(scratch, "xb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def rng_state() -> dict:
    """Python's, NumPy's (its non-legacy dict) and torch's global random states."""
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    """Restore rng_state()."""
    python = state["python"]
    random.setstate(
        (python["version"], tuple(int(v) for v in python["internal"].tolist()), python["gauss"])
    )
    saved = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": saved["bit_generator"],
            "state": {"key": saved["key"].numpy().astype(np.uint32), "pos": saved["pos"]},
            "has_gauss": saved["has_gauss"],
            "gauss": saved["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])


def _copied(value):
    """value with every tensor cloned, so the state does not follow later training."""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_copied(item) for item in value)
    return value


def trainer_state(trainer: Trainer) -> dict:
    """Model, optimizer (state by parameter index, group hyperparameters), scheduler, RNGs,
    loader position, step and history."""
    params = trainer.parameters()
    index = {id(p): i for i, p in enumerate(params)}
    optimizer = {
        "state": {
            index[id(p)]: _copied(dict(s))
            for p, s in trainer.optimizer.state.items()
            if id(p) in index
        },
        "param_groups": [
            {
                **_copied({k: v for k, v in g.items() if k != "params"}),
                "params": [index[id(p)] for p in g["params"]],
            }
            for g in trainer.optimizer.param_groups
        ],
    }
    scheduler = trainer.scheduler
    if scheduler is None:
        schedule = None
    elif hasattr(scheduler, "state_dict"):
        schedule = _copied(scheduler.state_dict())
    else:
        schedule = _copied(
            {k: v for k, v in vars(scheduler).items() if k != "optimizer" and not callable(v)}
        )
    return {
        "model": _copied(trainer.raw_model.state_dict()),
        "optimizer": optimizer,
        "scheduler": schedule,
        "rng": rng_state(),
        "loader": trainer.train_loader.state_dict(),
        "step": trainer.step,
        "history": _copied(trainer.history),
    }


def load_trainer_state(trainer: Trainer, state: dict) -> None:
    """Restore trainer_state() into a trainer built the same way."""
    trainer.raw_model.load_state_dict(state["model"])
    params = trainer.parameters()
    saved = state["optimizer"]
    layout = [len(g["params"]) for g in trainer.optimizer.param_groups]
    if layout != [len(g["params"]) for g in saved["param_groups"]]:
        # a partial restore would silently resume a different run
        raise ValueError(
            f"the optimizer's groups hold {layout} parameters, the checkpoint's "
            f"{[len(g['params']) for g in saved['param_groups']]}"
        )
    for p in params:
        trainer.optimizer.state.pop(p, None)
    for i, per_param in saved["state"].items():
        trainer.optimizer.state[params[int(i)]] = _copied(per_param)
    for group, hyper in zip(trainer.optimizer.param_groups, saved["param_groups"], strict=True):
        group.update(_copied({k: v for k, v in hyper.items() if k != "params"}))
    if trainer.scheduler is not None and state["scheduler"] is not None:
        if hasattr(trainer.scheduler, "load_state_dict"):
            trainer.scheduler.load_state_dict(state["scheduler"])
        else:
            vars(trainer.scheduler).update(_copied(state["scheduler"]))
    set_rng_state(state["rng"])
    trainer.train_loader.load_state_dict(state["loader"])
    trainer.step = int(state["step"])
    trainer.history = _copied(state["history"])


# ---- 6.7 The encoder-decoder Transformer ----


@dataclass
class Seq2SeqConfig:
    """The size of an encoder–decoder Transformer."""

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


def _not_later(rows: int, cols: int, device: torch.device) -> Tensor:
    """(rows, cols) bool: query i may see key j iff j ≤ i."""
    return torch.arange(cols, device=device)[None, :] <= torch.arange(rows, device=device)[:, None]


class Seq2SeqTransformer(nn.Module):
    """Scaled embeddings + sinusoidal positions, encoder and decoder stacks, final norms, head."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        width = config.d_model
        self.src_embed = nn.Embedding(config.src_vocab_size, width)
        self.tgt_embed = nn.Embedding(config.tgt_vocab_size, width)
        self.positional = SinusoidalPositionalEncoding(width, config.max_len)
        self.dropout = nn.Dropout(config.dropout)
        shape = dict(
            d_model=width,
            nhead=config.nhead,
            dim_feedforward=config.dim_feedforward,
            dropout=config.dropout,
            activation=config.activation,
            norm_first=config.norm_first,
        )
        self.encoder_layers = nn.ModuleList(
            [TransformerEncoderLayer(**shape) for _ in range(config.num_encoder_layers)]
        )
        self.decoder_layers = nn.ModuleList(
            [TransformerDecoderLayer(**shape) for _ in range(config.num_decoder_layers)]
        )
        self.encoder_norm = LayerNorm(width) if config.norm_first else None
        self.decoder_norm = LayerNorm(width) if config.norm_first else None
        self.head = nn.Linear(width, config.tgt_vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform on every matrix (embeddings included); vectors keep their init."""
        for _, weight in self.named_parameters():
            if weight.ndim >= 2:
                nn.init.xavier_uniform_(weight)

    def embed(self, ids: Tensor, table: nn.Embedding) -> Tensor:
        """ids (B, T) → dropout(E[ids]·√d_model + PE[0 … T−1]) (B, T, d_model)."""
        scaled = table(ids) * self.config.d_model**0.5  # (B, T, d_model)
        return self.dropout(self.positional(scaled))

    def encode(self, src: Tensor, src_padding_mask: Tensor | None = None) -> Tensor:
        """src (B, S) → memory (B, S, d_model)."""
        h = self.embed(src, self.src_embed)  # (B, S, d_model)
        for layer in self.encoder_layers:
            h = layer(h, src_key_padding_mask=src_padding_mask)
        return h if self.encoder_norm is None else self.encoder_norm(h)

    def decode(
        self,
        tgt: Tensor,
        memory: Tensor,
        src_padding_mask: Tensor | None = None,
        tgt_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """tgt (B, T), memory (B, S, d_model) → logits (B, T, tgt_vocab_size)."""
        h = self.embed(tgt, self.tgt_embed)  # (B, T, d_model)
        causal = _not_later(tgt.shape[1], tgt.shape[1], tgt.device)  # (T, T)
        for layer in self.decoder_layers:
            h = layer(
                h,
                memory,
                tgt_mask=causal,
                tgt_key_padding_mask=tgt_padding_mask,
                memory_key_padding_mask=src_padding_mask,
            )
        if self.decoder_norm is not None:
            h = self.decoder_norm(h)
        return self.head(h)  # (B, T, V)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_padding_mask: Tensor | None = None,
        tgt_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """decode(tgt, encode(src)) with the masks."""
        memory = self.encode(src, src_padding_mask)
        return self.decode(tgt, memory, src_padding_mask, tgt_padding_mask)


# ---- 6.8 Decoding and BLEU ----


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode inside, the caller's mode (train or eval) back afterwards, even on errors."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def greedy_decode(
    model: Seq2SeqTransformer,
    src: Tensor,
    max_len: int,
    bos: int,
    eos: int,
    src_padding_mask: Tensor | None = None,
) -> Tensor:
    """src (B, S) → (B, 1 + n): bos, then the argmax token after every prefix, eos-filled."""
    with _evaluating(model):
        memory = model.encode(src, src_padding_mask)  # (B, S, d_model)
        rows = src.shape[0]
        # one buffer pre-filled with eos: a finished row needs no extra writes
        out = torch.full((rows, 1 + max_len), eos, dtype=torch.long, device=src.device)
        out[:, 0] = bos
        done = torch.zeros(rows, dtype=torch.bool, device=src.device)
        written = 0
        while written < max_len and not bool(done.all()):
            logits = model.decode(out[:, : written + 1], memory, src_padding_mask)[:, -1]  # (B, V)
            choice = logits.argmax(dim=-1)  # (B,)
            out[:, written + 1] = torch.where(done, torch.full_like(choice, eos), choice)
            done = done | (choice == eos)
            written += 1
        return out[:, : written + 1].clone()


def length_penalty_factor(length: int, alpha: float) -> float:
    """((5 + |Y|) / 6)^α."""
    if alpha == 0:
        return 1.0
    return math.exp(alpha * math.log((5 + length) / 6))


@dataclass
class _Hypothesis:
    tokens: list[int]
    log_prob: float

    def score(self, alpha: float) -> float:
        return self.log_prob / length_penalty_factor(len(self.tokens) - 1, alpha)


@torch.no_grad()
def beam_search(
    model: Seq2SeqTransformer,
    src: Tensor,
    beam_width: int,
    max_len: int,
    bos: int,
    eos: int,
    length_penalty: float = 0.0,
) -> list[tuple[Tensor, float]]:
    """Up to beam_width (tokens, log p) for one source, best GNMT score first."""
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    with _evaluating(model):
        memory = model.encode(src[None])  # (1, S, d_model)
        live = [_Hypothesis([bos], 0.0)]
        finished: list[_Hypothesis] = []
        for _ in range(max_len):
            if not live:
                break
            prefixes = torch.tensor([h.tokens for h in live], device=src.device)  # (n, t)
            logits = model.decode(prefixes, memory.expand(len(live), -1, -1))[:, -1]  # (n, V)
            totals = torch.tensor([h.log_prob for h in live], dtype=torch.float64)
            totals = totals[:, None] + F.log_softmax(logits.double(), dim=-1).cpu()  # (n, V)
            # the global top beam_width lies within every row's own top beam_width
            per_row = min(beam_width, totals.shape[1])
            row_best, row_tokens = totals.topk(per_row, dim=1)  # (n, per_row)
            keep = min(beam_width, row_best.numel())
            _, flat = row_best.flatten().topk(keep)
            survivors = []
            for k in flat.tolist():
                parent, slot = divmod(k, per_row)
                token = int(row_tokens[parent, slot])
                grown = _Hypothesis([*live[parent].tokens, token], float(row_best[parent, slot]))
                (finished if token == eos else survivors).append(grown)
            live = survivors
        pool = sorted(finished + live, key=lambda h: h.score(length_penalty), reverse=True)
        return [
            (torch.tensor(h.tokens, dtype=torch.long, device=src.device), h.log_prob)
            for h in pool[:beam_width]
        ]


def ngram_counts(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    """Occurrences of every run of n consecutive tokens."""
    items = list(tokens)
    return (
        Counter(zip(*(items[shift:] for shift in range(n)), strict=False)) if n > 0 else Counter()
    )


def _all_orders(tokens: Sequence[str], max_order: int) -> Counter[tuple[str, ...]]:
    """Every n-gram of orders 1 … max_order in one Counter (the key's length is its order)."""
    items = tuple(tokens)
    return Counter(
        items[start : start + order]
        for start in range(len(items))
        for order in range(1, min(max_order, len(items) - start) + 1)
    )


def corpus_bleu(
    hypotheses: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    max_order: int = 4,
    smooth: str = "exp",
) -> float:
    """100 · BP · geometric mean of the corpus-level clipped n-gram precisions."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if smooth not in ("exp", "none"):
        raise ValueError(f"smooth must be 'exp' or 'none', got {smooth!r}")
    matched = [0] * (max_order + 1)  # index = order
    possible = [0] * (max_order + 1)
    hyp_length = ref_length = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp_length += len(hyp)
        ref_length += len(ref)
        # Counter & Counter keeps min(count_hyp, count_ref) per n-gram: the clipping
        for gram, count in (_all_orders(hyp, max_order) & _all_orders(ref, max_order)).items():
            matched[len(gram)] += count
        for order in range(1, max_order + 1):
            possible[order] += max(len(hyp) - order + 1, 0)
    if hyp_length == 0 or sum(matched) == 0:
        return 0.0
    log_sum, halvings = 0.0, 0
    for order in range(1, max_order + 1):
        if possible[order] == 0:
            return 0.0
        if matched[order]:
            log_sum += math.log(matched[order]) - math.log(possible[order])
        elif smooth == "none":
            return 0.0
        else:
            halvings += 1
            log_sum -= halvings * math.log(2) + math.log(possible[order])
    brevity = 0.0 if hyp_length >= ref_length else 1.0 - ref_length / hyp_length
    return 100.0 * math.exp(brevity + log_sum / max_order)


# ---- 6.9 The selective scan ----


def _decays_and_drives(x: Tensor, delta: Tensor, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    """a = exp(Δ A), b = (Δ x) B: each step's affine map h ↦ a h + b, (B, L, D, N) each."""
    decay = torch.exp(delta[..., None] * A)  # (B, L, D, N)
    drive = (delta * x)[..., None] * B[:, :, None, :]  # (B, L, D, N)
    return decay, drive


def selective_scan_sequential(x: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """h_t = exp(Δ_t A) ⊙ h_{t−1} + (Δ_t x_t) B_t, y_t = C_t · h_t, one step at a time."""
    decay, drive = _decays_and_drives(x, delta, A, B)
    state = torch.zeros_like(drive[:, 0])  # (B, D, N)
    outputs = []
    for t in range(x.shape[1]):
        state = decay[:, t] * state + drive[:, t]
        outputs.append(torch.einsum("bdn,bn->bd", state, C[:, t]))  # (B, D)
    if not outputs:
        return x.new_zeros(x.shape)
    return torch.stack(outputs, dim=1)  # (B, L, D)


SCAN_CHUNK = 32


def combine(earlier: tuple[Tensor, Tensor], later: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """(a₂, b₂) ∘ (a₁, b₁) = (a₂ a₁, a₂ b₁ + b₂): `earlier` first, then `later`."""
    a_first, b_first = earlier
    a_then, b_then = later
    return a_then * a_first, torch.addcmul(b_then, a_then, b_first)


def _interleave(evens: Tensor, odds: Tensor) -> Tensor:
    """Positions 0, 2, 4, … from evens and 1, 3, … from odds, along dim 0."""
    pairs = odds.shape[0]
    woven = torch.stack((evens[:pairs], odds), dim=1).flatten(0, 1)
    return torch.cat((woven, evens[pairs:]), dim=0)


def _odd_even_scan(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Inclusive scan along dim 0 by odd–even recursion: combine neighbours, scan the pairs,
    then fill in the even positions. Work O(L), depth 2 log₂ L."""
    length = a.shape[0]
    if length <= 1:
        return a.clone(), b.clone()
    pairs = length // 2
    pair_a, pair_b = combine((a[0 : 2 * pairs : 2], b[0 : 2 * pairs : 2]), (a[1::2], b[1::2]))
    odd_a, odd_b = _odd_even_scan(pair_a, pair_b)  # the prefixes ending at 2j + 1
    # the prefix ending at 2j (j ≥ 1) is the one ending at 2j − 1 followed by step 2j
    tail_a, tail_b = combine(
        (odd_a[: (length - 1) // 2], odd_b[: (length - 1) // 2]), (a[2::2], b[2::2])
    )
    even_a = torch.cat((a[:1], tail_a), dim=0)
    even_b = torch.cat((b[:1], tail_b), dim=0)
    return _interleave(even_a, odd_a), _interleave(even_b, odd_b)


def inclusive_scan(a: Tensor, b: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Position t ← steps 0 … t combined along dim (any associative bracketing gives it)."""
    scanned_a, scanned_b = _odd_even_scan(a.movedim(dim, 0), b.movedim(dim, 0))
    return scanned_a.movedim(0, dim), scanned_b.movedim(0, dim)


def selective_scan_parallel(
    x: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int = SCAN_CHUNK
) -> Tensor:
    """The scan in chunks: scan inside every chunk, scan the chunk totals, carry them in."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    batch, length = x.shape[:2]
    decay, drive = _decays_and_drives(x, delta, A, B)  # (B, L, D, N)
    n_chunks = -(-length // chunk)
    spare = n_chunks * chunk - length
    # identity steps (a = 1, b = 0) fill the last chunk
    decay = F.pad(decay, (0, 0, 0, 0, 0, spare), value=1.0)
    drive = F.pad(drive, (0, 0, 0, 0, 0, spare), value=0.0)
    grid = (batch, n_chunks, chunk, *decay.shape[2:])
    local_a, local_b = inclusive_scan(decay.reshape(grid), drive.reshape(grid), dim=2)
    _, ends = inclusive_scan(local_a[:, :, -1], local_b[:, :, -1], dim=1)  # (B, n_chunks, D, N)
    incoming = F.pad(ends[:, :-1], (0, 0, 0, 0, 1, 0))  # the state before each chunk
    states = torch.addcmul(local_b, local_a, incoming[:, :, None])  # (B, n_chunks, chunk, D, N)
    states = states.flatten(1, 2)[:, :length]  # (B, L, D, N)
    return torch.einsum("bldn,bln->bld", states, C)


# ---- 6.10 Mamba ----


def _silu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(x)


def _softplus(x: Tensor) -> Tensor:
    """log(1 + eˣ) without overflow."""
    return torch.logaddexp(x, torch.zeros_like(x))


class MambaBlock(nn.Module):
    """Gated selective-SSM mixer; forward over a sequence, step one token recurrently."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
    ) -> None:
        super().__init__()
        width = expand * d_model
        self.d_state, self.d_conv, self.d_inner = d_state, d_conv, width
        self.dt_rank = math.ceil(d_model / 16) if dt_rank is None else dt_rank
        self.in_proj = nn.Linear(d_model, 2 * width, bias=False)
        self.conv1d = nn.Conv1d(width, width, d_conv, groups=width)
        self.x_proj = nn.Linear(width, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, width)
        self.A_log = nn.Parameter(torch.empty(width, d_state))
        self.D = nn.Parameter(torch.empty(width))
        self.out_proj = nn.Linear(width, d_model, bias=False)
        self.dt_min, self.dt_max = dt_min, dt_max
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """A_log[e, n] = log(n + 1); D = 1; dt_proj.bias = softplus⁻¹(log-uniform in [min, max])."""
        rungs = torch.arange(
            1, self.d_state + 1, dtype=self.A_log.dtype, device=self.A_log.device
        )  # (N,)
        self.A_log.copy_(rungs.log().expand_as(self.A_log))
        self.D.fill_(1.0)
        low, high = math.log(self.dt_min), math.log(self.dt_max)
        step = torch.empty_like(self.dt_proj.bias).uniform_(low, high).exp()  # (E,)
        self.dt_proj.bias.copy_(step + torch.log(-torch.expm1(-step)))

    def selective_parameters(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """x (..., E) → Δ (..., E), A (E, N), B (..., N), C (..., N)."""
        low_rank, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = _softplus(self.dt_proj(low_rank))  # (..., E)
        return delta, -self.A_log.exp(), B, C

    def _kernel(self) -> Tensor:
        return self.conv1d.weight[:, 0, :]  # (E, d_conv)

    def _conv_bias(self, like: Tensor) -> Tensor:
        return like.new_zeros(()) if self.conv1d.bias is None else self.conv1d.bias

    def _mix(self, x: Tensor, z: Tensor, y_ssm: Tensor) -> Tensor:
        """out_proj((y + D ⊙ x) ⊙ SiLU(z))."""
        return self.out_proj((y_ssm + self.D * x) * _silu(z))

    def forward(self, u: Tensor) -> Tensor:
        """u (B, L, d_model) → (B, L, d_model), causal."""
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, L, E) each
        padded = F.pad(x, (0, 0, self.d_conv - 1, 0))  # (B, L + d_conv − 1, E)
        windows = padded.unfold(1, self.d_conv, 1)  # (B, L, E, d_conv): inputs t − d_conv + 1 … t
        x = _silu((windows * self._kernel()).sum(-1) + self._conv_bias(x))  # (B, L, E)
        delta, A, B, C = self.selective_parameters(x)
        return self._mix(x, z, selective_scan_parallel(x, delta, A, B, C))

    def step(
        self, u: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """u (B, d_model) → (B, d_model) and the new (conv (B, E, d_conv − 1), ssm (B, E, N))."""
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, E) each
        if state is None:
            recent = x.new_zeros(x.shape[0], self.d_inner, self.d_conv - 1)
            h = x.new_zeros(x.shape[0], self.d_inner, self.d_state)
        else:
            recent, h = state
        window = torch.cat((recent, x[:, :, None]), dim=-1)  # (B, E, d_conv), oldest first
        x = _silu((window * self._kernel()).sum(-1) + self._conv_bias(x))  # (B, E)
        delta, A, B, C = self.selective_parameters(x)  # (B, E), (E, N), (B, N), (B, N)
        h = torch.exp(delta[..., None] * A) * h + (delta * x)[..., None] * B[:, None, :]
        y_ssm = torch.einsum("ben,bn->be", h, C)  # (B, E)
        return self._mix(x, z, y_ssm), (window[:, :, 1:].clone(), h)


@dataclass
class MambaConfig:
    vocab_size: int
    d_model: int = 64
    n_layer: int = 2
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | None = None


class MambaLayer(nn.Module):
    """x + mixer(norm(x))."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.norm = RMSNorm(config.d_model)
        self.mixer = MambaBlock(
            config.d_model, config.d_state, config.d_conv, config.expand, config.dt_rank
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mixer(self.norm(x))

    def step(self, x: Tensor, state=None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        change, state = self.mixer.step(self.norm(x), state)
        return x + change, state


class MambaLM(nn.Module):
    """Embedding, residual Mamba layers, norm_f and a head tied to the embedding."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList([MambaLayer(config) for _ in range(config.n_layer)])
        self.norm_f = RMSNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lm_head.weight = self.embedding.weight
        nn.init.normal_(self.embedding.weight, mean=0.0, std=0.02)

    def forward(self, idx: Tensor) -> Tensor:
        """idx (B, T) → logits (B, T, V)."""
        h = self.embedding(idx)  # (B, T, C)
        for layer in self.layers:
            h = layer(h)
        return self.lm_head(self.norm_f(h))

    def step(self, idx: Tensor, states: list | None = None) -> tuple[Tensor, list]:
        """idx (B,) → (logits (B, V), one new state per layer)."""
        if states is None:
            states = [None] * len(self.layers)
        elif len(states) != len(self.layers):
            raise ValueError(f"{len(states)} states for {len(self.layers)} layers")
        h = self.embedding(idx)  # (B, C)
        renewed = []
        for layer, state in zip(self.layers, states, strict=True):
            h, state = layer.step(h, state)
            renewed.append(state)
        return self.lm_head(self.norm_f(h)), renewed


# ---- 6.11 Sentiment classification ----


class SentimentClassifier(nn.Module):
    """Mamba layers, norm_f, the state at each row's last real token, dropout, a linear head."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        n_layer: int = 2,
        num_classes: int = 2,
        d_state: int = 16,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        config = MambaConfig(vocab_size, d_model, n_layer, d_state)
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList([MambaLayer(config) for _ in range(n_layer)])
        self.norm_f = RMSNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, mean=0.0, std=0.02)

    def forward(self, idx: Tensor, lengths: Tensor) -> Tensor:
        """idx (B, T), lengths (B,) → logits (B, num_classes)."""
        # trailing padding never reaches a real token through causal layers: skip it
        idx = idx[:, : int(lengths.max())] if lengths.numel() else idx
        h = self.embedding(idx)  # (B, T', C)
        for layer in self.layers:
            h = layer(h)
        h = self.norm_f(h)
        last = F.one_hot(lengths - 1, idx.shape[1]).to(h.dtype)  # (B, T'), a 1 at lengths_b - 1
        pooled = torch.einsum("bt,btc->bc", last, h)  # (B, C)
        return self.head(self.drop(pooled))
