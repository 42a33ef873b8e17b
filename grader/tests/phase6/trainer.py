"""6.5 the Trainer and 6.6 checkpoints, on a tiny trusted language model (grader/probes/phase6.py
TinyLM) so that these checks do not depend on the student's GPT.

The expected parameters come from the same training written with torch built-ins on ONE large
batch per step (probes.phase6.reference_run, run here in the judge): gradient accumulation must
equal it to float64 precision. Resumption is compared with the uninterrupted run bit for bit."""

from __future__ import annotations

import time

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import raises
from grader.checks.oracle import as_array, assert_close
from grader.probes import phase6 as probes
from grader.session import run_probe
from grader.tests.phase6._helpers import safely

EXACT = {"rtol": 1e-10, "atol": 1e-12}
BASE = {"seed": 3, "n": 24, "t": 6, "vocab": 11, "dim": 8, "micro": 2, "accumulation": 3,
        "steps": 3, "optimizer": "sgd", "lr": 0.5, "clip": None}
ACCUMULATION_HINT = ("Backpropagate each micro-batch's SUMMED loss, then divide every gradient "
                     "by N, the number of counted targets of all the micro-batches together: "
                     "the mean of per-micro-batch means weighs the tokens of a short "
                     "micro-batch more than those of a long one.")
STEP_HINT = ("One step: the micro-batches' backward passes, then gradients ÷ N, then clip, "
             "optimizer.step(), scheduler.step(), optimizer.zero_grad().")
PROGRESS_HINT = ("tqdm(total=steps, initial=self.step, desc='training', unit='step', "
                 "disable=not (config.progress and self.is_main)), bar.update(1) after each "
                 "step and bar.set_postfix of the losses on each logged row.")
RESUME_HINT = ("A checkpoint must hold everything the next step depends on: the model, the "
               "optimizer's state (Adam's moments and step), the scheduler, Python's, NumPy's "
               "and torch's global RNG states, the loader's epoch and position, the step count "
               "and the history — and load_checkpoint must restore every one of them.")


def _run(m, **changes) -> dict:
    return run_probe(m, "phase6.trainer_run", m, {**BASE, **changes})


def _compare_with_reference(m, what: str, hint: str, **changes) -> dict:
    spec = {**BASE, **changes}
    got = _run(m, **changes)
    expected = probes.reference_run(spec)
    losses = [row.get("loss", np.nan) for row in got["history"]]
    assert_close(np.array(losses), np.array(expected["losses"]),
                 f"the loss of every step ({what})", hint=hint, **EXACT)
    assert_close(got["params"], expected["params"].numpy(),
                 f"the parameters after {spec['steps']} steps ({what})", hint=hint, **EXACT)
    return got


@check("trainer", "oracle", weight=3)
def accumulated_micro_batches_equal_one_large_batch(m):
    """Three steps of 6 examples with ragged targets (−100 tails) give the parameters and
    losses of one large batch with a token-mean loss, whether the 6 come as 3 micro-batches of
    2, 6 of 1, or 1 of 6 (SGD, float64)."""
    for micro, accumulation in ((2, 3), (1, 6), (6, 1)):
        _compare_with_reference(m, f"{accumulation} micro-batches of {micro}", ACCUMULATION_HINT,
                                micro=micro, accumulation=accumulation)


@check("trainer", "oracle")
def trainer_clips_the_joint_gradient_norm(m):
    """With max_grad_norm = 0.05 the steps equal torch's clip_grad_norm_ applied to the
    large-batch gradient (clipping comes after the division by the token count)."""
    _compare_with_reference(m, "max_grad_norm=0.05", "Clip the final gradient: after dividing "
                            "by the token count, before optimizer.step(). " + STEP_HINT,
                            clip=0.05)


@check("trainer", "oracle")
def trainer_steps_any_optimizer_and_scheduler(m):
    """With an AdamW and a schedule shaped like torch.optim's (state dicts, two param_groups at
    lr and lr / 2; lr halved at every step) the run equals the large-batch reference, and each
    log row's lr is the rate the first group's step used."""
    got = _compare_with_reference(m, "AdamW + a halving schedule, two parameter groups",
                                  STEP_HINT, optimizer="adamw", scheduler="torch", clip=1.0,
                                  split=True)
    assert_close(np.array([row.get("lr", np.nan) for row in got["history"]]),
                 BASE["lr"] * 0.5 ** np.arange(3), "the lr of the log rows",
                 hint="Log the learning rate the step used (read it before scheduler.step()), "
                      "of the first parameter group: optimizer.param_groups[0]['lr'].")


@check("trainer", "oracle")
def epoch_loader_follows_its_documented_order(m):
    """EpochLoader: epoch e visits torch.randperm(n, seed + e) in batches (the incomplete one
    dropped), shuffle=False visits 0 … n−1, rank r of world_size w takes the r-th slice of each
    w·batch_size, and a loader given another's state_dict() continues its stream."""
    cases = [  # (n, batch_size, seed, shuffle, rank, world_size)
        (10, 3, 4, True, 0, 1), (10, 3, 4, False, 0, 1), (13, 3, 5, True, 1, 2),
    ]
    for n, batch_size, seed, shuffle, rank, world in cases:
        got = run_probe(m, "phase6.loader_batches", m, n, batch_size, seed, shuffle, rank, world,
                        7, 2)
        what = f"EpochLoader(n={n}, batch_size={batch_size}, shuffle={shuffle}, rank={rank}, " \
               f"world_size={world})"
        if not got["paired"]:
            raise CheckFailed(f"{what} returned a batch whose tensors do not belong together.",
                              "Index every tensor of the dataset tuple with the same indices.")
        per_step = batch_size * world
        steps = n // per_step
        expected = []
        for epoch in range(4):
            order = (torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
                     if shuffle else torch.arange(n))
            for step in range(steps):
                start = step * per_step + rank * batch_size
                expected.append(order[start:start + batch_size])
        expected = torch.stack(expected[:7]).numpy()
        assert_close(got["batches"], expected, f"the first 7 batches of {what}",
                     hint="Draw each epoch's order with torch.randperm(n, generator="
                          "torch.Generator().manual_seed(seed + epoch)).")
        assert_close(got["resumed"], expected[2:], f"the batches of a second {what} loaded "
                     "with the first's state_dict() after 2 batches",
                     hint="state_dict() is {'epoch', 'position'}; load_state_dict continues "
                          "from exactly there.")


@check("trainer", "invariant")
def trainer_validates_logs_and_shows_progress(m):
    """fit(5) with eval_every = 2 and log_every = 2 logs steps 2, 4 and 5 with a val_loss (the
    token mean over val_batches, in eval mode), writes the same rows to log_path as JSON Lines,
    draws a tqdm bar and leaves the model in training mode."""
    spec = {**BASE, "steps": 5, "eval_every": 2, "log_every": 2, "progress": True,
            "log_path": "trainer_log.jsonl"}
    started = time.monotonic()
    got = run_probe(m, "phase6.trainer_run", m, spec)
    elapsed = time.monotonic() - started
    steps = [int(row.get("step", -1)) for row in got["history"]]
    if steps != [2, 4, 5]:
        raise CheckFailed(f"the history has rows for steps {steps}, expected [2, 4, 5].",
                          "A row every log_every steps, on every validation step and after the "
                          "last step.")
    if any("val_loss" not in row for row in got["history"]):
        raise CheckFailed("a validation step's row has no val_loss.",
                          "Add row['val_loss'] = evaluate() every eval_every steps.")
    expected = probes.evaluate_reference(spec, torch.as_tensor(got["params"]))
    assert_close(np.array(got["history"][-1]["val_loss"]), np.array(expected),
                 "the val_loss after the last step", hint="evaluate(): Σ summed losses / Σ "
                 "counted tokens over val_batches, under torch.no_grad() in eval mode.", **EXACT)
    logged = [{k: float(v) for k, v in row.items()} for row in got["log"]]
    if logged != got["history"]:
        raise CheckFailed(f"log_path holds {len(logged)} rows that differ from the history "
                          f"({len(got['history'])} rows).",
                          "Append json.dumps(row) + '\\n' to log_path for each history row.")
    seconds = [row.get("seconds", -1.0) for row in got["history"]]
    if not (0 <= seconds[0] and np.all(np.diff(seconds) >= 0) and seconds[-1] <= elapsed):
        raise CheckFailed(f"the log rows' seconds are {seconds}: expected the seconds since fit "
                          f"began (this fit took less than {elapsed:.1f} s).",
                          "seconds = time.monotonic() − the time.monotonic() read when fit began.")
    bar = got["stderr"]
    if "5/5" not in bar or "training" not in bar or "step" not in bar or "loss=" not in bar:
        raise CheckFailed("fit(5) with progress=True drew no tqdm bar on stderr that counts "
                          "the steps 5/5 as 'training', in steps, with the losses: "
                          f"{bar[-300:]!r}.", PROGRESS_HINT)
    quiet = run_probe(m, "phase6.trainer_run", m, {**spec, "progress": False})
    if "/5" in quiet["stderr"]:
        raise CheckFailed("with progress=False fit still drew a progress bar.", PROGRESS_HINT)
    if not got["training_after"]:
        raise CheckFailed("after fit with validation the model is left in eval mode.",
                          "evaluate() switches to eval mode and back to train mode.")


@check("trainer", "oracle")
def trainer_counts_one_token_and_no_token(m):
    """A step that counts one target follows the large-batch reference (loss, parameters and
    val_loss); a step and a validation that count none return 0.0 and leave SGD's parameters
    alone (every target −100)."""
    spec = {"micro": 1, "accumulation": 1, "eval_every": 1, "counted": 1, "val_batches": 1}
    got = _compare_with_reference(m, "one counted target per step", ACCUMULATION_HINT, **spec)
    expected = probes.evaluate_reference({**BASE, **spec}, torch.as_tensor(got["params"]))
    assert_close(np.array(got["history"][-1].get("val_loss", np.nan)), np.array(expected),
                 "the val_loss of a validation batch with one counted target",
                 hint="evaluate(): Σ summed losses / Σ counted tokens.", **EXACT)
    empty = _run(m, **{**spec, "counted": 0})
    hint = ("With no counted target the summed loss is 0 and so is N: divide by max(N, 1), "
            "not by N, so the step's gradients (and its loss) are 0.")
    for key in ("loss", "val_loss"):
        values = [row.get(key, np.nan) for row in empty["history"]]
        if values != [0.0] * BASE["steps"]:
            raise CheckFailed(f"with every target ignored the rows' {key} are {values}, "
                              f"expected 0.0.", hint)
    initial = probes.TinyLM(BASE["vocab"], BASE["dim"], seed=BASE["seed"])
    assert_close(empty["params"], probes._flat(initial).numpy(),
                 "the parameters after SGD steps that counted no target", hint=hint, **EXACT)


@check("trainer", "invariant")
def trainer_modes_checkpoints_and_progress(m):
    """fit(5) from step 1, the model handed over in eval mode, eval_every = 1, checkpoint_every
    = 2: training forward passes in training mode and validation ones in eval mode, checkpoints
    saved after steps 2, 4 and 5, gradients freed after each step, and a bar that counts from
    step 1 to 5/5."""
    spec = {**BASE, "steps": 5, "start_step": 1, "eval_before_fit": True, "eval_every": 1,
            "checkpoint_every": 2, "checkpoint_path": "trainer_checkpoint.pt", "progress": True}
    got = run_probe(m, "phase6.trainer_run", m, spec)
    modes = [bool(mode) for mode in got["modes"]]
    expected = ([True] * BASE["accumulation"] + [False] * 2) * 4
    if modes != expected:
        raise CheckFailed(f"the forward passes of 4 steps (3 micro-batches) each followed by a "
                          f"validation (2 batches) ran in training mode {modes}, expected "
                          f"{expected}.", "train_step calls model.train() (the model may come "
                          "in eval mode), evaluate() model.eval() and then model.train().")
    if got["saved_steps"] != [2, 4, 5]:
        raise CheckFailed(f"fit from step 1 to 5 with checkpoint_every = 2 saved checkpoints "
                          f"of steps {got['saved_steps']}, expected [2, 4, 5].",
                          "Save when step % checkpoint_every == 0, and after the last step.")
    if not got["grads_freed"]:
        raise CheckFailed("after fit the parameters still hold gradients.",
                          "optimizer.zero_grad() (set_to_none=True) after every step.")
    if "5/5" not in got["stderr"]:
        raise CheckFailed(f"fit(5) from step 1 drew a bar that ends at {got['stderr'][-200:]!r},"
                          " expected 5/5.", PROGRESS_HINT)


@check("trainer", "oracle")
def trainer_runs_as_one_process_of_a_distributed_world(m):
    """As rank 0 of 2 processes holding the same batches (torch.distributed and DDP stood in
    for by a mirror: all_reduce sums two equal parts), the run equals the one-process reference,
    gradients are synchronised on the last micro-batch of each step only, and rank 0 writes
    the log and the checkpoint while rank 1 writes neither."""
    spec = {"log_path": "rank_log.jsonl", "checkpoint_path": "rank_checkpoint.pt"}
    got = _compare_with_reference(m, "rank 0 of a mirrored world of 2",
                                  "Under DDP N is the all-reduced token count of every process "
                                  "and the gradients (averaged by DDP) are multiplied by the "
                                  "world size: k processes equal one on the union batch.",
                                  mirror_rank=0, **spec)
    expected = ([False] * (BASE["accumulation"] - 1) + [True]) * BASE["steps"]
    if [bool(flag) for flag in got["synced"]] != expected:
        raise CheckFailed(f"the forward passes synchronised gradients {got['synced']}, expected "
                          f"{expected}: only the last micro-batch of a step all-reduces.",
                          "Run every micro-batch but the last inside model.no_sync().")
    other = _run(m, mirror_rank=1, **spec)
    for rank, run in ((0, got), (1, other)):
        wrote = bool(run["log"]) or bool(run["saved_steps"])
        if wrote != (rank == 0):
            raise CheckFailed(f"rank {rank} " + ("wrote" if wrote else "did not write")
                              + " the log and checkpoint: only rank 0 writes them.",
                              "is_main = not distributed or dist.get_rank() == 0.")


@check("trainer", "stability")
def epoch_loader_keeps_its_contract(m):
    """EpochLoader raises ValueError when the dataset cannot fill one batch and accepts one
    that fills exactly one; a dataset object (__len__, __getitem__) gives its own batches, in
    its own dtype (int64)."""
    raises(lambda: m.EpochLoader((torch.arange(5), torch.arange(5)), 8), "ValueError",
           "EpochLoader of 5 examples in batches of 8",
           "steps_per_epoch = n // (batch_size·world_size) must be at least 1.")
    one = m.EpochLoader((torch.arange(8),), 8, shuffle=False)
    for _ in range(2):
        assert_close(one.next_batch()[0], np.arange(8), "the batches of 8 examples in batches "
                     "of 8 (one per epoch)", hint="Exactly one full batch is one step per epoch.")
    batches = run_probe(m, "phase6.object_loader_batches", m, 7, 3, 3)
    for k, batch in enumerate(batches):
        got = as_array(batch, "the batch")
        indices = np.arange(3 * (k % 2), 3 * (k % 2) + 3)
        if got.dtype != np.int64:
            raise CheckFailed(f"an EpochLoader over a dataset object returned {got.dtype} "
                              "batches, expected the dataset's own int64.",
                              "Return dataset[indices] as it is.")
        assert_close(got, np.stack((indices, indices * 10), 1), f"batch {k} of a dataset "
                     "object (7 examples, batches of 3, shuffle=False)",
                     hint="Index the dataset with the batch's index tensor: dataset[indices].")


@check("trainer", "invariant")
def bf16_autocast_covers_every_forward_pass(m):
    """bf16=True runs every forward pass (training and validation) under CPU autocast with
    losses within 3% of float32's; bf16=False never does."""
    spec = {"steps": 2, "eval_every": 1, "optimizer": "adamw", "lr": 1e-2, "float32": True}
    with_bf16, without = _run(m, bf16=True, **spec), _run(m, bf16=False, **spec)
    flags = [bool(flag) for flag in with_bf16["autocast"]]
    if not flags or not all(flags):
        raise CheckFailed(f"with bf16=True, {flags.count(False)} of {len(flags)} forward passes "
                          "ran without autocast.",
                          "Wrap every forward pass, validation too, in torch.autocast('cpu', "
                          "dtype=torch.bfloat16, enabled=config.bf16).")
    if any(bool(flag) for flag in without["autocast"]):
        raise CheckFailed("with bf16=False some forward passes ran under autocast.",
                          "enabled=config.bf16.")
    bf16 = np.array([row["loss"] for row in with_bf16["history"]])
    f32 = np.array([row["loss"] for row in without["history"]])
    assert_close(bf16, f32, "the bf16 losses against float32's", rtol=3e-2, atol=0.0,
                 hint="Sum the loss in float32: cast bfloat16 logits with .float() first.")
    loss = run_probe(m, "phase6.autocast_loss", m, BASE)
    if loss["dtype"] != "torch.float32":
        raise CheckFailed(f"under bf16 autocast language_model_loss returned a {loss['dtype']} "
                          "loss, expected float32.",
                          "A bfloat16 sum of many token losses keeps 3 significant digits: "
                          "cast bfloat16 logits with .float() before the cross-entropy.")


def _resume(m, **changes) -> None:
    spec = {**BASE, "n": 20, "micro": 2, "accumulation": 2, "steps": 8, "shuffle": True,
            "dropout": 0.3, "noisy": True, "optimizer": "adamw", "scheduler": "torch",
            "clip": 1.0, **changes}
    got = run_probe(m, "phase6.resume_run", m, spec, 3)
    what = ("your phase-3 AdamW and WarmupCosine" if spec["optimizer"] == "course"
            else "a torch-style AdamW and schedule")
    if int(got["step_after_load"]) != 3:
        raise CheckFailed(f"after loading a step-3 checkpoint the trainer's step is "
                          f"{got['step_after_load']}.", RESUME_HINT)
    straight = np.array(got["straight_losses"])
    resumed = np.array(got["resumed_losses"])
    if straight.shape != resumed.shape or not np.array_equal(straight, resumed):
        differs = next((i + 1 for i, (a, b) in enumerate(zip(straight, resumed, strict=False))
                        if a != b), min(len(straight), len(resumed)) + 1)
        raise CheckFailed(f"resumed at step 3 (mid-epoch; {what}), the losses differ from the "
                          f"uninterrupted run's from step {differs} on: "
                          f"{np.round(resumed, 6).tolist()} against "
                          f"{np.round(straight, 6).tolist()}.", RESUME_HINT)
    if not np.array_equal(as_array(got["resumed_params"], "parameters"),
                          as_array(got["straight_params"], "parameters")):
        raise CheckFailed(f"resumed at step 3 ({what}), the final parameters are not "
                          "bit-identical to the uninterrupted run's.", RESUME_HINT)


@check("trainer_checkpoint", "invariant", weight=3)
def resuming_mid_epoch_reproduces_the_run_bit_for_bit(m):
    """Stopped at step 3 of 8 (mid-epoch, dropout and noise from Python's and NumPy's RNGs,
    a torch-style AdamW and schedule), rebuilt from another init with scrambled RNGs and
    resumed from the checkpoint, the run has the uninterrupted run's losses and bit-identical
    parameters."""
    _resume(m)


@check("trainer_checkpoint", "invariant")
def resuming_works_with_the_course_optimizer_and_schedule(m):
    """The same bit-exact resumption with your phase-3 AdamW and WarmupCosine, which have no
    state_dict() of their own."""
    _resume(m, optimizer="course", scheduler="course")


@check("trainer_checkpoint", "invariant", weight=2)
def checkpoints_are_written_atomically(m):
    """save_atomically writes a new file, flushes and fsyncs it whole, then renames it onto the
    path (a new inode) and fsyncs the directory; a save that crashes half-way leaves the
    previous checkpoint loadable; no temporary file or file descriptor is left behind."""
    got = run_probe(m, "phase6.atomic_save", m)
    hint = ("Write to a temporary file in the same directory, flush, os.fsync(file.fileno()), "
            "then os.replace(temporary, path) — the path never holds half a file.")
    if got["second_step"] != 2:
        raise CheckFailed("after a second save the checkpoint does not hold the second object.",
                          hint)
    if got["second_inode"] == got["first_inode"]:
        raise CheckFailed("the second save wrote into the existing checkpoint file instead of "
                          "renaming a new one onto it: a crash half-way would destroy it.", hint)
    events = [tuple(event) for event in got["events"]]
    renames = [i for i, event in enumerate(events)
               if event[0] == "replace" and event[2] == got["path"]]
    if not renames:
        raise CheckFailed("the new checkpoint did not reach its path by os.replace/os.rename.",
                          hint)
    moved = events[renames[0]][1]
    if ("fsync", moved) not in events[:renames[0]]:
        raise CheckFailed("the new file was renamed onto the checkpoint before it was fsynced: "
                          "after a power cut the rename may survive while the data does not.",
                          hint)
    if not got["crashed"] or got["after_crash"] != "2":
        raise CheckFailed("a save whose torch.save failed half-way "
                          + ("was not reported (no exception)" if not got["crashed"] else
                             f"left a checkpoint that loads as {got['after_crash']!r}")
                          + ", expected the previous checkpoint (step 2) intact.", hint)
    if got["leftovers"] or got["leftovers_after_crash"]:
        raise CheckFailed("files were left next to the checkpoint: "
                          f"{got['leftovers'] or got['leftovers_after_crash']}"
                          + (" after a save that failed" if not got["leftovers"] else "") + ".",
                          "Remove the temporary file when the save fails (try/finally).")
    durable = dict(map(tuple, got["fsync_sizes"])).get(moved)
    if durable != got["second_size"]:
        raise CheckFailed(f"the new file was fsynced when {durable} of its {got['second_size']} "
                          "bytes had reached it: the rest sat in Python's buffer.",
                          "file.flush() before os.fsync(file.fileno()): fsync makes durable "
                          "only what the operating system has been given.")
    if ("fsync", got["directory_inode"]) not in events[renames[0]:]:
        raise CheckFailed("the directory was not fsynced after the rename: after a power cut "
                          "the rename itself may be lost.",
                          "fd = os.open(directory, os.O_RDONLY); os.fsync(fd); os.close(fd).")
    if got["leaked_descriptors"]:
        raise CheckFailed(f"save_atomically left {got['leaked_descriptors']} file descriptor(s) "
                          "open.", "Close what you open (with, or try/finally: os.close(fd)).")


@check("trainer_checkpoint", "stability")
def a_checkpoint_refuses_a_different_optimizer(m):
    """load_trainer_state raises ValueError when the trainer's optimizer does not match the
    state's: two parameter groups where it had one, or one parameter where it had three."""
    errors = run_probe(m, "phase6.load_mismatched", m, BASE)
    for what, error in zip(("two parameter groups for one", "one parameter for three"), errors,
                           strict=True):
        if error != "ValueError":
            raise CheckFailed(f"loading a checkpoint into a trainer whose optimizer has {what} "
                              + (f"raised {error}" if error else "did not raise")
                              + ", expected ValueError: a silent partial restore resumes a "
                              "different run.",
                              "zip(…, strict=True) over the parameters and over the groups.")


@check("trainer_checkpoint", "oracle")
def rng_states_round_trip(m):
    """set_rng_state(rng_state()) makes Python's random, NumPy's and torch's global generators
    repeat their draws, also after a torch.save / torch.load(weights_only=True) round trip."""
    got = run_probe(m, "phase6.rng_round_trip", m)
    for label, draws in (("restored", got["second"]), ("saved and reloaded", got["third"])):
        for name, a, b in zip(("random", "numpy", "torch"), got["first"], draws, strict=True):
            if a != b:
                raise CheckFailed(f"after set_rng_state ({label}), {name}'s next draw is {b}, "
                                  f"expected {a}.", "random.getstate(), np.random.get_state(), "
                                  "torch.get_rng_state() — and the matching set functions.")


@fingerprint("trainer")
def trainer_outputs(m):
    return {
        "accumulation": safely(lambda: _run(m)["params"]),
        "clipped": safely(lambda: _run(m, clip=0.05)["params"]),
        "scheduled": safely(lambda: _run(m, optimizer="adamw", scheduler="torch")["params"]),
        "modes": safely(lambda: _modes(m)),
        "loader": safely(lambda: run_probe(m, "phase6.loader_batches", m, 6, 2, 1, True, 0, 1,
                                           6, 1)["batches"]),
    }


def _modes(m) -> list[float]:
    """Whether bf16 autocast was on in every forward pass, and whether training mode survived
    a validation."""
    got = _run(m, bf16=True, steps=1, eval_every=1, optimizer="adamw", lr=1e-2, float32=True)
    return [float(all(got["autocast"])), float(got["training_after"])]


@fingerprint("trainer_checkpoint")
def checkpoint_outputs(m):
    def resumed():
        spec = {**BASE, "n": 20, "steps": 6, "accumulation": 2, "shuffle": True, "dropout": 0.3,
                "noisy": True, "optimizer": "adamw", "scheduler": "torch"}
        got = run_probe(m, "phase6.resume_run", m, spec, 3)
        return np.round(np.array(got["resumed_losses"]) - np.array(got["straight_losses"]), 8)

    def atomic():
        got = run_probe(m, "phase6.atomic_save", m)
        events = [tuple(event) for event in got["events"]]
        renames = [i for i, e in enumerate(events) if e[0] == "replace"]
        fsynced = bool(renames) and ("fsync", events[renames[0]][1]) in events[:renames[0]]
        return [float(got["second_inode"] != got["first_inode"]), float(fsynced),
                float(got["after_crash"] == "2")]

    return {"resumed": safely(resumed), "atomic": safely(atomic)}
