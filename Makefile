# gradschool — every target is a thin wrapper over `python -m grader`.
# The first target you run creates .venv (torch CPU build first, then this project).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

PHASE ?= 0
LEVEL ?= standard
JOBS  ?= 2
GRADE_ARGS := --phase $(PHASE) $(if $(EX),--exercise $(EX)) $(if $(FILE),--file $(FILE)) $(if $(FULL),--full) $(if $(JSON),--json $(JSON)) $(if $(HTML),--html $(HTML)) $(if $(MEMORY),--memory $(MEMORY)) $(if $(REQUIRE_SANDBOX),--require-sandbox)

.DEFAULT_GOAL := help
.PHONY: help grade progress train notebooks stubs verify mutate fixtures release gradescope test lint bench clean-venv

help: ## list the commands
	@echo "Students:"
	@echo "  make grade PHASE=n [EX=id] [FILE=path] [FULL=1] [JSON=out.json]   grade exercises/ phase n"
	@echo "  make grade PHASE=n HTML=report.html   also write one self-contained page: failures, plots, times"
	@echo "                                        (FULL=1 adds the slow tier: short real trainings)"
	@echo "  make progress [FILE=nb.ipynb]         points per phase and what to do next (changed phases only)"
	@echo "  make train TASK=name [SOLUTION=1] [EPOCHS=n] [FILE=nb.ipynb]   a capstone on your code"
	@echo "                                        (circle, fashion-rnn, …; your traceback if it fails)"
	@echo "  make notebooks [FORCE=1]              exercises/ as Jupyter notebooks in notebooks/, with"
	@echo "                                        the theory and check(\"id\") cells that grade inline"
	@echo "                                        (an edited notebook is kept unless FORCE=1)"
	@echo "                                        (grade one: make grade PHASE=n FILE=notebooks/<module>.ipynb)"
	@echo "Instructors:"
	@echo "  make stubs [LEVEL=guided|standard|hard] [PHASE=n] [FORCE=1]  regenerate exercises/"
	@echo "                                        (an edited stub is kept unless FORCE=1)"
	@echo "  make fixtures                         record golden and mutant outputs from solutions/"
	@echo "  make verify [PHASE=n]                 solutions 100%, stubs 0, every mutant caught, files current"
	@echo "                                        (records the verdict: commit grader/mutants/phase*/verify-record.json)"
	@echo "  make mutate [PHASE=n] [FRESH=1]       generated mutants graded (cached), reports in grader/mutants/"
	@echo "  make release OUT=dir [PHASES=0-3]     the student bundle: no solutions, mutants or hidden checks"
	@echo "  make gradescope PHASE=n               build/gradescope-phase<n>.zip, the Gradescope autograder"
	@echo "  make grade ... [MEMORY=768M] [REQUIRE_SANDBOX=1]   the run's memory budget (judge + worker);"
	@echo "                                        refuse to grade where the worker cannot be sandboxed"
	@echo "  python -m grader batch DIR --phase n [--jobs k] [--shard K/N]; python -m grader merge OUT"
	@echo "                                        grade a folder of submissions into a gradebook CSV"
	@echo "Developers:"
	@echo "  make test                             the project's own tests (includes verify)"
	@echo "  make lint                             ruff"
	@echo "  make bench                            benchmarks under bench/ (ratios, one run each)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	@# PYTHONWARNINGS: setuptools' editable-install banner is a warning that --quiet does not silence
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

grade: $(STAMP)
	@$(PY) -m grader grade $(GRADE_ARGS)

progress: $(STAMP)
	@$(PY) -m grader progress $(if $(FILE),--file $(FILE))

train: $(STAMP)
	@$(PY) -m grader train --task $(TASK) $(if $(SOLUTION),--solution) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(FILE),--file $(FILE))

notebooks: $(STAMP)
	@$(PY) -m grader notebooks $(if $(FORCE),--force)

stubs: $(STAMP)
	@$(PY) -m grader stubs --level $(LEVEL) $(if $(filter command line,$(origin PHASE)),--phase $(PHASE)) $(if $(FORCE),--force)

fixtures: $(STAMP)
	@$(PY) -m grader fixtures

verify: $(STAMP)
	@$(PY) -m grader verify $(if $(filter command line,$(origin PHASE)),--phase $(PHASE)) --jobs $(JOBS)

mutate: $(STAMP)
	@nice -n 10 $(PY) -m grader verify --mutate $(if $(filter command line,$(origin PHASE)),--phase $(PHASE)) --jobs $(JOBS) $(if $(FRESH),--fresh)

release: $(STAMP)
	@test -n "$(OUT)" || { echo "usage: make release OUT=dir (a new folder)"; exit 2; }
	@$(PY) -m grader release --out $(OUT) $(if $(PHASES),--phases $(PHASES))

gradescope: $(STAMP)
	@$(PY) -m grader gradescope --phase $(PHASE)

test: $(STAMP)
	@$(PY) -m pytest

lint: $(STAMP)
	@$(PY) -m ruff check .

bench: $(STAMP)
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean-venv:
	rm -rf $(VENV)
