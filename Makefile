# Two set-up-and-go targets: `make run` (demo dataset + preview) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_OUT := demo_out
DEMO_ARGS := --classes 10 --images-per-class 20

.PHONY: run test venv venv-server clean fonts glyph-table glyph-table-3rd docker-engine docker-rehearse downstream slurm

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
	$(PY) -m ruff check .
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

# The 3rd place's class table rebuilt by their procedure (a PCA stand-in for their unpublished VAE).
glyph-table-3rd: venv
	$(PY) -m submission.tools.glyph_table_3rd submission/families/glyphs/glyph_table_3rd.json

# Docker for `make docker-rehearse`: installs Debian's docker.io (and debootstrap, for the stand-in base)
# when missing and starts dockerd when it does not answer. Needs root.
DOCKERD_LOG ?= /tmp/dockerd.log

docker-engine:
	command -v dockerd >/dev/null && command -v debootstrap >/dev/null || { apt-get update \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io debootstrap; }
	docker info >/dev/null 2>&1 || { nohup dockerd >$(DOCKERD_LOG) 2>&1 & \
		for i in $$(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; }
	@docker info >/dev/null 2>&1 || { echo "error: dockerd did not start; see $(DOCKERD_LOG)" >&2; exit 2; }
	@echo "docker: $$(docker info -f '{{.ServerVersion}}, {{.Driver}}') is running"

# Packs a small zip, builds the Dockerfile (on a local stand-in base where the real one cannot be pulled),
# runs it with --network none into build/docker/out and verifies that dataset on the host.
docker-rehearse: venv
	scripts/docker_rehearse.sh

# Fashion-MNIST for `python -m local_eval --downstream fashion-mnist`, with no internet: Debian's
# dataset-fashion-mnist (installed as root when missing), unpacked where torchvision's
# FashionMNIST(root=DATA_ROOT) reads it: DATA_ROOT/FashionMNIST/raw/<name> without .gz. Each file
# is written to a temporary name and renamed; one that already holds the same bytes is left alone.
DATA_ROOT ?= data
FASHION_MNIST_DEB ?= /usr/share/datasets/fashion-mnist
FASHION_MNIST_FILES := train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte

downstream:
	@if ! ls $(addprefix $(FASHION_MNIST_DEB)/,$(addsuffix .gz,$(FASHION_MNIST_FILES))) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "error: $(FASHION_MNIST_DEB) lacks Fashion-MNIST and only root can install it: run make downstream as root (it runs apt-get install -y dataset-fashion-mnist)" >&2; exit 2; fi; \
	  apt-cache show dataset-fashion-mnist >/dev/null 2>&1 || apt-get update -q >/dev/null; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null || \
	    { echo "error: apt-get install -y dataset-fashion-mnist failed (see the lines above)" >&2; exit 2; }; \
	fi
	@mkdir -p $(DATA_ROOT)/FashionMNIST/raw
	@for name in $(FASHION_MNIST_FILES); do \
	  target=$(DATA_ROOT)/FashionMNIST/raw/$$name; \
	  gunzip -c $(FASHION_MNIST_DEB)/$$name.gz > $$target.part || { rm -f $$target.part; exit 2; }; \
	  if cmp -s $$target.part $$target; then rm $$target.part; else mv $$target.part $$target; fi; \
	done
	@echo "Fashion-MNIST: $(DATA_ROOT)/FashionMNIST/raw (python -m local_eval ... --downstream fashion-mnist --data-root $(DATA_ROOT))"

# A real one-node Slurm on this machine for `compare --executor slurm` (tests/test_compare_cluster.py):
# Debian's slurmctld, slurmd, slurm-client and munge (installed when missing), a one-node slurm.conf
# (this node's line from `slurmd -C`; written once, kept when present), munged, slurmctld and slurmd
# started when not running, then waits until the node answers `sinfo` as idle. Needs root; does
# nothing when Slurm already answers. Stop the daemons by the PIDs in /run/slurm*.pid, never by name.
SLURM_CONF ?= /etc/slurm/slurm.conf
SLURM_LOG ?= /var/log/slurm

slurm:
	@if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then echo "slurm: $$(sinfo -h -o '%P %a %D %t %N') is running"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "error: make slurm installs and starts daemons: run it as root" >&2; exit 2; fi; \
	command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null || { \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    slurmctld slurmd slurm-client munge >/dev/null || { echo "error: apt-get install slurmctld slurmd slurm-client munge failed" >&2; exit 2; }; }; \
	mkdir -p $$(dirname $(SLURM_CONF)) /var/spool/slurmctld /var/spool/slurmd $(SLURM_LOG) /run/munge; \
	if [ ! -f $(SLURM_CONF) ]; then \
	  host=$$(hostname); node=$$(slurmd -C | head -n 1); \
	  printf '%s\n' "ClusterName=local" "SlurmctldHost=$$host" "AuthType=auth/munge" \
	    "ProctrackType=proctrack/linuxproc" "TaskPlugin=task/none" "SelectType=select/cons_tres" \
	    "SelectTypeParameters=CR_Core" "SlurmctldPidFile=/run/slurmctld.pid" "SlurmdPidFile=/run/slurmd.pid" \
	    "StateSaveLocation=/var/spool/slurmctld" "SlurmdSpoolDir=/var/spool/slurmd" "SlurmUser=root" \
	    "ReturnToService=2" "JobAcctGatherType=jobacct_gather/none" "AccountingStorageType=accounting_storage/none" \
	    "$$node State=UNKNOWN" "PartitionName=debug Nodes=$$host Default=YES MaxTime=INFINITE State=UP" \
	    > $(SLURM_CONF).part && mv $(SLURM_CONF).part $(SLURM_CONF); fi; \
	alive() { [ -f "$$1" ] && kill -0 "$$(cat "$$1")" 2>/dev/null; }; \
	chown munge:munge /run/munge; \
	alive /run/munge/munged.pid || su -s /bin/sh munge -c /usr/sbin/munged; \
	alive /run/slurmctld.pid || slurmctld -L $(SLURM_LOG)/ctld.log; \
	alive /run/slurmd.pid || slurmd -L $(SLURM_LOG)/d.log; \
	for i in $$(seq 60); do sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break; sleep 1; done; \
	sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' || { echo "error: Slurm did not come up; see $(SLURM_LOG)/ctld.log and d.log" >&2; exit 2; }; \
	echo "slurm: $$(sinfo -h -o '%P %a %D %t %N') is running"
