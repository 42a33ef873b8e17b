"""1.8 Metrics against their definitions: the confusion matrix counted here with NumPy, precision,
recall and F1 derived from it in closed form (zero_division = 0, as sklearn), a worked example
with numbers checked by hand, and the identities micro-F1 = accuracy and relabelling symmetry."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from grader.checks import CheckFailed, check, fingerprint
from grader.checks.oracle import assert_close, assert_scalar, unpack
from grader.checks.properties import property_holds

CM_HINT = "M[i, j] counts samples whose true class is i and predicted class is j (rows = truth)."
PRF_HINT = ("Per class k: P = M[k,k]/Σ_i M[i,k] (a column), R = M[k,k]/Σ_j M[k,j] (a row), "
            "F1 = 2PR/(P + R), every 0/0 taken as 0; macro averages the per-class values, "
            "micro uses the summed counts.")


@st.composite
def labelled(draw):
    """(pred, target, C): N ∈ [1, 40] labels over C ∈ [1, 6] classes, some classes often absent."""
    classes = draw(st.integers(1, 6))
    n = draw(st.integers(1, 40))
    labels = st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)
    return np.array(draw(labels), dtype=np.int64), np.array(draw(labels), dtype=np.int64), classes


def _counts(pred: np.ndarray, target: np.ndarray, classes: int) -> np.ndarray:
    M = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(M, (target, pred), 1)
    return M


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _closed_form(M: np.ndarray, average: str | None) -> tuple[np.ndarray, ...]:
    tp, predicted, actual = np.diag(M), M.sum(axis=0), M.sum(axis=1)
    if average == "micro":
        tp, predicted, actual = tp.sum(), predicted.sum(), actual.sum()
    precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
    f1 = _ratio(2 * precision * recall, precision + recall)
    if average == "macro":
        return precision.mean(), recall.mean(), f1.mean()
    return precision, recall, f1


def _tensors(pred, target):
    return torch.from_numpy(pred), torch.from_numpy(target)


@check("metrics", "oracle")
def accuracy_and_confusion_matrix_match_their_definitions(m):
    """accuracy and confusion_matrix equal the counts, on drawn labels with absent classes."""

    def body(case):
        pred, target, classes = case
        expected_accuracy = float(np.mean(pred == target))
        got = assert_scalar(m.accuracy(*_tensors(pred, target)), "accuracy(pred, target)")
        if abs(got - expected_accuracy) > 1e-12:
            raise CheckFailed(f"accuracy is {got!r}, expected {expected_accuracy!r} "
                              f"({int(np.sum(pred == target))} of {len(pred)} correct).")
        assert_close(m.confusion_matrix(*_tensors(pred, target), classes),
                     _counts(pred, target, classes), f"confusion_matrix with C = {classes}",
                     hint=CM_HINT + " It is (C, C) even when a class never occurs.")

    property_holds(body, labelled(), examples=20)


@check("metrics", "oracle", weight=2)
def precision_recall_f1_match_the_closed_forms(m):
    """Per-class, macro and micro precision, recall and F1 equal the closed forms from M."""

    def body(case):
        pred, target, classes = case
        M = _counts(pred, target, classes)
        for average in (None, "macro", "micro"):
            got = unpack(m.precision_recall_f1(*_tensors(pred, target), classes, average), 3,
                         f"precision_recall_f1(average={average!r})")
            for value, want, name in zip(got, _closed_form(M, average),
                                         ("precision", "recall", "F1"), strict=True):
                assert_close(value, np.asarray(want, dtype=np.float64),
                             f"{name} with average={average!r}, C = {classes}", hint=PRF_HINT)

    property_holds(body, labelled(), examples=20)


@check("metrics", "oracle")
def metrics_on_a_worked_example(m):
    """The worked example of §1.8: numbers checked by hand, including a class never predicted."""
    target = np.array([0, 0, 0, 1, 1, 2, 2, 3])
    pred = np.array([0, 1, 0, 1, 2, 2, 0, 0])
    assert_close(m.confusion_matrix(*_tensors(pred, target), 4),
                 np.array([[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 0], [1, 0, 0, 0]]),
                 "confusion_matrix of the worked example", hint=CM_HINT)
    # class 3 is never predicted and never right: P = R = F1 = 0 by the zero_division rule
    per_class = (np.array([1 / 2, 1 / 2, 1 / 2, 0.0]), np.array([2 / 3, 1 / 2, 1 / 2, 0.0]),
                 np.array([4 / 7, 1 / 2, 1 / 2, 0.0]))
    expected = {None: per_class, "macro": tuple(v.mean() for v in per_class),
                "micro": (np.float64(4 / 8),) * 3}
    for average, want in expected.items():
        got = unpack(m.precision_recall_f1(*_tensors(pred, target), 4, average), 3,
                     f"precision_recall_f1(average={average!r})")
        for value, number, name in zip(got, want, ("precision", "recall", "F1"), strict=True):
            assert_close(value, np.asarray(number, dtype=np.float64),
                         f"{name} (average={average!r}) of the worked example", hint=PRF_HINT)


@check("metrics", "invariant")
def metrics_follow_zero_division_and_relabelling_rules(m):
    """0/0 gives 0 (no nan), micro-F1 equals accuracy, and renaming classes permutes M."""
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 0, 0])
    p, r, f = unpack(m.precision_recall_f1(*_tensors(pred, target), 3, None), 3,
                     "precision_recall_f1(average=None)")
    for value, want, name in zip((p, r, f), ([0.5, 0, 0], [1, 0, 0], [2 / 3, 0, 0]),
                                 ("precision", "recall", "F1"), strict=True):
        assert_close(value, np.array(want, dtype=np.float64), f"per-class {name} when class 1 is "
                     f"never predicted and class 2 never occurs",
                     hint="0/0 is 0 (sklearn's zero_division=0), never nan.")

    def body(case):
        pred, target, classes = case
        micro = unpack(m.precision_recall_f1(*_tensors(pred, target), classes, "micro"), 3,
                       "precision_recall_f1(average='micro')")
        assert_close(micro[2], np.float64(np.mean(pred == target)), "micro-F1 against accuracy",
                     hint="Micro averaging sums TP, FP, FN over classes first.")
        perm = np.random.default_rng(classes).permutation(classes)
        M = m.confusion_matrix(*_tensors(pred, target), classes)
        M_perm = m.confusion_matrix(*_tensors(perm[pred], perm[target]), classes)
        inverse = np.argsort(perm)
        assert_close(M_perm, np.asarray(M)[np.ix_(inverse, inverse)],
                     "the confusion matrix after renaming class k to perm[k]", hint=CM_HINT)

    property_holds(body, labelled(), examples=10)


@fingerprint("metrics")
def metrics_outputs(m):
    target = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
    pred = np.array([0, 1, 0, 1, 2, 2, 0, 0, 3, 1])
    outputs = {"accuracy": np.float64(m.accuracy(*_tensors(pred, target))),
               "confusion": m.confusion_matrix(*_tensors(pred, target), 5)}
    for average in (None, "macro", "micro"):
        p, r, f = m.precision_recall_f1(*_tensors(pred, target), 5, average)
        outputs.update({f"{average}_p": p, f"{average}_r": r, f"{average}_f1": f})
    return outputs
