# Developer shortcuts. `make dist` builds the single-file server dist/tornpay.pyz.
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: dist test clean

dist:
	PYTHON=$(PYTHON) scripts/build_zipapp.sh dist/tornpay.pyz

test:
	.ci/run

clean:
	rm -rf dist build
