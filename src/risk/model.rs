//! The risk model: what this instance observes of each user (verdicts, calls, registrations),
//! decayed over time, and the rank it gives.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;
use serde::Serialize;

use crate::config::RiskSettings;

/// The highest rank.
pub const MAX_RANK: u8 = 4;

/// Shards of an app's user records: requests for different users rarely wait on one another.
const SHARDS: usize = 16;

/// Openids remembered per client IP or mobile number (newest kept).
pub const MAX_REGISTRATIONS_PER_KEY: usize = 64;

/// Half-life of the request velocity.
pub const VELOCITY_HALF_LIFE: Duration = Duration::from_secs(60);

/// Weights of verdicts in the moderation history.
pub const RISKY_WEIGHT: f32 = 1.0;
pub const REVIEW_WEIGHT: f32 = 0.3;

/// A quantity that halves every half-life, stored with the second it was last brought up to
/// date.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Decayed {
    value: f32,
    at: u64,
}

impl Decayed {
    fn value_at(self, now: u64, half_life: Duration) -> f32 {
        let age = now.saturating_sub(self.at) as f64;
        let halves = age / half_life.as_secs_f64().max(1.0);
        (f64::from(self.value) * 0.5f64.powf(halves)) as f32
    }

    fn add(&mut self, now: u64, half_life: Duration, amount: f32) {
        self.value = self.value_at(now, half_life) + amount;
        self.at = self.at.max(now);
    }
}

/// What the gateway has seen of one user.
#[derive(Debug, Clone, Copy, Default)]
struct UserRecord {
    history: Decayed,
    calls: Decayed,
    risky: u32,
    review: u32,
}

/// A moderation verdict worth remembering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Risky,
    Review,
}

fn remember(r: &mut UserRecord, s: &RiskSettings, now: u64, seen: Observed) {
    match seen {
        Observed::Risky => {
            r.history.add(now, s.history_half_life, RISKY_WEIGHT);
            r.risky = r.risky.saturating_add(1);
        }
        Observed::Review => {
            r.history.add(now, s.history_half_life, REVIEW_WEIGHT);
            r.review = r.review.saturating_add(1);
        }
    }
}

impl Observed {
    /// The verdict worth remembering, if any.
    pub fn of(suggest: crate::engine::Suggest) -> Option<Observed> {
        match suggest {
            crate::engine::Suggest::Risky => Some(Observed::Risky),
            crate::engine::Suggest::Review => Some(Observed::Review),
            crate::engine::Suggest::Pass => None,
        }
    }
}

/// Users by openid, least recently seen first out; made on first use.
type Users = Mutex<Option<LruCache<Box<str>, UserRecord>>>;

/// Recent registrations (openid hash, second) by `ip:…` or `mobile:…` key.
type Registrations = Mutex<Option<LruCache<Box<str>, Vec<(u64, u64)>>>>;

/// One app's observations: user records and recent registrations.
#[derive(Default)]
pub struct RiskBook {
    users: [Users; SHARDS],
    registrations: Registrations,
}

impl std::fmt::Debug for RiskBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskBook")
            .field("users", &self.users_held())
            .finish_non_exhaustive()
    }
}

fn hash_of(s: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x6d6f_6467_6174_6521).hash_one(s)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain numbers behind: still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The signals behind a rank, as numbers and as the points each gave.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Signals {
    /// Decayed weight of the user's risky and review verdicts.
    pub history: f32,
    /// Verdicts counted while the user's record has been held.
    pub risky_verdicts: u32,
    pub review_verdicts: u32,
    /// Decayed count of the user's calls (about the last 1.4 minutes).
    pub velocity: f32,
    /// Seconds since the user's latest visit, if one is held.
    pub seconds_since_visit: Option<u64>,
    /// Scene 0 only: distinct openids registered from the client IP / mobile number in the
    /// window, this one included.
    pub registrations_from_ip: Option<usize>,
    pub registrations_from_mobile: Option<usize>,
    /// Points by signal (only those that gave any).
    pub points: BTreeMap<&'static str, u8>,
}

impl Signals {
    /// The model's rank: the sum of the points, at most [`MAX_RANK`].
    pub fn rank(&self) -> u8 {
        self.points.values().copied().sum::<u8>().min(MAX_RANK)
    }
}

/// What a rank lookup asks about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub openid: &'a str,
    pub scene: u8,
    pub client_ip: Option<&'a str>,
    pub mobile: Option<&'a str>,
    /// The user's latest visit, if held.
    pub last_visit: Option<u64>,
}

impl RiskBook {
    fn shard(&self, openid: &str) -> &Users {
        &self.users[(hash_of(openid) % SHARDS as u64) as usize]
    }

    /// Updates the user's record with `f`, creating it (and dropping the least recently seen
    /// user of its shard when the shard is full).
    fn update(&self, s: &RiskSettings, openid: &str, f: impl FnOnce(&mut UserRecord)) {
        let cap = s.max_users.get().div_ceil(SHARDS);
        let mut shard = lock(self.shard(openid));
        let users = shard.get_or_insert_with(LruCache::unbounded);
        if let Some(rec) = users.get_mut(openid) {
            f(rec);
            return;
        }
        let mut rec = UserRecord::default();
        f(&mut rec);
        users.put(openid.into(), rec);
        while users.len() > cap {
            users.pop_lru();
        }
    }

    /// Counts one call by the user (a text or media check, or a rank lookup).
    pub fn call(&self, s: &RiskSettings, openid: &str, now: u64) {
        self.update(s, openid, |r| r.calls.add(now, VELOCITY_HALF_LIFE, 1.0));
    }

    /// Counts one text check by the user and remembers its verdict if risky or review, in one
    /// update.
    pub fn checked(&self, s: &RiskSettings, openid: &str, now: u64, seen: Option<Observed>) {
        self.update(s, openid, |r| {
            r.calls.add(now, VELOCITY_HALF_LIFE, 1.0);
            if let Some(seen) = seen {
                remember(r, s, now, seen);
            }
        });
    }

    /// Remembers a risky or review verdict on the user's text or media.
    pub fn verdict(&self, s: &RiskSettings, openid: &str, now: u64, seen: Observed) {
        self.update(s, openid, |r| remember(r, s, now, seen));
    }

    /// Records a registration (scene 0) from `key` (`ip:…` or `mobile:…`); returns the distinct
    /// openids registered from it within the window, this one included.
    fn register(&self, s: &RiskSettings, key: &str, openid: &str, now: u64) -> usize {
        let window = s.registration_window.as_secs();
        let id = hash_of(openid);
        let mut regs = lock(&self.registrations);
        let regs = regs.get_or_insert_with(LruCache::unbounded);
        let list = regs.get_or_insert_mut(key.into(), Vec::new);
        list.retain(|&(who, at)| who != id && now.saturating_sub(at) < window);
        list.push((id, now));
        if list.len() > MAX_REGISTRATIONS_PER_KEY {
            list.remove(0);
        }
        let n = list.len();
        while regs.len() > s.max_users.get() {
            regs.pop_lru();
        }
        n
    }

    /// The signals for `who` now, recording this lookup (a call, and for scene 0 a
    /// registration).
    pub fn assess(&self, s: &RiskSettings, who: &Subject<'_>, now: u64) -> Signals {
        self.call(s, who.openid, now);
        let (from_ip, from_mobile) = if who.scene == 0 {
            (
                who.client_ip
                    .map(|ip| self.register(s, &format!("ip:{ip}"), who.openid, now)),
                who.mobile
                    .map(|m| self.register(s, &format!("mobile:{m}"), who.openid, now)),
            )
        } else {
            (None, None)
        };
        self.signals(s, who, now, from_ip, from_mobile)
    }

    /// The signals for `who` now, without recording anything (the admin lookup).
    pub fn inspect(&self, s: &RiskSettings, who: &Subject<'_>, now: u64) -> Signals {
        let count = |key: String| {
            let window = s.registration_window.as_secs();
            let regs = lock(&self.registrations);
            regs.as_ref()
                .and_then(|r| r.peek(key.as_str()))
                .map_or(0, |list| {
                    list.iter()
                        .filter(|(_, at)| now.saturating_sub(*at) < window)
                        .count()
                })
        };
        let (from_ip, from_mobile) = if who.scene == 0 {
            (
                who.client_ip.map(|ip| count(format!("ip:{ip}"))),
                who.mobile.map(|m| count(format!("mobile:{m}"))),
            )
        } else {
            (None, None)
        };
        self.signals(s, who, now, from_ip, from_mobile)
    }

    fn signals(
        &self,
        s: &RiskSettings,
        who: &Subject<'_>,
        now: u64,
        from_ip: Option<usize>,
        from_mobile: Option<usize>,
    ) -> Signals {
        let rec = lock(self.shard(who.openid))
            .as_ref()
            .and_then(|users| users.peek(who.openid).copied())
            .unwrap_or_default();
        let history = rec.history.value_at(now, s.history_half_life);
        let velocity = rec.calls.value_at(now, VELOCITY_HALF_LIFE);
        let mut points = BTreeMap::new();
        let mut give = |name, p: u8| {
            if p > 0 {
                points.insert(name, p);
            }
        };
        give(
            "history",
            match history {
                h if h >= 4.0 => 3,
                h if h >= 2.0 => 2,
                h if h >= 0.8 => 1,
                _ => 0,
            },
        );
        give(
            "velocity",
            match velocity {
                v if v >= 600.0 => 2,
                v if v >= 120.0 => 1,
                _ => 0,
            },
        );
        give("no_visit", u8::from(who.last_visit.is_none()));
        give(
            "registrations_from_ip",
            match from_ip.unwrap_or(0) {
                n if n >= 20 => 2,
                n if n >= 5 => 1,
                _ => 0,
            },
        );
        give(
            "registrations_from_mobile",
            if from_mobile.unwrap_or(0) >= 3 { 2 } else { 0 },
        );
        Signals {
            history,
            risky_verdicts: rec.risky,
            review_verdicts: rec.review,
            velocity,
            seconds_since_visit: who.last_visit.map(|v| now.saturating_sub(v)),
            registrations_from_ip: from_ip,
            registrations_from_mobile: from_mobile,
            points,
        }
    }

    /// Users held (all shards).
    pub fn users_held(&self) -> usize {
        self.users
            .iter()
            .map(|s| lock(s).as_ref().map_or(0, LruCache::len))
            .sum()
    }

    /// Registration keys held.
    pub fn registration_keys_held(&self) -> usize {
        lock(&self.registrations).as_ref().map_or(0, LruCache::len)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use std::num::NonZeroUsize;

    use super::*;

    pub(crate) fn who(openid: &str) -> Subject<'_> {
        Subject {
            openid,
            scene: 2,
            client_ip: Some("10.0.0.1"),
            mobile: None,
            last_visit: Some(0),
        }
    }

    #[test]
    fn risky_verdicts_raise_the_rank_and_it_falls_back_as_they_age() {
        let s = RiskSettings::default();
        let book = RiskBook::default();
        let t0 = 1_000_000;
        assert_eq!(book.inspect(&s, &who("u1"), t0).rank(), 0);
        let mut ranks = Vec::new();
        for _ in 0..5 {
            book.verdict(&s, "u1", t0, Observed::Risky);
            ranks.push(book.inspect(&s, &who("u1"), t0).rank());
        }
        assert_eq!(ranks, [1, 2, 2, 3, 3]);
        // Half an hour later the weight has halved (5 → 2.5); after four half-lives it is gone.
        let later = book.inspect(&s, &who("u1"), t0 + 1800);
        assert!((later.history - 2.5).abs() < 0.001, "{later:?}");
        assert_eq!(later.rank(), 2);
        assert_eq!(book.inspect(&s, &who("u1"), t0 + 4 * 1800).rank(), 0);
        // Review verdicts weigh less: three make 0.9.
        for i in 0..3 {
            book.verdict(&s, "u2", t0 + i, Observed::Review);
        }
        let u2 = book.inspect(&s, &who("u2"), t0 + 3);
        assert_eq!((u2.review_verdicts, u2.rank()), (3, 1));
    }

    #[test]
    fn velocity_and_missing_visits_give_points() {
        let s = RiskSettings::default();
        let book = RiskBook::default();
        for _ in 0..130 {
            book.call(&s, "busy", 5_000);
        }
        let busy = book.inspect(&s, &who("busy"), 5_000);
        assert_eq!(busy.points.get("velocity"), Some(&1));
        let mut gone = who("new");
        gone.last_visit = None;
        assert_eq!(
            book.inspect(&s, &gone, 5_000).points.get("no_visit"),
            Some(&1)
        );
    }

    #[test]
    fn registrations_from_one_ip_or_mobile_count_distinct_openids_in_the_window() {
        let s = RiskSettings::default();
        let book = RiskBook::default();
        let reg = |openid: &'static str, ip, mobile| Subject {
            openid,
            scene: 0,
            client_ip: Some(ip),
            mobile,
            last_visit: Some(0),
        };
        let names = ["a", "b", "c", "d", "e", "f"];
        let mut ranks = Vec::new();
        for (i, n) in names.iter().enumerate() {
            ranks.push(
                book.assess(&s, &reg(n, "1.2.3.4", None), 100 + i as u64)
                    .rank(),
            );
        }
        assert_eq!(ranks, [0, 0, 0, 0, 1, 1]);
        // The same openid again is not a new registration.
        let again = book.assess(&s, &reg("a", "1.2.3.4", None), 110);
        assert_eq!(again.registrations_from_ip, Some(6));
        // Another IP is unaffected; outside the window the count starts over.
        assert_eq!(book.assess(&s, &reg("g", "5.6.7.8", None), 111).rank(), 0);
        let late = book.assess(&s, &reg("h", "1.2.3.4", None), 100 + 3600 + 20);
        assert_eq!(late.registrations_from_ip, Some(1));
        // Three openids on one mobile number: 2 points.
        for (i, n) in ["m1", "m2", "m3"].iter().enumerate() {
            let r = book.assess(&s, &reg(n, "9.9.9.9", Some("13800000000")), 200 + i as u64);
            assert_eq!(r.points.contains_key("registrations_from_mobile"), i == 2);
        }
        // Other scenes do not register.
        let mut ugc = reg("z", "1.2.3.4", None);
        ugc.scene = 2;
        assert_eq!(book.assess(&s, &ugc, 112).registrations_from_ip, None);
    }

    #[test]
    fn memory_stays_bounded_under_many_users() {
        let s = RiskSettings {
            max_users: NonZeroUsize::new(1_000).unwrap(),
            ..RiskSettings::default()
        };
        let book = RiskBook::default();
        for i in 0..50_000u64 {
            let openid = format!("user{i}");
            book.call(&s, &openid, i);
            book.assess(
                &s,
                &Subject {
                    openid: &openid,
                    scene: 0,
                    client_ip: Some(&format!(
                        "10.{}.{}.{}",
                        i >> 16 & 255,
                        i >> 8 & 255,
                        i & 255
                    )),
                    mobile: None,
                    last_visit: None,
                },
                i,
            );
        }
        assert!(book.users_held() <= 1_000 + SHARDS, "{}", book.users_held());
        assert!(book.users_held() >= 900);
        assert!(book.registration_keys_held() <= 1_000);
        // The most recent users are the ones kept.
        assert!(book.inspect(&s, &who("user49999"), 50_000).velocity > 0.0);
        assert_eq!(
            book.inspect(&s, &who("user0"), 50_000).velocity,
            0.0,
            "the oldest is gone"
        );
    }
}
