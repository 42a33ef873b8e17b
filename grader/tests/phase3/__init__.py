"""Phase 3's graded checks. The judge's torch work here is many tiny ops (reference optimizer
trajectories, schedules, losses): one intra-op thread is fastest, and on a busy machine a thread
pool makes a 100-step MLP run ~30× slower, so the judge uses one thread (the worker already does,
through OMP_NUM_THREADS=1)."""

import torch

torch.set_num_threads(1)
