"""Automatic mutation analysis: `python -m grader verify --mutate`, `make mutate` (SPEC §4)."""
