#!/bin/sh
# The README's first-start screenshot, taken from the real app on a real X server (Xvfb), not Qt's offscreen
# platform: a fresh home, `squeeze-studio` as a user starts it, Ctrl+Enter typed with xdotool once the demo model
# has loaded, the screen grabbed with ImageMagick's `import -window root`.
#   apt-get install -y xvfb imagemagick xdotool libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0
#   xvfb-run -a -s "-screen 0 1280x820x24" packaging/xvfb_first_run.sh docs/screenshots/first-run.png
set -eu
OUT=$(realpath -m "${1:-docs/screenshots/first-run.png}")
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
HOME_DIR=$(mktemp -d)
trap 'kill "$APP" 2>/dev/null || true; rm -rf "$HOME_DIR"' EXIT
cd "$HOME_DIR"
env -u SQUEEZE_STUDIO_HOME -u QT_QPA_PLATFORM HOME="$HOME_DIR" XDG_DATA_HOME="$HOME_DIR/.local/share" \
    XDG_CONFIG_HOME="$HOME_DIR/.config" XDG_RUNTIME_DIR="$HOME_DIR" "$ROOT/.venv/bin/squeeze-studio" &
APP=$!
for _ in $(seq 120); do  # the window
    WIN=$(xdotool search --name "^Squeeze Studio" 2>/dev/null | head -n 1 || true)
    [ -n "$WIN" ] && break
    sleep 0.5
done
[ -n "$WIN" ] || { echo "no window" >&2; exit 1; }
sleep "${MODEL_WAIT:-25}"  # the demo model loads in the worker (torch import included)
xdotool windowfocus --sync "$WIN" key --window "$WIN" ctrl+Return
sleep "${RESULT_WAIT:-15}"
import -window root "$OUT"
echo "$OUT"
