#!/bin/sh
# run-fuzz.sh TARGET CORPUS SECONDS DICT [SEED_DIR...]
#
# Runs one libFuzzer target for SECONDS (KEYPOOL_FUZZ_SECONDS overrides it),
# starting from the inputs it found before (CORPUS, in the build directory)
# and the seeds. A crash, a leak, a timeout or running out of memory fails
# the test, and the input is saved beside CORPUS as crash-*, leak-*, …
#
# Copyright 2026 The Keypool authors
# SPDX-License-Identifier: GPL-3.0-or-later

set -eu

target=$1
corpus=$2
seconds=${KEYPOOL_FUZZ_SECONDS:-$3}
dict=$4
shift 4

mkdir -p "$corpus"
# libFuzzer's own exit code for a crash is 77, which meson reads as a skip.
exec "$target" \
  -max_total_time="$seconds" \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -error_exitcode=1 \
  -timeout_exitcode=1 \
  -print_final_stats=1 \
  -dict="$dict" \
  -artifact_prefix="$corpus-" \
  "$corpus" "$@"
