#!/usr/bin/env bash
# The main job until the cascade lands: load SmolLM2 in-process, show what the file holds, answer a few
# support-style prompts with streaming output, and measure perplexity parity on shared data.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.build/release/microscale"
model="${MICROSCALE_MODELS:-$root/models}/SmolLM2-135M-Instruct.Q4_1.gguf"

echo "== inspect (summary)"
summary="$("$bin" inspect "$model")"
sed -n 1,5p <<<"$summary"
echo
for prompt in \
  "My card still hasn't arrived after two weeks. What should I do?" \
  "Classify this message as spam or ham: 'WINNER!! Claim your £900 prize now, call 09061701461'" \
  "Write a Python function that reverses a string."; do
  echo "== run: $prompt"
  "$bin" run --model "$model" -n 64 "$prompt"
  echo
done
