"""Phase 6 §6.7–6.8: the premises the graded checks rely on (the judge's models produce varied
decodings, the exhaustive case enumerates every hypothesis, the judge's reference equals the
reference solution), and the copy/reverse e2e on the reference solution (slow)."""

from __future__ import annotations

import itertools
import shutil

import pytest
import torch

from grader.registry import ROOT, phase
from grader.runner import grade
from grader.tests.phase6 import _seq2seq, decoding
from solutions import phase6_models as course


def _greedy_ends(eos_bias: float) -> list[int | None]:
    lengths = (6, 4, 5)
    reference = decoding.decoding_reference(304, eos_bias)
    rows = [decoding._greedy_by_the_model(reference, decoding._source(305 + k, n), 7)
            for k, n in enumerate(lengths)]
    return [len(r) if r[-1] == decoding.EOS else None for r in rows]


def test_greedy_check_has_rows_ending_early_late_and_never():
    # the two greedy mutants (finished rows keep going, no early stop) need exactly this
    assert _greedy_ends(0.0) == [None, 4, 5]
    assert _greedy_ends(2.0) == [3, 4, 5]


def test_exhaustive_case_lists_every_hypothesis_once():
    sequences = [list(y) + [decoding.EOS] for n in (1, 2, 3)
                 for y in itertools.product((0, 2), repeat=n - 1)]
    sequences += [list(y) for y in itertools.product((0, 2), repeat=3)]
    assert len(sequences) == len({tuple(s) for s in sequences}) == 15 <= 3 ** 3
    # every sequence over {0, 1, 2} of length ≤ 3 that holds eos only at its end, and no other
    every = [list(y) for n in (1, 2, 3) for y in itertools.product(range(3), repeat=n)]
    valid = [y for y in every if decoding.EOS not in y[:-1] and (y[-1] == decoding.EOS
                                                               or len(y) == 3)]
    assert sorted(map(tuple, valid)) == sorted(map(tuple, sequences))


@pytest.mark.parametrize("norm_first", [False, True])
def test_judge_reference_equals_the_reference_solution(norm_first):
    reference = _seq2seq.reference_model(7, norm_first=norm_first)
    model = course.Seq2SeqTransformer(course.Seq2SeqConfig(
        **{**_seq2seq.SIZES, "norm_first": norm_first})).double().eval()
    own = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in reference.named_parameters():
            own[_seq2seq.student_name(name)].copy_(p)
    src, tgt = torch.randint(0, 11, (2, 7)), torch.randint(0, 9, (2, 6))
    keep_src = torch.arange(7)[None] < torch.tensor([7, 4])[:, None]
    keep_tgt = torch.arange(6)[None] < torch.tensor([6, 3])[:, None]
    with torch.no_grad():
        expected = reference(src, tgt, keep_src, keep_tgt)
        got = model(src, tgt, keep_src, keep_tgt)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_reference_learns_copy_and_reverse():
    result = grade(phase(6), ROOT / "solutions" / "phase6_models.py",
                   exercises=["seq2seq_decoding"], full=True, prerequisites=False)
    (exercise,) = result.exercises
    e2e = [c for c in exercise.checks if c.spec.name == "seq2seq_learns_copy_and_reverse"]
    assert e2e and e2e[0].passed, [c.message for c in exercise.checks]
    assert exercise.score == exercise.max_score


@pytest.mark.slow
def test_alternative_seq2seq_keeps_full_marks(tmp_path):
    """tests/alternative/phase6_seq2seq.py spliced in place of the reference's §6.7–6.8."""
    for module in (ROOT / "solutions").glob("phase*.py"):
        shutil.copyfile(module, tmp_path / module.name)
    source = (ROOT / "solutions" / "phase6_models.py").read_text()
    start = source.index("# ---- 6.7 ")
    end = source.index("# ---- 6.9 ")
    alternative = (ROOT / "tests" / "alternative" / "phase6_seq2seq.py").read_text()
    (tmp_path / "phase6_models.py").write_text(source[:start] + alternative + "\n\n"
                                               + source[end:])
    result = grade(phase(6), tmp_path, exercises=["seq2seq_model", "seq2seq_decoding", "bleu"],
                   full=True, prerequisites=False, hidden=True)
    assert result.import_error is None, result.import_error
    failures = [f"{e.exercise.id}/{c.spec.name}: {c.message}" for e in result.exercises
                for c in e.failures]
    assert not failures, "\n".join(failures)
    assert result.score == result.max_score
