#!/usr/bin/env bash
# The main job: the whole cascade loop on the example task that ships with the project (support messages for a
# fictional broadband provider, examples/support). Train and certify on 80% of the messages, decide the held-out
# 20%, print what was accepted, escalated and reviewed with accuracy and cost, and write the HTML report; then
# decide three new messages with the adapter just written.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.build/release/microscale"
task="$root/examples/support/task.yaml"
cd "$root"

"$bin" trial --task "$task" --data examples/support/messages.csv --report reports/support-queue.html
echo
echo "== decide (one JSON line per message)"
"$bin" decide --task "$task" --adapter reports/support-queue.trial.adapter.json \
  "hi my wifi keeps dropping every evening, can someone look at it" \
  "I have asked my bank to reverse the last two direct debits as I never agreed to this price rise" \
  "What's the weather like in Lisbon?"
echo
echo "open reports/support-queue.html for the full report"
