"""Capstone of phase 6: a character-level Mamba beside your char-GPT on Tiny Shakespeare, at
equal wall time.

Both models read your CharTokenizer's ids, are optimised by your phase-3 AdamW with a warmup-
cosine schedule and trained by your Trainer for the same number of seconds: each first times a
few steps, then trains for as many steps as fit in the budget. The GPT is char-gpt's model
(4 layers, 4 heads, 128 wide, context 64); the Mamba LM has 4 layers of width 128, d_state 16,
and reads the same windows. The summary gives both val losses (the whole validation split)
and a 300-character sample of each; the Mamba samples through its recurrent step, one token at
a time in constant memory.
Writes runs/mamba-shakespeare-<time>/{gpt_loss.png, mamba_loss.png, samples.txt, summary.json}.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from grader.capstones import char_gpt, course_module, run_directory
from grader.capstones.plots import finish, plot_loss_steps

NAME = "mamba-shakespeare"
RECIPE = {
    "seconds": 300,  # wall-time budget of each model's training
    "d_model": 128, "n_layer": 4, "d_state": 16, "block_size": 64, "batch_size": 32,
    "lr": 2e-3, "min_lr": 1e-4, "warmup": 50, "weight_decay": 0.1, "clip": 1.0,
    "timing_steps": 5, "eval_batches": None, "seed": 1337, "threads": 1, "sample_length": 300,
}


def describe() -> str:
    return ("a character-level Mamba LM beside your char-GPT on Tiny Shakespeare at equal wall "
            "time (phase 6); prints both val losses and samples")


def _trainer(course, optim, model, train_ids, val_batches, config, steps):
    optimizer = optim.AdamW(char_gpt._parameter_groups(model, config["weight_decay"]),
                            lr=config["lr"], betas=(0.9, 0.99))
    scheduler = optim.WarmupCosine(optimizer, min(config["warmup"], max(steps - 1, 1)), steps,
                                   eta_min=config["min_lr"])
    loader = course.EpochLoader(char_gpt.TokenWindows(train_ids, config["block_size"]),
                                config["batch_size"], seed=config["seed"])
    return course.Trainer(model, optimizer, loader, scheduler=scheduler,
                          val_batches=val_batches,
                          config=course.TrainerConfig(max_grad_norm=config["clip"],
                                                      log_every=25, progress=True))


def _train_for(build, course, optim, train_ids, val_batches, config) -> dict:
    """Time a few steps of a fresh model, then train another fresh one for the budget."""
    torch.manual_seed(config["seed"])
    probe = _trainer(course, optim, build(), train_ids, val_batches, config, 1000)
    started = time.monotonic()
    for _ in range(config["timing_steps"]):
        probe.train_step()
    per_step = (time.monotonic() - started) / config["timing_steps"]
    steps = max(1, int(config["seconds"] / per_step))
    torch.manual_seed(config["seed"])
    model = build()
    trainer = _trainer(course, optim, model, train_ids, val_batches, config, steps)
    started = time.monotonic()
    history = trainer.fit(steps)
    seconds = time.monotonic() - started
    return {"model": model, "trainer": trainer, "steps": steps, "seconds": round(seconds, 1),
            "val_loss": trainer.evaluate(), "history": history,
            "parameters": sum(p.numel() for p in model.parameters())}


@torch.no_grad()
def mamba_sample(course, model, prompt: list[int], length: int, generator) -> list[int]:
    """Sample through MambaLM.step: O(1) work per token whatever the length so far."""
    model.eval()
    states, tokens = None, list(prompt)
    for token in prompt[:-1]:
        _, states = model.step(torch.tensor([token]), states)
    for _ in range(length):
        logits, states = model.step(torch.tensor([tokens[-1]]), states)
        tokens.append(int(course.sample_next(logits, 0.8, top_k=40, generator=generator)))
    return tokens


def run(solution: bool = False, epochs: int | None = None, out: Path | None = None,
        recipe: dict | None = None) -> dict:
    """Train both models; `epochs` is read as the wall-time budget per model in seconds."""
    course = course_module("phase6_models", solution)
    optim = course_module("phase3_optim", solution)
    config = {**RECIPE, **(recipe or {})}
    if epochs:
        config["seconds"] = epochs
    torch.set_num_threads(config["threads"])
    tokenizer, train_ids, val_ids = char_gpt.encoded_shakespeare(course)
    val_batches = char_gpt._val_batches(val_ids, config["block_size"], 256,
                                        config["eval_batches"], 0)
    directory = run_directory(NAME, out)
    gpt = char_gpt.RECIPE
    builders = {
        "gpt": lambda: course.GPT(course.GPTConfig(
            vocab_size=tokenizer.vocab_size, block_size=config["block_size"],
            n_layer=gpt["n_layer"], n_head=gpt["n_head"], n_embd=gpt["n_embd"], dropout=0.0)),
        "mamba": lambda: course.MambaLM(course.MambaConfig(
            vocab_size=tokenizer.vocab_size, d_model=config["d_model"],
            n_layer=config["n_layer"], d_state=config["d_state"])),
    }
    print(f"{describe()}\n{config['seconds']} s per model; {config}\nwriting to {directory}")
    results = {name: _train_for(build, course, optim, train_ids, val_batches, config)
               for name, build in builders.items()}

    prompt = tokenizer.encode("\n")
    generator = torch.Generator().manual_seed(config["seed"])
    samples = {
        "gpt": tokenizer.decode(results["gpt"]["model"].generate(
            torch.tensor([prompt]), config["sample_length"], temperature=0.8, top_k=40,
            generator=generator)[0].tolist()),
        "mamba": tokenizer.decode(mamba_sample(course, results["mamba"]["model"], prompt,
                                               config["sample_length"], generator)),
    }
    (directory / "samples.txt").write_text(
        "".join(f"==== {name}\n{text}\n\n" for name, text in samples.items()))
    summary = {"task": NAME, "solution": solution, "config": config, "samples": samples}
    for name, result in results.items():
        summary[name] = {k: result[k] for k in ("steps", "seconds", "val_loss", "parameters",
                                                "history")}
        summary[name]["val_perplexity"] = math.exp(result["val_loss"])
    for name in results:
        plot_loss_steps(results[name]["history"], directory / f"{name}_loss.png",
                        f"{name} on Tiny Shakespeare: {config['seconds']} s of training")
        print(f"\n==== {name}: val loss {summary[name]['val_loss']:.4f} after "
              f"{summary[name]['steps']} steps in {summary[name]['seconds']:.0f} s "
              f"({summary[name]['parameters'] / 1e6:.2f}M parameters)\n{samples[name]}")
    val = {name: f"{summary[name]['val_loss']:.4f}" for name in results}
    return finish(directory, summary, f"\nval loss at equal wall time: {val}", None,
                  files="gpt_loss.png, mamba_loss.png, samples.txt")
