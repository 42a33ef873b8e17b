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
    """model.generate(idx, generator=Generator(seed), **kwargs) from train or eval mode."""
    model.train(train)
    before = idx.clone()
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    tokens = model.generate(idx, generator=generator, **kwargs)
    return {"tokens": tokens, "training_after": bool(model.training),
            "idx_unchanged": bool(torch.equal(before, idx))}


def cached_logits(module, model, idx, chunks: list[int]) -> dict:
    """Feed idx to the model through one KVCache, `chunks` tokens at a time; return the logits of
    every position and the cache length after each call."""
    model.eval()
    cache = module.KVCache(model.config.n_layer)
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
    whether bf16 autocast was on.
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

    def forward(self, idx, targets=None):
        self.autocast_seen.append(torch.is_autocast_enabled("cpu"))
        x = F.dropout(self.embedding[idx], self.dropout, self.training)  # (B, T, D)
        if self.noisy and self.training:
            x = x + 1e-3 * (float(np.random.randn()) + random.random())
        logits = self.head(torch.tanh(x))  # (B, T, V)
        return logits, None


def dataset(seed: int, n: int, t: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) (n, t) int64 with a random tail of each target row ignored (−100), so
    micro-batches hold different numbers of counted tokens."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, vocab, (n, t), generator=generator)
    targets = torch.randint(0, vocab, (n, t), generator=generator)
    lengths = torch.randint(1, t + 1, (n,), generator=generator)
    targets[torch.arange(t)[None, :] >= lengths[:, None]] = -100
    return inputs, targets


class PlainOptimizer:
    """A trusted optimizer shaped like torch.optim's (param_groups, state, step, zero_grad) and
    written out here: SGD, or AdamW with decoupled weight decay (Loshchilov & Hutter). The
    Trainer may only rely on that shape; constructing a torch.optim optimizer would import
    torch._dynamo (seconds) in both the judge and the worker."""

    def __init__(self, params, kind: str, lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.kind = kind
        self.param_groups = [{"params": list(params), "lr": lr, "weight_decay": weight_decay,
                              "betas": betas, "eps": eps}]
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
        return PlainOptimizer(params, "sgd", lr=spec.get("lr", 0.5))
    if name == "adamw":
        return PlainOptimizer(params, "adamw", lr=spec.get("lr", 1e-2), weight_decay=0.1)
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
    data = dataset(spec["seed"], spec["n"], spec["t"], spec["vocab"])
    loader = module.EpochLoader(data, spec["micro"], seed=spec["seed"],
                                shuffle=spec.get("shuffle", False))
    optimizer = _optimizer(spec, model.parameters(), course)
    scheduler = _scheduler(spec, optimizer, course)
    val = [dataset(spec["seed"] + 1, spec["micro"], spec["t"], spec["vocab"])] * 2
    config = module.TrainerConfig(
        accumulation_steps=spec["accumulation"], max_grad_norm=spec.get("clip"),
        bf16=spec.get("bf16", False), eval_every=spec.get("eval_every", 0),
        log_every=spec.get("log_every", 1), log_path=spec.get("log_path"),
        checkpoint_path=spec.get("checkpoint_path"),
        checkpoint_every=spec.get("checkpoint_every", 0), progress=spec.get("progress", False))
    trainer = module.Trainer(model, optimizer, loader, scheduler=scheduler,
                             val_batches=val if spec.get("eval_every") else None, config=config)
    return trainer, model


def _history(trainer) -> list[dict]:
    return [{k: float(v) for k, v in row.items() if isinstance(v, (int, float))}
            for row in trainer.history]


def trainer_run(module, spec: dict) -> dict:
    """Build the student's Trainer as spec says and fit(spec["steps"]); return the parameters,
    the history, the log file's rows, what was printed to stderr and the autocast flags."""
    course = _course_phase3(module) if "course" in (spec.get("optimizer"), spec.get("scheduler")) \
        else None
    torch.manual_seed(spec["seed"])
    trainer, model = _trainer(module, spec, spec["seed"], course)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        trainer.fit(spec["steps"])
    log = []
    if spec.get("log_path") and os.path.exists(spec["log_path"]):
        log = [json.loads(line) for line in Path(spec["log_path"]).read_text().splitlines()
               if line.strip()]
        os.remove(spec["log_path"])
    return {"params": _flat(model), "history": _history(trainer), "log": log,
            "stderr": stderr.getvalue()[-2000:], "autocast": list(model.autocast_seen),
            "training_after": bool(model.training), "step": int(trainer.step)}


def reference_run(spec: dict) -> dict:
    """What trainer_run must give, with torch built-ins: each step is ONE batch, the union of
    its micro-batches in the documented loader order, with F.cross_entropy's token mean and
    torch's clip_grad_norm_ (the same PlainOptimizer). Judge-side only (dropout 0, no noise,
    no bf16)."""
    model = TinyLM(spec["vocab"], spec["dim"], seed=spec["seed"])
    inputs, targets = dataset(spec["seed"], spec["n"], spec["t"], spec["vocab"])
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
    inputs, targets = dataset(spec["seed"] + 1, spec["micro"], spec["t"], spec["vocab"])
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


def atomic_save(module) -> dict:
    """save_atomically twice, watching os.fsync / os.replace / os.rename, then once more with a
    torch.save that writes half a file and fails (a crash in the middle of saving)."""
    directory = Path(tempfile.mkdtemp(dir=".")).resolve()
    path = directory / "checkpoint.pt"
    module.save_atomically({"step": torch.tensor(1)}, path)
    first_inode = os.stat(path).st_ino
    events: list[list] = []
    originals = os.fsync, os.replace, os.rename, torch.save

    def fsync(fd):
        events.append(["fsync", os.fstat(fd).st_ino])
        return originals[0](fd)

    def replace(src, dst, *args, **kwargs):
        events.append(["replace", os.stat(src).st_ino, str(Path(dst).resolve())])
        return originals[1](src, dst, *args, **kwargs)

    def rename(src, dst, *args, **kwargs):
        events.append(["replace", os.stat(src).st_ino, str(Path(dst).resolve())])
        return originals[2](src, dst, *args, **kwargs)

    os.fsync, os.replace, os.rename = fsync, replace, rename
    try:
        module.save_atomically({"step": torch.tensor(2), "weights": torch.randn(50_000)}, path)
    finally:
        os.fsync, os.replace, os.rename = originals[:3]
    second_inode = os.stat(path).st_ino
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
            "leftovers": leftovers, "crashed": crashed, "after_crash": after_crash}


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

