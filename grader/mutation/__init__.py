"""Automatic mutation analysis: `python -m grader verify --mutate`, `make mutate` (SPEC §4).

    generate.py  mutants from the SOLUTION regions of a reference solution (an AST mutator)
    run.py       grading them: one worker per batch, the module swapped in place, first failure
    keys.py      what a verdict depends on, hashed, so that unchanged exercises are not regraded
    record.py    the committed report and the reviewed lists (equivalent, open survivors)
    analyse.py   the command: generate, grade or reuse, record, print kill rates and survivors

Why a small AST mutator and not mutmut or cosmic-ray: both mutate whole files and judge a
mutant by running a test command (pytest) in a fresh process per mutant. Here a mutant must be
confined to the code a student writes (SOLUTION regions), attributed to the exercise that owns
it, and judged by that exercise's graded checks alone, through the grader's isolated worker —
reused across mutants, since importing torch costs more than most verdicts. Neither tool has
the operators the course needs (a `dim` changed, a keyword argument dropped, an op made in
place, a dtype cast), and adapting their runners would be more code than the mutator itself
(~400 lines on the standard library's ast and tokenize).
"""
