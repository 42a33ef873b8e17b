"""Phase 3's graded checks (the judge runs torch on one thread: grader/checks/reference.py)."""

import grader.checks.reference  # noqa: F401
