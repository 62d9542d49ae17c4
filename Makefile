# Two set-up-and-go targets: `make run` (demo dataset + preview) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_OUT := demo_out
DEMO_ARGS := --classes 10 --images-per-class 20 --image-size 224

.PHONY: run test venv clean

venv: $(VENV)/.installed

# Re-installs only when requirements.txt changes (the stamp is older than it).
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: venv
	$(PY) -m submission generate $(DEMO_OUT)/dataset $(DEMO_ARGS) --overwrite
	$(PY) -m submission verify $(DEMO_OUT)/dataset --classes 10 --images-per-class 20
	$(PY) -m submission preview $(DEMO_OUT)/dataset --out $(DEMO_OUT)/preview.png
	@echo "Dataset: $(DEMO_OUT)/dataset   Preview: $(DEMO_OUT)/preview.png"

test: venv
	$(PY) -m pytest

clean:
	rm -rf $(DEMO_OUT)
