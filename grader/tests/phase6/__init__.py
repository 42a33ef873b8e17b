"""Phase 6 — full models: the graded checks."""
