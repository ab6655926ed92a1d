# Microscale: the two set-up commands. Each installs what it needs, then runs.
#   make demo   fetch the models, build, and run the main job (the cascade on the example support task)
#   make test   fetch the models, build in release mode, start PostgreSQL on loopback, and run every test
# Then: make serve (the HTTP service on the example tasks), make loadtest (its throughput).

SWIFT ?= swift
RELEASE := -c release
MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: demo test models build deps bench compare-llama bench-structured bench-schemas bench-generate serve adapters loadtest loadtest-serve simulate scope

# Debian packages the build and the set-up need (the Swift toolchain itself ships with the machine image).
deps:
	@missing=""; \
	for tool in python3 sha256sum make curl; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	python3 -m pip --version >/dev/null 2>&1 || missing="$$missing python3-pip"; \
	[ -f /usr/include/sqlite3.h ] || missing="$$missing libsqlite3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && apt-get install -y -qq python3 python3-pip coreutils make curl libsqlite3-dev >/dev/null; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "error: no Swift toolchain on PATH (expected Swift 6 at /opt/swift/usr/bin)"; exit 1; }

models: deps
	@scripts/fetch-models.sh

build: deps
	$(SWIFT) build $(RELEASE)

demo: models build
	@scripts/demo.sh

# Model-level tests run in release mode: numeric code in a debug build is 10-100x slower. The integration tests
# need PostgreSQL, headless Chromium and the openai Python client; scripts/test-env.sh provides them. Tests run one
# at a time: the model tests keep both cores busy anyway, and running beside them starves the I/O tests of Swift's
# two cooperative threads.
test: models
	$(SWIFT) build $(RELEASE) --build-tests -Xswiftc -enable-testing
	eval "$$(scripts/test-env.sh)" && $(SWIFT) test $(RELEASE) -Xswiftc -enable-testing --skip-build --no-parallel

# Trains the example tasks' adapters if they are missing (the serve configuration needs them).
adapters: models build
	@[ -f examples/support/support-queue.adapter.json ] || .build/release/microscale train --task examples/support/task.yaml --data examples/support/messages.csv
	@[ -f examples/banking77/banking77.adapter.json ] || .build/release/microscale train --task examples/banking77/task.yaml --data ../shared/data/banking77/train.csv

# The HTTP service on the example tasks (examples/serve.yaml). Keys default to dev values; set your own.
MICROSCALE_API_KEY ?= dev-api-key
MICROSCALE_REVIEWER_KEY ?= dev-reviewer-key
export MICROSCALE_API_KEY MICROSCALE_REVIEWER_KEY
serve: adapters
	@echo "API key: $$MICROSCALE_API_KEY   reviewer key: $$MICROSCALE_REVIEWER_KEY   review page: http://127.0.0.1:8080/review"
	.build/release/microscale serve --config examples/serve.yaml

# Throughput: the server on the Banking77 task alone (examples/loadtest.yaml), and the load at concurrency 1, 8, 32.
loadtest-serve: adapters
	.build/release/microscale serve --config examples/loadtest.yaml

loadtest:
	.build/release/microscale loadtest --task banking77 --data ../shared/data/banking77/train.csv --concurrency 1,8,32 \
	  --requests 600 --output reports/loadtest.jsonl

# Throughput: the decoder (llama-bench-style table, prefix reuse, batched sequences, memory at a 2,048-token
# context) and the encoder (embeddings/s, latency).
bench: models build
	.build/release/microscale bench --model $(MODEL) -p 32,128,512 -n 128 -t 1,2 -r 5
	.build/release/microscale bench --model $(MODEL) --prefix 200 --input 20 -r 5
	.build/release/microscale bench --model $(MODEL) --sequences 1,4,16 -n 128 -r 3
	.build/release/microscale bench --model $(MODEL) -p 2048 -n 0 -r 1
	.build/release/microscale bench --backbone minilm --batch 1,32 -t 2 -r 3

# The decoder against llama.cpp on the same file and settings, alternating, median ratio of 5 pairs per test:
# make compare-llama LLAMA_BENCH=/path/to/llama-bench (built outside this repository; see README).
compare-llama: models build
	@test -n "$(LLAMA_BENCH)" || (echo "set LLAMA_BENCH=/path/to/llama-bench" && exit 2)
	python3 scripts/compare-llama-cpp.py $(LLAMA_BENCH) --model $(MODEL) -p 32,128,512 -n 128 -t 1,2 --pairs 5

# Structured output: schema compile time, the constraint's cost per token, validity with and without it over 1,000
# inputs (about an hour on 2 cores), and exact label scoring against one evaluation per label.
bench-structured: models build
	.build/release/microscale bench --model $(MODEL) --structured examples/extraction/task.yaml --inputs 1000
	.build/release/microscale bench --model $(MODEL) --labels --label-prompts 3

# JSON Schema coverage (README, "Coverage, measured on JSONSchemaBench"): MaskBench's schemas and instances through
# the automaton in any spelling and in the canonical one generation writes (with the mask time per token), and the
# JSON-Schema-Test-Suite's draft 2020-12 tests through the validator. The pinned commits are cloned into bench/
# (git-ignored) when missing; nothing of them is committed. About 3 minutes.
MASKBENCH_COMMIT := ba103c73756198dd9b149ddc7db7867da7a077f6
bench/jsonschemabench:
	git clone -q https://github.com/guidance-ai/jsonschemabench $@ && git -C $@ checkout -q $(MASKBENCH_COMMIT)
TEST_SUITE_COMMIT := 44401e0c046704b476ec9d2e2fccdaee618f259d
bench/JSON-Schema-Test-Suite:
	git clone -q https://github.com/json-schema-org/JSON-Schema-Test-Suite $@ && git -C $@ checkout -q $(TEST_SUITE_COMMIT)
bench-schemas: models build bench/jsonschemabench bench/JSON-Schema-Test-Suite
	.build/release/microscale bench-schemas --maskbench bench/jsonschemabench/maskbench/data --any-spelling \
	  --test-suite bench/JSON-Schema-Test-Suite/tests/draft2020-12
	.build/release/microscale bench-schemas --maskbench bench/jsonschemabench/maskbench/data --model $(MODEL)

# Generation over 200 MaskBench schemas with SmolLM2 (the schema and "produce an example", greedy), each output
# checked by the Python jsonschema package (installed into .venv-test if missing). About 30 minutes on 2 cores.
bench-generate: models build bench/jsonschemabench
	.build/release/microscale bench-schemas --maskbench bench/jsonschemabench/maskbench/data --model $(MODEL) --mask-schemas 0 \
	  --generate 200 --generated-output reports/maskbench-generated.jsonl
	@[ -x .venv-test/bin/python ] || python3 -m venv .venv-test
	@.venv-test/bin/python -c 'import jsonschema' 2>/dev/null || .venv-test/bin/python -m pip install -q jsonschema
	.venv-test/bin/python scripts/check-generated.py reports/maskbench-generated.jsonl

# The learning loop end to end (README, "The learning loop"): Banking77 from 5 labelled items per intent, and the
# support task on a longer synthetic stream (the example generator at 5 times the size, another seed).
simulate: models build
	.build/release/microscale simulate --task examples/banking77/task.yaml --data ../shared/data/banking77/train.csv \
	  --holdout-share 0.2 --seed-per-label 5 --rounds 8 --round-size 950 --teacher-error 0.05 --review-share 0.5 --calibration-share 0.7
	SUPPORT_SCALE=5 SUPPORT_SEED=2 $(SWIFT) scripts/make-support-data.swift > reports/support-stream.csv
	.build/release/microscale simulate --task examples/support/task.yaml --data reports/support-stream.csv \
	  --holdout-share 0.2 --seed-per-label 5 --rounds 8 --round-size 1250 --teacher-error 0.05 --review-share 0.2 --calibration-share 0.7

# Out-of-scope traffic (README, "Out-of-scope traffic and audits"): the Banking77 protocol (a quarter of the intents
# held out as unknown, half of them seen in training as out_of_scope) under three calibrations, and the support task
# with SMS messages as out-of-scope examples and SNIPS requests as a kind it never saw; each with the audit drift
# simulation (out-of-scope share 5% -> 30%). About 25 minutes on 2 cores; reports in reports/scope/.
scope: models build
	$(SWIFT) scripts/make-scope-data.swift reports/scope
	@for spec in banking77-oos banking77-oos-kinds banking77-oos-kinds-5; do \
	  .build/release/microscale train --task reports/scope/$$spec.yaml --data reports/scope/banking77-train.csv 2>&1 | grep -v '\[' && \
	  .build/release/microscale eval --task reports/scope/$$spec.yaml --data reports/scope/banking77-test.csv --group-column kind \
	    --audit-drift 0.05,0.30 --latency-samples 0 --report reports/scope/$$spec.html 2>&1 | grep -v '\[' && \
	  .build/release/microscale eval --task reports/scope/$$spec.yaml --data reports/scope/banking77-outside.csv --group-column kind \
	    --latency-samples 0 --report reports/scope/$$spec.outside.html 2>&1 | grep -v '\[' || exit 1; \
	done
	.build/release/microscale train --task reports/scope/support-oos.yaml --data reports/scope/support-train.csv 2>&1 | grep -v '\['
	.build/release/microscale eval --task reports/scope/support-oos.yaml --data reports/scope/support-test.csv --group-column kind \
	  --audit-drift 0.05,0.30 --latency-samples 0 --report reports/scope/support-oos.html 2>&1 | grep -v '\['
