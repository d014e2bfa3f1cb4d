//! Fuzzes the text engine: any UTF-8 input must normalize, match and compose a verdict without
//! panicking, with every offset inside the input and on a character boundary.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use modgate::engine::{Engine, normalize};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::builtin().expect("built-in lexicon compiles"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let norm = normalize(text);
    for span in &norm.spans {
        assert!(span.orig_start < span.orig_end);
        assert!(text.is_char_boundary(span.orig_start as usize));
        assert!(text.is_char_boundary(span.orig_end as usize));
    }
    let mut found = Vec::new();
    engine().findings(text, None, &mut found);
    for f in &found {
        assert!(f.start < f.end && f.end as usize <= norm.text.len());
    }
    let verdict = engine().check(&[text]);
    assert!(verdict.detail.len() >= 2);
});
