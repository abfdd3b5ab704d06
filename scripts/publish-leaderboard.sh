#!/usr/bin/env bash
# Publish the built-in default run as the leaderboard in leaderboard/ (see docs/leaderboard/README.md).
#
# Runs every default method on the three evaluation suites into leaderboard/results, then regenerates the site
# in leaderboard/. The result files (run.json, samples.jsonl) and the site are committed; the full-size output
# PNGs (leaderboard/results/**/images/) are gitignored: the comparison crops cut from them are committed instead.
# Reruns resume (finished images are not recomputed). A method that fails on some images still gets its row.
#
#   usage: scripts/publish-leaderboard.sh [--device cuda] [--limit N] [--rrdb-images N] [--fresh]
#   --limit N        only the first N images of each suite (a quick look; the published run has no limit)
#   --rrdb-images N  images of 4ksr-syn for the RRDB-class networks on the CPU (default 2)
#   --fresh          removes leaderboard/results first (otherwise runs of an older configuration stay listed
#                    below the tables as other runs)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"
RESULTS=leaderboard/results
SUITES=4ksr-syn,4ksr-realsquare,4ksr-realvary
DEVICE=cpu
LIMIT=()
RRDB_IMAGES=2
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --limit) LIMIT=(--limit "$2"); shift 2 ;;
        --rrdb-images) RRDB_IMAGES="$2"; shift 2 ;;
        --fresh) rm -rf "$RESULTS"; shift ;;
        *) echo "usage: $0 [--device cuda] [--limit N] [--rrdb-images N] [--fresh]" >&2; exit 2 ;;
    esac
done

"$BIN/op4ksr-bench" build-dataset --suite "$SUITES"
"$BIN/op4ksr-bench" weights fetch || echo "warning: some weights could not be fetched; their metrics are skipped" >&2

status=0
run() {
    "$BIN/op4ksr-bench" run --suite "$SUITES" --results "$RESULTS" --device "$DEVICE" "$@" || status=1
}
# Every method that costs up to about 30 s per image on this project's 2-core CPU runs on every image of the three
# evaluation suites: interpolation, SPAN x4 untiled / tiled with overlap and Gaussian blending / naively tiled (no
# overlap, no blending), and the OP4KSR reference (its default cpu-skip-pf checkpoint) untiled and tiled. RRDB-class networks (Real-ESRGAN x4plus,
# RealSR DF2K x4) cost about 3 CPU minutes per 960x540 input with torch (docs/methods/README.md), so the CPU run
# gives them a budget of RRDB_IMAGES images of 4ksr-syn each (default 2: about 15 CPU minutes for both); with
# --device cuda they run on every image of every suite.
SPAN_TILED=(--opt tile=512 --opt overlap=64 --opt blend=gaussian)
SPAN_NAIVE=(--opt tile=512 --opt overlap=0 --opt blend=none)
OP4KSR_TILED=(--opt tile=2048 --opt overlap=256 --opt blend=gaussian)
if [ "$DEVICE" != cpu ]; then SLOW=(); else SLOW=(--suite 4ksr-syn --limit "$RRDB_IMAGES"); fi
run --method bicubic "${LIMIT[@]}"
run --method lanczos "${LIMIT[@]}"
run --method span-x4 "${LIMIT[@]}"
run --method span-x4 "${SPAN_TILED[@]}" "${LIMIT[@]}"
run --method span-x4 "${SPAN_NAIVE[@]}" "${LIMIT[@]}"
run --method op4ksr "${LIMIT[@]}"
run --method op4ksr "${OP4KSR_TILED[@]}" "${LIMIT[@]}"
run --method op4ksr --opt weights=cpu-skip "${LIMIT[@]}"   # the previous CPU-scale checkpoint (skip, no prefilter)
run --method realesrgan-x4plus "${SLOW[@]}"
run --method realsr-df2k-x4 "${SLOW[@]}"

"$BIN/op4ksr-bench" leaderboard --results "$RESULTS" --out leaderboard
exit $status
