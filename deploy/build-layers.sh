#!/usr/bin/env bash
# The Dockerfile's steps without docker: install the runtime with the serve extra into a fresh
# venv (as the image's pip layer does), then start `rtser serve` from it on loopback and check
# that it answers /healthz and /readyz, and stops cleanly on SIGTERM.
#   bash deploy/build-layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-cache-dir ".[serve]"
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$work/venv/bin/rtser" serve --host 127.0.0.1 --port "$port" --lang en 2>"$work/serve.log" &
pid=$!
for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$port/healthz" && curl -fs "http://127.0.0.1:$port/readyz"
if "$work/venv/bin/python" -c "import torch" 2>/dev/null; then echo "torch in the image" >&2; exit 1; fi
kill -TERM "$pid" && wait "$pid"
echo "image layers: ok (rtser serve from a clean venv, no torch, clean stop)"
