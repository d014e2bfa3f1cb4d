//! Every checked-in fuzz corpus (seeds, and what fuzzing with `cargo fuzz run <target>` kept)
//! replays through its target's properties (`modgate::fuzzing`) without a failure. The text
//! engine's corpus is replayed by the engine's own tests.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus is checked in") {
        let path = entry.expect("a corpus entry").path();
        let bytes = std::fs::read(&path).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| check(&bytes));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        replayed += 1;
    }
    assert!(replayed >= 10, "{target}: only {replayed} corpus files");
}

#[test]
fn request_json_corpus() {
    replay("request_json", modgate::fuzzing::request_json);
}

#[test]
fn config_corpus() {
    replay("config", modgate::fuzzing::config);
}

#[test]
fn csv_import_corpus() {
    replay("csv_import", modgate::fuzzing::csv_import);
}

#[test]
fn url_guard_corpus() {
    replay("url_guard", modgate::fuzzing::url_guard);
}

#[test]
fn request_framing_corpus() {
    replay("request_framing", modgate::fuzzing::request_framing);
}

#[test]
fn multipart_upload_corpus() {
    replay("multipart_upload", modgate::fuzzing::multipart_upload);
}

#[test]
fn media_meta_corpus() {
    replay("media_meta", modgate::fuzzing::media_meta);
}

#[test]
fn audio_probe_corpus() {
    replay("audio_probe", modgate::fuzzing::audio_probe);
}

#[test]
fn push_answer_corpus() {
    replay("push_answer", modgate::fuzzing::push_answer);
}

#[test]
fn redis_replies_corpus() {
    replay("redis_replies", modgate::fuzzing::redis_replies);
}
