"""The contract mechanisms of issue 8, each shown catching a deliberately broken implementation:
the worker's watch on arguments (in place, aliasing, the registry's exemptions), the declared
dtype / repeated-call contracts, the stateful helpers (same_twice, seeded, raises), and the
repeated-call checks of phase 0."""

from __future__ import annotations

import numpy as np
import pytest

from grader import registry
from grader.checks import CheckFailed
from grader.checks.contracts import argument_breach, raises, same_twice, seeded
from grader.runner import grade
from grader.session import StudentError
from grader.worker import protocol
from grader.worker.main import Worker
from grader.worker.watch import Watch
from tests.conftest import SOLUTION0

SOURCE0 = SOLUTION0.read_text()


def _broken(tmp_path, old: str, new: str, source: str = SOURCE0):
    assert source.count(old) == 1, old
    path = tmp_path / "phase0_foundations.py"
    path.write_text(source.replace(old, new))
    return path


def _graded(path, exercise: str):
    result = grade(
        registry.phase(0), path, exercises=[exercise], recognise=False, prerequisites=False
    )
    return {c.spec.name: c for c in result.exercises[0].checks}


def _call(fn, *args, **kwargs):
    """What the worker would report about one call, in-process."""
    watch = Watch(fn, list(args), kwargs)
    return watch.report(fn(*args, **kwargs))


# ------------------------------------------------------------------ the worker's watch


def test_watch_sees_an_argument_changed_in_place():
    def relu(x):
        x[x < 0] = 0
        return x

    report = _call(relu, np.array([-1.0, 2.0]))
    assert report["changed"] == [{"call": "relu", "arg": "x"}]


def test_watch_is_silent_for_a_pure_function():
    assert _call(lambda x: np.maximum(x, 0), np.array([-1.0, 2.0])) == {}


def test_watch_sees_returned_arguments_and_outputs_sharing_memory():
    def backward(g):
        return g, g

    report = _call(backward, np.ones(3))
    pairs = {(entry["output"], entry["arg"]) for entry in report["aliased"]}
    assert ("output 0", "g") in pairs and ("output 1", "output 0") in pairs


def test_watch_looks_inside_lists_and_at_the_arrays_of_objects():
    class Tensor:
        def __init__(self, data):
            self.data = data

    class Layer:
        def forward(self, tensors):
            tensors[1].data *= 2  # the parent's data overwritten
            return tensors[0].data + 1

    report = _call(Layer().forward, [Tensor(np.ones(2)), Tensor(np.ones(2))])
    assert report["changed"] == [{"call": "Layer.forward", "arg": "tensors[1].data"}]


def test_watch_sees_a_torch_tensor_changed_in_place():
    torch = pytest.importorskip("torch")

    def scale(t):
        t.mul_(2)
        return t.sum()

    assert _call(scale, torch.ones(3))["changed"] == [{"call": "scale", "arg": "t"}]


def test_worker_replies_carry_the_observations(tmp_path):
    package = tmp_path / "submission"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("def shift(x):\n    x -= x.max()\n    return x\n")
    worker = Worker(str(tmp_path), "submission")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        reply, _ = worker.handle({"op": "import", "module": "mod"}, [])
        handle = reply["value"]["h"]
        args, buffers = protocol.encode([np.array([1.0, 3.0])], lambda obj: obj)
        reply, _ = worker.handle(
            {"op": "call", "h": handle, "p": ["shift"], "args": args, "kwargs": {"d": {}}},
            [bytes(b) for b in buffers],
        )
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("submission")]:
            del sys.modules[name]
    assert reply["ok"] and reply["changed"] == [{"call": "shift", "arg": "x"}]
    assert reply["aliased"][0]["arg"] == "x"


def test_breach_verdict_respects_the_registry_declarations():
    changed = [{"what": "changed", "call": "sgd_step", "arg": "params[0]", "output": ""}]
    assert argument_breach(changed, "mlp") is None  # documented in place
    changed[0]["call"] = "relu"
    failure = argument_breach(changed, "activations")
    assert "your relu changed its input `params[0]` in place" in str(failure)
    aliased = [{"what": "aliased", "call": "Dropout.forward", "arg": "x", "output": "the output"}]
    assert argument_breach(aliased, "dropout") is None  # "x in eval"
    aliased[0]["call"] = "Linear.forward"
    assert "same memory as its input `x`" in str(argument_breach(aliased, "linear_layer"))
    aliased[0]["call"] = "unbroadcast"
    assert argument_breach(aliased, "ag_unbroadcast") is None  # views are phase 5's convention


def test_a_relu_that_zeroes_its_input_in_place_fails_with_the_argument_named(tmp_path):
    path = _broken(tmp_path, "    return np.maximum(x, 0)\n", "    x[x < 0] = 0\n    return x\n")
    checks = _graded(path, "activations")
    message = checks["relu_matches_torch"].message
    assert "your relu changed its input `x` in place" in message
    assert checks["tanh_matches_torch"].passed


# ------------------------------------------------------------------ declared contracts


def test_the_dtype_contract_catches_a_function_that_returns_float64(tmp_path):
    path = _broken(
        tmp_path,
        "    return np.maximum(x, 0)\n",
        "    return np.maximum(x, 0).astype(np.float64)\n",
    )
    check = _graded(path, "activations")["activations_keeps_dtypes_and_repeats"]
    assert check.kind == "wrong"
    assert "relu with float32 inputs: the output has dtype float64" in check.message


def test_the_repeat_contract_catches_hidden_state(tmp_path):
    old = "def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:\n"
    path = _broken(
        tmp_path,
        old,
        "_CALLS = []\n\n\n" + old + "    _CALLS.append(1)\n    x = x + 1e-3 * len(_CALLS)\n",
    )
    check = _graded(path, "softmax")["softmax_keeps_dtypes_and_repeats"]
    assert "returned a different result the second time" in check.message


def test_the_solution_keeps_every_declared_contract(solution_result):
    contracts = [
        c
        for e in solution_result.exercises
        for c in e.checks
        if c.spec.name.endswith("_keeps_dtypes_and_repeats")
    ]
    assert len(contracts) >= 6 and all(c.passed for c in contracts)


# ------------------------------------------------------------------ stateful helpers


def test_same_twice_catches_accumulated_state():
    state = [0]

    def accumulating():
        state[0] += 1
        return np.array([state[0]])

    with pytest.raises(CheckFailed, match="second call gave a different result"):
        same_twice(accumulating, "backward", "overwrite, do not add")
    same_twice(lambda: np.ones(2), "forward", "")


def test_seeded_catches_an_ignored_seed_and_an_unseeded_run():
    with pytest.raises(CheckFailed, match="the seed is ignored"):
        seeded(lambda seed: np.ones(3), "training", "")
    draws = iter(range(100))
    with pytest.raises(CheckFailed, match="same seed twice"):
        seeded(lambda seed: np.array([next(draws)]), "training", "")
    seeded(lambda seed: np.random.default_rng(seed).random(3), "training", "")


def test_raises_demands_the_documented_error():
    def value_error():
        raise StudentError({"type": "ValueError", "message": "bad"}, "calling f")

    raises(value_error, "ValueError", "f(-1)", "")
    with pytest.raises(CheckFailed, match="should raise ValueError, but returned 0.5"):
        raises(lambda: np.float64(0.5), "ValueError", "f(-1)", "")


# ------------------------------------------------------------------ phase 0's repeated calls


@pytest.mark.parametrize(
    ("exercise", "old", "new", "check"),
    [
        (
            "dropout",
            "keep = self.rng.random(x.shape) >= self.p",
            "keep = np.random.default_rng(0).random(x.shape) >= self.p",
            "dropout_draws_a_new_mask_every_forward_from_its_seed",
        ),
        (
            "batchnorm",
            "x_hat = (x - self.running_mean) / np.sqrt(self.running_var + self.eps)",
            "x_hat = (x - self.running_mean) / np.sqrt(self.running_var + self.eps)\n"
            "            self.running_mean = 0.9 * self.running_mean + 0.1 * x.mean(axis=0)",
            "batchnorm_eval_leaves_running_statistics_and_train_resumes",
        ),
        (
            "linear_layer",
            "self.grad_bias[...] = dout.sum(axis=0)\n        return dout @ self.weight",
            "self.grad_bias[...] += dout.sum(axis=0)\n        return dout @ self.weight",
            "linear_second_forward_and_backward_repeat_the_first",
        ),
        (
            "mlp",
            "    rng = np.random.default_rng(rng)\n    # KEEP guided\n    losses = np.empty(steps)",
            "    rng = np.random.default_rng()\n    # KEEP guided\n    losses = np.empty(steps)",
            "train_classifier_is_reproducible_from_its_seed",
        ),
    ],
    ids=["dropout-mask-reused", "bn-eval-updates", "linear-accumulates", "mlp-unseeded"],
)
def test_repeated_call_checks_catch_state_bugs(tmp_path, exercise, old, new, check):
    result = _graded(_broken(tmp_path, old, new), exercise)[check]
    assert result.kind == "wrong", result.message
