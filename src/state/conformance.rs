//! The behaviour every backend must show. Each backend's tests call these functions with a fresh
//! store.

use super::TokenStore;
use crate::token::Epochs;

/// Token rotation: epochs start empty, rotate strictly forward, and `current_or_rotate` keeps a
/// live epoch and replaces an expired one.
pub async fn token_store(store: &dyn TokenStore) {
    let app = "wx00000000000000aa";
    assert_eq!(store.epochs(app).await.unwrap(), None);

    let first = store.current_or_rotate(app, 1_000, 10_000).await.unwrap();
    assert_eq!(
        first,
        Epochs {
            current: 1_000,
            previous: None
        }
    );
    // Still live: the same epoch comes back, whatever the time inside its life.
    assert_eq!(
        store.current_or_rotate(app, 10_999, 10_000).await.unwrap(),
        first
    );
    // Expired: a new epoch, the old one kept as previous.
    let second = store.current_or_rotate(app, 11_000, 10_000).await.unwrap();
    assert_eq!(
        second,
        Epochs {
            current: 11_000,
            previous: Some(1_000)
        }
    );

    // Forced rotations in one millisecond still move forward.
    let third = store.rotate(app, 11_000).await.unwrap();
    assert_eq!(
        third,
        Epochs {
            current: 11_001,
            previous: Some(11_000)
        }
    );
    assert_eq!(store.epochs(app).await.unwrap(), Some(third));

    // Apps are independent.
    assert_eq!(store.epochs("wx00000000000000bb").await.unwrap(), None);
}

/// Concurrent rotations of one app never hand out the same epoch twice.
pub async fn token_store_concurrent(store: std::sync::Arc<dyn TokenStore>) {
    let app = "wx00000000000000cc";
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(100);
            for _ in 0..100 {
                seen.push(store.rotate(app, 5_000).await.unwrap().current);
            }
            seen
        }));
    }
    let mut all = std::collections::HashSet::new();
    for t in tasks {
        for epoch in t.await.unwrap() {
            assert!(all.insert(epoch), "epoch {epoch} issued twice");
        }
    }
    assert_eq!(all.len(), 800);
    let last = store.epochs(app).await.unwrap().unwrap();
    assert_eq!(last.current, 5_799);
}
