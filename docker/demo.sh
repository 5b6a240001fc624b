#!/usr/bin/env bash
# envseal demo against a local AWS emulator (moto), no AWS account needed.
#
#   docker/demo.sh                    # builds envseal with cargo --release
#   ENVSEAL_BIN=/path/envseal docker/demo.sh
#
# Needs python3 (with its venv module) and cargo; installs the emulator into .venv/.
# The demo prints variable NAMES and value LENGTHS only, never values.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AWS_PY="$ROOT/tests/support/py/aws.py"

step() { printf '\n==> %s\n' "$*"; }

# --------------------------------------------------------------- 1. envseal
if [[ -n "${ENVSEAL_BIN:-}" ]]; then
  step "Using envseal from ENVSEAL_BIN=$ENVSEAL_BIN"
  BIN="$ENVSEAL_BIN"
else
  step "Building envseal (cargo build --release)"
  (cd "$ROOT" && cargo build --release)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/envseal"
fi
[[ -x "$BIN" ]] || { echo "envseal binary not found at $BIN" >&2; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

# ------------------------------------------------------------------ 2. moto
# moto_server and boto3 (pinned in tests/support/py/requirements.txt) go into .venv/;
# the test command (scripts/test) reuses them.
. "$ROOT/scripts/tools.sh"
ensure_python_tools

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ENDPOINT="http://127.0.0.1:$PORT"
MOTO_LOG="$(mktemp "${TMPDIR:-/tmp}/envseal-demo-moto.XXXXXX")"
MOTO_PID=""
cleanup() {
  if [[ -n "$MOTO_PID" ]]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  rm -f "$MOTO_LOG"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Starting moto_server on $ENDPOINT"
moto_server -H 127.0.0.1 -p "$PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
for _ in $(seq 200); do
  if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)' "$ENDPOINT" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$MOTO_PID" 2>/dev/null; then
    echo "moto_server exited:" >&2; cat "$MOTO_LOG" >&2; exit 1
  fi
  sleep 0.1
done
python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)' "$ENDPOINT" \
  || { echo "moto_server did not answer on $ENDPOINT" >&2; cat "$MOTO_LOG" >&2; exit 1; }

# ------------------------------------------------------------------ 3. seed
step "Seeding example secrets"
python3 "$AWS_PY" "$ENDPOINT" >/dev/null <<'JSON'
[
  {"service": "ssm", "method": "put_parameter", "args": {"Name": "/test/ruan/mysql/db01/mysql_hostname", "Value": "db01.mysql.internal", "Type": "String"}},
  {"service": "ssm", "method": "put_parameter", "args": {"Name": "/test/ruan/mysql/db01/mysql_username", "Value": "ruan", "Type": "SecureString"}},
  {"service": "ssm", "method": "put_parameter", "args": {"Name": "/test/ruan/mysql/db01/mysql_password", "Value": "correct-horse-battery-staple", "Type": "SecureString"}},
  {"service": "ssm", "method": "put_parameter", "args": {"Name": "/demo/app/db_password", "Value": "s3cr3t-demo-pw", "Type": "SecureString"}},
  {"service": "ssm", "method": "put_parameter", "args": {"Name": "/demo/app/log_level", "Value": "info", "Type": "String"}},
  {"service": "ssm", "method": "put_parameter", "args": {"Name": "/demo/app/feature/new_ui", "Value": "true", "Type": "String"}},
  {"service": "secretsmanager", "method": "create_secret", "args": {"Name": "demo/api", "SecretString": "{\"TOKEN\": \"tok-0123456789abcdef\", \"USER\": \"demo-bot\"}"}}
]
JSON
cat <<'EOF'
    SSM  /test/ruan/mysql/db01/mysql_hostname   String
    SSM  /test/ruan/mysql/db01/mysql_username   SecureString
    SSM  /test/ruan/mysql/db01/mysql_password   SecureString
    SSM  /demo/app/db_password                  SecureString
    SSM  /demo/app/log_level                    String
    SSM  /demo/app/feature/new_ui               String
    SM   demo/api                               {"TOKEN": ..., "USER": ...}
EOF

# ------------------------------------------------------------------- 4. run
# The "application": lists the variables it received, NAMES and LENGTHS only.
# shellcheck disable=SC2016 # expanded by the child shell, not here
SHOW='for n in $(env | sed -n "s/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p" | sort -u); do
  case $n in PATH|PWD|SHLVL|_|AWS_*) continue ;; esac
  v=$(printenv "$n"); printf "    %-16s %3d chars\n" "$n" "${#v}"
done'

# Only what envseal needs: no inherited environment at all.
RUN=(env -i "PATH=/usr/bin:/bin"
  "AWS_ENDPOINT_URL=$ENDPOINT" "AWS_REGION=us-east-1"
  "AWS_ACCESS_KEY_ID=testing" "AWS_SECRET_ACCESS_KEY=testing"
  "AWS_EC2_METADATA_DISABLED=true")

step "envseal exec --from ssm:/test/ruan/mysql/db01/  (+ DB_PASSWORD=ssm:/demo/app/db_password)"
echo "    \$ env -i PATH=... AWS_*=... DB_PASSWORD=ssm:/demo/app/db_password \\"
echo "        envseal exec --from ssm:/test/ruan/mysql/db01/ -- sh -c '<print names and lengths>'"
"${RUN[@]}" "DB_PASSWORD=ssm:/demo/app/db_password" \
  "$BIN" exec --from ssm:/test/ruan/mysql/db01/ -- sh -c "$SHOW"

step "envseal exec --from sm:demo/api  (+ API_TOKEN=sm:demo/api#TOKEN)"
echo "    \$ env -i PATH=... AWS_*=... API_TOKEN='sm:demo/api#TOKEN' \\"
echo "        envseal exec --from sm:demo/api -- sh -c '<print names and lengths>'"
"${RUN[@]}" "API_TOKEN=sm:demo/api#TOKEN" \
  "$BIN" exec --from sm:demo/api -- sh -c "$SHOW"

step "A template, an in-memory file (?file) and a variable passed through (--ignore)"
echo "    \$ env -i PATH=... AWS_*=... \\"
echo "        DATABASE_URL='mysql://{{ ssm:/test/ruan/mysql/db01/mysql_username }}:{{ ssm:/test/ruan/mysql/db01/mysql_password }}@db01/app' \\"
echo "        API_TOKEN_FILE='sm:demo/api#TOKEN?file' MODEL_URI=s3://models/v3 \\"
echo "        envseal exec --ignore MODEL_URI -- sh -c '<print names and lengths; read the file>'"
# shellcheck disable=SC2016 # expanded by the child shell, not here
"${RUN[@]}" 'DATABASE_URL=mysql://{{ ssm:/test/ruan/mysql/db01/mysql_username }}:{{ ssm:/test/ruan/mysql/db01/mysql_password }}@db01/app' \
  'API_TOKEN_FILE=sm:demo/api#TOKEN?file' MODEL_URI=s3://models/v3 \
  "$BIN" exec --ignore MODEL_URI -- sh -c "$SHOW"'
  printf "    API_TOKEN_FILE is %s, a file in memory holding %d bytes\n" "$API_TOKEN_FILE" "$(wc -c < "$API_TOKEN_FILE")"
  printf "    MODEL_URI passed through as it was: %s\n" "$MODEL_URI"'

step "envseal push: a dotenv document, encrypted client-side under a KMS key, into S3"
python3 "$AWS_PY" "$ENDPOINT" >/dev/null <<'JSON'
[
  {"service": "s3", "method": "create_bucket", "args": {"Bucket": "demo-config"}},
  {"service": "kms", "method": "create_key", "args": {"Description": "envseal demo"}}
]
JSON
KEY_ID="$(python3 "$AWS_PY" "$ENDPOINT" <<<'{"service": "kms", "method": "list_keys", "args": {}}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["Keys"][0]["KeyId"])')"
python3 "$AWS_PY" "$ENDPOINT" >/dev/null <<JSON
{"service": "kms", "method": "create_alias", "args": {"AliasName": "alias/demo-config", "TargetKeyId": "$KEY_ID"}}
JSON
echo "    \$ envseal push s3://demo-config/app/prod.env --kms-key alias/demo-config < prod.env"
printf '%s\n' 'export SMTP_USER=mailer' "SMTP_PASSWORD='p@ss w0rd'" 'TLS_KEY="-----BEGIN KEY-----\nMIIB...\n-----END KEY-----"' \
  | "${RUN[@]}" "$BIN" push s3://demo-config/app/prod.env --kms-key alias/demo-config

step "envseal check: every reference resolves? (lengths and fingerprints, never values)"
echo "    \$ envseal check --from s3://demo-config/app/prod.env"
"${RUN[@]}" DB_PASSWORD=ssm:/demo/app/db_password "$BIN" check --from s3://demo-config/app/prod.env

step "envseal exec --from s3://demo-config/app/prod.env"
"${RUN[@]}" "$BIN" exec --from s3://demo-config/app/prod.env -- sh -c "$SHOW"

step "Fail closed: a missing parameter means the application does not start"
echo "    \$ MISSING=ssm:/demo/app/not_there envseal exec -- sh -c 'echo started'"
set +e
"${RUN[@]}" MISSING=ssm:/demo/app/not_there "$BIN" exec -- sh -c 'echo "    the application started (it should not have)"'
code=$?
set -e
echo "    exit code $code (111: not started)"
[[ $code == 111 ]] || { echo "expected exit code 111" >&2; exit 1; }

step "Done (moto_server stops now)"
