//! What a verdict sets off, for a text check and a media job alike: the user's risk record
//! ([`crate::risk`]) and, for a `review` verdict or a sampled `pass`, the human review queue
//! ([`crate::review`]).

use std::sync::Arc;

use crate::config::RiskSettings;
use crate::engine::Suggest;
use crate::review::{Item, Reason, ReviewQueue};
use crate::risk::{Observed, RiskBook};

/// What was judged: a text check counts as one of the user's calls (the risk model's velocity)
/// whatever its verdict; a media verdict counts only when it is not `pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    Text,
    Media,
}

/// The queue and settings a verdict's consequences need. Cheap to clone.
#[derive(Clone)]
pub struct Effects {
    review: Arc<ReviewQueue>,
    risk: RiskSettings,
}

impl std::fmt::Debug for Effects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Effects").finish_non_exhaustive()
    }
}

impl Effects {
    pub fn new(review: Arc<ReviewQueue>, risk: RiskSettings) -> Self {
        Effects { review, risk }
    }

    /// Sets off what a verdict of `suggest` on a user's content sets off: remembers it in the
    /// user's record of `book` (the app's, when the app is still registered) and, when it is
    /// `review` or a sampled `pass`, puts the item `item` builds in the app's review queue.
    pub fn verdict(
        &self,
        book: Option<&RiskBook>,
        openid: &str,
        now_ms: u64,
        judged: Judged,
        suggest: Suggest,
        item: impl FnOnce(Reason) -> Item,
    ) {
        let now = now_ms / 1000;
        let seen = Observed::of(suggest);
        if let Some(book) = book {
            match (judged, seen) {
                (Judged::Text, seen) => book.checked(&self.risk, openid, now, seen),
                (Judged::Media, Some(seen)) => book.verdict(&self.risk, openid, now, seen),
                (Judged::Media, None) => {}
            }
        }
        let reason = match suggest {
            Suggest::Review => Reason::Review,
            Suggest::Pass if self.review.sample_pass() => Reason::Sample,
            _ => return,
        };
        self.review.enqueue(item(reason));
    }
}
