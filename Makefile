# Two commands do everything: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo-run
# Numba checks only a kernel's own file for changes, not the kernels it calls: key its cache by
# the package's sources so an edit never runs a stale kernel (tests/conftest.py does the same).
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba/$(shell cat w2v/*.py | cksum | cut -d' ' -f1)

.PHONY: demo test lint clean

$(BIN)/w2v: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,report]'
	touch $@

.venv: $(BIN)/w2v

demo: .venv
	$(BIN)/w2v train data/demo.txt --config configs/default.yaml --output $(DEMO_OUT) --overwrite --cache-dir .cache --epochs 15
	$(BIN)/w2v similar $(DEMO_OUT)/vectors.txt whale ship sea captain queen love -k 8
	$(BIN)/w2v eval $(DEMO_OUT)/vectors.txt
	$(BIN)/w2v report $(DEMO_OUT)
	@echo "run directory: $(DEMO_OUT)/ (vectors.txt, vocab.txt, config.yaml, log.jsonl, checkpoint.npz)"
	@echo "report: $(DEMO_OUT)/report.html (open it in a browser) and $(DEMO_OUT)/report.png"

test: .venv
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: .venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(DEMO_OUT) .cache .pytest_cache
