"""The reference side of run.sh: a model through the onnxruntime Python package, one thread, on
the input the Rust runners make (the same xorshift), in the same output format.
Usage: reference.py MODELS_DIR [MODEL_PREFIX]"""

import resource
import sys
import time

import numpy as np
import onnxruntime as ort

# (model file, input shape, runs), as in src/lib.rs
CASES = [
    ("open-nsfw.onnx", (1, 224, 224, 3), 20),
    ("ppocr-det.onnx", (1, 3, 640, 960), 8),
    ("ppocr-cls.onnx", (1, 3, 48, 192), 20),
    ("ppocr-rec.onnx", (1, 3, 48, 320), 20),
]


def made_input(n, seed):
    x = ((seed * 2654435761) & 0xFFFFFFFF) | 1
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = (x % 2000) / 1000.0 - 1.0
    return out


def main(folder, only=None):
    for name, shape, runs in CASES:
        if only and not name.startswith(only):
            continue
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        started = time.perf_counter()
        session = ort.InferenceSession(f"{folder}/{name}", options, providers=["CPUExecutionProvider"])
        load = (time.perf_counter() - started) * 1000
        x = made_input(int(np.prod(shape)), 7).reshape(shape)
        feed = {session.get_inputs()[0].name: x}
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            out = session.run(None, feed)[0]
            times.append((time.perf_counter() - started) * 1000)
        checksum = float(out.reshape(-1)[:4096].astype(np.float64).sum())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        median = sorted(times)[len(times) // 2]
        print(f"python-ort {name} load_ms {load:.0f} median_ms {median:.2f} checksum {checksum:.6f} peak_rss_mib {peak}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "models", sys.argv[2] if len(sys.argv) > 2 else None)
