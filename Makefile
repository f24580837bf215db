# hubgate: `make demo` runs the main job, `make test` runs every test, `make bench` the benchmarks.
# Each target sets itself up: a local virtual environment with the extension built in release mode.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUST_SOURCES := $(shell find rust -name '*.rs' -o -name Cargo.toml) Cargo.toml

.PHONY: demo test bench lint rust-test py-test wheel clean peers

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.deps: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet "maturin>=1.7,<2"
	touch $@

# Builds the extension (release) and installs hubgate editable with its dev extras.
$(VENV)/.built: $(VENV)/.deps $(RUST_SOURCES) pyproject.toml
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --release --quiet --extras dev
	touch $@

# The gateway controls the simulated 200-connector depot over Modbus TCP and OCPP on loopback
# (grid-operator step to 30 % after 60 s); the dashboard URL is printed at the start.
demo: $(VENV)/.built
	$(BIN)/hubgate demo --duration 300

lint: $(VENV)/.built
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	$(BIN)/ruff check python tests bench
	$(BIN)/ruff format --check python tests bench
	$(BIN)/mypy --strict python/hubgate
	$(BIN)/python -m mypy.stubtest hubgate._core  # the hand-written _core.pyi against the extension

rust-test:
	cargo test --workspace --quiet

# The wheel `pip install` takes, in target/wheels (reusing the release build of .built);
# tests/test_wheel.py installs it in a fresh virtual environment.
wheel: $(VENV)/.built
	rm -rf target/wheels
	$(BIN)/maturin build --release --quiet --interpreter $(BIN)/python --out target/wheels

# The Debian programs the tests use as real peers (socat, mbpoll, mosquitto, chromium, ...;
# the list is tests/support/peers.py): installed with apt-get when run as root, else it stops with
# one line naming the command. HUBGATE_SKIP_PEERS=mbpoll,... (or all) opts out explicitly.
peers:
	$(PYTHON) tests/support/peers.py --install

py-test: peers $(VENV)/.built wheel
	$(BIN)/pytest -q tests bench --benchmark-disable --durations=40

test: peers lint rust-test py-test

bench: $(VENV)/.built
	$(BIN)/pytest bench -q --benchmark-only --benchmark-json=bench/results.json -p no:randomly

clean:
	rm -rf $(VENV) target bench/results.json
