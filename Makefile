# Two commands do all set-up on a fresh machine (Python 3.10+ and make):
#   make book   create .venv if needed, install, execute every notebook, build the HTML book
#   make test   same bootstrap (plus Chromium, see below), then unit tests + nbval over every notebook +
#               the strict book build + checks of the built pages and of JupyterLab in headless Chromium
#   make lab    open the chapters in JupyterLab (same environment)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Workers for nbval and notebook execution; each runs torch with one thread so two
# workers on two cores do not thrash.
JOBS   ?= $(shell $(PYTHON) -c "import os; print(max(1, min(4, os.cpu_count() or 1)))")
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# The browser tests drive this Chromium (Debian/Ubuntu package `chromium`) through Playwright.
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM

.PHONY: book test venv unit notebooks html-check lab chromium clean help assignments assignments-check mutation

help:
	@echo "make book   build the HTML book into _build/html (executes every notebook)"
	@echo "make test   run the whole test suite: unit tests, nbval, strict book build, browser checks"
	@echo "make lab    work on the chapters in JupyterLab"

$(STAMP): requirements.txt pyproject.toml tools/install_torch.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) tools/install_torch.py
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e ".[book,test,course]"
	@touch $(STAMP)

venv: $(STAMP)

# Chromium for the browser tests: installed with apt-get when missing and running as root (as CI does);
# otherwise stop with the command to run.
chromium:
	@test -x "$(CHROMIUM)" || command -v "$(CHROMIUM)" >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Chromium for the browser tests (apt-get)"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "make test needs Chromium at $(CHROMIUM) for the browser tests: install it (Debian/Ubuntu:" \
	         "sudo apt-get install chromium) or run make test CHROMIUM=/path/to/chromium-or-chrome"; exit 1; \
	  fi; }

lab: $(STAMP)
	$(VENV)/bin/jupyter lab chapters/

book: $(STAMP)
	$(PY) tools/build_book.py --jobs $(JOBS)

unit: $(STAMP)
	$(PY) -m pytest tests -p no:cacheprovider -n $(JOBS) --dist loadscope --cov=dlcore --cov-report=term-missing:skip-covered -m "not html and not browser"

notebooks: $(STAMP)
	$(PY) -m pytest chapters --nbval-lax --nbval-current-env -p no:cacheprovider \
	    -n $(JOBS) --dist loadscope --timeout 240 --durations=0

html-check: $(STAMP) chromium
	$(PY) -m pytest tests -m "html or browser" -p no:cacheprovider --durations=5

test: $(STAMP) chromium
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory notebooks
	$(PY) tools/build_book.py --jobs $(JOBS) --strict
	$(MAKE) --no-print-directory html-check

clean:
	rm -rf _build

# Course kit (book/instructor.md): every chapter's exercises as otter-grader assignments in
# _build/assignments/<chapter>/ (student notebooks, autograder zips, solutions).
assignments: $(STAMP)
	$(PY) tools/assignments.py build --jobs $(JOBS)

# Prove every exercise real: each stub fails its check and scores zero, each worked solution passes and
# scores full marks (make test runs a rotating sample of two notebooks, tests/test_assignments.py).
assignments-check: $(STAMP)
	$(PY) tools/assignments.py check --jobs $(JOBS)

# Mutation testing, not part of make test (about 2,000 mutants, roughly 20 min on 2 cores): mutmut copies
# dlcore into mutants/, changes one small thing at a time in the modules listed under [tool.mutmut] in
# pyproject.toml and reruns their tests; survivors are missing tests or equivalent changes. Then it lists the
# survivors and prints the score per module (tools/mutation_score.py).
mutation: $(STAMP)
	@$(PY) -c "import mutmut" 2>/dev/null || $(PY) -m pip install --quiet -e ".[mutation]"
	$(VENV)/bin/mutmut run --max-children $(JOBS)
	$(VENV)/bin/mutmut results
	$(PY) tools/mutation_score.py
