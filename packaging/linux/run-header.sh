#!/bin/sh
# Squeeze Studio @VERSION@ for Linux x86_64 (thin launcher; see packaging/README.md in the source).
# Run it (or double-click it): the first start unpacks ~@MB@ MB to ~/.local/share/squeeze-studio/app, makes a
# Python environment with the torch build for this machine, checks it and adds a menu entry. --repair remakes it.
set -eu
DATA="${XDG_DATA_HOME:-$HOME/.local/share}/squeeze-studio"
DEST="$DATA/app/@VERSION@-@SHA@"
if [ ! -f "$DEST/.complete" ]; then
    rm -rf "$DEST.partial"
    mkdir -p "$DEST.partial"
    tail -c @SIZE@ "$0" | tar -xzf - -C "$DEST.partial"
    touch "$DEST.partial/.complete"
    rm -rf "$DEST"
    mv "$DEST.partial" "$DEST"
fi
exec "$DEST/launcher.sh" "$@"
