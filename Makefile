# Two set-up-and-go targets: `make run` (demo dataset + preview) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_OUT := demo_out
DEMO_ARGS := --classes 10 --images-per-class 20 --image-size 224

.PHONY: run test venv venv-server clean fonts glyph-table

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

PYTHON310 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python3.10) python3.10)
VENV_SERVER := .venv-server

venv-server: $(VENV_SERVER)/.installed

# The Signate server's stack (Python 3.10, torch 2.0.1, numpy 1.24.4, Pillow 10.0, opencv 4.8) plus the
# packed requirements.txt; `rehearse --python .venv-server/bin/python` and tests/test_pack.py use it.
$(VENV_SERVER)/.installed: submission/server_requirements.txt
	test -x $(VENV_SERVER)/bin/python || $(PYTHON310) -m venv $(VENV_SERVER)
	$(VENV_SERVER)/bin/python -m pip install --quiet torch==2.0.1 torchvision==0.15.2 numpy==1.24.4 pillow==10.0.0 opencv-python==4.8.1.78
	$(VENV_SERVER)/bin/python -m pip install --quiet --only-binary=:all: -r submission/server_requirements.txt
	touch $@

# The glyph family's 24 fonts (Noto Sans/Serif CJK in every weight, Takao, IPA, IPAex; SIL OFL / IPA Font
# License, so a submission may ship them). Needs root; `make test` does not need them (those tests skip).
GLYPH_FONT_PACKAGES := fonts-noto-cjk fonts-noto-cjk-extra fonts-ipafont-gothic fonts-ipafont-mincho \
	fonts-ipaexfont-gothic fonts-ipaexfont-mincho fonts-takao-gothic fonts-takao-mincho

fonts:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(GLYPH_FONT_PACKAGES)

# Rebuild the committed class table (about 2 minutes; scikit-learn from requirements.txt, fonts from `make fonts`).
glyph-table: venv
	$(PY) -m submission.tools.glyph_table submission/families/glyphs/glyph_table.json
