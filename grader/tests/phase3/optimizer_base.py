"""3.1 The Optimizer base, tested alone: the probe subclasses the student's Optimizer with a
trivial rule (p ← p − lr·scale·k·g at a parameter's k-th update) and reports what happened."""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.contracts import raises
from grader.checks.oracle import assert_close
from grader.session import StudentError, run_probe
from grader.tests.phase3._helpers import attempt

# what the probe's groups should look like: per group [lr, scale, number of params]
GROUPS = {
    "list": np.array([[0.5, 1.0, 3]]),
    "generator": np.array([[0.5, 1.0, 3]]),
    "dicts": np.array([[0.25, 1.0, 2], [0.5, 3.0, 1]]),
}
GROUP_HINTS = {
    "list": "A plain list of tensors is one group: [{'params': [...], **defaults}].",
    "generator": "model.parameters() is a generator and can be read only once: call list() on "
                 "it before checking whether it holds tensors or dicts.",
    "dicts": "Each dict is a group; every hyperparameter it does not set comes from defaults "
             "(group.setdefault(key, value)), and a lone tensor as 'params' becomes a list.",
}
BUILT_FROM = {"list": "a list of tensors", "generator": "a generator of tensors",
              "dicts": "param-group dicts"}
STEPS = 3
W_A, W_B = np.array([2.0, -3.0]), np.array([4.0])


def _probe(m, name: str, *args, doing: str, hint: str | None = None):
    """run_probe, with the student's exception turned into a diagnosis (not-implemented and
    forbidden-API errors pass through so the report classifies them)."""
    try:
        return run_probe(m, name, m, *args)
    except StudentError as error:
        if error.not_implemented or error.forbidden:
            raise
        where = f" at {error.where[-1]}" if error.where else ""
        raise CheckFailed(f"your code raised {error.type}: {error.message} while {doing}{where}.",
                          hint) from None


@check("optimizer_base", "oracle")
def param_groups_hold_the_tensors_and_every_default(m):
    """param_groups is built from a list, a generator or dicts, with every default filled in."""
    for how, expected in GROUPS.items():
        table, same = _probe(m, "phase3.base_groups", how,
                             doing=f"building an optimizer from {BUILT_FROM[how]}",
                             hint=GROUP_HINTS[how])
        assert_close(table, expected, f"[lr, scale, len(params)] of each group built from {how}",
                     hint=GROUP_HINTS[how])
        if not same:
            raise CheckFailed(f"built from {how}, group['params'] is not a list of the very "
                              f"tensors given (in order).",
                              "Keep the caller's tensors themselves: the optimizer must update "
                              "the model's parameters in place.")


@check("optimizer_base", "invariant")
def a_parameter_in_two_groups_is_rejected(m):
    """Giving one tensor to two param groups raises ValueError."""
    if not _probe(m, "phase3.base_rejects_duplicates", doing="adding a parameter twice"):
        raise CheckFailed("a tensor given to two param groups was accepted.",
                          "add_param_group should raise ValueError when one of the new group's "
                          "parameters is already in a group (compare with `is`/id, not ==).")


@check("optimizer_base", "invariant")
def an_empty_parameter_list_is_rejected(m):
    """Optimizer([], defaults) raises ValueError, as torch.optim does: an optimizer over
    nothing would train nothing, silently (a generator read twice is empty the second time)."""
    raises(lambda: m.Optimizer([], {"lr": 0.1}), "ValueError", "Optimizer([], {'lr': 0.1})",
           "After params = list(params), raise ValueError if it is empty — before looking at "
           "params[0] to tell tensors from dicts.")


@check("optimizer_base", "oracle")
def zero_grad_sets_none_or_zeroes_in_place(m):
    """zero_grad() sets p.grad to None; zero_grad(set_to_none=False) zeroes the same tensor."""
    set_to_none, kept, zeros = _probe(m, "phase3.base_zero_grad", doing="calling zero_grad")
    if not set_to_none:
        raise CheckFailed("after zero_grad(), p.grad is not None.",
                          "Since PyTorch 2.0 the default is set_to_none=True: p.grad = None.")
    if not (kept and zeros):
        raise CheckFailed("after zero_grad(set_to_none=False), p.grad is "
                          + ("a different tensor" if not kept else "not all zeros") + ".",
                          "Zero the existing gradient in place: p.grad.zero_().")


def _expected_step_run(steps: int):
    """The probe's rule by hand: group 0 = [a, c] (lr 0.1, scale 2), group 1 = [b] (lr 0.01)."""
    a, b = np.array([1.0, -1.0]), np.array([0.5])
    losses = []
    for k in range(1, steps + 1):
        losses.append(float(W_A @ a + W_B @ b + a @ a))
        a = a - 0.1 * 2.0 * k * (W_A + 2 * a)
        b = b - 0.01 * 2.0 * k * W_B
    return a, b, np.array([2.0]), np.array(losses)


@check("optimizer_base", "oracle")
def step_runs_the_closure_and_updates_each_parameter(m):
    """step(closure) runs the closure with autograd on, returns its loss, updates by group/state.

    Each parameter with a gradient is updated with its own group's hyperparameters and state;
    one without a gradient is skipped."""
    a, b, c, returned, calls, counts, plain_none = _probe(
        m, "phase3.base_step", STEPS, doing="calling step(closure) inside torch.no_grad()",
        hint="Run the closure under `with torch.enable_grad():` — a training loop may call "
             "step() where autograd is off, and the closure must still backpropagate.")
    exp_a, exp_b, exp_c, exp_losses = _expected_step_run(STEPS)
    if len(calls) != STEPS:
        raise CheckFailed(f"over {STEPS} calls of step(closure) the closure ran {len(calls)} "
                          f"times.",
                          "Call the closure exactly once per step, before the updates.")
    assert_close(returned, exp_losses, "the losses returned by step(closure)",
                 hint="step(closure) returns what closure() returned (the loss before the update).")
    assert_close(counts, np.array([STEPS, STEPS, -1.0]),
                 "the update counts in optimizer.state[p] for p = a, b and c (−1: no state)",
                 hint="state is one dict per parameter, optimizer.state[p], kept across steps; a "
                      "parameter whose grad is None (c) is skipped entirely.")
    assert_close(c, exp_c, "c, the parameter without a gradient",
                 hint="Skip a parameter whose p.grad is None.")
    assert_close(a, exp_a, "a (group 0: lr 0.1 from the defaults)",
                 hint="Call update(p, p.grad, state[p], group) with the group p belongs to.")
    assert_close(b, exp_b, "b (group 1: its own lr 0.01)",
                 hint="Each group uses its own hyperparameters: pass that group's dict to update.")
    if not plain_none:
        raise CheckFailed("step() without a closure should return None.")


@fingerprint("optimizer_base")
def optimizer_base_outputs(m):
    outputs = {}
    for how in GROUPS:
        result = attempt(lambda how=how: run_probe(m, "phase3.base_groups", m, how))
        outputs[f"groups_{how}"] = result[0] if isinstance(result, tuple) else result
        outputs[f"same_{how}"] = np.array(result[1]) if isinstance(result, tuple) else result
    outputs["duplicates"] = np.array(attempt(
        lambda: run_probe(m, "phase3.base_rejects_duplicates", m)))
    outputs["zero_grad"] = np.array(attempt(lambda: run_probe(m, "phase3.base_zero_grad", m)))
    result = attempt(lambda: run_probe(m, "phase3.base_step", m, STEPS))
    names = ("a", "b", "c", "returned", "calls", "counts", "plain_none")
    for i, name in enumerate(names):
        outputs[f"step_{name}"] = np.asarray(result[i]) if isinstance(result, tuple) else result
    return outputs
