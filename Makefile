# Two commands do all set-up on a fresh machine (Python 3.10+ and make):
#   make book   create .venv if needed, install, execute every notebook, build the HTML book
#   make test   same bootstrap, then unit tests + nbval over every notebook + the strict book build
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

.PHONY: book test venv unit notebooks html-check clean help

help:
	@echo "make book   build the HTML book into _build/html (executes every notebook)"
	@echo "make test   run the whole test suite: unit tests, nbval, strict book build"

$(STAMP): requirements.txt pyproject.toml tools/install_torch.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) tools/install_torch.py
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e ".[book,test]"
	@touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	$(PY) tools/build_book.py --jobs $(JOBS)

unit: $(STAMP)
	$(PY) -m pytest tests -p no:cacheprovider -n $(JOBS) --dist loadscope --cov=dlcore --cov-report=term-missing:skip-covered -m "not html"

notebooks: $(STAMP)
	$(PY) -m pytest chapters --nbval-lax --nbval-current-env -p no:cacheprovider \
	    -n $(JOBS) --dist loadscope --timeout 240 --durations=0

html-check: $(STAMP)
	$(PY) -m pytest tests -m html -p no:cacheprovider

test: $(STAMP)
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory notebooks
	$(PY) tools/build_book.py --jobs $(JOBS) --strict
	$(MAKE) --no-print-directory html-check

clean:
	rm -rf _build
