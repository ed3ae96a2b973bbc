# One command to run the assistant, one to test it. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup dictionaries native serve test test-unit eval fit bench build clean

$(BIN)/summit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build (an unpinned torch pulls gigabytes of CUDA)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/summit

# The FreeDict English<->French dictionaries (GPL) are Debian packages: installed when this runs
# as root with apt-get, else a note (the assistant works without them, a little less well).
dictionaries:
	@if [ -f /usr/share/dictd/freedict-eng-fra.index ] && [ -f /usr/share/dictd/freedict-fra-eng.index ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dict-freedict-eng-fra dict-freedict-fra-eng >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dict-freedict-eng-fra dict-freedict-fra-eng >/dev/null; } || \
	  echo "note: could not install dict-freedict-eng-fra / dict-freedict-fra-eng (query expansion runs without them)"; \
	else echo "note: apt-get install dict-freedict-eng-fra dict-freedict-fra-eng adds dictionary query expansion"; fi

# The fused e5 pass (assistant/native.py): compiled once per machine with the system C compiler
# into the user cache; without one the stock engine serves, two passes per text.
native: $(BIN)/summit
	@$(BIN)/python -m assistant.native

setup: $(BIN)/summit dictionaries native

serve: setup
	$(BIN)/summit serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest -q

# The fast unit suite: fakes and invented sentences only (tests/conftest.py refuses real models).
test-unit: setup
	$(BIN)/python -m pytest -q -m "not integration and not browser and not slow"

eval: setup
	$(BIN)/summit eval --mode all

fit: setup
	$(BIN)/summit fit

bench: setup
	$(BIN)/summit bench --json artifacts/bench.json

build: setup
	$(BIN)/summit build

clean:
	rm -rf $(VENV) index/current index/builds index/.lock .pytest_cache eval/out
