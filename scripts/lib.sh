# Shared helpers for the scripts in this directory. Source it, don't run it:
#   source "$(dirname "$0")/lib.sh"
# It defines the paths and functions below and does not change the working directory.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EMULATOR_DIR=$REPO_ROOT/tests/emulator
EMULATOR_VENV=$EMULATOR_DIR/.venv
EMULATOR_REQUIREMENTS=$EMULATOR_DIR/requirements.txt
# Written into the venv after a successful install: the sha256 of requirements.txt.
EMULATOR_STAMP=$EMULATOR_VENV/.requirements.sha256
# The pinned packages need Python >= 3.11 (networkx, pydantic-settings, regex, ...).
EMULATOR_MIN_PYTHON=3.11
# The interpreter that creates the venv; override with DEPLOYER_PYTHON=python3.12 etc.
EMULATOR_PYTHON=${DEPLOYER_PYTHON:-python3}

_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

_venv_unavailable() {
  cat >&2 <<MSG
error: '$EMULATOR_PYTHON -m venv' failed, so the emulator virtualenv cannot be created.
  On Debian/Ubuntu the venv module (with ensurepip) is a separate package:
      sudo apt-get install python3-venv
  then run this command again.
MSG
}

_create_venv() {
  local log
  log=$(mktemp)
  if "$EMULATOR_PYTHON" -m venv "$EMULATOR_VENV" >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  rm -rf "$EMULATOR_VENV"
  if grep -qi 'ensurepip' "$log" && [[ ${CI:-} == true && $(id -u) == 0 ]] \
    && command -v apt-get >/dev/null 2>&1; then
    echo "emulator: ensurepip is missing; installing python3-venv (CI, running as root)" >&2
    rm -f "$log"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    "$EMULATOR_PYTHON" -m venv "$EMULATOR_VENV" && return 0
    rm -rf "$EMULATOR_VENV"
    _venv_unavailable
    return 1
  fi
  cat "$log" >&2
  rm -f "$log"
  _venv_unavailable
  return 1
}

# ensure_emulator_venv: make tests/emulator/.venv hold exactly what
# tests/emulator/requirements.txt pins (moto[server] and its dependencies).
# Silent when the venv is already up to date; (re)installs when it is missing,
# broken, or requirements.txt changed since the last install.
ensure_emulator_venv() {
  local want
  want=$(_sha256 "$EMULATOR_REQUIREMENTS")
  if [[ -x $EMULATOR_VENV/bin/python && -x $EMULATOR_VENV/bin/moto_server && -f $EMULATOR_STAMP ]] \
    && [[ $(<"$EMULATOR_STAMP") == "$want" ]] \
    && "$EMULATOR_VENV/bin/python" -c '' >/dev/null 2>&1; then
    return 0
  fi

  if ! command -v "$EMULATOR_PYTHON" >/dev/null 2>&1; then
    echo "error: $EMULATOR_PYTHON not found; the AWS emulator (moto) needs Python >= $EMULATOR_MIN_PYTHON with pip and venv" >&2
    return 1
  fi
  if ! "$EMULATOR_PYTHON" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$EMULATOR_MIN_PYTHON'.split('.'))))"; then
    echo "error: $("$EMULATOR_PYTHON" --version 2>&1) is too old for the pinned emulator packages; need Python >= $EMULATOR_MIN_PYTHON (set DEPLOYER_PYTHON to another interpreter)" >&2
    return 1
  fi

  echo "emulator: installing $EMULATOR_REQUIREMENTS into $EMULATOR_VENV" >&2
  # A venv whose interpreter vanished (e.g. a removed pyenv version) is rebuilt from scratch.
  if [[ -d $EMULATOR_VENV ]] && ! "$EMULATOR_VENV/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$EMULATOR_VENV"
  fi
  if [[ ! -x $EMULATOR_VENV/bin/python ]]; then
    _create_venv || return 1
  fi
  rm -f "$EMULATOR_STAMP"
  "$EMULATOR_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$EMULATOR_REQUIREMENTS" || {
    echo "error: pip could not install $EMULATOR_REQUIREMENTS" >&2
    return 1
  }
  echo "$want" >"$EMULATOR_STAMP"
  echo "emulator: ready ($("$EMULATOR_VENV/bin/python" -m pip show moto 2>/dev/null | sed -n 's/^Version: /moto /p'))" >&2
}

# emulator_answers URL: true when a moto server answers GET URL/moto-api/.
emulator_answers() {
  "$EMULATOR_VENV/bin/python" - "$1/moto-api/" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)
PY
}
