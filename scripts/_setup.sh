# Shared by scripts/demo and scripts/check: system packages, then the virtualenv.
# Sourced, not run. Works as root on a fresh Debian 12 (Python 3.11) and is a
# quick no-op when everything is already there.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# apt_ensure PKG...: install the Debian packages that are missing.
apt_ensure() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing system packages: ${missing[*]} (run as root, or install them first)"
        exit 1
    fi
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The packages every install needs: a venv-capable Python and what pyscard
# builds with (it has no Linux wheels).
base_packages() {
    local pkgs=(gcc swig libpcsclite-dev pkg-config)
    "$PYTHON" -c 'import ensurepip' 2>/dev/null || pkgs+=(python3-venv)
    "$PYTHON" - <<'PY' 2>/dev/null || pkgs+=(python3-dev)
import os, sysconfig, sys
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)
PY
    apt_ensure "${pkgs[@]}"
}

# venv_install EXTRA: create .venv if needed and install the project (editable).
venv_install() {
    local spec="$ROOT"
    [ -n "${1:-}" ] && spec="$ROOT[$1]"
    "$PYTHON" - <<'PY' || { say "Python 3.11 or newer is needed"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    say "installing sscard-branchd${1:+ with [$1]}"
    "$VENV/bin/python" -m pip install -q -e "$spec" 2>&1 \
        | grep -v -e '^WARNING: Location' -e 'is ignored: it is neither' >&2 || true
    "$VENV/bin/python" -c 'import gateway, smartcard' \
        || { say "installation failed"; exit 1; }
}
