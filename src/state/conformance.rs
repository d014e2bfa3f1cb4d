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
