"""Trusted code run in the worker next to the student's phase-6 tokenizers, GPT, sampler, KV
cache and Trainer. Returns tensors, numbers, strings, lists and dicts only; every verdict is
reached in the judge.

The Trainer is graded on a tiny trusted language model (TinyLM) so that its checks do not depend
on the student's GPT. The judge imports this module too and runs `reference_run`, the same
training written with torch built-ins on one large batch, to get the expected parameters.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .phase2 import load_state as _copy_state

# ---------------------------------------------------------------- GPT, sampling, KV cache


def load_state(module, state: dict) -> dict:
    """Cast the module to the state's dtype, then copy `state` into it by parameter name."""
    if state:
        module.to(dtype=next(iter(state.values())).dtype)
    return _copy_state(module, state)


def tying(model) -> dict:
    """How the head's weight relates to the token embedding's."""
    head, embedding = model.lm_head.weight, model.wte.weight
    names = [name for name, _ in model.named_parameters()]
    return {"same_object": head is embedding,
            "same_storage": head.data_ptr() == embedding.data_ptr(),
            "parameters": names}


def parameter_statistics(model) -> dict:
    """{name: [mean, std, numel]} of every parameter, in float64."""
    return {name: [float(p.double().mean()), float(p.double().std()) if p.numel() > 1 else 0.0,
                   p.numel()] for name, p in model.named_parameters()}


def forward(model, idx, targets=None, train: bool = False, seed: int = 0, **kwargs) -> dict:
    """model(idx, targets) without gradients after torch.manual_seed(seed); idx is checked to be
    left unchanged."""
    model.train(train)
    torch.manual_seed(seed)
    before = idx.clone()
    with torch.no_grad():
        out = model(idx, targets, **kwargs) if targets is not None else model(idx, **kwargs)
    logits, loss = (out if isinstance(out, tuple) else (out, None))
    return {"logits": logits, "loss": loss, "loss_is_none": loss is None,
            "idx_unchanged": bool(torch.equal(before, idx))}


def logits_gradients(model, idx, targets, upstream) -> dict:
    """Gradients of Σ upstream·logits + loss with respect to every parameter (train mode off)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    logits, loss = model(idx, targets)
    ((logits * upstream.to(logits.dtype)).sum() + loss).backward()
    return {name: None if p.grad is None else p.grad.detach().clone()
            for name, p in model.named_parameters()}


def sample(module, logits, kwargs: dict, seed: int | None = 0) -> dict:
    """module.sample_next(logits, generator=Generator(seed), **kwargs); the input is checked to
    be left unchanged."""
    before = logits.clone()
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    tokens = module.sample_next(logits, generator=generator, **kwargs)
    return {"tokens": tokens, "unchanged": bool(torch.equal(before, logits))}


def filtered(module, logits, kwargs: dict) -> dict:
    before = logits.clone()
    out = module.filter_logits(logits, **kwargs)
    return {"logits": out, "unchanged": bool(torch.equal(before, logits))}


def generate(model, idx, kwargs: dict, seed: int | None = None, train: bool = False) -> dict:
    """model.generate(idx, generator=Generator(seed), **kwargs) from train or eval mode; also
    every call of the model: [tokens fed, whether a kv_cache came with them]."""
    model.train(train)
    before = idx.clone()
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    calls = []

    def record(_, args, kwargs):
        cache = kwargs.get("kv_cache", args[2] if len(args) > 2 else None)
        calls.append([int(args[0].shape[1]), cache is not None])

    hook = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        tokens = model.generate(idx, generator=generator, **kwargs)
    finally:
        hook.remove()
    return {"tokens": tokens, "training_after": bool(model.training),
            "idx_unchanged": bool(torch.equal(before, idx)), "calls": calls}


class ReferenceCache:
    """A KV cache written here, with the interface KVCache documents (length, update), so that
    the attention's cache path is graded without the student's KVCache."""

    def __init__(self, n_layer: int) -> None:
        self.length, self.keys, self.values = 0, [None] * n_layer, [None] * n_layer

    def update(self, layer: int, k, v):
        if self.keys[layer] is not None:
            k, v = torch.cat((self.keys[layer], k), 2), torch.cat((self.values[layer], v), 2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


def attention_dropout(module, p: float, seed: int, cached: bool) -> dict:
    """The student's CausalSelfAttention (2 heads, C = 8) in training mode with dropout p, its
    values and c_proj set to the identity: token 0 attends to itself alone, so its output is
    x₀ scaled by both dropouts' 1/(1 − p) where neither dropped it. cached: the token goes
    through a ReferenceCache."""
    config = module.GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=2, n_embd=8,
                              dropout=p)
    attention = module.CausalSelfAttention(config).double().train()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        attention.c_attn.weight.copy_(torch.randn(24, 8, generator=generator, dtype=torch.float64))
        attention.c_attn.weight[16:] = torch.eye(8, dtype=torch.float64)
        attention.c_proj.weight.copy_(torch.eye(8, dtype=torch.float64))
        for layer in (attention.c_attn, attention.c_proj):
            if layer.bias is not None:
                layer.bias.zero_()
    x = torch.randn(512, 3, 8, generator=generator, dtype=torch.float64)
    torch.manual_seed(seed)
    with torch.no_grad():
        if cached:
            y = attention(x[:, :1], kv_cache=ReferenceCache(1))
        else:
            y = attention(x)
    return {"x": x[:, 0], "y": y[:, 0]}


def cached_logits(module, model, idx, chunks: list[int], trusted: bool = False) -> dict:
    """Feed idx to the model through one KVCache (trusted: a ReferenceCache), `chunks` tokens at
    a time; return the logits of every position and the cache length after each call."""
    model.eval()
    cache = (ReferenceCache if trusted else module.KVCache)(model.config.n_layer)
    logits, lengths, start = [], [], 0
    with torch.no_grad():
        for size in chunks:
            out, _ = model(idx[:, start:start + size], kv_cache=cache)
            logits.append(out)
            start += size
            lengths.append(int(cache.length))
    return {"logits": torch.cat(logits, dim=1), "lengths": lengths}


def cache_update(module, n_layer: int, layer: int, pieces: list) -> list:
    """KVCache.update(layer, k, v) for each (k, v) of pieces; returns what each call returned."""
    cache = module.KVCache(n_layer)
    return [list(cache.update(layer, k, v)) for k, v in pieces]


def cache_overflow(module, model, idx) -> str:
    """Feed idx (longer than what fits) through a cache one token at a time: the error raised,
    or "" when none was."""
    model.eval()
    cache = module.KVCache(model.config.n_layer)
    try:
        with torch.no_grad():
            for t in range(idx.shape[1]):
                model(idx[:, t:t + 1], kv_cache=cache)
    except Exception as error:  # noqa: BLE001 - the judge reads the type's name
        return type(error).__name__
    return ""


# ---------------------------------------------------------------- the Trainer


class TinyLM(nn.Module):
    """A trusted stand-in language model: embedding → dropout → tanh → linear head.

    noisy=True also adds a little noise from Python's and NumPy's global generators, so that a
    resumed run only matches when every RNG was restored. It records, on every forward pass,
    whether bf16 autocast was on and whether it was in training mode.
    """

    def __init__(self, vocab: int, dim: int, dropout: float = 0.0, noisy: bool = False,
                 seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.embedding = nn.Parameter(torch.randn(vocab, dim, generator=generator, dtype=dtype))
        self.head = nn.Linear(dim, vocab, dtype=dtype)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(vocab, dim, generator=generator) * 0.3)
            self.head.bias.copy_(torch.randn(vocab, generator=generator) * 0.1)
        self.dropout, self.noisy = dropout, noisy
        self.autocast_seen: list[bool] = []
        self.modes_seen: list[bool] = []

    def forward(self, idx, targets=None):
        self.autocast_seen.append(torch.is_autocast_enabled("cpu"))
        self.modes_seen.append(self.training)
        x = F.dropout(self.embedding[idx], self.dropout, self.training)  # (B, T, D)
        if self.noisy and self.training:
            x = x + 1e-3 * (float(np.random.randn()) + random.random())
        logits = self.head(torch.tanh(x))  # (B, T, V)
        return logits, None


def dataset(seed: int, n: int, t: int, vocab: int,
            counted: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) (n, t) int64 with a random tail of each target row ignored (−100), so
    micro-batches hold different numbers of counted tokens (counted: that many in every row)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, vocab, (n, t), generator=generator)
    targets = torch.randint(0, vocab, (n, t), generator=generator)
    lengths = torch.randint(1, t + 1, (n,), generator=generator)
    if counted is not None:
        lengths = torch.full((n,), counted)
    targets[torch.arange(t)[None, :] >= lengths[:, None]] = -100
    return inputs, targets


class PlainOptimizer:
    """A trusted optimizer shaped like torch.optim's (param_groups, state, step, zero_grad) and
    written out here: SGD, or AdamW with decoupled weight decay (Loshchilov & Hutter). The
    Trainer may only rely on that shape; constructing a torch.optim optimizer would import
    torch._dynamo (seconds) in both the judge and the worker."""

    def __init__(self, params, kind: str, lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 split: bool = False) -> None:
        """split: two groups, the first parameter at lr and the others at lr / 2."""
        self.kind, params = kind, list(params)
        hyper = {"weight_decay": weight_decay, "betas": betas, "eps": eps}
        self.param_groups = ([{"params": params[:1], "lr": lr, **hyper},
                              {"params": params[1:], "lr": lr / 2, **hyper}] if split else
                             [{"params": params, "lr": lr, **hyper}])
        self.state: dict = {}

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, params = group["lr"], group["params"]
            for p in params:
                if p.grad is None:
                    continue
                if self.kind == "sgd":
                    p.add_(p.grad, alpha=-lr)
                    continue
                state = self.state.setdefault(p, {"step": 0, "m": torch.zeros_like(p),
                                                  "v": torch.zeros_like(p)})
                (beta1, beta2), state["step"] = group["betas"], state["step"] + 1
                p.mul_(1 - lr * group["weight_decay"])
                state["m"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                m_hat = state["m"] / (1 - beta1 ** state["step"])
                v_hat = state["v"] / (1 - beta2 ** state["step"])
                p.sub_(lr * m_hat / (v_hat.sqrt() + group["eps"]))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in (p for group in self.param_groups for p in group["params"]):
            p.grad = None


class HalvingLR:
    """A torch-style scheduler (step, state_dict, load_state_dict): lr halves every step."""

    def __init__(self, optimizer) -> None:
        self.optimizer, self.last_epoch = optimizer, 0
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]

    def step(self) -> None:
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * 0.5 ** self.last_epoch

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch, self.base_lrs = state["last_epoch"], list(state["base_lrs"])


def _optimizer(spec: dict, params, course=None):
    name = spec.get("optimizer", "sgd")
    if name == "sgd":
        return PlainOptimizer(params, "sgd", lr=spec.get("lr", 0.5), split=spec.get("split", False))
    if name == "adamw":
        return PlainOptimizer(params, "adamw", lr=spec.get("lr", 1e-2), weight_decay=0.1,
                              split=spec.get("split", False))
    return course.AdamW(params, lr=spec.get("lr", 1e-2), weight_decay=0.1)


def _scheduler(spec: dict, optimizer, course=None):
    name = spec.get("scheduler")
    if name == "torch":
        return HalvingLR(optimizer)
    if name == "course":
        return course.WarmupCosine(optimizer, warmup_steps=2, total_steps=spec["steps"])
    return None


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])


def _course_phase3(module):
    return importlib.import_module(module.__name__.rsplit(".", 1)[0] + ".phase3_optim")


def _trainer(module, spec: dict, init_seed: int, course=None):
    """The student's Trainer on TinyLM, as spec says."""
    dtype = torch.float32 if spec.get("bf16") or spec.get("float32") else torch.float64
    model = TinyLM(spec["vocab"], spec["dim"], spec.get("dropout", 0.0), spec.get("noisy", False),
                   init_seed, dtype)
    data = dataset(spec["seed"], spec["n"], spec["t"], spec["vocab"], spec.get("counted"))
    loader = module.EpochLoader(data, spec["micro"], seed=spec["seed"],
                                shuffle=spec.get("shuffle", False))
    optimizer = _optimizer(spec, model.parameters(), course)
    scheduler = _scheduler(spec, optimizer, course)
    val = [dataset(spec["seed"] + 1, spec["micro"], spec["t"], spec["vocab"],
                   spec.get("counted"))] * spec.get("val_batches", 2)
    config = module.TrainerConfig(
        accumulation_steps=spec["accumulation"], max_grad_norm=spec.get("clip"),
        bf16=spec.get("bf16", False), eval_every=spec.get("eval_every", 0),
        log_every=spec.get("log_every", 1), log_path=spec.get("log_path"),
        checkpoint_path=spec.get("checkpoint_path"),
        checkpoint_every=spec.get("checkpoint_every", 0), progress=spec.get("progress", False))
    wrapped = model if spec.get("mirror_rank") is None else MirrorDDP(model)
    trainer = module.Trainer(wrapped, optimizer, loader, scheduler=scheduler,
                             val_batches=val if spec.get("eval_every") else None, config=config)
    return trainer, model


class MirrorDDP(nn.Module):
    """Stands for DistributedDataParallel in a world of 2 processes whose other process is a
    mirror of this one (the same batches, so averaging the gradients changes nothing): .module,
    no_sync(), and a record of whether each forward pass would synchronise its gradients."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module, self.sync, self.synced = module, True, []

    @contextlib.contextmanager
    def no_sync(self):
        self.sync = False
        try:
            yield
        finally:
            self.sync = True

    def forward(self, *args, **kwargs):
        self.synced.append(self.sync)
        return self.module(*args, **kwargs)


@contextlib.contextmanager
def mirror_world(rank: int | None):
    """torch.distributed as a world of 2 mirrored processes seen from `rank` (None: untouched):
    all_reduce doubles its tensor, the sum of two equal contributions."""
    if rank is None:
        yield
        return
    fakes = {"is_available": lambda: True, "is_initialized": lambda: True,
             "get_rank": lambda group=None: rank, "get_world_size": lambda group=None: 2,
             "all_reduce": lambda tensor, *args, **kwargs: tensor.mul_(2)}
    saved = {name: getattr(torch.distributed, name) for name in fakes}
    for name, fake in fakes.items():
        setattr(torch.distributed, name, fake)
    try:
        yield
    finally:
        for name, real in saved.items():
            setattr(torch.distributed, name, real)


def _history(trainer) -> list[dict]:
    return [{k: float(v) for k, v in row.items() if isinstance(v, (int, float))}
            for row in trainer.history]


def trainer_run(module, spec: dict) -> dict:
    """Build the student's Trainer as spec says and fit(spec["steps"]) (from step
    spec["start_step"], the model in eval mode first if spec["eval_before_fit"]); return the
    parameters, the history, the log file's rows, what was printed to stderr, the autocast and
    training-mode flags of every forward pass, the step of every checkpoint torch.save wrote,
    and whether every gradient was freed after fit. spec["mirror_rank"]: as that rank of a
    mirrored world of 2 (MirrorDDP, mirror_world); "synced" then has each forward's sync flag."""
    course = _course_phase3(module) if "course" in (spec.get("optimizer"), spec.get("scheduler")) \
        else None
    torch.manual_seed(spec["seed"])
    with mirror_world(spec.get("mirror_rank")):
        trainer, model = _trainer(module, spec, spec["seed"], course)
    if "start_step" in spec:
        trainer.step = spec["start_step"]
    if spec.get("eval_before_fit"):
        model.eval()
    stderr, saved, save = io.StringIO(), [], torch.save

    def recording_save(obj, *args, **kwargs):
        saved.append(int(obj["step"]) if isinstance(obj, dict) and "step" in obj else -1)
        return save(obj, *args, **kwargs)

    torch.save = recording_save
    try:
        with contextlib.redirect_stderr(stderr), mirror_world(spec.get("mirror_rank")):
            trainer.fit(spec["steps"])
    finally:
        torch.save = save
        if spec.get("checkpoint_path") and os.path.exists(spec["checkpoint_path"]):
            os.remove(spec["checkpoint_path"])
    log = []
    if spec.get("log_path") and os.path.exists(spec["log_path"]):
        log = [json.loads(line) for line in Path(spec["log_path"]).read_text().splitlines()
               if line.strip()]
        os.remove(spec["log_path"])
    return {"params": _flat(model), "history": _history(trainer), "log": log,
            "stderr": stderr.getvalue()[-2000:], "autocast": list(model.autocast_seen),
            "modes": list(model.modes_seen), "saved_steps": saved,
            "synced": list(getattr(trainer.model, "synced", [])),
            "grads_freed": all(p.grad is None for p in model.parameters()),
            "training_after": bool(model.training), "step": int(trainer.step)}


def reference_run(spec: dict) -> dict:
    """What trainer_run must give, with torch built-ins: each step is ONE batch, the union of
    its micro-batches in the documented loader order, with F.cross_entropy's token mean and
    torch's clip_grad_norm_ (the same PlainOptimizer). Judge-side only (dropout 0, no noise,
    no bf16)."""
    model = TinyLM(spec["vocab"], spec["dim"], seed=spec["seed"])
    inputs, targets = dataset(spec["seed"], spec["n"], spec["t"], spec["vocab"],
                              spec.get("counted"))
    optimizer = _optimizer(spec, model.parameters())
    scheduler = _scheduler(spec, optimizer)
    per_step = spec["micro"] * spec["accumulation"]
    steps_per_epoch = spec["n"] // spec["micro"]
    order, losses = [], []
    for epoch in range(spec["steps"] * spec["accumulation"] // steps_per_epoch + 1):
        if spec.get("shuffle"):
            generator = torch.Generator().manual_seed(spec["seed"] + epoch)
            perm = torch.randperm(spec["n"], generator=generator)
        else:
            perm = torch.arange(spec["n"])
        order.append(perm[:steps_per_epoch * spec["micro"]])
    order = torch.cat(order)
    for step in range(spec["steps"]):
        batch = order[step * per_step:(step + 1) * per_step]
        logits, _ = model(inputs[batch])
        loss = F.cross_entropy(logits.flatten(0, 1), targets[batch].flatten(), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        if spec.get("clip") is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec["clip"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(float(loss.detach()))
    return {"params": _flat(model), "losses": losses}


def evaluate_reference(spec: dict, params: torch.Tensor) -> float:
    """The token-mean validation loss trainer_run's val batches give at `params`."""
    model = TinyLM(spec["vocab"], spec["dim"], seed=spec["seed"])
    torch.nn.utils.vector_to_parameters(params, model.parameters())
    inputs, targets = dataset(spec["seed"] + 1, spec["micro"], spec["t"], spec["vocab"],
                              spec.get("counted"))
    with torch.no_grad():
        logits, _ = model(inputs)
        return float(F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100))


def resume_run(module, spec: dict, stop_at: int) -> dict:
    """The same training twice: straight through to spec["steps"], and interrupted at stop_at
    (checkpoint saved by the Trainer, every global RNG scrambled, the model rebuilt from another
    initialisation, checkpoint loaded, fit continued). Returns both histories and parameters."""
    course = _course_phase3(module) if "course" in (spec.get("optimizer"), spec.get("scheduler")) \
        else None
    directory = tempfile.mkdtemp(dir=".")
    path = os.path.join(directory, "checkpoint.pt")

    def seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    seed_everything(spec["seed"])
    straight, model = _trainer(module, spec, spec["seed"], course)
    straight.fit(spec["steps"])
    straight_params = _flat(model)

    seed_everything(spec["seed"])
    first, _ = _trainer(module, {**spec, "checkpoint_path": path}, spec["seed"], course)
    first.fit(stop_at)
    seed_everything(12345)  # whatever the process did in between
    resumed, resumed_model = _trainer(module, spec, spec["seed"] + 1, course)
    resumed.load_checkpoint(path)
    step_after_load = int(resumed.step)
    resumed.fit(spec["steps"])
    return {"straight_losses": [row["loss"] for row in _history(straight)],
            "resumed_losses": [row["loss"] for row in _history(resumed)],
            "straight_params": straight_params, "resumed_params": _flat(resumed_model),
            "step_after_load": step_after_load}


class _Examples:
    """A dataset that is not a tuple: __len__ and __getitem__(index tensor), as the capstone's
    token windows; example i is the int64 pair (i, 10·i)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, indices):
        return torch.stack((indices, indices * 10), dim=1)  # (B, 2)


def object_loader_batches(module, n: int, batch_size: int, count: int) -> list:
    """`count` batches of an EpochLoader(shuffle=False) over an _Examples(n)."""
    loader = module.EpochLoader(_Examples(n), batch_size, shuffle=False)
    return [loader.next_batch() for _ in range(count)]


def autocast_loss(module, spec: dict) -> dict:
    """language_model_loss on a float32 TinyLM under bf16 autocast: the loss's dtype, its value
    and the count."""
    model = TinyLM(spec["vocab"], spec["dim"], seed=spec["seed"], dtype=torch.float32)
    batch = dataset(spec["seed"], spec["micro"], spec["t"], spec["vocab"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, count = module.language_model_loss(model, batch)
    return {"dtype": str(loss.dtype), "loss": float(loss), "count": int(count)}


def loader_batches(module, n: int, batch_size: int, seed: int, shuffle: bool, rank: int,
                   world_size: int, count: int, resume_after: int) -> dict:
    """`count` batches of an EpochLoader over the examples 0 … n−1; and the same stream from a
    second loader that took over the first one's state_dict() after `resume_after` batches."""
    data = (torch.arange(n), torch.arange(n) * 10)
    loader = module.EpochLoader(data, batch_size, seed=seed, shuffle=shuffle, rank=rank,
                                world_size=world_size)
    batches, resumed = [], []
    for k in range(count):
        if k == resume_after:
            other = module.EpochLoader(data, batch_size, seed=seed + 99, shuffle=shuffle,
                                       rank=rank, world_size=world_size)
            other.seed = seed
            other.load_state_dict(loader.state_dict())
        inputs, scaled = loader.next_batch()
        batches.append(inputs)
        if k >= resume_after:
            resumed.append(other.next_batch()[0])
        if not torch.equal(scaled, inputs * 10):
            return {"batches": [], "resumed": [], "paired": False}
    return {"batches": torch.stack(batches), "resumed": torch.stack(resumed), "paired": True}


def _open_descriptors() -> int | None:
    """How many file descriptors the process holds (None where /proc is not mounted)."""
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


def atomic_save(module) -> dict:
    """save_atomically twice, watching os.fsync (the inode and the size it made durable),
    os.replace / os.rename and the open file descriptors, then once more with a torch.save
    that writes half a file and fails (a crash in the middle of saving)."""
    directory = Path(tempfile.mkdtemp(dir=".")).resolve()
    path = directory / "checkpoint.pt"
    module.save_atomically({"step": torch.tensor(1)}, path)
    first_inode = os.stat(path).st_ino
    events: list[list] = []
    originals = os.fsync, os.replace, os.rename, torch.save

    def fsync(fd):
        events.append(["fsync", os.fstat(fd).st_ino])
        sizes.append([os.fstat(fd).st_ino, os.fstat(fd).st_size])
        return originals[0](fd)

    def replace(src, dst, *args, **kwargs):
        events.append(["replace", os.stat(src).st_ino, str(Path(dst).resolve())])
        return originals[1](src, dst, *args, **kwargs)

    def rename(src, dst, *args, **kwargs):
        events.append(["replace", os.stat(src).st_ino, str(Path(dst).resolve())])
        return originals[2](src, dst, *args, **kwargs)

    sizes: list[list] = []
    descriptors = _open_descriptors()
    os.fsync, os.replace, os.rename = fsync, replace, rename
    try:
        module.save_atomically({"step": torch.tensor(2), "weights": torch.randn(50_000)}, path)
    finally:
        os.fsync, os.replace, os.rename = originals[:3]
    leaked = None if descriptors is None else _open_descriptors() - descriptors
    second_inode, second_size = os.stat(path).st_ino, os.stat(path).st_size
    second_step = int(torch.load(path, weights_only=True)["step"])
    leftovers = sorted(name for name in os.listdir(directory) if name != path.name)

    def crashing_save(obj, f, *args, **kwargs):
        data = b"\x80\x02half a checkpoint"
        if hasattr(f, "write"):
            f.write(data)
        else:
            Path(f).write_bytes(data)
        raise OSError("simulated crash: the disk filled up")

    torch.save = crashing_save
    crashed = False
    try:
        module.save_atomically({"step": torch.tensor(3)}, path)
    except OSError:
        crashed = True
    finally:
        torch.save = originals[3]
    try:
        after_crash = str(int(torch.load(path, weights_only=True)["step"]))
    except Exception as error:  # noqa: BLE001 - reported to the judge
        after_crash = f"{type(error).__name__}: {error}"[:200]
    return {"first_inode": first_inode, "second_inode": second_inode,
            "second_step": second_step, "events": events, "path": str(path),
            "leftovers": leftovers, "crashed": crashed, "after_crash": after_crash,
            "directory_inode": os.stat(directory).st_ino, "fsync_sizes": sizes,
            "second_size": second_size, "leaked_descriptors": leaked,
            "leftovers_after_crash": sorted(name for name in os.listdir(directory)
                                            if name != path.name)}


def load_mismatched(module, spec: dict) -> list:
    """load_trainer_state of one trainer's state into trainers whose optimizers differ from it:
    two parameter groups instead of one, then one parameter instead of three. The error each
    raised ("" for none)."""
    trainer, _ = _trainer(module, spec, spec["seed"])
    trainer.fit(1)
    state = module.trainer_state(trainer)
    errors = []
    for change in ({"split": True}, {"only_embedding": True}):
        other, model = _trainer(module, {**spec, **change}, spec["seed"])
        if change.get("only_embedding"):
            other.optimizer.param_groups[0]["params"] = [model.embedding]
        try:
            module.load_trainer_state(other, state)
            errors.append("")
        except Exception as error:  # noqa: BLE001 - the judge reads the type's name
            errors.append(type(error).__name__)
    return errors


def rng_round_trip(module) -> dict:
    """Draw from every global RNG after set_rng_state(rng_state()) and a scramble in between:
    the draws must repeat."""
    state = module.rng_state()
    first = [random.random(), float(np.random.rand()), float(torch.rand(()))]
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    module.set_rng_state(state)
    second = [random.random(), float(np.random.rand()), float(torch.rand(()))]
    buffer = io.BytesIO()
    torch.save(state, buffer)  # a checkpoint must be able to hold it
    buffer.seek(0)
    module.set_rng_state(torch.load(buffer, weights_only=True))
    third = [random.random(), float(np.random.rand()), float(torch.rand(()))]
    return {"first": first, "second": second, "third": third}


def char_gpt_short(module, train_text: str, val_text: str, steps: int, seed: int = 0) -> dict:
    """A short char-GPT run on the student's CharTokenizer, GPT, EpochLoader and Trainer with
    their phase-3 AdamW and WarmupCosine (the capstone, small): returns the final validation
    loss over every non-overlapping window of val_text, the history and a sample."""
    course = _course_phase3(module)
    torch.manual_seed(seed)
    block = 32
    tokenizer = module.CharTokenizer.fit(train_text + val_text)
    train_ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tokenizer.encode(val_text), dtype=torch.long)

    def windows(ids, starts):
        rows = ids[starts[:, None] + torch.arange(block + 1)]  # (N, block + 1)
        return rows[:, :-1], rows[:, 1:]

    starts = torch.arange(len(train_ids) - block - 1)
    model = module.GPT(module.GPTConfig(vocab_size=tokenizer.vocab_size, block_size=block,
                                        n_layer=2, n_head=4, n_embd=64))
    optimizer = course.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    scheduler = course.WarmupCosine(optimizer, warmup_steps=20, total_steps=steps, eta_min=3e-4)
    loader = module.EpochLoader(windows(train_ids, starts), 16, seed=seed)
    val = windows(val_ids, torch.arange(0, len(val_ids) - block - 1, block))
    trainer = module.Trainer(model, optimizer, loader, scheduler=scheduler,
                             val_batches=[(x, y) for x, y in zip(val[0].split(64),
                                                                 val[1].split(64), strict=True)],
                             config=module.TrainerConfig(progress=False, log_every=20))
    trainer.fit(steps)
    prompt = torch.tensor([tokenizer.encode(val_text[:1])], dtype=torch.long)
    sample = model.generate(prompt, 100, temperature=0.8, top_k=10,
                            generator=torch.Generator().manual_seed(seed))
    return {"val_loss": float(trainer.evaluate()), "history": _history(trainer),
            "sample": tokenizer.decode(sample[0].tolist())}


# ---------------------------------------------------------------- 6.1 tokenizers


def stream_ids(tokenizer, chunks: list[str]) -> dict:
    """tokenizer.encode_iterable fed from a generator of `chunks`: every id it yields, and how
    many chunks the generator had handed out when the first id came (0 if none came)."""
    pulled = 0

    def source():
        nonlocal pulled
        for chunk in chunks:
            pulled += 1
            yield chunk

    ids, pulled_before_first_id = [], 0
    for i in tokenizer.encode_iterable(source()):
        if not ids:
            pulled_before_first_id = pulled
        ids.append(i)
    return {"ids": ids, "pulled_before_first_id": pulled_before_first_id}


def call_watching_lists(function, *args) -> dict:
    """function(*args), and which list arguments it changed in place (the array watch in the
    worker sees arrays and tensors only; token ids travel as lists)."""
    before = [copy.deepcopy(a) if isinstance(a, list) else None for a in args]
    result = function(*args)
    changed = [k for k, (a, b) in enumerate(zip(args, before, strict=True))
               if b is not None and a != b]
    aliased = [k for k, a in enumerate(args) if isinstance(a, list) and a is result]
    return {"result": result, "changed": changed, "aliased": aliased}


# ---------------------------------------------------------------- 6.7 the encoder-decoder model


def seq2seq_train(module, config: dict, src, tgt, steps: int, batch_size: int, lr: float,
                  seed: int, test_src, max_len: int, bos: int, eos: int) -> dict:
    """Train the student's Seq2SeqTransformer(Seq2SeqConfig(**config)) by teacher forcing —
    F.cross_entropy of model(src, tgt[:, :-1]) against tgt[:, 1:] — with their phase-3 AdamW on
    random batches of (src, tgt) (seeded), then greedy_decode test_src. Returns the losses and
    the decoded tokens: the judge, which alone knows test_src's answers, scores them."""
    course = _course_phase3(module)
    torch.manual_seed(seed)
    model = module.Seq2SeqTransformer(module.Seq2SeqConfig(**config))
    optimizer = course.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(steps):
        batch = torch.randint(0, len(src), (batch_size,), generator=generator)
        logits = model(src[batch], tgt[batch, :-1])  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt[batch, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return {"losses": losses, "tokens": module.greedy_decode(model, test_src, max_len, bos, eos)}

