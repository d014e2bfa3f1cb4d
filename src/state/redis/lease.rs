//! Leases: calls of one app and API this instance admits without asking Redis.
//!
//! An admission run in Redis may end by reserving calls for the instance that sent it, when both
//! limits have room to spare: a **band** of the rate limit (its theoretical arrival time moved on
//! by `tokens` emission intervals, as if that many calls had come at once) and **units** of the
//! day's quota (the counter moved on by `units`). The instance then admits calls from the lease
//! as the one-request script would have: a call at `now` takes the band's next interval (from
//! `max(start, now)`, which is GCRA's own step) and one unit. A call the lease cannot take (the
//! band or the units used up, another day, the app's limits changed) goes to Redis, and hands
//! back what the lease still holds in the same run: the band from its start to its end, and the
//! units left. For one instance this leaves Redis exactly where one run per call would have
//! left it, so every call gets the answer it would have got ([`super::tests`] checks it).
//!
//! Across instances a lease is a reservation: calls another instance holds are not Redis's to
//! give. A call that finds the day's quota spent while another instance holds calls of it is
//! held back (nothing charged) and recalls them: every instance hands back at once its lease of
//! the group a recall names, and the call tries again, so the day's every call is admitted
//! somewhere. After two seconds without an answer (the holder stopped, or cut off from Redis)
//! the call is refused, the holders' reservations are dropped from the record so that no later
//! call waits for them, and their units stay counted for the day (given back if the holder
//! ever hands its lease back). A band goes back only while nobody was charged past it (else it
//! stays spent, at most [`BAND_US`] of the rate limit). Nothing is ever admitted past a limit.
//! A lease is also handed back as soon as it is [`Lease::idle`], so what it holds from the
//! others lasts about a second past its instance's last call.

use std::num::NonZeroUsize;

use lru::LruCache;

/// How long a lease's band of the rate limit lasts when its app is far from the limit: long
/// enough that a busy app asks Redis a few times a second, short enough that the band another
/// instance cannot use is small.
pub(super) const BAND_US: u64 = 250_000;
/// The most units one lease asks for, and the first grant's size.
const MOST_UNITS: u64 = 4096;
const FIRST_UNITS: u64 = 8;
/// Users with a fresh visit this instance remembers per app.
const FRESH_USERS: NonZeroUsize = NonZeroUsize::new(256).expect("non-zero");

/// The rate limit's parameters and the day's limit a lease was granted under: emission
/// interval (µs), burst, calls per day.
pub(super) type Limits = (u64, u32, u32);

/// What a run reserved for its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Grant {
    pub units: u64,
    /// The band of the rate limit: from `start` to `end`, in µs.
    pub start: u64,
    pub end: u64,
    /// The day's counter after the reservation.
    pub top: u64,
}

/// Calls reserved for this instance, of one app, API and day.
#[derive(Debug)]
pub(super) struct Lease {
    day: u32,
    limits: Limits,
    /// Where it is handed back to.
    keys: Keys,
    /// The band still held: from the next call's arrival time to the band's end (µs).
    start: u64,
    end: u64,
    units: u64,
    granted: u64,
    top: u64,
    /// When it last admitted a call, or was granted (µs).
    touched: u64,
}

/// What a lease hands back when a run in Redis takes over from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Release {
    pub keys: Keys,
    /// µs of the rate limit's band not used, up to its `end`.
    pub band: u64,
    pub end: u64,
    pub units: u64,
}

/// A lease's keys: the rate limit, the day's counter and this instance's reservations of that
/// day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Keys {
    pub rate: String,
    pub day: String,
    pub held: String,
}

impl Lease {
    pub fn new(grant: Grant, day: u32, limits: Limits, keys: Keys) -> Self {
        Lease {
            day,
            limits,
            keys,
            start: grant.start,
            end: grant.end,
            units: grant.units,
            granted: grant.units,
            top: grant.top,
            touched: grant.start,
        }
    }

    /// Admits a call at `now_us` under `limits` on `day`, as the one-request script would with
    /// Redis holding this lease's reservation: the day's count including this call, or None
    /// when the lease cannot take it.
    pub fn take(&mut self, now_us: u64, limits: Limits, day: u32) -> Option<u64> {
        if self.day != day || self.limits != limits || self.units == 0 {
            return None;
        }
        let at = self.start.max(now_us);
        let next = at.checked_add(limits.0)?;
        if next > self.end {
            return None;
        }
        self.start = next;
        self.units -= 1;
        self.touched = at;
        Some(self.top - self.units)
    }

    /// Whether the lease has nothing more to give at `now_us` (its band over), or has not been
    /// used for `idle_us`: held on, it would keep its units from other instances.
    pub fn idle(&self, now_us: u64, idle_us: u64) -> bool {
        self.end <= now_us || now_us.saturating_sub(self.touched) >= idle_us
    }

    /// Units not yet used, when the lease is of `day`.
    pub fn units_of(&self, day: u32) -> u64 {
        if self.day == day { self.units } else { 0 }
    }

    /// Whether every unit was used (the next lease may be larger).
    fn spent(&self) -> bool {
        self.units == 0
    }

    pub fn release(self) -> Release {
        Release {
            band: self.end.saturating_sub(self.start),
            end: self.end,
            units: self.units,
            keys: self.keys,
        }
    }
}

/// How many calls the next grant of a group asks for: doubled after a lease whose units were
/// all used, halved after one that handed back half of them or more.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizing {
    units: u64,
}

impl Default for Sizing {
    fn default() -> Self {
        Sizing { units: FIRST_UNITS }
    }
}

impl Sizing {
    /// Learns from `lease`, as it is handed back.
    pub fn learn(&mut self, lease: &Lease) {
        if lease.spent() {
            self.units = (self.units * 2).min(MOST_UNITS);
        } else if lease.units * 2 >= lease.granted {
            self.units = (self.units / 2).max(1);
        }
    }

    /// Tokens of the rate limit and units of the quota to ask for, under emission interval
    /// `interval_us`: a band of at least [`BAND_US`], and never fewer tokens than units.
    pub fn want(&self, interval_us: u64) -> (u64, u64) {
        let band = BAND_US.div_ceil(interval_us.max(1));
        (band.max(self.units), self.units)
    }
}

/// Users of one app known to have a fresh visit, with the visit (s): a visit only ever moves
/// later, so a user fresh at `last` stays fresh until `last + ttl` whatever other instances
/// record.
pub(super) struct Fresh {
    users: LruCache<Box<str>, u64>,
}

impl Default for Fresh {
    fn default() -> Self {
        Fresh {
            users: LruCache::new(FRESH_USERS),
        }
    }
}

impl Fresh {
    /// Whether `openid` is known fresh at `now_secs` ([`crate::limits::is_fresh`], the
    /// script's rule).
    pub fn is_fresh(&mut self, openid: &str, now_secs: u64, ttl: std::time::Duration) -> bool {
        let last = self.users.get(openid).copied();
        crate::limits::is_fresh(last, now_secs, ttl)
    }

    pub fn remember(&mut self, openid: &str, last: u64) {
        match self.users.get_mut(openid) {
            Some(held) => *held = (*held).max(last),
            None => {
                self.users.put(openid.into(), last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lease(units: u64, start: u64, end: u64) -> Lease {
        let grant = Grant {
            units,
            start,
            end,
            top: 100,
        };
        let keys = Keys {
            rate: "r".into(),
            day: "d".into(),
            held: "h".into(),
        };
        Lease::new(grant, 7, (10, 5, 1000), keys)
    }

    /// A call takes the band's next interval from `max(start, now)` and a unit; a band already
    /// behind `now` is skipped, as GCRA forgets time nobody used; the count is the day's.
    #[test]
    fn a_lease_admits_as_gcra_steps() {
        let mut l = lease(3, 1000, 1030);
        assert_eq!(l.take(1000, (10, 5, 1000), 7), Some(98));
        assert_eq!(l.take(1005, (10, 5, 1000), 7), Some(99));
        // The band's last interval starts at 1020; a call at 1025 would end past 1030.
        assert_eq!(l.take(1025, (10, 5, 1000), 7), None);
        assert_eq!(l.take(1020, (10, 5, 1000), 7), Some(100));
        assert_eq!(l.take(1020, (10, 5, 1000), 7), None, "no unit left");
        let r = l.release();
        assert_eq!((r.band, r.units), (0, 0));
    }

    #[test]
    fn a_lease_is_idle_once_its_band_is_over_or_unused_for_a_while() {
        let mut l = lease(3, 1000, 1030);
        assert!(!l.idle(1000, 100));
        assert!(l.idle(1100, 100), "unused since it was granted");
        assert_eq!(l.take(1025 - 10, (10, 5, 1000), 7), Some(98));
        assert!(!l.idle(1029, 100));
        assert!(l.idle(1030, 100), "the band is over");
        let long = lease(3, 1000, 5000);
        assert!(!long.idle(1099, 100));
        assert!(long.idle(1100, 100));
    }

    #[test]
    fn another_day_or_other_limits_are_not_the_lease_s() {
        let mut l = lease(3, 1000, 1030);
        assert_eq!(l.take(1000, (10, 5, 1000), 8), None);
        assert_eq!(l.take(1000, (10, 6, 1000), 7), None);
        assert_eq!(l.units_of(8), 0);
        assert_eq!(l.units_of(7), 3);
        let r = l.release();
        assert_eq!((r.band, r.units), (30, 3));
    }

    #[test]
    fn sizing_grows_with_spent_leases_and_shrinks_with_returned_ones() {
        let mut s = Sizing::default();
        assert_eq!(s.want(1), (BAND_US, FIRST_UNITS));
        assert_eq!(s.want(15_000), (FIRST_UNITS.max(17), FIRST_UNITS));
        let mut spent = lease(1, 0, 10);
        spent.take(0, (10, 5, 1000), 7).unwrap();
        s.learn(&spent);
        assert_eq!(s.want(15_000).1, 2 * FIRST_UNITS);
        s.learn(&lease(4, 0, 40));
        assert_eq!(s.want(15_000).1, FIRST_UNITS);
        for _ in 0..20 {
            s.learn(&spent);
        }
        assert_eq!(s.want(1).1, MOST_UNITS);
    }

    #[test]
    fn a_user_stays_fresh_until_the_visit_is_ttl_old() {
        let mut f = Fresh::default();
        let ttl = std::time::Duration::from_secs(50);
        assert!(!f.is_fresh("u", 100, ttl));
        f.remember("u", 100);
        assert!(f.is_fresh("u", 149, ttl));
        assert!(!f.is_fresh("u", 150, ttl));
        f.remember("u", 90);
        assert!(
            !f.is_fresh("u", 150, ttl),
            "an older visit read later changes nothing"
        );
    }
}
