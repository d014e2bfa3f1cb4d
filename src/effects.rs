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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on unexpected errors

    use super::*;
    use crate::config::ReviewSettings;
    use crate::review::{Content, ReviewMetrics};
    use crate::risk::Subject;
    use crate::state::durable::Durable;
    use futures_util::FutureExt;

    fn item(id: &str, reason: Reason, suggest: Suggest) -> Item {
        Item {
            id: id.into(),
            appid: "wxapp".into(),
            openid: Some("u1".into()),
            scene: 2,
            reason,
            suggest,
            label: 100,
            labels: vec![100],
            hits: Vec::new(),
            content: Content::Text {
                fields: vec![("content".into(), "x".into())],
            },
            created_ms: 1_000,
            claim: None,
            decision: None,
        }
    }

    /// A text check counts as a call whatever its verdict; a media verdict only when it is not
    /// `pass`. `review` verdicts go to the queue, `risky` ones do not, and one `pass` in N is
    /// sampled.
    #[tokio::test]
    async fn verdicts_reach_the_risk_record_and_the_review_queue_as_they_should() {
        let dir = std::env::temp_dir().join(format!("modgate-effects-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let durable = std::sync::Arc::new(Durable::open(&dir, 1 << 20).unwrap());
        let settings = ReviewSettings {
            pass_sample_every: 2,
            ..ReviewSettings::default()
        };
        let metrics = ReviewMetrics::new(&prometheus::Registry::new()).unwrap();
        let review = crate::review::ReviewQueue::open(settings, durable, metrics, 0, None).unwrap();
        let effects = Effects::new(Arc::clone(&review), RiskSettings::default());
        let book = RiskBook::default();
        let who = |openid| Subject {
            openid,
            scene: 2,
            client_ip: None,
            mobile: None,
            last_visit: Some(0),
        };
        let (risk, now_ms) = (RiskSettings::default(), 5_000);
        let judge = |id: &str, judged, suggest| {
            effects.verdict(Some(&book), "u1", now_ms, judged, suggest, |reason| {
                item(id, reason, suggest)
            })
        };
        judge("t-risky", Judged::Text, Suggest::Risky);
        judge("t-review", Judged::Text, Suggest::Review);
        judge("t-pass-1", Judged::Text, Suggest::Pass);
        judge("t-pass-2", Judged::Text, Suggest::Pass);
        judge("m-pass", Judged::Media, Suggest::Pass);
        judge("m-risky", Judged::Media, Suggest::Risky);
        let signals = book.inspect(&risk, &who("u1"), 5);
        assert_eq!((signals.risky_verdicts, signals.review_verdicts), (2, 1));
        // Four text checks are four calls; the two media verdicts are not calls.
        assert!(
            signals.velocity > 3.9 && signals.velocity <= 4.0,
            "{signals:?}"
        );
        let queued: Vec<String> = ["t-risky", "t-review", "t-pass-1", "t-pass-2", "m-pass"]
            .into_iter()
            .filter(|id| review.get(id).now_or_never().unwrap().unwrap().is_some())
            .map(str::to_owned)
            .collect();
        // The review and every second pass (the second text pass; the media pass is the third).
        assert_eq!(queued, ["t-review", "t-pass-2"]);
        // Without the app's record (an app since removed) the queue still gets its item.
        effects.verdict(
            None,
            "u2",
            now_ms,
            Judged::Media,
            Suggest::Review,
            |reason| item("m-review", reason, Suggest::Review),
        );
        assert!(
            review
                .get("m-review")
                .now_or_never()
                .unwrap()
                .unwrap()
                .is_some()
        );
        drop(review);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
