"""Phase 8 — denoising diffusion: the graded checks (closed forms for Gaussian data, statistical
tests of samples with a stated false-alarm rate, torch references, a small end-to-end run)."""
