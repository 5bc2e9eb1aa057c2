#!/bin/sh
# Squeeze Studio launcher: the thin part of the Linux build (see packaging/README.md).
#
# First start: makes a managed Python environment in $XDG_DATA_HOME/squeeze-studio/runtime/<version>-<flavour>
# with uv (bundled), the pinned dependencies (requirements-lock.txt) and the torch build for this machine
# (an NVIDIA GPU: CUDA; ROCm: ROCm; otherwise the small CPU build), runs the self-test, adds the menu entry, and
# opens the window. Later starts open the window at once. Progress goes to the terminal, or to a zenity/kdialog
# progress window when started by a double-click, and always to install.log.
#
#   launcher.sh [FILES...]        open the app (files become references)
#   launcher.sh --repair          remove the managed environment and make it again
#   launcher.sh --self-test       check the install (no window)
#   SQUEEZE_TORCH=cpu|cu128|rocm6.4|pypi   choose the torch build (pypi: PyPI's default); SQUEEZE_WHEELS=DIR  use local wheels as well;
#   SQUEEZE_TORCH_INDEX=URL           another torch index (a mirror)
set -eu

HERE=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
VERSION=$(cat "$HERE/VERSION")
TORCH_VERSION=$(cat "$HERE/TORCH_VERSION")
TORCHVISION_VERSION=$(cat "$HERE/TORCHVISION_VERSION")
DATA="${XDG_DATA_HOME:-$HOME/.local/share}/squeeze-studio"
UV="$HERE/bin/uv"
export UV_CACHE_DIR="${UV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/squeeze-studio/uv}"
export SQUEEZE_STUDIO_LAUNCHER="${SQUEEZE_STUDIO_LAUNCHER:-$HERE/launcher.sh}"

flavour() {
    if [ -n "${SQUEEZE_TORCH:-}" ]; then echo "$SQUEEZE_TORCH"; return; fi
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then echo cu128; return; fi
    if [ -e /dev/kfd ] && { command -v rocminfo >/dev/null 2>&1 || [ -d /opt/rocm ]; }; then echo rocm6.4; return; fi
    echo cpu
}

FLAVOUR=$(flavour)
ENV_DIR="$DATA/runtime/$VERSION-$FLAVOUR"
LOG="$DATA/runtime/install.log"
PY="$ENV_DIR/bin/python"

say() { printf '%s\n' "$*"; printf '%s\n' "$*" >>"$LOG"; }

install_env() {
    rm -rf "$ENV_DIR.partial"
    say "Squeeze Studio $VERSION: making its Python environment ($FLAVOUR torch $TORCH_VERSION) in $ENV_DIR"
    # A system Python 3.11-3.13 if there is one, else uv downloads a managed one.
    "$UV" venv --quiet --python ">=3.11,<3.14" "$ENV_DIR.partial" >>"$LOG" 2>&1 || return 1
    set -- --python "$ENV_DIR.partial/bin/python"
    if [ -n "${SQUEEZE_WHEELS:-}" ]; then set -- "$@" --find-links "$SQUEEZE_WHEELS"; fi
    if [ "$FLAVOUR" = pypi ]; then  # PyPI's own build (CUDA on Linux x86_64; runs on a CPU too)
        say "downloading torch from PyPI (about 3 GB with its CUDA libraries)"
        "$UV" pip install "$@" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" >>"$LOG" 2>&1 || return 1
    else
        say "downloading torch ($FLAVOUR; the CUDA build is about 3 GB, the CPU build 0.2 GB)"
        "$UV" pip install "$@" --index-url "${SQUEEZE_TORCH_INDEX:-https://download.pytorch.org/whl/$FLAVOUR}" \
            --extra-index-url https://pypi.org/simple --index-strategy unsafe-best-match \
            "torch==$TORCH_VERSION+$FLAVOUR" "torchvision==$TORCHVISION_VERSION+$FLAVOUR" >>"$LOG" 2>&1 || return 1
    fi
    say "installing the other dependencies"
    "$UV" pip install "$@" -r "$HERE/requirements-lock.txt" >>"$LOG" 2>&1 || return 1
    mv "$ENV_DIR.partial" "$ENV_DIR" || return 1
    say "checking: squeeze-studio --self-test"
    if run_app --self-test >>"$LOG" 2>&1; then say "$(tail -n 1 "$LOG")"; else say "self-test failed (see $LOG)"; fi
    run_app --install-desktop-entry >>"$LOG" 2>&1 || true
    say "ready"
}

run_app() {
    PYTHONPATH="$HERE/app${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m squeeze_studio.app.main "$@"
}

with_progress() {
    # A terminal shows the lines as they come; a double-click gets a progress window where a dialog tool exists.
    if [ -t 1 ]; then "$@"; return; fi
    if command -v zenity >/dev/null 2>&1; then
        "$@" | sed -u 's/^/# /' | zenity --progress --pulsate --auto-close --no-cancel \
            --title="Squeeze Studio: first start" --text="Preparing…" 2>/dev/null; return
    fi
    if command -v notify-send >/dev/null 2>&1; then
        notify-send "Squeeze Studio" "First start: installing (a few minutes). Log: $LOG" 2>/dev/null || true
    fi
    "$@"
}

mkdir -p "$DATA/runtime"
case "${1:-}" in
    --repair) shift; say "repair: removing $ENV_DIR"; rm -rf "$ENV_DIR" "$ENV_DIR.partial" ;;
esac
if [ ! -x "$PY" ] || ! "$PY" -c "import torch, PySide6" >/dev/null 2>&1; then
    : >"$LOG"
    if ! with_progress install_env || [ ! -x "$PY" ]; then
        msg="Squeeze Studio could not prepare its environment. Details: $LOG. Try again with --repair."
        echo "$msg" >&2
        command -v zenity >/dev/null 2>&1 && zenity --error --text="$msg" 2>/dev/null || true
        exit 1
    fi
fi
run_app "$@"
