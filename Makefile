# Microscale: the two set-up commands. Each installs what it needs, then runs.
#   make demo   fetch the models, build, and run the main job (the cascade on the example support task)
#   make test   fetch the model, build in release mode, and run every test

SWIFT ?= swift
RELEASE := -c release
MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: demo test models build deps bench bench-structured

# Debian packages the build and the set-up need (the Swift toolchain itself ships with the machine image).
deps:
	@missing=""; \
	for tool in python3 sha256sum make; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	python3 -m pip --version >/dev/null 2>&1 || missing="$$missing python3-pip"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && apt-get install -y -qq python3 python3-pip coreutils make >/dev/null; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "error: no Swift toolchain on PATH (expected Swift 6 at /opt/swift/usr/bin)"; exit 1; }

models: deps
	@scripts/fetch-models.sh

build: deps
	$(SWIFT) build $(RELEASE)

demo: models build
	@scripts/demo.sh

# Model-level tests run in release mode: numeric code in a debug build is 10-100x slower.
test: models
	$(SWIFT) build $(RELEASE) --build-tests -Xswiftc -enable-testing
	$(SWIFT) test $(RELEASE) -Xswiftc -enable-testing --skip-build

# Throughput: the decoder (llama-bench-style table) and the encoder (embeddings/s, latency).
bench: models build
	.build/release/microscale bench --model $(MODEL) -p 32,128,512 -n 128 -t 1,2 -r 5
	.build/release/microscale bench --backbone minilm --batch 1,32 -t 2 -r 3

# Structured output: schema compile time, the constraint's cost per token, validity with and without it over 1,000
# inputs (about an hour on 2 cores), and exact label scoring against one evaluation per label.
bench-structured: models build
	.build/release/microscale bench --model $(MODEL) --structured examples/extraction/task.yaml --inputs 1000
	.build/release/microscale bench --model $(MODEL) --labels --label-prompts 3
