# Sourced by scripts/test and docker/demo.sh: makes sure the tools the tests and
# the demo use are here, installing what is missing.
#
# - Python packages pinned in tests/support/py/requirements.txt (moto_server, boto3, AWS's
#   Python S3 Encryption Client) go into a project-local virtual environment,
#   .venv/, created on first use and refreshed when the requirements change;
#   its bin/ is put first on PATH. ENVSEAL_PYTHON picks the interpreter
#   (default python3).
# - strace (tests/leaks.rs, tests/process.rs) from the system's package manager
#   when it can be installed without a password; otherwise a notice naming the
#   package, and the tests that need it fail with the same hint.

_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_venv="$_root/.venv"
_req="$_root/tests/support/py/requirements.txt"

_step() { printf '\n==> %s\n' "$*" >&2; }

ensure_python_tools() {
  local python="${ENVSEAL_PYTHON:-python3}" stamp want
  command -v "$python" >/dev/null 2>&1 || {
    echo "error: $python not found; the tests and the demo need Python 3.9+ (apt-get install python3 python3-venv)" >&2
    return 1
  }
  stamp="$_venv/.requirements"
  want="$(cat "$_req")"
  if [ ! -x "$_venv/bin/python3" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    _step "Installing the test tools into .venv/ (pip install -r tests/support/py/requirements.txt)"
    "$python" -m venv "$_venv" || {
      echo "error: cannot create a virtual environment; install the venv module (Debian: apt-get install python3-venv)" >&2
      return 1
    }
    "$_venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$_req" || {
      echo "error: pip install -r tests/support/py/requirements.txt failed (see above)" >&2
      return 1
    }
    printf '%s' "$want" >"$stamp"
  fi
  PATH="$_venv/bin:$PATH"
  export PATH
  hash -r
}

ensure_strace() {
  command -v strace >/dev/null 2>&1 && return 0
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(none); fi
  fi
  if [ "${sudo[0]:-}" != none ] && command -v apt-get >/dev/null 2>&1; then
    _step "Installing strace (apt-get install strace)"
    ${sudo[@]+"${sudo[@]}"} apt-get update -qq >/dev/null \
      && ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null
  fi
  command -v strace >/dev/null 2>&1 || echo "notice: strace is not installed and could not be installed here (package 'strace'); tests/leaks.rs and tests/process.rs will fail until it is" >&2
}
