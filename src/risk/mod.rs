//! User risk rank (SPEC §10): operators' black and white lists, and a deterministic model over
//! what this gateway observes of each user.
//!
//! ## Lists
//! Per app, entries keyed by `(type, value)`: `openid`, `mobile` (mobile number) or `ip` (client
//! IP), each on the `black` or `white` list with the rank to return (black entries default to 4,
//! white to 0) and a note. A listed user gets the entry's rank, whatever the model says; when
//! several entries match, the most specific decides: openid, then mobile number, then IP.
//!
//! ## Model
//! Each signal gives points; the rank is their sum, at most 4 (0 no risk … 4 the highest).
//!
//! | signal | points |
//! | --- | --- |
//! | moderation history: each `risky` verdict on the user's text or media weighs 1, each `review` 0.3, halving every `risk.history_half_life_secs` (default 1800) | 1 at ≥ 0.8, 2 at ≥ 2, 3 at ≥ 4 |
//! | request velocity: the user's calls (text and media checks, rank lookups), halving every 60 s (about the calls of the last 1.4 minutes) | 1 at ≥ 120, 2 at ≥ 600 |
//! | visit recency: no visit held for the user (only possible with `is_test` or limits off) | 1 |
//! | registrations (scene 0 only): distinct openids ranked for registration from the same client IP within `risk.registration_window_secs` (default 3600), this one included | 1 at ≥ 5, 2 at ≥ 20 |
//! | the same, from the same mobile number | 2 at ≥ 3 |
//!
//! ## Memory
//! Per app at most `risk.max_users` users (default 50,000; least recently seen dropped first) and
//! as many registration keys (client IPs and mobile numbers), each remembering at most
//! [`MAX_REGISTRATIONS_PER_KEY`] recent openids. A user's record is 32 bytes, plus its openid and
//! the LRU's bookkeeping: about 120 bytes in all for a 28-character openid.
//! What the model observes is this instance's own view: with several instances sharing Redis each
//! ranks from the traffic it served (the lists are shared).

mod lists;
mod model;

pub use crate::config::RiskSettings;
pub use lists::{
    EntryType, ListEntry, ListError, ListKind, MAX_LIST_ENTRIES, RiskLists, parse_entries, to_csv,
};
pub use model::{
    MAX_RANK, MAX_REGISTRATIONS_PER_KEY, Observed, REVIEW_WEIGHT, RISKY_WEIGHT, RiskBook, Signals,
    Subject, VELOCITY_HALF_LIFE,
};
