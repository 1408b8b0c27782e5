# Partner program engine. `make dev` runs the whole system locally; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv

.PHONY: help dev test test-rules lint fmt bench tools clean

help:
	@echo "make dev    - run the whole system locally (moto + every function on loopback)"
	@echo "make test   - run every test (starts and stops a local moto server; installs moto and chromium when missing)"
	@echo "make lint   - cargo fmt --check, clippy -D warnings, cfn-lint template.yaml"
	@echo "make bench  - benchmarks (release builds); figures go to docs/performance.md"
	@echo "make bench-payout - requests of a payout run over 10,000 partners (PAYOUT_BENCH_PARTNERS)"
	@echo "make bench-notify - SES calls and DynamoDB requests per partner e-mail"
	@echo "make bench-rails  - rail calls and DynamoDB requests of a run paid through PayPal / Stripe Connect (RAILS_BENCH_PARTNERS)"

# The system tests run the functions' binaries: cargo test builds a package's binaries only
# when the package has integration tests, so every function crate has some (a separate
# `cargo build --bins` would compile the dependencies a second time, with other features).
# The browser tests need Debian's chromium and chromium-driver (infra/browser.sh installs them
# when missing, as infra/moto.sh installs moto).
test:
	infra/browser.sh install
	infra/moto.sh run -- $(CARGO) test --workspace --all-targets

test-rules:
	$(CARGO) test -p rules

$(VENV)/bin/cfn-lint:
	infra/moto.sh install
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cfn-lint

lint: $(VENV)/bin/cfn-lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) run -q -p modcheck -- shared functions infra
	$(VENV)/bin/cfn-lint template.yaml

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV) .dev

# --- local development and init benchmark (infra/dev.sh, infra/devgw, infra/bench-init.sh) ---
.PHONY: bench-init

# make dev [SEED=file|none] [PORT=9000]: moto + table/queues + build + seed + every function on loopback.
dev:
	$(if $(SEED),SEED='$(SEED)') $(if $(PORT),PORT='$(PORT)') infra/dev.sh

# Init time and stripped size of the function binaries beside a hello-world lambda_runtime binary.
bench-init:
	infra/bench-init.sh

bench: bench-init bench-requests bench-notify bench-payout bench-rails

# DynamoDB and SQS requests per invoice.paid, counted against moto (dev profile: counts do not
# depend on optimisation).
.PHONY: bench-requests
bench-requests:
	infra/moto.sh run -- $(CARGO) bench --profile dev -p engine --bench requests

# SES calls and DynamoDB requests per notification (functions/notifier/benches/requests.rs).
.PHONY: bench-notify
bench-notify:
	infra/moto.sh run -- $(CARGO) bench --profile dev -p notifier --bench requests

# DynamoDB requests of a payout run over PAYOUT_BENCH_PARTNERS (10000) partners, 10 commissions
# each, then with their paid history doubled (the count must stay within 5 %). Seeding writes
# about 3 million items to moto with BatchWriteItem: it takes most of an hour on 2 cores.
.PHONY: bench-rails
bench-rails:
	$(if $(RAILS_BENCH_PARTNERS),RAILS_BENCH_PARTNERS='$(RAILS_BENCH_PARTNERS)') infra/moto.sh run -- $(CARGO) bench --profile dev -p rails --bench rails_run

.PHONY: bench-payout
bench-payout:
	$(if $(PAYOUT_BENCH_PARTNERS),PAYOUT_BENCH_PARTNERS='$(PAYOUT_BENCH_PARTNERS)') infra/moto.sh run -- $(CARGO) bench --profile dev -p engine --bench payout_run

# `sam validate --lint` (offline, no credentials). aws-sam-cli is large, so it is not part of lint.
.PHONY: validate
$(VENV)/bin/sam:
	infra/moto.sh install
	$(VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli
validate: $(VENV)/bin/sam $(VENV)/bin/cfn-lint
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --region us-east-1 --template template.yaml

# moto's memory and invoice.paid's latency while `make dev` books BOOKINGS (2000) invoices
# (infra/bench-dev-growth.sh; MOTO_UNPATCHED=1 measures moto as released). Not part of `bench`:
# it takes about as long as the bookings.
.PHONY: bench-dev-growth
bench-dev-growth:
	$(if $(BOOKINGS),BOOKINGS='$(BOOKINGS)') $(if $(PORT),PORT='$(PORT)') $(if $(MOTO_UNPATCHED),MOTO_UNPATCHED='$(MOTO_UNPATCHED)') infra/bench-dev-growth.sh
