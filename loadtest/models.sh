#!/usr/bin/env bash
# The media models' speed per core (BENCHMARKS.md, "Media models"): a one-megapixel photo with
# three lines of text (scikit-image's coffee photo, scaled, text drawn with Noto Sans CJK, JPEG
# quality 90) through modgate (examples/model_bench.rs) and through the packages' own Python
# pipelines on onnxruntime (loadtest/model_reference_bench.py), the classifier alone and the full
# analysis, in ROUNDS alternating rounds of RUNS images each, every process pinned to CPU 0 with
# one inference thread. Prints one row per process: images per second, ms per image, peak RSS.
# Usage: loadtest/models.sh [ROUNDS] [RUNS]      e.g. loadtest/models.sh 3 20
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
RUNS=${2:-20}
scripts/fetch-models >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/compat/requirements.txt
cargo build --release --quiet --example model_bench
IMAGE=target/bench-photo-text.jpg
.venv/bin/python - "$IMAGE" <<'EOF'
import io, random, sys
from pathlib import Path
sys.path.insert(0, "tests/compat")
import images
from PIL import Image, ImageDraw
photo = Image.open([p for p in images.skimage_images(Path("target/test-images")) if p.name == "coffee.png"][0]).convert("RGB")
photo = photo.resize((1155, 866))
draw = ImageDraw.Draw(photo)
for i, line in enumerate(["加我微信 abc123456 领取优惠", "周末特价 全场八折", "Tel 021-6688 1234"]):
    draw.text((60, 80 + i * 90), line, font=images.font(48), fill="white", stroke_width=3, stroke_fill="black")
photo.save(sys.argv[1], quality=90)
print(f"{sys.argv[1]}: {photo.width}x{photo.height}", file=sys.stderr)
EOF
echo "| round | mode | pipeline | images/s | ms/image | peak RSS MiB |"
echo "| --- | --- | --- | ---: | ---: | ---: |"
row() { # ROUND MODE LINE
    local ips ms rss who
    who=$(echo "$3" | awk '{print $1}')
    ips=$(echo "$3" | sed -E 's/.*images_per_sec=([0-9.]+).*/\1/')
    ms=$(echo "$3" | sed -E 's/.*ms_per_image=([0-9.]+).*/\1/')
    rss=$(echo "$3" | sed -E 's/.*peak_rss_mib=([0-9]+).*/\1/')
    echo "| $1 | $2 | $who | $ips | $ms | $rss |"
}
for r in $(seq "$ROUNDS"); do
    for mode in nsfw full; do
        ours=$(OMP_NUM_THREADS=1 taskset -c 0 target/release/examples/model_bench --image "$IMAGE" --mode "$mode" --runs "$RUNS")
        row "$r" "$mode" "$ours"
        ref=$(OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python loadtest/model_reference_bench.py --image "$IMAGE" --mode "$mode" --runs "$RUNS")
        row "$r" "$mode" "$ref"
        if [ "$r" = 1 ]; then
            echo "$ours" | sed -E 's/.*answer=/  modgate answer: /' >&2
            echo "$ref" | sed -E 's/.*answer=/  reference answer: /' >&2
        fi
    done
done
