#!/usr/bin/env bash
# The inference-runtime comparison of DESIGN.md: each model alone in a process (so peak memory is
# its own), pinned to CPU 0, one thread, the median of 8-20 runs on a fixed input.
# Needs the models and the ONNX Runtime library (scripts/fetch-models), and for the reference the
# onnxruntime package from PyPI, pinned, in a virtualenv under target/.
# Usage: loadtest/onnx-runtimes/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/fetch-models >/dev/null
VENV=target/onnx-runtimes-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check onnxruntime==1.32.0 numpy==2.4.6
ORT_LIB=$PWD/models/libonnxruntime.so.1.32.0
CARGO_TARGET_DIR=target/onnx-runtimes cargo build --release --quiet \
    --manifest-path loadtest/onnx-runtimes/Cargo.toml
for m in open-nsfw ppocr-det ppocr-cls ppocr-rec; do
    taskset -c 0 target/onnx-runtimes/release/tract_run models "$m"
    ORT_DYLIB_PATH=$ORT_LIB taskset -c 0 target/onnx-runtimes/release/ort_run models "$m"
    taskset -c 0 "$VENV/bin/python" loadtest/onnx-runtimes/reference.py models "$m"
done
