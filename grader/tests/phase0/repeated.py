"""Phase 0's stateful pieces called more than once: a second forward and backward, train → eval
→ train, the same seed twice and different seeds. Single fresh calls (the other modules) cannot
see a mask reused across forwards, eval updating running statistics or an unseeded run."""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, check
from grader.checks.contracts import same_twice, seeded
from grader.checks.oracle import as_array, assert_close
from grader.session import fetch

X = np.random.default_rng(41).normal(size=(16, 5))
DOUT = np.random.default_rng(42).normal(size=(16, 5))


def _mask(layer, x) -> np.ndarray:
    return as_array(layer.forward(x), "Dropout.forward(x)") != 0


@check("dropout", "invariant")
def dropout_draws_a_new_mask_every_forward_from_its_seed(m):
    """Two training forwards draw different masks; the same seed gives the same masks again,
    another seed other ones; train → eval → train drops units again."""
    x = np.ones((40, 30))

    def two_masks(seed):
        layer = m.Dropout(0.5, rng=seed)
        return np.stack([_mask(layer, x), _mask(layer, x)])

    masks = seeded(
        two_masks,
        "Dropout(0.5, rng=seed): two forwards",
        "Make the Generator once in __init__ (np.random.default_rng(rng)) and draw from it in "
        "every forward.",
    )
    if np.array_equal(masks[0], masks[1]):
        raise CheckFailed(
            "two training forwards of one Dropout drew the same mask.",
            "Draw a fresh mask from self.rng in every forward; a Generator made from the same "
            "seed at every call repeats its first mask forever.",
        )
    layer = m.Dropout(0.5, rng=0)
    layer.eval()
    layer.train()
    if _mask(layer, x).all():
        raise CheckFailed(
            "after eval() and then train(), Dropout dropped nothing.",
            "train() switches dropping back on: set the mode, do not remove the mask logic.",
        )


@check("batchnorm", "invariant")
def batchnorm_eval_leaves_running_statistics_and_train_resumes(m):
    """In eval, two forwards give the same output and leave the running statistics; back in
    training, the next forward updates them again."""
    bn = m.BatchNorm1d(5)
    bn.forward(X)
    bn.eval()
    before = [
        as_array(fetch(bn.running_mean), "running_mean"),
        as_array(fetch(bn.running_var), "running_var"),
    ]
    same_twice(
        lambda: as_array(bn.forward(X + 1.0), "BatchNorm1d.forward in eval"),
        "BatchNorm1d.forward in eval mode",
        "Eval mode only reads the running statistics; updating them there changes the next output.",
    )
    after = [
        as_array(fetch(bn.running_mean), "running_mean"),
        as_array(fetch(bn.running_var), "running_var"),
    ]
    for name, old, new in zip(("running_mean", "running_var"), before, after, strict=True):
        assert_close(
            new,
            old,
            f"{name} after two eval-mode forwards",
            hint="Update the running statistics in training mode only.",
        )
    bn.train()
    bn.forward(X + 1.0)
    moved = as_array(fetch(bn.running_mean), "running_mean")
    if np.allclose(moved, after[0]):
        raise CheckFailed(
            "after train(), a forward left running_mean unchanged.",
            "train() must switch the running-statistics update back on.",
        )


@check("linear_layer", "invariant")
def linear_second_forward_and_backward_repeat_the_first(m):
    """A second forward and backward on the same input give the same output, dx and grads
    (backward overwrites the gradients: it does not add the previous call's)."""
    layer = m.Linear(5, 3, rng=0)
    dout = DOUT[:, :3]

    def step():
        y = as_array(layer.forward(X), "Linear.forward(x)")
        dx = as_array(layer.backward(dout), "Linear.backward(dout)")
        return [y, dx, *(as_array(g, "grads()") for g in fetch(layer.grads()))]

    same_twice(
        step,
        "Linear forward + backward",
        "Write the gradients with `self.grad_weight[...] = …` (overwrite), not `+=`; and keep "
        "no other state between calls.",
    )


@check("layernorm", "invariant")
def layernorm_second_forward_and_backward_repeat_the_first(m):
    """A second forward and backward on the same input give the same output, dx and grads."""
    ln = m.LayerNorm(5)

    def step():
        y = as_array(ln.forward(X), "LayerNorm.forward(x)")
        dx = as_array(ln.backward(DOUT), "LayerNorm.backward(dout)")
        return [y, dx, *(as_array(g, "grads()") for g in fetch(ln.grads()))]

    same_twice(
        step,
        "LayerNorm forward + backward",
        "Overwrite grad_weight and grad_bias in backward (`[...] =`), never `+=`.",
    )


@check("mlp", "invariant")
def train_classifier_is_reproducible_from_its_seed(m):
    """train_classifier with one rng seed twice gives the same losses; another seed others."""
    rng = np.random.default_rng(7)
    X2 = rng.normal(size=(64, 2))
    y2 = (np.linalg.norm(X2, axis=1) < 1.0).astype(np.int64)

    def losses(seed):
        model = m.make_mlp((2, 4, 4, 2), rng=0)  # the same start: only the batches differ
        return as_array(
            m.train_classifier(model, X2, y2, steps=15, batch_size=8, rng=seed), "the losses"
        )

    seeded(
        losses,
        "train_classifier(…, rng=seed)",
        "Normalise rng once (np.random.default_rng(rng)) and draw every batch from that "
        "Generator: not from np.random's global state, and not from a new one each step.",
    )
