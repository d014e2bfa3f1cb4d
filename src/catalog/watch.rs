//! Changes made on other instances, put in force here: every instance listens on the change
//! channel, and after any gap in its subscription compares every version with what it holds.

use std::sync::Arc;
use std::time::Duration;

use super::{KINDS, RedisCatalog, kind_named};
use crate::state::durable::Kind;

/// A change heard on the channel: the kind, the key and the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub kind: Kind,
    pub key: String,
    pub version: u64,
}

/// What the change channel carries: a catalog document's new version, or a token rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Changed(Heard),
    Rotated { appid: String },
}

/// Parses one message of the change channel.
pub fn parse_message(text: &str) -> Option<Message> {
    let mut parts = text.split('\t');
    let first = parts.next()?;
    if first == "tok" {
        return Some(Message::Rotated {
            appid: parts.next()?.to_owned(),
        });
    }
    let kind = kind_named(first)?;
    let key = parts.next()?.to_owned();
    let version = parts.next()?.parse().ok()?;
    Some(Message::Changed(Heard { kind, key, version }))
}

/// What the watcher does with a change: put the document in force on this instance.
pub trait Apply: Send + Sync + 'static {
    /// Puts `doc` (the document under `key` in `kind`) in force. An error is logged and the
    /// version not recorded, so the next resynchronisation tries again.
    fn apply(&self, kind: Kind, key: &str, doc: &[u8]) -> Result<(), String>;

    /// Another instance rotated the app's token epochs.
    fn rotated(&self, appid: &str);
}

/// Listens on the change channel until `shutdown`, applying every change newer than what this
/// instance holds; on (re)subscribing, first compares every version. Reconnects with backoff.
pub async fn watch(
    catalog: Arc<RedisCatalog>,
    apply: Arc<dyn Apply>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use futures_util::StreamExt;

    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = catalog.client.get_async_pubsub().await?;
            pubsub.subscribe(&catalog.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = crate::transport::shutdown_requested(&mut shutdown) => return,
            r = subscribed => r,
        };
        let mut pubsub = match pubsub {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "change subscription failed; retrying");
                tokio::select! {
                    () = crate::transport::shutdown_requested(&mut shutdown) => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Anything changed while not subscribed is found by its version.
        resync(&catalog, &apply).await;
        let mut messages = pubsub.on_message();
        loop {
            let message = tokio::select! {
                () = crate::transport::shutdown_requested(&mut shutdown) => return,
                m = messages.next() => m,
            };
            let Some(message) = message else {
                tracing::warn!("change subscription lost; resubscribing");
                break;
            };
            let Ok(text) = message.get_payload::<String>() else {
                continue;
            };
            match parse_message(&text) {
                Some(Message::Rotated { appid }) => apply.rotated(&appid),
                Some(Message::Changed(heard)) => {
                    if heard.version > catalog.known(heard.kind, &heard.key) {
                        fetch_and_apply(&catalog, &apply, heard.kind, &heard.key).await;
                    }
                }
                None => tracing::warn!(message = text, "unknown change message ignored"),
            }
        }
    }
}

/// Applies every document whose version differs from the one held. Apps first, so a table's
/// app exists before the table.
pub async fn resync(catalog: &Arc<RedisCatalog>, apply: &Arc<dyn Apply>) {
    for kind in KINDS {
        let c = Arc::clone(catalog);
        let versions = tokio::task::spawn_blocking(move || c.versions(kind)).await;
        let versions = match versions {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "catalog resynchronisation failed");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "catalog resynchronisation task failed");
                return;
            }
        };
        for (key, version) in versions {
            if version > catalog.known(kind, &key) {
                fetch_and_apply(catalog, apply, kind, &key).await;
            }
        }
    }
}

/// Reads the document and puts it in force (on the blocking pool: building a table or a bank is
/// CPU work).
async fn fetch_and_apply(
    catalog: &Arc<RedisCatalog>,
    apply: &Arc<dyn Apply>,
    kind: Kind,
    key: &str,
) {
    let (c, a, k) = (Arc::clone(catalog), Arc::clone(apply), key.to_owned());
    let done = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let Some((doc, version)) = c.get_versioned(kind, &k).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        if version <= c.known(kind, &k) {
            return Ok(());
        }
        a.apply(kind, &k, &doc)?;
        c.hold(kind, &k, version);
        Ok(())
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(key, ?kind, error = %e, "shared change not applied"),
        Err(e) => tracing::error!(key, ?kind, error = %e, "shared change task failed"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

    use std::sync::Mutex;

    use super::*;
    use crate::catalog::Catalog;
    use crate::catalog::redis::tests::{fresh_prefix, redis_catalog};

    /// Records what the watcher applies; refuses documents reading `bad`.
    #[derive(Default)]
    struct Recorder {
        applied: Mutex<Vec<(Kind, String, Vec<u8>)>>,
        rotated: Mutex<Vec<String>>,
    }

    impl Apply for Recorder {
        fn apply(&self, kind: Kind, key: &str, doc: &[u8]) -> Result<(), String> {
            if doc == b"bad" {
                return Err("bad document".into());
            }
            self.applied
                .lock()
                .unwrap()
                .push((kind, key.to_owned(), doc.to_vec()));
            Ok(())
        }

        fn rotated(&self, appid: &str) {
            self.rotated.lock().unwrap().push(appid.to_owned());
        }
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not within 2 s: {what}");
    }

    /// Another instance's watcher applies every change: those made before it subscribed (by
    /// version), those made after (by message); one it could not apply is not held, so the next
    /// resynchronisation tries it again; the writer holds its own versions.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_reach_every_instance() {
        let prefix = fresh_prefix("watch");
        let writer = Arc::new(redis_catalog(&prefix));
        let reader = Arc::new(redis_catalog(&prefix));
        let w = Arc::clone(&writer);
        tokio::task::spawn_blocking(move || {
            w.put(Kind::Apps, "wx1", b"app").unwrap();
            w.put(Kind::Keywords, "wx1", b"bad").unwrap();
        })
        .await
        .unwrap();
        let recorder = Arc::new(Recorder::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(watch(
            Arc::clone(&reader),
            Arc::clone(&recorder) as Arc<dyn Apply>,
            stopped,
        ));
        until("the app made before subscribing", || {
            recorder.applied.lock().unwrap().len() == 1
        })
        .await;
        assert_eq!(
            reader.known(Kind::Keywords, "wx1"),
            0,
            "a failed apply is not held"
        );

        // After subscribing: by message, in order.
        let w = Arc::clone(&writer);
        tokio::task::spawn_blocking(move || {
            w.put(Kind::Keywords, "wx1", b"[1]").unwrap();
            w.put(Kind::Banks, "global", b"[2]").unwrap();
        })
        .await
        .unwrap();
        until("two changes by message", || {
            recorder.applied.lock().unwrap().len() == 3
        })
        .await;
        let applied = recorder.applied.lock().unwrap().clone();
        assert_eq!(applied[1], (Kind::Keywords, "wx1".into(), b"[1]".to_vec()));
        assert_eq!(applied[2], (Kind::Banks, "global".into(), b"[2]".to_vec()));
        // Both hold the version now stored; the writer held its own as it wrote it, so its own
        // watcher would skip it.
        let stored: Vec<(String, u64)> = writer.versions(Kind::Keywords).unwrap();
        assert_eq!(stored.len(), 1);
        assert!(
            stored[0].1 > 1_700_000_000_000_000,
            "a clock version: {stored:?}"
        );
        assert_eq!(reader.known(Kind::Keywords, "wx1"), stored[0].1);
        assert_eq!(writer.known(Kind::Keywords, "wx1"), stored[0].1);

        // A token rotation message.
        let mut conn = writer
            .client
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&writer.channel)
            .arg("tok\twx1")
            .query_async(&mut conn)
            .await
            .unwrap();
        until("the rotation", || {
            recorder.rotated.lock().unwrap().len() == 1
        })
        .await;
        stop.send(true).unwrap();
        watcher.await.unwrap();
    }

    #[test]
    fn messages_parse() {
        assert_eq!(
            parse_message("keywords\twx1\t7"),
            Some(Message::Changed(Heard {
                kind: Kind::Keywords,
                key: "wx1".into(),
                version: 7
            }))
        );
        assert_eq!(
            parse_message("tok\twx1"),
            Some(Message::Rotated {
                appid: "wx1".into()
            })
        );
        assert_eq!(parse_message("jobs\twx1\t7"), None);
        assert_eq!(parse_message("keywords\twx1"), None);
        assert_eq!(parse_message("banks\tglobal\tx"), None);
    }
}
