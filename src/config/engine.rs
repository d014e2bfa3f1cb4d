//! `[engine]`: the text engine's behaviour and the operator's lexicon files.

use std::path::PathBuf;

use serde::Deserialize;

use super::check::Errors;
use crate::engine::{Engine, EngineError, Label, Lexicon};

/// `[engine]`: text engine behaviour.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEngine {
    pub reveal_builtin_words: Option<bool>,
    /// Operator lexicon files, added to the built-in lexicon.
    pub lexicon: Vec<RawLexiconFile>,
}

/// One `[[engine.lexicon]]` entry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLexiconFile {
    pub path: Option<String>,
    pub label: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    pub reveal_builtin_words: bool,
    /// Operator lexicon files (`word<TAB>suggest<TAB>prob`) and the label of each.
    pub lexicon_files: Vec<(PathBuf, Label)>,
}

impl EngineConfig {
    /// The engine this section describes: the built-in lexicon plus the operator's lexicon
    /// files (read now; an error names the file and line at fault).
    pub fn build(&self) -> Result<Engine, EngineError> {
        let mut lexicon = Lexicon::builtin()?;
        for (path, label) in &self.lexicon_files {
            lexicon.add_file(path, *label)?;
        }
        Engine::new(lexicon)
    }
}

/// Validates `[engine]`, adding every problem to `errs`.
pub(super) fn validate(raw: RawEngine, errs: &mut Errors) -> EngineConfig {
    let mut lexicon_files = Vec::new();
    for (i, file) in raw.lexicon.iter().enumerate() {
        let key = format!("engine.lexicon[{i}]");
        let path = match file.path.as_deref() {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => {
                errs.push(format!("{key}.path"), "is required");
                None
            }
        };
        let label = match file.label {
            Some(code) => match u32::try_from(code).ok().and_then(Label::from_code) {
                Some(l) if l != Label::Normal => Some(l),
                _ => {
                    errs.push(
                        format!("{key}.label"),
                        format!("{code} is not a risk label code"),
                    );
                    None
                }
            },
            None => {
                errs.push(format!("{key}.label"), "is required");
                None
            }
        };
        if let (Some(path), Some(label)) = (path, label) {
            lexicon_files.push((path, label));
        }
    }
    EngineConfig {
        reveal_builtin_words: raw.reveal_builtin_words.unwrap_or(false),
        lexicon_files,
    }
}
