"""Images for the media model tests: photographs and drawings that registries ship, and text
drawn over photos, gradients and noise.

- scikit-image's sample images, from its pinned wheel on PyPI (checked by SHA-256; only the
  files under skimage/data/ are used, nothing is installed);
- GNOME's wallpapers (Debian's gnome-backgrounds) and Adwaita's large icons (Debian's
  adwaita-icon-theme), which scripts/test installs;
- text images drawn with Noto Sans CJK SC (Debian's fonts-noto-cjk).
"""

import hashlib
import io
import random
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

SKIMAGE_WHEEL = "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
SKIMAGE_SHA256 = "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"
WALLPAPERS = Path("/usr/share/backgrounds/gnome")
ICONS = Path("/usr/share/icons/Adwaita")
FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def skimage_images(cache: Path) -> list[Path]:
    """scikit-image's bundled sample images (photographs, scans, drawings), extracted once."""
    out = cache / "skimage"
    if not (out / ".done").exists():
        cache.mkdir(parents=True, exist_ok=True)
        wheel = cache / SKIMAGE_WHEEL
        if not wheel.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--python-version", "3.11",
                 "--platform", "manylinux_2_28_x86_64", "scikit-image==0.26.0", "-d", str(cache)],
                check=True,
            )
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert digest == SKIMAGE_SHA256, f"{wheel.name}: sha256 {digest}"
        out.mkdir(exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith("skimage/data/") and name.rsplit(".", 1)[-1] in ("png", "jpg", "gif"):
                    (out / Path(name).name).write_bytes(z.read(name))
        (out / ".done").touch()
    return sorted(p for p in out.iterdir() if p.suffix in (".png", ".jpg", ".gif"))


def wallpapers(cache: Path, side: int = 1024) -> list[Path]:
    """GNOME's raster wallpapers, scaled to at most `side` pixels and saved as JPEG."""
    out = cache / "wallpapers"
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for src in sorted(WALLPAPERS.glob("*.webp")) + sorted(WALLPAPERS.glob("*.jpg")):
        dst = out / (src.stem + ".jpg")
        if not dst.exists():
            img = Image.open(src).convert("RGB")
            img.thumbnail((side, side))
            img.save(dst, quality=90)
        files.append(dst)
    return files


def icons() -> list[Path]:
    """Adwaita's 256 and 512 pixel icons (drawings with transparency)."""
    return sorted(ICONS.glob("256x256/*/*.png")) + sorted(ICONS.glob("512x512/*/*.png"))


def font(size: int) -> ImageFont.FreeTypeFont:
    """Noto Sans CJK at `size` px, the face with simplified Chinese glyph forms."""
    for index in range(10):
        f = ImageFont.truetype(str(FONT), size, index=index)
        if f.getname()[0].endswith(" SC"):
            return f
    return ImageFont.truetype(str(FONT), size)


def background(kind: str, size: tuple[int, int], rng: random.Random, photos: list[Path]) -> Image.Image:
    w, h = size
    if kind == "photo":
        photo = Image.open(rng.choice(photos)).convert("RGB")
        scale = max(w / photo.width, h / photo.height)
        photo = photo.resize((max(w, int(photo.width * scale) + 1), max(h, int(photo.height * scale) + 1)))
        x, y = rng.randrange(photo.width - w + 1), rng.randrange(photo.height - h + 1)
        return photo.crop((x, y, x + w, y + h))
    if kind == "gradient":
        a = [rng.randrange(256) for _ in range(3)]
        b = [rng.randrange(256) for _ in range(3)]
        img = Image.new("RGB", (w, 1))
        img.putdata([tuple(int(a[c] + (b[c] - a[c]) * x / max(1, w - 1)) for c in range(3)) for x in range(w)])
        return img.resize((w, h))
    if kind == "noise":
        base = rng.randrange(60, 200)
        data = bytes(max(0, min(255, base + rng.randrange(-40, 41))) for _ in range(w * h * 3))
        return Image.frombytes("RGB", (w, h), data)
    return Image.new("RGB", (w, h), "white")


def text_image(lines: list[str], size: int, kind: str, angle: float, quality: int,
               rng: random.Random, photos: list[Path]) -> bytes:
    """`lines` drawn at `size` px over a background of `kind`, turned by `angle` degrees, as a
    JPEG of `quality`. The text is dark or light, whichever contrasts with what is under it,
    and on photos it gets a thin outline of the other, as captions on photos have."""
    f = font(size)
    widths = [f.getbbox(line)[2] for line in lines]
    w = max(widths) + 2 * size + rng.randrange(0, 3 * size)
    h = int(len(lines) * size * 1.8) + 2 * size
    canvas = background(kind, (w, h), rng, photos)
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    y = size
    boxes = []
    for line in lines:
        boxes.append((size, y, size + f.getbbox(line)[2], y + int(size * 1.3)))
        y += int(size * 1.8)
    # Contrast against the mean luminance under the text.
    grey = canvas.convert("L")
    under = [grey.crop(b).resize((1, 1), Image.Resampling.BOX).getpixel((0, 0)) for b in boxes]
    dark = sum(under) / len(under) > 128
    fill = (20, 20, 20, 255) if dark else (245, 245, 245, 255)
    outline = (245, 245, 245, 255) if dark else (20, 20, 20, 255)
    y = size
    for line in lines:
        stroke = max(1, size // 16) if kind == "photo" else 0
        draw.text((size, y), line, font=f, fill=fill, stroke_width=stroke, stroke_fill=outline)
        y += int(size * 1.8)
    layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    canvas.paste(layer, (0, 0), layer)
    if kind == "noise":
        canvas = canvas.filter(ImageFilter.GaussianBlur(0.4))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def clean_text_image(lines: list[str], size: int) -> bytes:
    """Black text on white, upright, as PNG: the clean text the equivalence test reads."""
    f = font(size)
    w = max(f.getbbox(line)[2] for line in lines) + 2 * size
    h = int(len(lines) * size * 1.8) + 2 * size
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((size, size + int(i * size * 1.8)), line, font=f, fill="black")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
