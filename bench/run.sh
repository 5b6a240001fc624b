#!/bin/sh
# envseal's startup benchmark: moto behind a delay proxy, envseal against a
# boto3 script and an aws CLI loop on the same workloads. See
# docs/performance.md (which also says why it shares the tests' proxy).
#
#   bench/run.sh [--rtt MS] [--runs N] [--warmup N] [--shell-runs N]
#                [--only none,ssm30,path30,path100,s3kms,mixed]
#                [--no-build] [--envseal PATH]
#                [--no-boto3] [--no-shell] [--no-aws-paging] [--env NAME=VALUE]...
#
# The release binary is the static one on Linux gnu (.cargo/config.toml).
# Results are printed and written to bench/results.md.
set -eu
cd "$(dirname "$0")/.."

build=1 envseal=""
pass=""
while [ $# -gt 0 ]; do
    case "$1" in
    --no-build) build=0 ;;
    --envseal) envseal=$2; build=0; shift ;;
    --rtt|--runs|--warmup|--shell-runs|--only|--results|--env) pass="$pass $1 $2"; shift ;;
    --no-boto3|--no-shell|--no-aws-paging) pass="$pass $1" ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

target_dir=${CARGO_TARGET_DIR:-target}
if [ "$build" = 1 ]; then
    cargo build --release 2>&1 | tail -n 3 >&2
fi
envseal=${envseal:-$target_dir/release/envseal}

python3 -c 'import boto3, moto' 2>/dev/null || {
    echo "bench/run.sh: needs python3 with boto3 and moto[server]: run docker/demo.sh or scripts/test once (they install them into .venv/), then PATH=.venv/bin:\$PATH bench/run.sh" >&2
    exit 2
}
# shellcheck disable=SC2086
exec python3 bench/bench.py --envseal "$envseal" $pass
