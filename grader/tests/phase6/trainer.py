"""6.5 the Trainer and 6.6 checkpoints, on a tiny trusted language model (grader/probes/phase6.py
TinyLM) so that these checks do not depend on the student's GPT.

The expected parameters come from the same training written with torch built-ins on ONE large
batch per step (probes.phase6.reference_run, run here in the judge): gradient accumulation must
equal it to float64 precision. Resumption is compared with the uninterrupted run bit for bit."""

from __future__ import annotations

import numpy as np
import torch

from grader.checks import CheckFailed, check, fingerprint
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
    """With an AdamW and a schedule shaped like torch.optim's (state dicts, param_groups; lr
    halved at every step) the run equals the large-batch reference, and each log row's lr is
    the rate its step used."""
    got = _compare_with_reference(m, "AdamW + a halving schedule", STEP_HINT, optimizer="adamw",
                                  scheduler="torch", clip=1.0)
    assert_close(np.array([row.get("lr", np.nan) for row in got["history"]]),
                 BASE["lr"] * 0.5 ** np.arange(3), "the lr of the log rows",
                 hint="Log the learning rate the step used (read it before scheduler.step()).")


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
    got = run_probe(m, "phase6.trainer_run", m, spec)
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
    if "5/5" not in got["stderr"]:
        raise CheckFailed("fit(5) with progress=True drew no tqdm progress bar on stderr.",
                          "tqdm(total=steps, initial=self.step, disable=not config.progress), "
                          "bar.update(1) after each step.")
    if not got["training_after"]:
        raise CheckFailed("after fit with validation the model is left in eval mode.",
                          "evaluate() switches to eval mode and back to train mode.")


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
    """save_atomically writes a new file, fsyncs it, then renames it onto the path (a new
    inode); a save that crashes half-way leaves the previous checkpoint loadable; no temporary
    file is left behind."""
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
    if got["leftovers"]:
        raise CheckFailed(f"files were left next to the checkpoint: {got['leftovers']}.",
                          "Remove the temporary file when the save fails (try/finally).")


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
