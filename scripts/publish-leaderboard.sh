#!/usr/bin/env bash
# Publish the built-in default run as the leaderboard in leaderboard/ (see docs/leaderboard/README.md).
#
# Runs every default method on the three evaluation suites into leaderboard/results, then regenerates the site
# in leaderboard/. The result files (run.json, samples.jsonl) and the site are committed; the full-size output
# PNGs (leaderboard/results/**/images/) are gitignored: the comparison crops cut from them are committed instead.
# Reruns resume (finished images are not recomputed). A method that fails on some images still gets its row.
#
#   usage: scripts/publish-leaderboard.sh [--device cuda] [--limit N] [--fresh]
#   --fresh removes leaderboard/results first (otherwise runs of an older configuration stay as extra rows).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"
RESULTS=leaderboard/results
SUITES=4ksr-syn,4ksr-realsquare,4ksr-realvary
DEVICE=cpu
LIMIT=()
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --limit) LIMIT=(--limit "$2"); shift 2 ;;
        --fresh) rm -rf "$RESULTS"; shift ;;
        *) echo "usage: $0 [--device cuda] [--limit N] [--fresh]" >&2; exit 2 ;;
    esac
done

"$BIN/op4ksr-bench" build-dataset --suite "$SUITES"
"$BIN/op4ksr-bench" weights fetch || echo "warning: some weights could not be fetched; their metrics are skipped" >&2

status=0
run() {
    "$BIN/op4ksr-bench" run --suite "$SUITES" --results "$RESULTS" --device "$DEVICE" "$@" || status=1
}
# Images per suite for the published CPU run: every method sees the same first images of each suite (the
# manifest order). Real-ESRGAN x4plus costs about 324 s per input megapixel on a 2-core CPU
# (docs/methods/README.md), so the CPU run scores it on the first 4ksr-syn image only; with --device cuda or
# --limit N every method runs on every suite. The leaderboard shows how many images each row was scored on.
FAST=(--limit 2)
SLOW=(--suite 4ksr-syn --limit 1)
if [ ${#LIMIT[@]} -gt 0 ]; then FAST=("${LIMIT[@]}"); SLOW=("${LIMIT[@]}"); fi
if [ "$DEVICE" != cpu ]; then SLOW=("${FAST[@]}"); fi
run --method bicubic "${FAST[@]}"
run --method lanczos "${FAST[@]}"
run --method op4ksr "${FAST[@]}"                                                          # the nano reference
run --method op4ksr --opt tile=2048 --opt overlap=256 --opt blend=gaussian "${FAST[@]}"  # the same model, tiled
run --method realesrgan-x4plus "${SLOW[@]}"

"$BIN/op4ksr-bench" leaderboard --results "$RESULTS" --out leaderboard
exit $status
