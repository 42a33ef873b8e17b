"""Phase 2 — attention: the graded checks (torch references, invariants, stability)."""
