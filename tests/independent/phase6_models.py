"""Phase 6 (sections 6.1 – 6.6), written independently of the reference from the stubs alone.

Other routes than the obvious ones: BPE training keeps its pair counts in buckets by count (the
top count only falls, so a pointer walks down) instead of a heap; encoding caches each piece;
encode_iterable commits text by where the special-token scan is final; the causal mask is built
by comparing positions; top-p measures the mass before a token by a shifted cumulative sum;
GPT-2's init goes by parameter name; the RNG states travel as tensors and dicts (NumPy's
non-legacy state); checkpoints copy every tensor so a kept state_dict never drifts.
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
from torch import Tensor, nn
from tqdm import tqdm

from .phase2_attention import scaled_dot_product_attention
from .phase3_optim import clip_grad_norm_, cross_entropy
from .phase4_blocks import GELU, LayerNorm, PositionwiseFeedForward

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
