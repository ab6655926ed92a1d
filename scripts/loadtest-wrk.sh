#!/usr/bin/env bash
# Cross-checks `microscale loadtest` with wrk (Debian's package): the decide endpoint of a running server at
# concurrency 1, 8 and 32 for 20 s each. Usage: scripts/loadtest-wrk.sh [URL] (default http://127.0.0.1:8080).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
url="${1:-http://127.0.0.1:8080}/v1/tasks/banking77/decide"
export MICROSCALE_API_KEY="${MICROSCALE_API_KEY:-dev-api-key}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bodies="$(mktemp)"
python3 - "$root/../shared/data/banking77/train.csv" >"$bodies" <<'PY'
import csv, json, sys
for row in csv.DictReader(open(sys.argv[1], newline="")):
    print(json.dumps({"text": row["text"]}))
PY
for c in 1 8 32; do
  echo "concurrency $c"
  WRK_BODIES="$bodies" wrk -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -d 20s --latency -s "$root/scripts/wrk-decide.lua" "$url" | grep '^wrk:'
done
rm -f "$bodies"
