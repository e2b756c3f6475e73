# Two commands do all set-up (see README.md):
#   make book   create .venv/ if missing, install the pinned environment, build the book into _build/html
#   make pdf    the book, then the whole book as one PDF: _build/pdf/book.pdf (linked from the home page)
#   make test   the same set-up, then ruff and the whole test suite (unit tests, strict nbval, the book build)
# Also: make test-fast (ruff and the unit tests only), make execute NB=chapters/ch01_tokenization.ipynb, make sync,
#   make benchmarks (re-measure the appendix tables in book/tables/).
# The readers' other worlds (CI runs both after `make test`; see book/running.md):
#   make test-online  every chapter against a local stand-in for the network (hub, story, GloVe)
#   make test-newer   every chapter on torch 2.14.1 and the newest releases pyproject.toml admits,
#                     the package installed from the last commit as Colab's setup cell installs it

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book pdf test test-fast test-online test-newer execute sync clean benchmarks

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The browser test's npm packages (playwright-core, and local copies of the CDN scripts the book
# loads). Without npm the browser test is skipped with its reason.
BROWSER_STAMP := tests/browser/node_modules/.installed
$(BROWSER_STAMP): tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: tests/test_browser.py will be skipped"; fi

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

# The whole book as one PDF, _build/pdf/book.pdf (also copied to _build/html/book.pdf, where the home
# page links it): Sphinx's single-page build printed by Debian's chromium (tools/print_book.mjs),
# with MathJax from the npm copy. Needs chromium and the npm packages of tests/browser.
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser)
pdf: book $(BROWSER_STAMP)
	$(BIN)/jupyter-book build . --builder singlehtml --warningiserror --nitpick --keep-going
	mkdir -p _build/pdf
	node tools/print_book.mjs _build/singlehtml _build/pdf/book.pdf $(CHROMIUM)
	cp _build/pdf/book.pdf _build/html/book.pdf

# ruff (configured in pyproject.toml: line length 100, mccabe complexity 12) runs first in both.
LINT := $(BIN)/ruff check helpers tests benchmarks tools

test: $(STAMP) $(BROWSER_STAMP)
	$(LINT)
	$(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg --durations=15

test-fast: $(STAMP)
	$(LINT)
	$(BIN)/python -m pytest tests -m "not slow"

test-online: $(STAMP)
	$(BIN)/python tools/worlds.py online

# A second environment as a Colab runtime has it: a newer torch already there (2.14.1; these
# machines carry its wheel), then `pip install git+REPO` exactly as each chapter's setup cell runs
# it, from this clone's last commit. Never requirements.txt. A fresh venv gets the newest releases.
NEWER := .venv-newer
test-newer:
	test -x $(NEWER)/bin/python || $(PYTHON) -m venv $(NEWER)
	$(NEWER)/bin/python -m pip install --quiet torch==2.14.1
	$(NEWER)/bin/python -m pip uninstall --quiet --yes gpt2-from-scratch
	$(NEWER)/bin/python -m pip install --quiet "git+file://$(CURDIR)" ipykernel nbclient
	cd /tmp && $(CURDIR)/$(NEWER)/bin/python -c "import helpers, torch; print('helpers from', helpers.__file__, '| torch', torch.__version__)"
	$(NEWER)/bin/python tools/worlds.py newer

# Re-run one chapter top to bottom in a fresh kernel, store its outputs, refresh its .py twin.
execute: $(STAMP)
	$(BIN)/python tools/execute.py $(NB)

# After editing a chapter's .py twin: carry the edit into the .ipynb (then `make execute`).
sync: $(STAMP)
	$(BIN)/jupytext --sync chapters/*.ipynb

# The appendix tables (book/tables/*.md), measured on this machine with 2 torch threads: about 15
# minutes on 2 idle cores.
benchmarks: $(STAMP)
	$(BIN)/python benchmarks/run_all.py --threads 2

clean:
	rm -rf _build
