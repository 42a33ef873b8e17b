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

# ---- 6.1 Tokenizers ----

# (tokenizers: character-level and byte-level BPE)

# ---- 6.2 GPT ----

# (GPT, sampling, KV cache, Trainer)
