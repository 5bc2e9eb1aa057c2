#!/bin/sh
# One command, from the repository root or anywhere:  packaging/build_linux.sh
#   -> dist/SqueezeStudio-<version>-x86_64.run   (and an AppImage too where appimagetool is on PATH)
#
# Reproducible: pinned uv and torch versions, a committed dependency lock (packaging/linux/requirements-lock.txt),
# files taken from git (tracked plus new, not ignored), tar with sorted names, zeroed owners and the last commit's
# time, gzip -n. Building twice gives the same bytes (the build prints the SHA-256).
# Needs: sh, git, tar, gzip, python3 with pip (to fetch the uv wheel once; cached in build/cache).
# packaging/build_linux.sh --relock   re-resolves the dependency lock with uv (network) before building.
set -eu
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cd "$ROOT"
UV_VERSION=0.9.5
TORCH_VERSION=2.13.0
PYSIDE_VERSION=6.11.3       # the Qt the test suite runs with (the resolver alone picks 6.9.3)
TORCHVISION_VERSION=0.28.0  # the one built with that torch (transformers' Qwen2-VL processor imports it)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
STAGE=build/linux/stage
CACHE=build/cache
OUT=dist/SqueezeStudio-$VERSION-x86_64.run
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"

rm -rf "$STAGE"
mkdir -p "$STAGE/bin" "$STAGE/app" "$CACHE" dist

# 1. uv, the one binary the launcher needs (from its PyPI wheel).
WHEEL=$(ls "$CACHE"/uv-$UV_VERSION-*manylinux*x86_64*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$WHEEL" ]; then
    python3 -m pip download --quiet "uv==$UV_VERSION" --no-deps --only-binary=:all: \
        --platform manylinux_2_17_x86_64 -d "$CACHE"
    WHEEL=$(ls "$CACHE"/uv-$UV_VERSION-*manylinux*x86_64*.whl | head -n 1)
fi
python3 - "$WHEEL" "$STAGE/bin/uv" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith(".data/scripts/uv"))
    open(sys.argv[2], "wb").write(wheel.read(name))
PY
chmod 755 "$STAGE/bin/uv"

# 2. The dependency lock (everything but torch, which the launcher picks per GPU).
if [ "${1:-}" = "--relock" ]; then
    sed -n '/^dependencies = \[/,/^\]/p' pyproject.toml | grep -o '"[^"]*"' | tr -d '"' \
        | grep -v -e '^torch' > build/linux/requirements.in  # torch and torchvision: the launcher's choice
    echo "torch==$TORCH_VERSION" >> build/linux/requirements.in
    echo "PySide6-Essentials==$PYSIDE_VERSION" >> build/linux/requirements.in
    "$STAGE/bin/uv" pip compile build/linux/requirements.in --python-version 3.11 \
        --python-platform x86_64-manylinux_2_34 --no-emit-package torch --no-header --no-annotate \
        -o build/linux/requirements-all.txt
    # torch's GPU runtime comes with the torch build the launcher picks (CUDA, ROCm or CPU), not from this lock.
    grep -v -E '^(torch|triton|nvidia-|cuda-)' build/linux/requirements-all.txt > packaging/linux/requirements-lock.txt
fi

# 3. The app: the package and the resources it reads (demo model, samples, icons), from git.
git ls-files --cached --others --exclude-standard -- squeeze_studio resources/demo-model resources/samples \
    resources/icons | grep -v -e '__pycache__' -e '\.pyc$' -e 'select_samples\.py$' | while IFS= read -r f; do
    [ -f "$f" ] || continue
    mkdir -p "$STAGE/app/$(dirname "$f")"
    cp "$f" "$STAGE/app/$f"
done
cp packaging/linux/launcher.sh "$STAGE/launcher.sh"
cp packaging/linux/requirements-lock.txt "$STAGE/requirements-lock.txt"
chmod 755 "$STAGE/launcher.sh"
printf '%s\n' "$VERSION" > "$STAGE/VERSION"
printf '%s\n' "$TORCH_VERSION" > "$STAGE/TORCH_VERSION"
printf '%s\n' "$TORCHVISION_VERSION" > "$STAGE/TORCHVISION_VERSION"

# 4. One self-extracting file: the header, then a reproducible tar.gz.
PAYLOAD=build/linux/payload.tar.gz
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z | tar --null --no-recursion -T - --mtime="@$SOURCE_DATE_EPOCH" \
    --owner=0 --group=0 --numeric-owner --mode='u+rwX,go+rX,go-w' -cf -) | gzip -n -9 > "$PAYLOAD"
SIZE=$(wc -c < "$PAYLOAD" | tr -d ' ')
SHA=$(sha256sum "$PAYLOAD" | cut -c1-12)
MB=$(du -sm "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/g" -e "s/@SHA@/$SHA/g" -e "s/@SIZE@/$SIZE/g" -e "s/@MB@/$MB/g" \
    packaging/linux/run-header.sh > "$OUT"
cat "$PAYLOAD" >> "$OUT"
chmod 755 "$OUT"
touch -d "@$SOURCE_DATE_EPOCH" "$OUT"
echo "$OUT: $(du -h "$OUT" | cut -f1) ($(wc -c < "$OUT" | tr -d ' ') bytes), unpacks to $MB MB"
sha256sum "$OUT"

# 5. Optional: the same stage as an AppImage, where appimagetool exists (not available on the build machine used
#    for packaging/README.md's figures, so untested there).
if command -v appimagetool >/dev/null 2>&1; then
    APPDIR=build/linux/SqueezeStudio.AppDir
    rm -rf "$APPDIR" && cp -a "$STAGE" "$APPDIR"
    ln -s launcher.sh "$APPDIR/AppRun"
    cp resources/icons/squeeze-studio-256.png "$APPDIR/squeeze-studio.png"
    python3 -c "import sys; sys.path.insert(0, '.'); from squeeze_studio.app.desktop import desktop_entry; \
print(desktop_entry(['launcher.sh']).replace('TryExec=launcher.sh\n', ''), end='')" > "$APPDIR/squeeze-studio.desktop"
    ARCH=x86_64 appimagetool --no-appstream "$APPDIR" "dist/SqueezeStudio-$VERSION-x86_64.AppImage"
fi
