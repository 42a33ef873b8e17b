"""Phase 6 — Full models in PyTorch.

Everything so far comes together: tokenizers that turn text into ids, a GPT built on your own
phase-2 attention and phase-4 blocks, sampling and a KV cache, and a Trainer that uses your
phase-3 optimizers, schedules and clipping. At the end of this phase you have trained a language
model written entirely by your own hand. Read curriculum.md §6 alongside.

Conventions used throughout:
- Batch first: token ids are (B, T) int64, activations (B, T, C).
- Boolean attention masks mean True = MAY ATTEND, as in phases 2 and 4.
- Parameter names follow nanoGPT / PyTorch where a counterpart exists, so tests can copy weights.
- Nothing casts: float32 in, float32 out; float64 in, float64 out.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import math
import os
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from .phase2_attention import (
    SinusoidalPositionalEncoding,
    masked_softmax,
    scaled_dot_product_attention,
)
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
    """A character-level tokenizer (字符级分词器): one id per distinct character.

        tok = CharTokenizer.fit(text)           # vocabulary: sorted(set(text))
        ids = tok.encode("to be")               # list[int], ids in [0, tok.vocab_size)
        tok.decode(ids) == "to be"
        tok.save("chars.json"); CharTokenizer.load("chars.json")  # the same ids

    The id of a character is its position in `chars`, the vocabulary in code-point order, so a
    text always gets the same ids. Unknown characters (not in `chars`): with unk=None encode
    raises ValueError naming the first one and its index in the text; with a one-character unk
    (which belongs to the vocabulary: fit adds it), each unknown character encodes to unk's id.
    decode raises ValueError for an id outside [0, vocab_size); decode(encode(s)) == s
    whenever s has no unknown character.
    """

    def __init__(self, chars: Iterable[str], unk: str | None = None) -> None:
        """A tokenizer with vocabulary `chars` (distinct characters, in id order)."""
        # BEGIN SOLUTION hard
        self.chars = list(chars)
        self.unk = unk
        self.index = {c: i for i, c in enumerate(self.chars)}  # character → id
        if len(self.index) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("chars must be distinct single characters")
        if unk is not None and unk not in self.index:
            raise ValueError(f"unk {unk!r} is not in the vocabulary")
        # END SOLUTION

    @classmethod
    def fit(cls, text: str, unk: str | None = None) -> CharTokenizer:
        """The tokenizer whose vocabulary is every character of text (and unk), sorted."""
        # BEGIN SOLUTION
        chars = set(text) if unk is None else set(text) | {unk}
        return cls(sorted(chars), unk)
        # END SOLUTION

    @property
    def vocab_size(self) -> int:
        """The number of ids: len(chars)."""
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """The id of every character of text, unknown ones by the policy above."""
        # BEGIN SOLUTION
        # HINT: a dict lookup per character; dict.get(c, default) for the unk policy.
        # KEEP guided
        if self.unk is not None:
        # END KEEP
            unk_id = self.index[self.unk]
            return [self.index.get(c, unk_id) for c in text]
        try:
            return [self.index[c] for c in text]
        except KeyError:
            position = next(i for i, c in enumerate(text) if c not in self.index)
            raise ValueError(
                f"character {text[position]!r} at index {position} is not in the vocabulary"
            ) from None
        # END SOLUTION

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ids: "".join(chars[i] for i in ids)."""
        # BEGIN SOLUTION
        # KEEP guided
        pieces = []
        for i in ids:
        # END KEEP
            if not 0 <= i < len(self.chars):
                raise ValueError(f"id {i} is outside the vocabulary [0, {len(self.chars)})")
            pieces.append(self.chars[i])
        return "".join(pieces)
        # END SOLUTION

    def save(self, path: str | Path) -> None:
        """Write the vocabulary and unk to `path` as JSON; load(path) restores them."""
        # BEGIN SOLUTION
        # HINT: json.dumps escapes every non-ASCII character, so the file is plain ASCII.
        Path(path).write_text(json.dumps({"chars": self.chars, "unk": self.unk}))
        # END SOLUTION

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """The tokenizer that save(path) wrote."""
        # BEGIN SOLUTION
        # KEEP guided
        state = json.loads(Path(path).read_text())
        # END KEEP
        return cls(state["chars"], state["unk"])
        # END SOLUTION


# GPT-2's pre-tokenizer without its English contractions, in the standard library's `re`: a run
# of letters, of digits or of other symbols, each with an optional leading space, or a run of
# whitespace (whose last space joins the next word). Every character falls in one piece, and
# BPE never merges across pieces, so "dog" and " dog" are learned once however often they occur.
PRETOKENIZE = re.compile(r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")


def split_special_tokens(text: str, special_tokens: Sequence[str]) -> list[str]:
    """text cut at every special token: [ordinary, special, ordinary, …, ordinary].

    Even positions hold the ordinary text between special tokens (possibly ""), odd positions
    the special tokens themselves; where two special tokens overlap the longer one wins.
    """
    if not special_tokens:
        return [text]
    longest_first = sorted(special_tokens, key=len, reverse=True)
    return re.split("(" + "|".join(map(re.escape, longest_first)) + ")", text)


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """ids with every occurrence of `pair` replaced by new_id, left to right, non-overlapping.

    merge_pair([97, 97, 97, 98], (97, 97), 256) == [256, 97, 98].
    """
    # BEGIN SOLUTION
    # KEEP guided
    merged, i = [], 0
    while i < len(ids):
    # END KEEP
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged
    # END SOLUTION


def train_bpe(
    text: str, vocab_size: int, special_tokens: Sequence[str] = ()
) -> list[tuple[int, int]]:
    """Learn byte-level BPE (字节对编码) merges from text; returns the merges in learned order.

    Ids: 0–255 are the bytes; merge k makes id 256 + k from the pair merges[k]; the special
    tokens take the ids after the merges, in the order given. So
        vocab_size = 256 + len(merges) + len(special_tokens).
    The corpus is text cut at the special tokens (their bytes are never counted or merged), each
    part cut into PRETOKENIZE pieces, each piece the list of its UTF-8 bytes. Step k merges the
    most frequent adjacent pair of ids over the corpus as merged so far,
        merges[k] = argmax over (a, b) of  Σ_pieces #{i : piece[i] = a, piece[i + 1] = b},
    counted at every position (so [a, a, a] holds (a, a) twice), and replaces it by 256 + k with
    merge_pair. Ties go to the smallest pair: (97, 98) before (256, 97) before (256, 98).
    Training stops early when no piece has two ids left. Raises ValueError if
    vocab_size < 256 + len(special_tokens).

    Efficient: each distinct piece is stored once with its frequency, the pair counts are built
    once, and a merge recounts only the pieces that hold its pair.
    """
    # BEGIN SOLUTION
    # HINT: a heap of (−count, pair) pops the most frequent pair, ties to the smallest pair;
    # HINT: push a fresh entry whenever a count changes and skip popped entries that are stale.
    # KEEP guided
    if vocab_size < 256 + len(special_tokens):
    # END KEEP
        raise ValueError(
            f"vocab_size {vocab_size} leaves no room for 256 bytes and "
            f"{len(special_tokens)} special tokens"
        )
    # KEEP guided
    frequency = Counter(
        piece.encode("utf-8")
        for part in split_special_tokens(text, special_tokens)[::2]
        for piece in PRETOKENIZE.findall(part)
    )
    words = [list(piece) for piece in frequency]  # each distinct piece once, as ids
    weights = list(frequency.values())  # how often each piece occurs in text
    counts: Counter[tuple[int, int]] = Counter()  # pair → occurrences in the corpus
    holders: defaultdict[tuple[int, int], set[int]] = defaultdict(set)  # pair → words with it
    for w, ids in enumerate(words):
        for pair in pairwise(ids):
    # END KEEP
            counts[pair] += weights[w]
            holders[pair].add(w)
    heap = [(-count, pair) for pair, count in counts.items()]  # the top is merged next
    heapq.heapify(heap)
    # KEEP guided
    merges: list[tuple[int, int]] = []
    while len(merges) < vocab_size - 256 - len(special_tokens):
    # END KEEP
        while heap and counts[heap[0][1]] != -heap[0][0]:
            heapq.heappop(heap)  # stale: the pair's count has changed since it was pushed
        if not heap:
            break  # no piece has two ids left
        pair = heapq.heappop(heap)[1]
        # KEEP guided
        new_id = 256 + len(merges)
        merges.append(pair)
        changed = set()
        for w in holders.pop(pair):
            old, new = words[w], merge_pair(words[w], pair, new_id)
            for p in pairwise(old):
        # END KEEP
                counts[p] -= weights[w]
                changed.add(p)
            # KEEP guided
            for p in pairwise(new):
            # END KEEP
                counts[p] += weights[w]
                holders[p].add(w)
                changed.add(p)
            # KEEP guided
            words[w] = new
        for p in changed:  # a fresh entry for every count that changed
        # END KEEP
            if counts[p] > 0:
                heapq.heappush(heap, (-counts[p], p))
    return merges
    # END SOLUTION


class BPETokenizer:
    """A byte-level BPE tokenizer: encode text to ids and back with the merges train_bpe learned.

        tok = BPETokenizer.train(text, vocab_size=1024, special_tokens=["<|endoftext|>"])
        ids = tok.encode("To be, or not<|endoftext|>")      # list[int]
        tok.decode(ids) == "To be, or not<|endoftext|>"
        tok.encode_iterable(open("big.txt"))               # the same ids, lazily
        tok.save("bpe.json"); BPETokenizer.load("bpe.json")  # the same encodings

    Ids as in train_bpe: bytes 0–255, merge k → 256 + k, then the special tokens. encode cuts
    text at the special tokens (each becomes its one id, never split or merged; the longer wins
    where two overlap), cuts the rest into PRETOKENIZE pieces, and in each piece applies the
    merges in the order they were learned. decode joins the bytes of the ids and decodes them as
    UTF-8, replacing invalid bytes by U+FFFD, so it never raises for ids in [0, vocab_size);
    an id outside raises ValueError. Raises ValueError for a merge that names an id not yet
    defined, a pair merged twice, and special tokens that are empty or repeated.
    """

    def __init__(self, merges: Sequence[tuple[int, int]], special_tokens: Sequence[str] = ()):
        """A tokenizer from learned merges (pairs of ids, in order) and special tokens."""
        # BEGIN SOLUTION
        # KEEP guided
        self.merges = [(int(a), int(b)) for a, b in merges]
        self.special_tokens = list(special_tokens)
        # END KEEP
        if len(set(self.special_tokens)) != len(self.special_tokens) or "" in special_tokens:
            raise ValueError("special tokens must be distinct and non-empty")
        # KEEP guided
        self.vocab = [bytes([b]) for b in range(256)]  # id → the bytes it stands for
        for k, (a, b) in enumerate(self.merges):
        # END KEEP
            if not (0 <= a < 256 + k and 0 <= b < 256 + k):
                raise ValueError(f"merge {k}, {(a, b)}, names an id not defined before it")
            self.vocab.append(self.vocab[a] + self.vocab[b])
        # KEEP guided
        self.special_ids = {s: len(self.vocab) + i for i, s in enumerate(self.special_tokens)}
        self.vocab += [s.encode("utf-8") for s in self.special_tokens]
        # END KEEP
        self.ranks = {pair: k for k, pair in enumerate(self.merges)}  # pair → when it was learned
        if len(self.ranks) != len(self.merges):
            raise ValueError("a pair is merged twice: each pair can only be merged once")
        # END SOLUTION

    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: Sequence[str] = ()) -> BPETokenizer:
        """The tokenizer of train_bpe(text, vocab_size, special_tokens)."""
        return cls(train_bpe(text, vocab_size, special_tokens), special_tokens)

    @property
    def vocab_size(self) -> int:
        """256 + len(merges) + len(special_tokens)."""
        return 256 + len(self.merges) + len(self.special_tokens)

    def encode(self, text: str) -> list[int]:
        """The ids of text: special tokens whole, every other piece merged in training order."""
        # BEGIN SOLUTION
        return [i for piece in self._pieces(text) for i in self._encode_piece(piece)]
        # END SOLUTION

    def _pieces(self, text: str) -> list[str]:
        """text cut into its special tokens and the PRETOKENIZE pieces between them, in order."""
        # BEGIN SOLUTION
        # KEEP guided
        pieces = []
        # END KEEP
        for k, part in enumerate(split_special_tokens(text, self.special_tokens)):
            pieces += [part] if k % 2 else PRETOKENIZE.findall(part)
        return pieces
        # END SOLUTION

    def _encode_piece(self, piece: str) -> list[int]:
        """The ids of one piece: a special token's id, or its bytes merged in training order."""
        # BEGIN SOLUTION
        # HINT: in a piece, the pair learned first (lowest rank) is the one training merged first.
        # KEEP guided
        if piece in self.special_ids:
        # END KEEP
            return [self.special_ids[piece]]
        # KEEP guided
        ids = list(piece.encode("utf-8"))
        while len(ids) > 1:
        # END KEEP
            pair = min(pairwise(ids), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break  # no pair of this piece was ever merged
            ids = merge_pair(ids, pair, 256 + self.ranks[pair])
        return ids
        # END SOLUTION

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ids; invalid UTF-8 (e.g. half a character) becomes U+FFFD."""
        # BEGIN SOLUTION
        # HINT: join the bytes of all ids first: one character may span several tokens.
        # KEEP guided
        chunks = []
        for i in ids:
        # END KEEP
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"id {i} is outside the vocabulary [0, {len(self.vocab)})")
            chunks.append(self.vocab[i])
        return b"".join(chunks).decode("utf-8", errors="replace")
        # END SOLUTION

    def encode_iterable(self, chunks: Iterable[str]) -> Iterator[int]:
        """The ids of "".join(chunks), yielded as the chunks arrive (e.g. the lines of a file).

        Equal to encode("".join(chunks)). Memory stays bounded by a chunk plus the text held
        back at its end — the last piece, which the next chunk may still extend (" d" + "og"),
        and a possible start of a special token — not by the length of the stream.
        """
        # BEGIN SOLUTION
        # HINT: keep a buffer; encode and drop only the pieces that more text cannot change.
        longest = max(map(len, self.special_tokens), default=1)
        # KEEP guided
        held = ""
        for chunk in chunks:
            held += chunk
        # END KEEP
            pieces = self._pieces(held)[:-1]
            done = sum(map(len, pieces))
            while pieces and done > len(held) - (longest - 1):  # may hold a cut special token
                done -= len(pieces.pop())
            # KEEP guided
            for piece in pieces:
                yield from self._encode_piece(piece)
            held = held[done:]
            # END KEEP
        yield from self.encode(held)
        # END SOLUTION

    def save(self, path: str | Path) -> None:
        """Write the merges and special tokens to `path` as JSON; load(path) restores them."""
        # BEGIN SOLUTION
        Path(path).write_text(
            json.dumps({"merges": self.merges, "special_tokens": self.special_tokens})
        )
        # END SOLUTION

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """The tokenizer that save(path) wrote."""
        # BEGIN SOLUTION
        # KEEP guided
        state = json.loads(Path(path).read_text())
        # END KEEP
        return cls([tuple(pair) for pair in state["merges"]], state["special_tokens"])
        # END SOLUTION


# ---- 6.2 GPT ----


@dataclass
class GPTConfig:
    """The size of a GPT. The defaults are nanoGPT's CPU Shakespeare model."""

    vocab_size: int = 65
    block_size: int = 64  # the longest context: position embeddings exist for 0 … block_size − 1
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in the Linear layers and LayerNorms (GPT-2 has them)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention on your phase-2 scaled_dot_product_attention.

    c_attn = nn.Linear(C, 3C) computes q, k, v at once (rows 0…C−1 give q, then k, then v);
    c_proj = nn.Linear(C, C) mixes the heads; in training mode config.dropout drops attention
    weights (dropout_p) and the output (resid_dropout). Token t attends to tokens 0 … t. With a
    KVCache, x holds only the new tokens: their keys and values go to the cache's slot `layer`
    (the block's index), and their queries attend to every cached token too. n_embd must be a
    multiple of n_head (ValueError otherwise).
    """

    def __init__(self, config: GPTConfig, layer: int = 0) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd {config.n_embd} is not divisible by n_head {config.n_head}")
        self.n_head, self.layer, self.dropout = config.n_head, layer, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        # END SOLUTION

    def forward(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """x (B, T, C) → (B, T, C)."""
        # BEGIN SOLUTION
        # HINT: split c_attn's output into q, k, v, then each into heads: (B, nh, T, hs).
        # HINT: with a cache, query i of the new tokens sits at position start + i: it may see
        # HINT: keys 0 … start + i, a causal mask shifted right by start (tril(diagonal=start)).
        # KEEP guided
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 × (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        dropout_p = self.dropout if self.training else 0.0
        if kv_cache is None:
        # END KEEP
            y, _ = scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        # KEEP guided
        else:
            start = kv_cache.length
            k, v = kv_cache.update(self.layer, k, v)  # (B, nh, start + T, hs)
        # END KEEP
            mask = None
            if T > 1:  # a single new token may attend to everything cached
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(start)
            y, _ = scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p)
        # KEEP guided
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): the heads side by side again
        # END KEEP
        return self.resid_dropout(self.c_proj(y))
        # END SOLUTION


class Block(nn.Module):
    """A pre-norm Transformer block (GPT-2): x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)).

    ln_1, ln_2 = your phase-4 LayerNorm(C, bias=config.bias); attn = CausalSelfAttention;
    mlp = your phase-4 PositionwiseFeedForward(C, 4C, dropout, activation=GELU("tanh"), bias),
    whose linear2 is the block's second residual projection.
    """

    def __init__(self, config: GPTConfig, layer: int = 0) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        # GPT-2 uses the tanh approximation of GELU
        self.mlp = PositionwiseFeedForward(config.n_embd, 4 * config.n_embd, config.dropout,
                                           activation=GELU("tanh"), bias=config.bias)
        # END SOLUTION

    def forward(self, x: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """x (B, T, C) → (B, T, C)."""
        # BEGIN SOLUTION
        x = x + self.attn(self.ln_1(x), kv_cache)  # (B, T, C)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)
        # END SOLUTION


class GPT(nn.Module):
    """A decoder-only Transformer language model (GPT-2 layout, as nanoGPT).

    wte = nn.Embedding(V, C) (tokens), wpe = nn.Embedding(block_size, C) (positions), drop,
    h = nn.ModuleList of n_layer Blocks, ln_f = LayerNorm(C), lm_head = nn.Linear(C, V,
    bias=False) whose weight IS wte.weight (weight tying: one tensor, trained by both uses).

    Init (GPT-2): every Linear and Embedding weight ~ N(0, 0.02²), biases 0, LayerNorms 1 and 0;
    the residual projections (attn.c_proj.weight and mlp.linear2.weight of every block) ~
    N(0, (0.02/√(2·n_layer))²), so that the 2·n_layer residual additions keep the stream's
    variance O(1) at init.
    forward(idx (B, T) int64, targets (B, T) or None) → (logits (B, T, V), loss or None), loss
    the mean cross-entropy (your phase-3 cross_entropy; targets −100 are ignored). T must be at
    most block_size (ValueError otherwise).
    """

    def __init__(self, config: GPTConfig) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config, layer) for layer in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # END SOLUTION
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Tie the head to the token embedding and initialise as GPT-2 (see the class docstring)."""
        # BEGIN SOLUTION
        # HINT: tie by assigning the Parameter itself: lm_head.weight = wte.weight.
        # HINT: the residual projections are the Linears whose output is added to the stream.
        self.lm_head.weight = self.wte.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        # KEEP guided
        for block in self.h:
        # END KEEP
            nn.init.normal_(block.attn.c_proj.weight, std=residual_std)
            nn.init.normal_(block.mlp.linear2.weight, std=residual_std)
        # END SOLUTION

    def forward(self, idx: Tensor, targets: Tensor | None = None,
                kv_cache: KVCache | None = None) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) → (logits (B, T, V), mean cross-entropy against targets, or None).

        With a kv_cache, idx holds the tokens after the kv_cache.length cached ones: they sit at
        positions kv_cache.length … kv_cache.length + T − 1, and the cache grows by T.
        """
        # BEGIN SOLUTION
        # KEEP guided
        B, T = idx.shape
        start = 0 if kv_cache is None else kv_cache.length
        if start + T > self.config.block_size:
        # END KEEP
            raise ValueError(f"positions up to {start + T} exceed block_size "
                             f"{self.config.block_size}")
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        # KEEP guided
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.h:
            x = block(x, kv_cache)  # (B, T, C)
        if kv_cache is not None:
            kv_cache.length += T
        # END KEEP
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        # KEEP guided
        if targets is None:
        # END KEEP
            return logits, None
        return logits, cross_entropy(logits.flatten(0, 1), targets.flatten())
        # END SOLUTION

    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 generator: torch.Generator | None = None, use_cache: bool = True) -> Tensor:
        """The module-level generate(self, …) below: idx (B, T) → (B, T + max_new_tokens)."""
        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, generator,
                        use_cache)


# ---- 6.3 Sampling ----


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """logits (B, V) with every token outside the top-k / top-p (nucleus) set set to −inf.

    top_k: keep exactly the k largest logits of each row (ties broken as torch.topk does).
    top_p: with p = softmax(logits) sorted in decreasing order, keep the smallest prefix whose
    mass is ≥ top_p — token i stays when the mass strictly before it is < top_p, so the most
    likely token always stays. Both given: top-k first, then top-p on what is left.
    Returns a new tensor; the input is not changed.
    """
    # BEGIN SOLUTION
    # HINT: torch.topk(logits, k).indices are the k to keep: scatter True there into a mask.
    # HINT: for top-p, sort, softmax, cumsum; "mass before token i" is the cumsum minus p_i.
    # KEEP guided
    if top_k is not None:
    # END KEEP
        top = torch.topk(logits, min(top_k, logits.shape[-1])).indices  # (B, k): the last dim
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top, True)  # (B, V)
        logits = logits.masked_fill(~keep, float("-inf"))
    # KEEP guided
    if top_p is not None:
        sorted_logits, order = logits.sort(descending=True)  # (B, V), each row sorted
        probs = masked_softmax(sorted_logits)  # (B, V)
    # END KEEP
        before = probs.cumsum(dim=-1) - probs  # (B, V): the mass of the more likely tokens
        drop_sorted = before >= top_p
        # KEEP guided
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
        # END KEEP
    return logits
    # END SOLUTION


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """One token per row from logits (B, V) → (B, 1) int64.

    temperature 0 is greedy: the argmax. Otherwise sample from softmax(filter_logits(logits /
    temperature, top_k, top_p)) with torch.multinomial(…, generator=generator): the same
    generator state gives the same tokens.
    """
    # BEGIN SOLUTION
    # HINT: temperature divides the logits *before* the softmax: T < 1 sharpens, T > 1 flattens.
    # KEEP guided
    if temperature == 0:
    # END KEEP
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    logits = filter_logits(logits / temperature, top_k, top_p)  # (B, V)
    probs = masked_softmax(logits)  # (B, V)
    # KEEP guided
    return torch.multinomial(probs, 1, generator=generator)  # (B, 1)
    # END KEEP
    # END SOLUTION


@torch.no_grad()
def generate(model: GPT, idx: Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None,
             generator: torch.Generator | None = None, use_cache: bool = True) -> Tensor:
    """Append max_new_tokens tokens to idx (B, T), each drawn by sample_next from the model's
    logits at the last position; returns (B, T + max_new_tokens). Eval mode, no gradients; the
    model's mode is restored afterwards.

    The context is the last block_size tokens. use_cache=True runs the model once on the prompt
    (the prefill) and then on one new token at a time with a KVCache; use_cache=False reruns it
    on the whole (cropped) context for every token. At the block size the cache would need
    positions the model does not have: from then on it is rebuilt from the last block_size
    tokens at every step, so both ways give the same tokens at any length (the cache's speed-up
    ends at block_size).
    """
    # BEGIN SOLUTION
    # HINT: the prefill must leave room: crop the prompt to block_size, and start a new cache
    # HINT: (a prefill of the cropped context) whenever the next token would not fit; between
    # HINT: prefills the cache holds every token but the one sampled last.
    # KEEP guided
    was_training = model.training
    model.eval()
    block_size = model.config.block_size
    cache = None
    for _ in range(max_new_tokens):
    # END KEEP
        if not use_cache:
            logits, _ = model(idx[:, -block_size:])
        elif cache is None or cache.length == block_size:  # the prefill
            cache = KVCache(model.config.n_layer)
            logits, _ = model(idx[:, -block_size:], kv_cache=cache)
        else:  # the cache holds every token but the one sampled last
            logits, _ = model(idx[:, -1:], kv_cache=cache)
        # KEEP guided
        idx = torch.cat((idx, sample_next(logits[:, -1], temperature, top_k, top_p, generator)),
                        dim=1)  # (B, T + 1)
    model.train(was_training)
    # END KEEP
    return idx
    # END SOLUTION


# ---- 6.4 The KV cache ----


class KVCache:
    """The keys and values of every layer for the `length` tokens seen so far.

    keys[layer] and values[layer] are (B, nh, length, hs) tensors (None before the first token).
    CausalSelfAttention of layer l calls update(l, k, v) with the new tokens' keys and values;
    GPT.forward advances `length` by T after the last layer.
    """

    def __init__(self, n_layer: int) -> None:
        # BEGIN SOLUTION hard
        self.length = 0
        self.keys: list[Tensor | None] = [None] * n_layer
        self.values: list[Tensor | None] = [None] * n_layer
        # END SOLUTION

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append k, v (B, nh, T, hs) to the layer's cache; return all of them
        (B, nh, length + T, hs), oldest first."""
        # BEGIN SOLUTION
        # KEEP guided
        if self.keys[layer] is not None:
        # END KEEP
            k = torch.cat((self.keys[layer], k), dim=2)  # (B, nh, length + T, hs)
            v = torch.cat((self.values[layer], v), dim=2)  # (B, nh, length + T, hs)
        # KEEP guided
        self.keys[layer], self.values[layer] = k, v
        # END KEEP
        return k, v
        # END SOLUTION


# ---- 6.5 The Trainer ----


class EpochLoader:
    """Mini-batches of a dataset in a fresh random order every epoch — resumable mid-epoch.

    dataset: a tuple of tensors with the same first dimension (e.g. (inputs, targets)), or any
    object with __len__ and __getitem__(index tensor) → batch. Epoch e visits the examples in
    torch.randperm(len, generator seeded with seed + e) order (shuffle=False: in order), in
    batches of batch_size (the last, incomplete one dropped). With world_size > 1 (DDP), each
    step takes batch_size·world_size examples and rank r gets the r-th slice of batch_size.
    The order depends on (seed, epoch, position) only, never on the global RNG, so
    state_dict() = {"epoch", "position"} is all a checkpoint needs. ValueError when the dataset
    cannot fill one step's batch; batches keep the dataset's dtypes.
    """

    def __init__(self, dataset, batch_size: int, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1) -> None:
        # BEGIN SOLUTION hard
        self.dataset, self.batch_size, self.seed, self.shuffle = dataset, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.size = len(dataset[0]) if isinstance(dataset, tuple) else len(dataset)
        self.steps_per_epoch = self.size // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{self.size} examples cannot fill one batch of "
                             f"{batch_size * world_size}")
        self.epoch, self.position = 0, 0
        self._order: Tensor | None = None
        # END SOLUTION

    def order(self, epoch: int) -> Tensor:
        """The permutation of the examples that epoch `epoch` visits."""
        # BEGIN SOLUTION hard
        if not self.shuffle:
            return torch.arange(self.size)
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + epoch))
        # END SOLUTION

    def next_batch(self):
        """The next batch, moving to the next epoch after the last full batch of this one."""
        # BEGIN SOLUTION
        # HINT: this process's slice of step `position` starts at (position·world_size + rank)·
        # HINT: batch_size in the epoch's order; compute the order once per epoch.
        # KEEP guided
        if self.position == self.steps_per_epoch:
        # END KEEP
            self.epoch, self.position = self.epoch + 1, 0
        # KEEP guided
        if self.position == 0:
            self._order = self.order(self.epoch)
        # END KEEP
        start = (self.position * self.world_size + self.rank) * self.batch_size
        # KEEP guided
        indices = self._order[start:start + self.batch_size]
        self.position += 1
        if isinstance(self.dataset, tuple):
        # END KEEP
            return tuple(part[indices] for part in self.dataset)
        return self.dataset[indices]
        # END SOLUTION

    def state_dict(self) -> dict:
        """{"epoch", "position"}: where the next batch comes from."""
        # BEGIN SOLUTION
        return {"epoch": self.epoch, "position": self.position}
        # END SOLUTION

    def load_state_dict(self, state: dict) -> None:
        """Continue from a state_dict(): the next batch is the one it pointed at."""
        # BEGIN SOLUTION
        # KEEP guided
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        # END KEEP
        self._order = self.order(self.epoch)
        # END SOLUTION


def language_model_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, int]:
    """(summed cross-entropy, number of counted targets) of a (inputs, targets) batch.

    The model returns logits (B, T, V) or (logits, loss); targets (B, T), −100 = ignored. A
    SUM, not a mean: the Trainer divides by the token count of the whole accumulated batch.
    Under bf16 autocast the sum is taken in float32 (the loss is a float32 tensor).
    """
    # BEGIN SOLUTION
    # KEEP guided
    inputs, targets = batch
    logits = model(inputs)
    if isinstance(logits, tuple):
        logits = logits[0]
    if logits.dtype == torch.bfloat16:  # autocast: sum the losses in float32
    # END KEEP
        logits = logits.float()
    loss = cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    return loss, int((targets != -100).sum())
    # END SOLUTION


@dataclass
class TrainerConfig:
    """How the Trainer trains. Every *_every is in optimizer steps; 0 means never."""

    accumulation_steps: int = 1  # micro-batches per optimizer step
    max_grad_norm: float | None = 1.0  # clip the joint gradient norm (None: no clipping)
    bf16: bool = False  # run forward passes under torch.autocast("cpu", torch.bfloat16)
    eval_every: int = 0  # validation every so many steps (and after the last step)
    log_every: int = 1  # one log row every so many steps
    checkpoint_every: int = 0  # save checkpoint_path every so many steps (and after the last)
    log_path: str | None = None  # JSON Lines: one {"step", "loss", "lr", …} object per line
    checkpoint_path: str | None = None
    progress: bool = True  # a tqdm progress bar


class Trainer:
    """Trains any model with any optimizer (your phase-3 ones or torch.optim) and scheduler.

    One step (train_step): accumulation_steps micro-batches from train_loader, each forward
    (under bf16 autocast if asked) and backward of loss_fn's SUMMED loss; then every gradient
    is divided by the total number of counted tokens N of all the micro-batches, so that

        ∇ = (1/N) Σ_micro-batches Σ_tokens ∇ℓ = the gradient of the large batch's token mean

    (not the mean of per-micro-batch means, which weighs a short micro-batch's tokens more).
    Then clip (your phase-3 clip_grad_norm_), optimizer.step(), scheduler.step(), zero_grad.
    Under DDP (model a DistributedDataParallel, torch.distributed initialised) N is summed over
    the processes and the gradients all-reduced, so k processes equal one on the union batch.

    fit(steps) runs train_step until `step` reaches `steps`, with validation (evaluate()),
    JSONL logging, checkpoints and a tqdm bar as config says; history holds the log rows.
    A checkpoint (save_checkpoint) holds the model, optimizer, scheduler, every RNG, the loader
    position, the step and the history, written atomically; load_checkpoint restores all of
    it, so an interrupted run continues exactly — the same losses and bit-identical parameters
    — as if it had never stopped. Only rank 0 writes logs and checkpoints.
    """

    def __init__(self, model: nn.Module, optimizer, train_loader: EpochLoader,
                 scheduler=None, val_batches: list | None = None,
                 config: TrainerConfig | None = None,
                 loss_fn: Callable = language_model_loss) -> None:
        # BEGIN SOLUTION hard
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.train_loader, self.val_batches = train_loader, val_batches or []
        self.config = config or TrainerConfig()
        self.loss_fn = loss_fn
        self.step = 0
        self.history: list[dict] = []
        self.distributed = dist.is_available() and dist.is_initialized()
        self.is_main = not self.distributed or dist.get_rank() == 0
        # END SOLUTION

    @property
    def raw_model(self) -> nn.Module:
        """The model itself, unwrapped from DistributedDataParallel."""
        return getattr(self.model, "module", self.model)

    def parameters(self) -> list[Tensor]:
        """Every parameter the optimizer updates, in its groups' order."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _forward(self, batch) -> tuple[Tensor, int]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.bf16):
            return self.loss_fn(self.model, batch)

    def train_step(self) -> float:
        """One optimizer step over accumulation_steps micro-batches, with the model in training
        mode (model.train() first); returns the token-mean loss (0.0 when no target is counted:
        the gradients are then zero)."""
        # BEGIN SOLUTION
        # HINT: backpropagate each micro-batch's sum right away (its graph is freed), and scale
        # HINT: the accumulated gradients once at the end, when the total count is known.
        # KEEP guided
        self.model.train()
        total, count = 0.0, 0
        for micro in range(self.config.accumulation_steps):
            last = micro == self.config.accumulation_steps - 1
            # DDP all-reduces gradients in backward: only once, on the last micro-batch
            quiet = self.distributed and not last
            with self.model.no_sync() if quiet else contextlib.nullcontext():
                loss, n = self._forward(self.train_loader.next_batch())
        # END KEEP
                loss.backward()
            total, count = total + float(loss.detach()), count + n
        world = 1
        if self.distributed:  # the loss and token count of every process's micro-batches
            stats = torch.tensor([total, count], dtype=torch.float64)
            dist.all_reduce(stats)
            total, count, world = float(stats[0]), int(stats[1]), dist.get_world_size()
        # DDP averages gradients over the processes: multiplying by world makes that a sum
        scale = world / max(count, 1)
        # KEEP guided
        for p in self.parameters():
            if p.grad is not None:
                p.grad.mul_(scale)
        if self.config.max_grad_norm is not None:
            clip_grad_norm_(self.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad()  # set_to_none=True by default: the gradients are freed
        self.step += 1
        # END KEEP
        return total / max(count, 1)
        # END SOLUTION

    @torch.no_grad()
    def evaluate(self) -> float:
        """The token-mean loss over val_batches, in eval mode (train mode restored after); 0.0
        when they count no target."""
        # BEGIN SOLUTION
        # KEEP guided
        self.model.eval()
        total, count = 0.0, 0
        for batch in self.val_batches:
            loss, n = self._forward(batch)
        # END KEEP
            total, count = total + float(loss), count + n
        self.model.train()
        return total / max(count, 1)
        # END SOLUTION

    def fit(self, steps: int) -> list[dict]:
        """Train until self.step == steps (continuing from a loaded checkpoint); returns history.

        Log rows: {"step", "loss", "lr" (the first parameter group's, as the step used it),
        "seconds" (since this fit began)} every log_every steps, plus "val_loss" on validation
        steps; appended to history and (rank 0) to log_path as JSON Lines. The tqdm bar
        ("training", in steps) starts at self.step and shows the latest losses.
        """
        # BEGIN SOLUTION
        # KEEP guided
        config, started = self.config, time.monotonic()
        bar = tqdm(total=steps, initial=self.step, desc="training", unit="step",
                   disable=not (config.progress and self.is_main))
        while self.step < steps:
        # END KEEP
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this step uses
            # KEEP guided
            loss = self.train_step()
            done = self.step == steps
            row = {"step": self.step, "loss": loss, "lr": lr,
                   "seconds": time.monotonic() - started}
            # END KEEP
            if self.val_batches and config.eval_every and (self.step % config.eval_every == 0
                                                           or done):
                row["val_loss"] = self.evaluate()
            # KEEP guided
            if "val_loss" in row or self.step % config.log_every == 0 or done:
                self.history.append(row)
                self._log(row)
                bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k.endswith("loss")})
            # END KEEP
            if config.checkpoint_path and (done or config.checkpoint_every
                                           and self.step % config.checkpoint_every == 0):
                self.save_checkpoint(config.checkpoint_path)
            # KEEP guided
            bar.update(1)
        bar.close()
        # END KEEP
        return self.history
        # END SOLUTION

    def _log(self, row: dict) -> None:
        if self.config.log_path and self.is_main:
            with open(self.config.log_path, "a") as log:
                log.write(json.dumps(row) + "\n")

    def state_dict(self) -> dict:
        """trainer_state(self): what a resumed run needs."""
        return trainer_state(self)

    def load_state_dict(self, state: dict) -> None:
        """load_trainer_state(self, state): restore a state_dict() into this trainer."""
        load_trainer_state(self, state)

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """state_dict() to `path`, atomically (rank 0 only)."""
        if self.is_main:
            save_atomically(self.state_dict(), path)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """load_state_dict() from a file save_checkpoint wrote."""
        self.load_state_dict(torch.load(path, weights_only=True))


# ---- 6.6 Checkpoints and exact resumption ----


def save_atomically(obj, path: str | os.PathLike) -> None:
    """torch.save(obj, path) so that `path` always holds a whole checkpoint: write a temporary
    file next to it, flush and fsync it, then os.replace it onto `path` (atomic on POSIX) and
    fsync the directory. A crash at any moment leaves the old file or the new one, never half."""
    # BEGIN SOLUTION
    # HINT: the temporary file must be in the same directory: a rename across file systems is
    # HINT: a copy, not atomic.
    # KEEP guided
    path = Path(path)
    # END KEEP
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # KEEP guided
    try:
    # END KEEP
        with open(temporary, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    # KEEP guided
    finally:
        temporary.unlink(missing_ok=True)
    # END KEEP
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    # END SOLUTION


def rng_state() -> dict:
    """Every global random state: Python's random, NumPy's and torch's, as tensors and lists."""
    # BEGIN SOLUTION
    # KEEP guided
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    # END KEEP
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss]}
    # END SOLUTION


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() returned."""
    # BEGIN SOLUTION
    # KEEP guided
    kind, keys, position, has_gauss, gauss = state["numpy"]
    # END KEEP
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    torch.set_rng_state(state["torch"])
    # END SOLUTION


def trainer_state(trainer: Trainer) -> dict:
    """Everything a resumed run needs, as tensors, numbers, strings, lists and dicts: the model's
    state_dict, the optimizer (its per-parameter state by parameter index, and each group's
    hyperparameters), the scheduler (its state_dict(), or its __dict__ without the optimizer
    when it has none), rng_state(), the
    loader's state_dict(), the step and the history."""
    # BEGIN SOLUTION
    # HINT: your phase-3 optimizers have no state_dict(): store optimizer.state by the
    # HINT: parameter's index (tensors as keys do not survive a reload) and the groups'
    # HINT: hyperparameters; a scheduler without state_dict() is its __dict__ minus the optimizer.
    # KEEP guided
    params = trainer.parameters()
    # END KEEP
    optimizer = {"state": [trainer.optimizer.state.get(p) for p in params],
                 "param_groups": [{k: v for k, v in group.items() if k != "params"}
                                  for group in trainer.optimizer.param_groups]}
    # KEEP guided
    scheduler = trainer.scheduler
    if hasattr(scheduler, "state_dict"):  # torch's schedulers
    # END KEEP
        scheduler = scheduler.state_dict()
    # KEEP guided
    elif scheduler is not None:
    # END KEEP
        scheduler = {k: v for k, v in vars(scheduler).items() if k != "optimizer"}
    # KEEP guided
    return {"model": trainer.raw_model.state_dict(), "optimizer": optimizer,
            "scheduler": scheduler, "rng": rng_state(),
            "data": trainer.train_loader.state_dict(), "step": trainer.step,
            "history": trainer.history}
    # END KEEP
    # END SOLUTION


def load_trainer_state(trainer: Trainer, state: dict) -> None:
    """Restore a trainer_state() into a trainer built the same way (any initial weights);
    ValueError when its optimizer's parameters or groups do not match the state's."""
    # BEGIN SOLUTION
    trainer.raw_model.load_state_dict(state["model"])
    # KEEP guided
    for p, saved in zip(trainer.parameters(), state["optimizer"]["state"], strict=True):
    # END KEEP
        if saved is not None:
            trainer.optimizer.state[p] = saved
    # KEEP guided
    for group, saved in zip(trainer.optimizer.param_groups, state["optimizer"]["param_groups"],
                            strict=True):
    # END KEEP
        group.update(saved)
    # KEEP guided
    if hasattr(trainer.scheduler, "load_state_dict"):
    # END KEEP
        trainer.scheduler.load_state_dict(state["scheduler"])
    # KEEP guided
    elif trainer.scheduler is not None:
    # END KEEP
        vars(trainer.scheduler).update(state["scheduler"])
    # KEEP guided
    set_rng_state(state["rng"])
    trainer.train_loader.load_state_dict(state["data"])
    # END KEEP
    trainer.step, trainer.history = state["step"], list(state["history"])
    # END SOLUTION


# ---- 6.7 The encoder-decoder Transformer and decoding ----


@dataclass
class Seq2SeqConfig:
    """The size of an encoder–decoder Transformer (Vaswani et al. 2017, scaled down)."""

    src_vocab_size: int = 32
    tgt_vocab_size: int = 32
    d_model: int = 64
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 256
    dropout: float = 0.1
    activation: str = "relu"
    norm_first: bool = False  # False: post-norm, as the paper; True: pre-norm
    max_len: int = 512  # the longest source or target: the length of the positional table


class Seq2SeqTransformer(nn.Module):
    """An encoder–decoder Transformer (编码器–解码器) from your phase-4 layers.

        memory = encode(src)                          # (B, S, d_model)
        logits = decode(tgt, memory)                  # (B, T, tgt_vocab_size)
        forward(src, tgt) == decode(tgt, encode(src))

    Embeddings: x = dropout(E[ids]·√d_model + PE[0 … T−1]), E = src_embed or tgt_embed
    (nn.Embedding), PE your phase-2 SinusoidalPositionalEncoding(d_model, max_len) `positional`
    (one fixed table for both sides). encoder_layers / decoder_layers: nn.ModuleLists of your
    TransformerEncoderLayer / TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout,
    activation, norm_first=norm_first). A pre-norm stack's output is its un-normalised residual
    stream, so with norm_first the encoder's output goes through encoder_norm and the decoder's
    through decoder_norm (LayerNorm(d_model)); post-norm layers already end with a norm and
    both are None. head = nn.Linear(d_model, tgt_vocab_size) gives the logits.

    Masks (True = a real token, as your phase-2 padding_mask): src_padding_mask (B, S) hides
    padded source positions from the encoder's self-attention and from every cross-attention;
    tgt_padding_mask (B, T) hides padded target positions from the decoder's self-attention,
    which is always causal: position t attends to target positions 0 … t only.
    Init (as nn.Transformer): every parameter with more than one dimension (embeddings
    included) Xavier-uniform, so that E·√d_model has entries of order 1, like the table's.
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.config = config
        d = config.d_model
        self.src_embed = nn.Embedding(config.src_vocab_size, d)
        self.tgt_embed = nn.Embedding(config.tgt_vocab_size, d)
        self.positional = SinusoidalPositionalEncoding(d, config.max_len)
        self.dropout = nn.Dropout(config.dropout)
        layer = {"d_model": d, "nhead": config.nhead, "dim_feedforward": config.dim_feedforward,
                 "dropout": config.dropout, "activation": config.activation,
                 "norm_first": config.norm_first}
        self.encoder_layers = nn.ModuleList(
            TransformerEncoderLayer(**layer) for _ in range(config.num_encoder_layers))
        self.decoder_layers = nn.ModuleList(
            TransformerDecoderLayer(**layer) for _ in range(config.num_decoder_layers))
        self.encoder_norm = LayerNorm(d) if config.norm_first else None
        self.decoder_norm = LayerNorm(d) if config.norm_first else None
        self.head = nn.Linear(d, config.tgt_vocab_size)
        # END SOLUTION
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform every parameter with more than one dimension (see the docstring)."""
        # BEGIN SOLUTION
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        # END SOLUTION

    def embed(self, ids: Tensor, table: nn.Embedding) -> Tensor:
        """ids (B, T) → dropout(table(ids)·√d_model + PE[0 … T−1]) (B, T, d_model)."""
        # BEGIN SOLUTION
        # HINT: without the √d_model the embeddings (entries ~ 1/√d_model) drown in the
        # HINT: positional table (entries ~ 1).
        x = table(ids) * math.sqrt(self.config.d_model)  # (B, T, d_model)
        return self.dropout(self.positional(x))  # (B, T, d_model)
        # END SOLUTION

    def encode(self, src: Tensor, src_padding_mask: Tensor | None = None) -> Tensor:
        """src (B, S) int64 → memory (B, S, d_model)."""
        # BEGIN SOLUTION
        # KEEP guided
        x = self.embed(src, self.src_embed)  # (B, S, d_model)
        for layer in self.encoder_layers:
        # END KEEP
            x = layer(x, src_key_padding_mask=src_padding_mask)  # (B, S, d_model)
        return x if self.encoder_norm is None else self.encoder_norm(x)
        # END SOLUTION

    def decode(self, tgt: Tensor, memory: Tensor, src_padding_mask: Tensor | None = None,
               tgt_padding_mask: Tensor | None = None) -> Tensor:
        """tgt (B, T) int64, memory (B, S, d_model) → logits (B, T, tgt_vocab_size)."""
        # BEGIN SOLUTION
        # HINT: the source padding mask hides padded *memory* positions in cross-attention.
        # KEEP guided
        x = self.embed(tgt, self.tgt_embed)  # (B, T, d_model)
        for layer in self.decoder_layers:
        # END KEEP
            x = layer(x, memory, tgt_key_padding_mask=tgt_padding_mask,
                      memory_key_padding_mask=src_padding_mask, tgt_is_causal=True)
        # KEEP guided
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)  # (B, T, d_model)
        # END KEEP
        return self.head(x)  # (B, T, tgt_vocab_size)
        # END SOLUTION

    def forward(self, src: Tensor, tgt: Tensor, src_padding_mask: Tensor | None = None,
                tgt_padding_mask: Tensor | None = None) -> Tensor:
        """src (B, S), tgt (B, T) → logits (B, T, tgt_vocab_size): decode(tgt, encode(src))."""
        # BEGIN SOLUTION
        # KEEP guided
        memory = self.encode(src, src_padding_mask)  # (B, S, d_model)
        # END KEEP
        return self.decode(tgt, memory, src_padding_mask, tgt_padding_mask)
        # END SOLUTION


# ---- 6.8 Decoding and BLEU ----


@torch.no_grad()
def greedy_decode(model: Seq2SeqTransformer, src: Tensor, max_len: int, bos: int, eos: int,
                  src_padding_mask: Tensor | None = None) -> Tensor:
    """Greedy decoding (贪心解码): src (B, S) → tokens (B, 1 + n) int64, n ≤ max_len.

    Row b starts with bos and appends y_t = argmax_y p(y | y_<t, src_b) one token at a time,
    the source encoded once. A row is finished once it has appended eos; finished rows are
    filled with eos, and decoding stops when every row is finished or max_len tokens were
    appended. Eval mode, no gradients; the model's mode is restored afterwards.
    """
    # BEGIN SOLUTION
    # HINT: encode once, then call decode on the whole prefix at every step and read the
    # HINT: logits of its last position.
    # KEEP guided
    was_training = model.training
    model.eval()
    memory = model.encode(src, src_padding_mask)  # (B, S, d_model)
    ys = src.new_full((src.shape[0], 1), bos)  # (B, 1), int64 on src's device
    finished = src.new_zeros(src.shape[0], dtype=torch.bool)  # (B,)
    for _ in range(max_len):
        logits = model.decode(ys, memory, src_padding_mask)[:, -1]  # (B, V)
    # END KEEP
        token = logits.argmax(dim=-1).masked_fill(finished, eos)  # (B,)
        # KEEP guided
        ys = torch.cat((ys, token[:, None]), dim=1)  # (B, t + 1)
        # END KEEP
        finished |= token == eos
        if finished.all():
            break
    model.train(was_training)
    return ys
    # END SOLUTION


def length_penalty_factor(length: int, alpha: float) -> float:
    """GNMT's length penalty lp(|Y|) = ((5 + |Y|) / 6)^α (Wu et al. 2016); lp = 1 at α = 0."""
    # BEGIN SOLUTION
    return ((5 + length) / 6) ** alpha
    # END SOLUTION


@torch.no_grad()
def beam_search(model: Seq2SeqTransformer, src: Tensor, beam_width: int, max_len: int, bos: int,
                eos: int, length_penalty: float = 0.0) -> list[tuple[Tensor, float]]:
    """Beam search (束搜索) for one source sentence src (S,): the best hypotheses, best first.

    Returns up to beam_width pairs (tokens (1 + |Y|,) int64, log p(Y | src)): tokens starts
    with bos; |Y| counts the appended tokens (eos included); log p(Y | src) = Σ_t log
    softmax(logits_t)[y_t], the model's log-probability of those tokens. Each step extends
    every live hypothesis by every token and keeps the beam_width best extensions by
    log-probability; an extension ending in eos is finished: it leaves the beam and never grows
    again (Sutskever et al. 2014). After max_len steps (or when no live hypothesis is left),
    the finished and the live hypotheses are ranked by
        score(Y) = log p(Y | src) / lp(|Y|),   lp(|Y|) = ((5 + |Y|) / 6)^α,  α = length_penalty,
    applied once, to whole hypotheses: α = 0 ranks by log-probability (short hypotheses win),
    α > 0 favours longer ones. ValueError if beam_width < 1. Eval mode, no gradients; the
    model's mode is restored afterwards.
    """
    # BEGIN SOLUTION
    # HINT: a hypothesis's log-probability is the SUM of its tokens' log-probabilities: add
    # HINT: each step's log_softmax to the running total before choosing the top beam_width.
    # KEEP guided
    if beam_width < 1:
    # END KEEP
        raise ValueError(f"beam_width must be at least 1, got {beam_width}")
    # KEEP guided
    was_training = model.training
    model.eval()
    memory = model.encode(src[None])  # (1, S, d_model)
    beams = src.new_full((1, 1), bos)  # (k, t): the live hypotheses
    log_probs = memory.new_zeros(1)  # (k,): their log-probabilities
    finished: list[tuple[Tensor, Tensor]] = []
    for _ in range(max_len):
        logits = model.decode(beams, memory.expand(len(beams), -1, -1))[:, -1]  # (k, V)
        vocab = logits.shape[-1]
    # END KEEP
        candidates = (log_probs[:, None] + logits.log_softmax(dim=-1)).flatten()  # (k·V,)
        best = candidates.topk(min(beam_width, candidates.numel()))
        # KEEP guided
        origin, token = best.indices // vocab, best.indices % vocab  # (k,), (k,)
        beams = torch.cat((beams[origin], token[:, None]), dim=1)  # (k, t + 1)
        log_probs = best.values  # (k,)
        ended = token == eos  # (k,)
        finished += zip(beams[ended], log_probs[ended], strict=True)
        beams, log_probs = beams[~ended], log_probs[~ended]
        if len(beams) == 0:
            break
    hypotheses = finished + list(zip(beams, log_probs, strict=True))
    # END KEEP
    hypotheses.sort(key=lambda h: float(h[1]) / length_penalty_factor(len(h[0]) - 1,
                                                                      length_penalty),
                    reverse=True)
    # KEEP guided
    model.train(was_training)
    return [(tokens, float(log_prob)) for tokens, log_prob in hypotheses[:beam_width]]
    # END KEEP
    # END SOLUTION


def ngram_counts(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    """How often each n-gram (n consecutive tokens) occurs in tokens."""
    # BEGIN SOLUTION
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    # END SOLUTION


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                max_order: int = 4, smooth: str = "exp") -> float:
    """Corpus BLEU (Papineni et al. 2002) in [0, 100], one reference per hypothesis.

    Tokens: hypotheses[i] and references[i] are lists of tokens already split (strings without
    whitespace); this equals sacrebleu.corpus_bleu([" ".join(h) …], [[" ".join(r) …]],
    tokenize="none", smooth_method=smooth, max_ngram_order=max_order).
    Statistics are summed over the corpus before any division:
        p_n = Σ_i Σ_g min(count_hyp_i(g), count_ref_i(g)) / Σ_i #n-grams of hyp_i   (clipped)
        BP = 1 if c ≥ r else exp(1 − r/c),   c = Σ |hyp_i|, r = Σ |ref_i|   (BP = 0 if c = 0)
        BLEU = 100 · BP · exp((1/N) Σ_{n=1}^{N} log p_n),   N = max_order.
    BLEU is 0 when no n-gram of any order matches, or when the hypotheses hold no n-gram of
    some order n ≤ N. Smoothing of an order with no match: smooth="none" leaves p_n = 0 (so
    BLEU = 0); smooth="exp" (sacrebleu's default, NIST's) sets p_n = 1 / (2^k · #n-grams)
    for the k-th such order, k = 1, 2, … in increasing n. ValueError when the lists differ in
    length or smooth is neither.
    """
    # BEGIN SOLUTION
    # HINT: clip each hypothesis n-gram's count by its count in THAT hypothesis's reference.
    if smooth not in ("exp", "none"):
        raise ValueError(f"smooth should be 'exp' or 'none', got {smooth!r}")
    # KEEP guided
    matches, totals = [0] * max_order, [0] * max_order
    hyp_length = ref_length = 0
    # strict: lists of different lengths raise ValueError instead of dropping sentences
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        hyp_length, ref_length = hyp_length + len(hypothesis), ref_length + len(reference)
        for n in range(1, max_order + 1):
            hyp_counts, ref_counts = ngram_counts(hypothesis, n), ngram_counts(reference, n)
    # END KEEP
            matches[n - 1] += sum(min(c, ref_counts[g]) for g, c in hyp_counts.items())
            totals[n - 1] += max(len(hypothesis) - n + 1, 0)
    if not any(matches) or not all(totals):  # (no match also covers empty hypotheses)
        return 0.0
    brevity = 1.0 if hyp_length >= ref_length else math.exp(1 - ref_length / hyp_length)
    # KEEP guided
    log_precision, halvings = 0.0, 0
    for matched, total in zip(matches, totals, strict=True):
        if matched == 0:
    # END KEEP
            if smooth == "none":
                return 0.0
            halvings += 1
            matched = 1 / 2 ** halvings
        # KEEP guided
        log_precision += math.log(matched / total)
        # END KEEP
    return 100 * brevity * math.exp(log_precision / max_order)
    # END SOLUTION


# ---- 6.9 Selective scan and Mamba ----


# A selective scan runs the linear recurrence of a state-space model (状态空间模型) whose
# parameters depend on the input. Shapes: x and delta (B, L, D) — D channels, each with its own
# state of N numbers; A (D, N); B and C (B, L, N), shared by the channels. Zero-order hold
# (零阶保持) discretises the continuous system h' = A h + B x with step Δ into
#     Ā_t = exp(Δ_t A),    B̄_t = Δ_t B_t    (the simplified B̄ of the Mamba paper),
#     h_t = Ā_t ⊙ h_{t−1} + B̄_t x_t,   h_{−1} = 0,    y_t = C_t · h_t,
# for every channel d: h_t[d] (N,) = exp(Δ_t[d] A[d]) ⊙ h_{t−1}[d] + Δ_t[d] x_t[d] B_t.


def selective_scan_sequential(x: Tensor, delta: Tensor, A: Tensor, B: Tensor,
                              C: Tensor) -> Tensor:
    """The selective scan, one time step after another: y (B, L, D).

        h_t = exp(Δ_t A) ⊙ h_{t−1} + (Δ_t x_t) B_t,  h_{−1} = 0,  y_t[d] = Σ_n C_t[n] h_t[d, n]

    x, delta (B, L, D); A (D, N); B, C (B, L, N). The loop runs L steps on (B, D, N) states.
    """
    # BEGIN SOLUTION
    # HINT: split the time axis once (unbind) rather than indexing x[:, t] in the loop: the
    # HINT: backward of every index writes a whole (B, L, D) gradient, O(L²) work in all.
    decay = torch.exp(delta[..., None] * A).unbind(1)  # L × (B, D, N): Ā_t
    drive = ((delta * x)[..., None] * B[:, :, None, :]).unbind(1)  # L × (B, D, N): B̄_t x_t
    # KEEP guided
    h = x.new_zeros(x.shape[0], x.shape[2], A.shape[1])  # h_{−1} = 0, (B, D, N)
    states = []
    for decay_t, drive_t in zip(decay, drive, strict=True):
    # END KEEP
        h = decay_t * h + drive_t  # (B, D, N)
        # KEEP guided
        states.append(h)
        # END KEEP
    return torch.einsum("bldn,bln->bld", torch.stack(states, dim=1), C)  # (B, L, D)
    # END SOLUTION


SCAN_CHUNK = 128  # time steps per chunk of the parallel scan


def combine(earlier: tuple[Tensor, Tensor], later: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The associative operator of the scan: two steps h ↦ a h + b, `earlier` applied first.

        (a₂, b₂) ∘ (a₁, b₁) = (a₂ a₁, a₂ b₁ + b₂),   since a₂ (a₁ h + b₁) + b₂.

    Not commutative: the later step's decay multiplies the earlier step's drive.
    """
    # BEGIN SOLUTION
    (a1, b1), (a2, b2) = earlier, later
    return a2 * a1, a2 * b1 + b2
    # END SOLUTION


def inclusive_scan(a: Tensor, b: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """The work-efficient scan: after it, position t holds (a, b) of steps 0 … t combined.

    Odd–even recursion (Blelloch's scan, written recursively), along dim of length L: combine
    every step 2k with step 2k + 1; scanning those L/2 pairs gives the prefixes ending at the
    odd positions; each even position 2k > 0 then combines the prefix ending at 2k − 1 with its
    own step. Depth 2 log₂ L rounds of tensor ops over the whole axis, work O(L) (Hillis–Steele
    would take log₂ L rounds but L log₂ L work). Returns new tensors.
    """
    # BEGIN SOLUTION
    # KEEP guided
    a, b = a.movedim(dim, 0), b.movedim(dim, 0)  # scan along the first axis
    length = a.shape[0]
    # END KEEP
    if length == 1:
        return a.movedim(0, dim).clone(), b.movedim(0, dim).clone()
    pairs = combine((a[0:-1:2], b[0:-1:2]), (a[1::2], b[1::2]))  # steps 2k then 2k + 1
    odd_a, odd_b = inclusive_scan(*pairs, dim=0)  # prefixes ending at 1, 3, 5, …
    evens = (length - 1) // 2  # positions 2, 4, …
    even_a, even_b = combine((odd_a[:evens], odd_b[:evens]), (a[2::2], b[2::2]))
    scanned_a, scanned_b = torch.empty_like(a), torch.empty_like(b)
    scanned_a[0], scanned_b[0] = a[0], b[0]  # the prefix ending at 0 is step 0 itself
    scanned_a[1::2], scanned_b[1::2] = odd_a, odd_b
    scanned_a[2::2], scanned_b[2::2] = even_a, even_b
    return scanned_a.movedim(0, dim), scanned_b.movedim(0, dim)
    # END SOLUTION


def selective_scan_parallel(x: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                            chunk: int = SCAN_CHUNK) -> Tensor:
    """The selective scan by an associative scan: the same y (B, L, D).

    Each step is the affine map h ↦ a_t h + b_t with a_t = exp(Δ_t A), b_t = (Δ_t x_t) B_t
    (B, L, D, N), and h_t is steps 0 … t composed (combine), applied to h_{−1} = 0. Chunked as
    Mamba's GPU kernel is: the time axis is cut into chunks of `chunk` steps, taken one after
    another; inside a chunk, inclusive_scan composes every step from the chunk's start at
    once, and the state h_0 the previous chunk ended in enters through h_t = b_t + a_t h_0.
    Depth (L / chunk) · 2 log₂ chunk, work O(L); a chunk's (B, chunk, D, N) tensors stay in
    cache where the whole axis's would not.
    Only products and sums of exp(Δ A) ≤ 1 are formed, never divisions: stable at any Δ ≥ 0.
    """
    # BEGIN SOLUTION
    # KEEP guided
    h = x.new_zeros(x.shape[0], x.shape[2], A.shape[1])  # state before the chunk, (B, D, N)
    ys = []
    for x_c, delta_c, B_c, C_c in zip(*(t.split(chunk, dim=1) for t in (x, delta, B, C)),
                                      strict=True):
    # END KEEP
        a = torch.exp(delta_c[..., None] * A)  # (B, T, D, N)
        b = (delta_c * x_c)[..., None] * B_c[:, :, None, :]  # (B, T, D, N)
        # KEEP guided
        a, b = inclusive_scan(a, b, dim=1)  # steps from the chunk's start to t, composed
        # END KEEP
        states = b + a * h[:, None]  # (B, T, D, N): h_t
        # KEEP guided
        h = states[:, -1]
        ys.append(torch.einsum("bldn,bln->bld", states, C_c))  # (B, T, D)
        # END KEEP
    return torch.cat(ys, dim=1)  # (B, L, D)
    # END SOLUTION


class MambaBlock(nn.Module):
    """The Mamba block (Gu & Dao 2023), the selective SSM (选择性状态空间模型) mixer:

        x, z = in_proj(u).chunk(2)                  (B, L, E) each, E = expand · d_model
        x = SiLU(causal depthwise conv1d(x))        kernel d_conv, left padding d_conv − 1
        Δ, B, C = x_proj(x).split(R, N, N);  Δ = softplus(dt_proj(Δ))   (R = dt_rank)
        y = selective_scan(x, Δ, A, B, C) + D ⊙ x,  A = −exp(A_log)
        out = out_proj(y ⊙ SiLU(z))                 (B, L, d_model)

    Parameters: in_proj = Linear(d_model, 2E, bias=False); conv1d = nn.Conv1d(E, E, d_conv,
    groups=E) (padding 0: forward pads the left itself, so y_t sees x_{t−d_conv+1 … t});
    x_proj = Linear(E, R + 2N, bias=False); dt_proj = Linear(R, E); A_log (E, N); D (E,);
    out_proj = Linear(E, d_model, bias=False). dt_rank None means ⌈d_model / 16⌉.
    Init: S4D-real A_log[e, n] = log(n + 1), so A = −(1, 2, …, N) in every channel; D = 1;
    dt_proj.bias = softplus⁻¹(Δ₀) with Δ₀ = exp(U(log dt_min, log dt_max)), so that softplus of
    the bias, the initial step size, lies in [dt_min, dt_max]; everything else torch's default.
    step(u_t, state) runs one token (B, d_model) through the same computation recurrently;
    stepping through a sequence from state None gives forward's outputs, token by token.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | None = None, dt_min: float = 1e-3, dt_max: float = 0.1) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        inner = expand * d_model
        self.d_state, self.d_conv, self.d_inner = d_state, d_conv, inner
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, d_conv, groups=inner)
        self.x_proj = nn.Linear(inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, inner)
        self.A_log = nn.Parameter(torch.empty(inner, d_state))
        self.D = nn.Parameter(torch.empty(inner))
        self.out_proj = nn.Linear(inner, d_model, bias=False)
        self.dt_min, self.dt_max = dt_min, dt_max
        # END SOLUTION
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The S4D-real A_log, D = 1 and the dt_proj bias of the class docstring."""
        # BEGIN SOLUTION
        # HINT: softplus⁻¹(y) = y + log(1 − e^(−y)) = y + log(−expm1(−y)), exact for small y.
        # KEEP guided
        states = torch.arange(1, self.d_state + 1, dtype=self.A_log.dtype)  # (N,)
        # END KEEP
        self.A_log.copy_(torch.log(states).repeat(self.d_inner, 1))  # (E, N)
        # KEEP guided
        self.D.fill_(1.0)
        log_dt = torch.empty(self.d_inner).uniform_(math.log(self.dt_min), math.log(self.dt_max))
        dt = torch.exp(log_dt)  # (E,) log-uniform in [dt_min, dt_max]
        # END KEEP
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        # END SOLUTION

    def selective_parameters(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(Δ, A, B, C) from the conv output x (..., E): Δ (..., E) > 0, A (E, N), B, C (..., N)."""
        # BEGIN SOLUTION
        # KEEP guided
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        # END KEEP
        delta = F.softplus(self.dt_proj(dt))  # (..., E)
        return delta, -torch.exp(self.A_log), B, C
        # END SOLUTION

    def forward(self, u: Tensor) -> Tensor:
        """u (B, L, d_model) → (B, L, d_model), causal: output t depends on u_0 … u_t only."""
        # BEGIN SOLUTION
        # KEEP guided
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, L, E) each
        # END KEEP
        x = F.pad(x.transpose(1, 2), (self.d_conv - 1, 0))  # (B, E, d_conv − 1 + L)
        # KEEP guided
        x = F.silu(self.conv1d(x).transpose(1, 2))  # (B, L, E)
        delta, A, B, C = self.selective_parameters(x)
        # END KEEP
        y = selective_scan_parallel(x, delta, A, B, C) + self.D * x  # (B, L, E)
        # KEEP guided
        return self.out_proj(y * F.silu(z))  # (B, L, d_model)
        # END KEEP
        # END SOLUTION

    def step(self, u: Tensor, state: tuple[Tensor, Tensor] | None = None
             ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One token u (B, d_model) → (output (B, d_model), new state).

        state = (conv, ssm): conv (B, E, d_conv − 1) the last d_conv − 1 conv inputs, oldest
        first; ssm (B, E, N) the state h; None means zeros (the start of a sequence). Returns
        new tensors: the given state is not changed.
        """
        # BEGIN SOLUTION
        # KEEP guided
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, E) each
        if state is None:
            state = (x.new_zeros(*x.shape, self.d_conv - 1),
                     x.new_zeros(*x.shape, self.d_state))
        conv, h = state
        window = torch.cat((conv, x[:, :, None]), dim=-1)  # (B, E, d_conv)
        # END KEEP
        x = F.silu((window * self.conv1d.weight[:, 0]).sum(-1) + self.conv1d.bias)  # (B, E)
        # KEEP guided
        delta, A, B, C = self.selective_parameters(x)
        # END KEEP
        h = torch.exp(delta[..., None] * A) * h + (delta * x)[..., None] * B[:, None]  # (B, E, N)
        y = (h * C[:, None]).sum(-1) + self.D * x  # (B, E)
        # KEEP guided
        return self.out_proj(y * F.silu(z)), (window[:, :, 1:], h)
        # END KEEP
        # END SOLUTION


@dataclass
class MambaConfig:
    vocab_size: int
    d_model: int = 64
    n_layer: int = 2
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | None = None  # None: ⌈d_model / 16⌉


class MambaLayer(nn.Module):
    """One residual layer of a Mamba model: x + mixer(norm(x)), norm your phase-4 RMSNorm."""

    def __init__(self, config: MambaConfig) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.norm = RMSNorm(config.d_model)
        self.mixer = MambaBlock(config.d_model, config.d_state, config.d_conv, config.expand,
                                config.dt_rank)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, d_model) → (B, L, d_model)."""
        # BEGIN SOLUTION
        return x + self.mixer(self.norm(x))
        # END SOLUTION

    def step(self, x: Tensor, state=None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One token x (B, d_model) → (output (B, d_model), the mixer's new state)."""
        # BEGIN SOLUTION
        # KEEP guided
        y, state = self.mixer.step(self.norm(x), state)
        # END KEEP
        return x + y, state
        # END SOLUTION


class MambaLM(nn.Module):
    """A Mamba language model: embedding (nn.Embedding(V, d_model), init N(0, 0.02²)), n_layer
    MambaLayers, norm_f = RMSNorm(d_model), lm_head = nn.Linear(d_model, V, bias=False) whose
    weight IS embedding.weight (tied). No positions: the recurrence knows the order.

    forward(idx (B, T) int64) → logits (B, T, V).
    step(idx (B,) int64, states) → (logits (B, V), new states): one token through every layer's
    recurrent step; states is the list of the layers' states (None at the start; a list of
    another length raises ValueError). Generating
    token by token with step gives forward's logits, in O(1) time and memory per token.
    """

    def __init__(self, config: MambaConfig) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(MambaLayer(config) for _ in range(config.n_layer))
        self.norm_f = RMSNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        # END SOLUTION
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Tie the head to the embedding and draw the embedding from N(0, 0.02²)."""
        # BEGIN SOLUTION
        self.lm_head.weight = self.embedding.weight
        nn.init.normal_(self.embedding.weight, std=0.02)
        # END SOLUTION

    def forward(self, idx: Tensor) -> Tensor:
        """idx (B, T) → logits (B, T, V)."""
        # BEGIN SOLUTION
        # KEEP guided
        x = self.embedding(idx)  # (B, T, d_model)
        for layer in self.layers:
            x = layer(x)
        # END KEEP
        return self.lm_head(self.norm_f(x))  # (B, T, V)
        # END SOLUTION

    def step(self, idx: Tensor, states: list | None = None) -> tuple[Tensor, list]:
        """One token per row, idx (B,) → (logits (B, V), the layers' new states)."""
        # BEGIN SOLUTION
        # KEEP guided
        x = self.embedding(idx)  # (B, d_model)
        # END KEEP
        states = states or [None] * len(self.layers)
        # KEEP guided
        new_states = []
        for layer, state in zip(self.layers, states, strict=True):
        # END KEEP
            x, state = layer.step(x, state)
            # KEEP guided
            new_states.append(state)
            # END KEEP
        return self.lm_head(self.norm_f(x)), new_states
        # END SOLUTION


class SentimentClassifier(nn.Module):
    """A Mamba sentence classifier: embedding → n_layer MambaLayers → norm_f (RMSNorm) → the
    state at each row's last real token → dropout → head = nn.Linear(d_model, num_classes).

    forward(idx (B, T) int64, lengths (B,) int64) → logits (B, num_classes). Row b's tokens
    are idx[b, :lengths[b]] (lengths_b ≥ 1); the positions after them are padding (any id) and
    change nothing:

        pooled_b = h_{b, lengths_b − 1}     (h the output of norm_f)

    The layers are causal, so the last real token's state is the only one that has read the
    whole sentence (GPT-1 classifies from it too). Padding sits at the end, so the layers
    never see it before a real token; a batch padded to another length gives the same
    logits. Dropout (p = dropout) acts in train mode.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, n_layer: int = 2,
                 num_classes: int = 2, d_state: int = 16, dropout: float = 0.0) -> None:
        # BEGIN SOLUTION hard
        super().__init__()
        config = MambaConfig(vocab_size, d_model, n_layer, d_state)
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(MambaLayer(config) for _ in range(n_layer))
        self.norm_f = RMSNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)
        # END SOLUTION
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The embedding from N(0, 0.02²); the Mamba layers and the head keep their own init."""
        # BEGIN SOLUTION
        nn.init.normal_(self.embedding.weight, std=0.02)
        # END SOLUTION

    def forward(self, idx: Tensor, lengths: Tensor) -> Tensor:
        """idx (B, T), lengths (B,) → logits (B, num_classes)."""
        # BEGIN SOLUTION
        # KEEP guided
        x = self.embedding(idx)  # (B, T, d_model)
        for layer in self.layers:
            x = layer(x)
        h = self.norm_f(x)  # (B, T, d_model)
        # END KEEP
        # HINT: row b's last real token is at position lengths_b − 1, not at T − 1 (padding).
        rows = torch.arange(idx.shape[0], device=idx.device)  # (B,)
        pooled = h[rows, lengths - 1]  # (B, d_model)
        # KEEP guided
        return self.head(self.drop(pooled))  # (B, num_classes)
        # END KEEP
        # END SOLUTION
