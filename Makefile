.PHONY: run test lint bench setup clean

run:      ## the county server with sample content, on http://127.0.0.1:8750
	scripts/run

test:     ## ruff, mypy and the whole test suite
	scripts/test

lint:     ## ruff and mypy only
	scripts/setup
	.venv/bin/ruff check . && .venv/bin/mypy

bench:    ## the benchmarks, with their reference runs
	scripts/bench

setup:    ## install Debian and Python dependencies
	scripts/setup

clean:
	rm -rf var build *.egg-info .pytest_cache .mypy_cache .ruff_cache
