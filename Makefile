# codex-gateway — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test test-fast docs bench bench-compare soak tools clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PIP) install -e '.[test]'
	touch $@

## run: start gunicorn on 127.0.0.1:8080 with the embedded default configuration
run: $(VENV)/.installed
	$(VENV)/bin/gunicorn -c deploy/gunicorn.conf.py gateway.wsgi:app

## tools: what the deployment and client tests need (nginx, pinned npm clients)
tools:
	sh tests/clients/install.sh

## test: install the test extra and every tool, then run the whole suite
test: $(VENV)/.test-installed tools
	$(PY) -m pytest -q

## test-fast: the edit loop: the unit and in-process tiers only (no nginx, no npm install),
## in two processes (about 65 s of CPU: one process alone would not finish within a minute)
test-fast: $(VENV)/.test-installed
	$(PY) -m pytest -q -n 2 tests/unit tests/inprocess

## docs: regenerate docs/reference/configuration.md from the config dataclasses
docs: $(VENV)/.installed
	$(PY) -m gateway.configdoc

## bench: gateway vs direct vs nginx side by side, open WebSockets held, upstream WebSocket vs
## HTTP, then the hot paths in isolation with what recording usage and the response store cost
## (a few minutes; bench/out)
bench: $(VENV)/.test-installed tools
	sh bench/install.sh $(PY)
	$(PY) -m bench.run
	$(PY) -m bench.floor
	$(PY) -m bench.websockets
	$(PY) -m bench.upstream_ws
	$(PY) -m bench.upstream_load
	$(PY) -m bench.micro
	$(PY) -m bench.placement
	$(PY) -m bench.responses_store

## bench-compare BEFORE=<commit>: this tree against that commit, side by side in one run (CPU per
## request one at a time and under 32 concurrent clients, per streamed event; shipped config and
## with [prefix]/[responses] store off)
bench-compare: $(VENV)/.test-installed tools
	@test -n "$(BEFORE)" || { echo "usage: make bench-compare BEFORE=<commit>"; exit 2; }
	sh bench/install.sh $(PY)
	rm -rf bench/out/before && git worktree prune
	git worktree add --detach bench/out/before $(BEFORE)
	$(PY) -m bench.compare --before bench/out/before; status=$$?; \
	git worktree remove --force bench/out/before; exit $$status

## soak: mixed load with injected faults; fails on unexplained errors or growing fds/threads/RSS
soak: $(VENV)/.test-installed tools
	sh bench/install.sh $(PY)
	$(PY) -m bench.soak

clean:
	rm -rf $(VENV) tests/clients/node_modules
