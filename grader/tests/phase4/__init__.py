"""Phase 4 — Transformer blocks: the graded checks (torch references, invariants, stability)."""
