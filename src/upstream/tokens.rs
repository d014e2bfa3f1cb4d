//! The platform's tokens as the gateway has learned them (SPEC §13): issued through it, or
//! checked once with the upstream. Keyed by the token's SHA-256, so tokens are neither kept in
//! the clear nor compared byte by byte with a guess.

use std::sync::Arc;

use dashmap::DashMap;
use sha2::{Digest, Sha256};

/// How long the platform keeps a token working after issuing its successor (its documented
/// 5-minute overlap).
pub const SUPERSEDED_GRACE_MS: u64 = 300_000;

type Key = [u8; 32];

fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, Clone)]
enum Entry {
    /// The token is `appid`'s until `until_ms`.
    Known { appid: Arc<str>, until_ms: u64 },
    /// The upstream refused it; answered so again until `until_ms` without asking.
    Refused {
        errcode: i32,
        errmsg: Arc<str>,
        until_ms: u64,
    },
}

impl Entry {
    fn until_ms(&self) -> u64 {
        match self {
            Entry::Known { until_ms, .. } | Entry::Refused { until_ms, .. } => *until_ms,
        }
    }
}

/// What is known of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recall {
    /// Issued to this app, and not yet expired.
    Known(Arc<str>),
    /// The upstream refused it recently, with this errcode and errmsg.
    Refused { errcode: i32, errmsg: Arc<str> },
    /// Never seen, or forgotten.
    Unknown,
}

/// The learned tokens, at most `max` of them, and apart from them at most `max` refused ones
/// (made-up tokens cannot crowd out real ones).
#[derive(Debug)]
pub struct Learned {
    entries: DashMap<Key, Entry>,
    refused: DashMap<Key, Entry>,
    /// Each app's latest token issued by `/cgi-bin/token`, which the next one supersedes.
    latest: DashMap<Arc<str>, Key>,
    max: usize,
}

impl Learned {
    pub fn new(max: usize) -> Self {
        Learned {
            entries: DashMap::new(),
            refused: DashMap::new(),
            latest: DashMap::new(),
            max,
        }
    }

    /// What is known of `token` at `now_ms`.
    pub fn recall(&self, token: &str, now_ms: u64) -> Recall {
        let k = key(token);
        let found = self
            .entries
            .get(&k)
            .or_else(|| self.refused.get(&k))
            .map(|e| e.value().clone());
        match found {
            Some(e) if e.until_ms() <= now_ms => {
                self.entries.remove_if(&k, |_, e| e.until_ms() <= now_ms);
                self.refused.remove_if(&k, |_, e| e.until_ms() <= now_ms);
                Recall::Unknown
            }
            Some(Entry::Known { appid, .. }) => Recall::Known(appid),
            Some(Entry::Refused {
                errcode, errmsg, ..
            }) => Recall::Refused { errcode, errmsg },
            None => Recall::Unknown,
        }
    }

    /// Remembers that `token` is `appid`'s until `until_ms`. With `supersedes`, the token the
    /// app was issued before it (by the same endpoint) keeps working only for the platform's
    /// overlap. Returns false when the table is full of live tokens.
    pub fn remember(
        &self,
        token: &str,
        appid: &str,
        until_ms: u64,
        now_ms: u64,
        supersedes: bool,
    ) -> bool {
        let k = key(token);
        let appid: Arc<str> = Arc::from(appid);
        if supersedes
            && let Some(previous) = self.latest.insert(Arc::clone(&appid), k)
            && previous != k
            && let Some(mut e) = self.entries.get_mut(&previous)
            && let Entry::Known { until_ms, .. } = e.value_mut()
        {
            *until_ms = (*until_ms).min(now_ms.saturating_add(SUPERSEDED_GRACE_MS));
        }
        self.refused.remove(&k);
        Self::insert(
            &self.entries,
            self.max,
            k,
            Entry::Known { appid, until_ms },
            now_ms,
        )
    }

    /// Remembers the upstream's refusal of `token` until `until_ms`.
    pub fn refuse(&self, token: &str, errcode: i32, errmsg: &str, until_ms: u64, now_ms: u64) {
        let entry = Entry::Refused {
            errcode,
            errmsg: Arc::from(errmsg),
            until_ms,
        };
        Self::insert(&self.refused, self.max, key(token), entry, now_ms);
    }

    /// Inserts into `table` unless it is full of live entries (expired ones are swept first).
    fn insert(table: &DashMap<Key, Entry>, max: usize, k: Key, entry: Entry, now_ms: u64) -> bool {
        if table.len() >= max && !table.contains_key(&k) {
            table.retain(|_, e| e.until_ms() > now_ms);
            if table.len() >= max {
                return false;
            }
        }
        table.insert(k, entry);
        true
    }

    /// Entries held, tokens and refusals.
    pub fn len(&self) -> usize {
        self.entries.len() + self.refused.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_known_until_they_expire() {
        let l = Learned::new(10);
        assert_eq!(l.recall("t1", 0), Recall::Unknown);
        assert!(l.remember("t1", "wxa", 1_000, 0, false));
        assert_eq!(l.recall("t1", 999), Recall::Known(Arc::from("wxa")));
        assert_eq!(l.recall("t1", 1_000), Recall::Unknown);
        assert!(l.is_empty(), "an expired token is forgotten when met");
    }

    #[test]
    fn a_new_token_leaves_the_previous_one_five_minutes() {
        let l = Learned::new(10);
        l.remember("old", "wxa", 7_200_000, 0, true);
        l.remember("other-app", "wxb", 7_200_000, 0, true);
        l.remember("new", "wxa", 7_260_000, 60_000, true);
        let grace_end = 60_000 + SUPERSEDED_GRACE_MS;
        assert_eq!(
            l.recall("old", grace_end - 1),
            Recall::Known(Arc::from("wxa"))
        );
        assert_eq!(l.recall("old", grace_end), Recall::Unknown);
        assert_eq!(l.recall("new", grace_end), Recall::Known(Arc::from("wxa")));
        assert_eq!(
            l.recall("other-app", grace_end),
            Recall::Known(Arc::from("wxb"))
        );
        // Stable tokens (no superseding) leave the others alone.
        l.remember("stable", "wxa", 7_300_000, 100_000, false);
        assert_eq!(l.recall("new", 200_000), Recall::Known(Arc::from("wxa")));
    }

    #[test]
    fn refusals_are_remembered_for_a_while_and_the_table_is_bounded() {
        let l = Learned::new(2);
        l.refuse("bad", 40001, "invalid credential", 60_000, 0);
        assert_eq!(
            l.recall("bad", 59_999),
            Recall::Refused {
                errcode: 40001,
                errmsg: Arc::from("invalid credential")
            }
        );
        // Refusals have a table of their own: they never crowd out real tokens.
        for i in 0..10 {
            l.refuse(
                &format!("made-up-{i}"),
                40001,
                "invalid credential",
                60_000,
                0,
            );
        }
        assert!(l.remember("a", "wxa", 10_000, 0, false));
        assert!(l.remember("b", "wxa", 10_000, 0, false));
        // Full of live entries: the third is not kept.
        assert!(!l.remember("c", "wxa", 10_000, 0, false));
        // Once some have expired they make room.
        assert!(l.remember("c", "wxa", 90_000, 20_000, false));
        assert_eq!(l.recall("a", 20_000), Recall::Unknown);
        assert_eq!(l.recall("c", 20_000), Recall::Known(Arc::from("wxa")));
        assert_eq!(
            l.len(),
            3,
            "two tokens, and the first refusal of the bounded ten"
        );
    }
}
