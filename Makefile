# The README's commands. Every target installs first (tools/install.sh is idempotent: seconds when
# nothing changed).
SHELL := /bin/bash
VENV := tools/venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test lint bench lock clean

install:
	@bash tools/install.sh

# make demo RECIPES="voxceleb/superb1 ...": only those recipes (and the ones whose models they use)
demo: install
	@RECIPES="$(RECIPES)" bash tools/demo.sh

test: install
	$(PY) -m pytest -q -ra $(PYTEST_ARGS) tests

lint: install
	$(VENV)/bin/ruff check .
	shellcheck -x $$(git ls-files '*.sh')

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# regenerate tools/constraints.txt from the current environment (after changing requirements.txt)
lock: install
	@{ echo "# Exact versions for a reproducible install (pip install -c). Regenerate with: make lock"; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -e '^torch==' -e '^espnet==' -e '^#'; } > tools/constraints.txt

clean:
	rm -rf demo
