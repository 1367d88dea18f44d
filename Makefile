# The two set-up commands (README): `make demo` runs the main job on the bundled samples;
# `make test` runs the whole test suite. Both set up what they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test bench dist clean

demo:
	@scripts/demo.sh

test:
	@scripts/test.sh

bench:
	@scripts/bench.sh

dist:
	@scripts/dist.sh

clean:
	rm -rf build dist *.egg-info .pytest_cache wia-events.db* wia-dead-letter.ndjson
