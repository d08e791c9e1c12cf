#!/usr/bin/env bash
# Run every fuzz target in fuzz_targets/ for N seconds each (default 600), one after another.
# Stops with a non-zero exit at the first crash; the crashing input is in artifacts/<target>/.
#
#   fuzz/run-all.sh            # 600 s per target
#   fuzz/run-all.sh 60         # 60 s per target
#   SANITIZER=address fuzz/run-all.sh 60   # untested; see README.md ("Why -s none")
#   FUZZ_ARGS="-jobs=1 -rss_limit_mb=4096" fuzz/run-all.sh
#
# New inputs go to corpus/<target>/ (git-ignored); seeds/<target>/ (in the repository) is read too,
# and dicts/<target>.dict is passed as a libFuzzer dictionary when there is one.
set -euo pipefail

secs="${1:-600}"
# No sanitizer by default: the code under test is safe Rust (ASan adds nothing there), and with
# ASan the C dependencies (zstd-sys) get instrumented and librdkafka's configure cannot link
# against them. See README.md.
sanitizer="${SANITIZER:-none}"
cd "$(dirname "$0")"

targets=()
for f in fuzz_targets/*.rs; do
    targets+=("$(basename "$f" .rs)")
done
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets in fuzz_targets/" >&2; exit 2; }

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    dirs=("corpus/$t")
    [ -d "seeds/$t" ] && dirs+=("seeds/$t")
    dict=()
    [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
    echo "=== $t: ${secs}s (sanitizer $sanitizer) ==="
    # shellcheck disable=SC2086
    if ! cargo +nightly fuzz run --sanitizer "$sanitizer" "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" "${dict[@]}" ${FUZZ_ARGS:-}; then
        echo "=== $t: CRASH (or fuzzer error); see fuzz/artifacts/$t/ ===" >&2
        exit 1
    fi
done
echo "=== all ${#targets[@]} targets ran ${secs}s each without a crash ==="
