# Partner program engine. `make dev` runs the whole system locally; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv

.PHONY: help dev test test-rules lint fmt bench tools clean

help:
	@echo "make dev    - run the whole system locally (moto + every function on loopback)"
	@echo "make test   - run every test (starts and stops a local moto server)"
	@echo "make lint   - cargo fmt --check, clippy -D warnings, cfn-lint template.yaml"
	@echo "make bench  - benchmarks (release builds); figures go to docs/performance.md"

test:
	infra/moto.sh run -- $(CARGO) test --workspace --all-targets

test-rules:
	$(CARGO) test -p rules

$(VENV)/bin/cfn-lint:
	infra/moto.sh install
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cfn-lint

lint: $(VENV)/bin/cfn-lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV) .dev
