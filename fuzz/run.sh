#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each).
#
#   fuzz/run.sh            # 60 s per target
#   fuzz/run.sh 600        # a long campaign: 10 min per target
#   fuzz/run.sh 5 envelope # only some targets
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# The corpus grows in fuzz/corpus/TARGET (git-ignored), starting from the
# committed seeds in fuzz/seeds/TARGET. A crash stops the script with a
# non-zero exit; the input is in fuzz/artifacts/TARGET/ — add it as a
# regression unit test beside the code it broke.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then
  TARGETS=(reference document envelope)
fi

TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
cargo "+$TOOLCHAIN" fuzz --version >/dev/null

summary=()
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target"
  log="$(mktemp "${TMPDIR:-/tmp}/envseal-fuzz-$target.XXXXXX")"
  echo "==> fuzz $target for ${SECONDS_EACH}s"
  set +e
  cargo "+$TOOLCHAIN" fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -E '^(#[0-9]+ +(INITED|DONE)|Done [0-9]+ runs|==[0-9]+==|SUMMARY|.*panicked)' "$log" || true
  if ((status != 0)); then tail -n 60 "$log"; fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  summary+=("$target: ${runs:-?} executions in ${SECONDS_EACH}s, exit $status")
  rm -f "$log"
  if ((status != 0)); then
    printf '%s\n' "${summary[@]}"
    echo "fuzz target $target failed: a build error or a finding (the log is above; a finding's input is in fuzz/artifacts/$target/)" >&2
    exit "$status"
  fi
done
echo "==> summary"
printf '%s\n' "${summary[@]}"
