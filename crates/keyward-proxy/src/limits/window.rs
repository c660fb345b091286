//! Fixed-window counters in one atomic word, and the UTC calendar of budgets.
//!
//! A [`Window`] keeps the window's tag (its index, truncated) in the high bits and the count
//! in the low `BITS`, so "move to the new window and count in it" is one compare-and-swap:
//! lock-free and exact. A count for a window other than the current one reads as zero.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Datelike, NaiveDate, TimeZone, Utc};

/// Count bits of per-minute windows: up to 1.1e12 requests or tokens per minute; the 24 tag
/// bits wrap after 31 years of minutes.
pub const MINUTE_BITS: u32 = 40;
/// Count bits of spend windows: up to 2.8e14 units of 1e-8 USD (2.8 million USD) per day or
/// month; the 16 tag bits wrap after 179 years of days.
pub const SPEND_BITS: u32 = 48;

/// One counter of one window at a time (see the module documentation).
#[derive(Debug, Default)]
pub struct Window<const BITS: u32> {
    packed: AtomicU64,
}

impl<const BITS: u32> Window<BITS> {
    const MASK: u64 = (1 << BITS) - 1;

    fn tag(window: u64) -> u64 {
        window << BITS
    }

    fn count_in(packed: u64, window: u64) -> u64 {
        if packed & !Self::MASK == Self::tag(window) {
            packed & Self::MASK
        } else {
            0
        }
    }

    /// The count of `window` (zero if the counter holds another window).
    pub fn get(&self, window: u64) -> u64 {
        Self::count_in(self.packed.load(Ordering::Acquire), window)
    }

    /// Set the count of `window` (loading what was counted before a restart).
    pub fn set(&self, window: u64, count: u64) {
        self.packed
            .store(Self::tag(window) | count.min(Self::MASK), Ordering::Release);
    }

    /// Count `amount` in `window` if the window is not yet full and stays within `limit`;
    /// otherwise count nothing.
    pub fn try_add(&self, window: u64, amount: u64, limit: u64) -> bool {
        self.update(window, |count| {
            (count < limit && count.saturating_add(amount) <= limit).then(|| count + amount)
        })
    }

    /// Add to the count of `window`, if it is still the current one (beyond the limit too:
    /// a call that used more than it reserved).
    pub fn add(&self, window: u64, amount: u64) {
        self.adjust(window, |count| count.saturating_add(amount));
    }

    /// Take back from the count of `window`, if it is still the current one.
    pub fn sub(&self, window: u64, amount: u64) {
        self.adjust(window, |count| count.saturating_sub(amount));
    }

    /// Replace `reserved` by `used` in the count of `window`, if it is still the current one.
    pub fn correct(&self, window: u64, reserved: u64, used: u64) {
        if used >= reserved {
            self.add(window, used - reserved);
        } else {
            self.sub(window, reserved - used);
        }
    }

    fn adjust(&self, window: u64, f: impl Fn(u64) -> u64) {
        let mut packed = self.packed.load(Ordering::Acquire);
        while packed & !Self::MASK == Self::tag(window) {
            let next = Self::tag(window) | f(packed & Self::MASK).min(Self::MASK);
            match self.packed.compare_exchange_weak(
                packed,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => packed = actual,
            }
        }
    }

    fn update(&self, window: u64, f: impl Fn(u64) -> Option<u64>) -> bool {
        let mut packed = self.packed.load(Ordering::Acquire);
        loop {
            let Some(count) = f(Self::count_in(packed, window)) else {
                return false;
            };
            let next = Self::tag(window) | count.min(Self::MASK);
            match self.packed.compare_exchange_weak(
                packed,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => packed = actual,
            }
        }
    }
}

/// The UTC day and month of an instant, and how long until each ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    /// Days since 1970-01-01.
    pub day: u64,
    /// Months since 1970-01.
    pub month: u64,
    pub secs_to_next_day: u64,
    pub secs_to_next_month: u64,
}

impl Calendar {
    pub fn now() -> Self {
        Self::at(Utc::now())
    }

    pub fn at(now: chrono::DateTime<Utc>) -> Self {
        let secs = u64::try_from(now.timestamp()).unwrap_or(0);
        let (year, month0) = (now.year(), now.month0());
        let months = u64::try_from(i64::from(year - 1970) * 12 + i64::from(month0)).unwrap_or(0);
        let (next_year, next_month) = if month0 == 11 {
            (year + 1, 1)
        } else {
            (year, month0 + 2)
        };
        let next_month_start = NaiveDate::from_ymd_opt(next_year, next_month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Utc.from_utc_datetime(&t).timestamp())
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(secs + 1);
        Self {
            day: secs / 86_400,
            month: months,
            secs_to_next_day: 86_400 - secs % 86_400,
            secs_to_next_month: next_month_start.saturating_sub(secs).max(1),
        }
    }

    /// Midnight UTC starting the current day, and the first of the current month.
    pub fn starts(now: chrono::DateTime<Utc>) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
        let day = now.date_naive();
        let month = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap_or(day);
        let midnight = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map_or(now, |t| Utc.from_utc_datetime(&t))
        };
        (midnight(day), midnight(month))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_window_and_never_past_the_limit() {
        let w = Window::<MINUTE_BITS>::default();
        assert!(w.try_add(5, 3, 5));
        assert!(w.try_add(5, 2, 5));
        assert!(!w.try_add(5, 1, 5), "full");
        assert!(
            !w.try_add(5, 0, 5),
            "a full window admits nothing, not even zero"
        );
        assert_eq!(w.get(5), 5);
        assert_eq!(w.get(6), 0, "another window reads as empty");
        assert!(w.try_add(6, 1, 5), "the next window starts over");
        w.sub(5, 1);
        assert_eq!(w.get(6), 1, "taking back from a past window does nothing");
        w.add(6, 10);
        assert_eq!(w.get(6), 11, "settling may go past the limit");
        w.sub(6, 20);
        assert_eq!(w.get(6), 0);
        assert!(
            !w.try_add(7, 6, 5),
            "a demand larger than the limit never fits"
        );
        assert!(!w.try_add(7, 0, 0), "a zero limit admits nothing");
        w.set(8, 4);
        assert_eq!(w.get(8), 4);
    }

    #[test]
    fn contended_adds_are_exact() {
        let w = std::sync::Arc::new(Window::<MINUTE_BITS>::default());
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let w = w.clone();
                    s.spawn(move || (0..1000).filter(|_| w.try_add(1, 1, 2500)).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 2500);
        assert_eq!(w.get(1), 2500);
    }

    #[test]
    fn calendar_in_utc() {
        let t = Utc.with_ymd_and_hms(2025, 12, 31, 23, 59, 30).unwrap();
        let c = Calendar::at(t);
        assert_eq!(c.secs_to_next_day, 30);
        assert_eq!(c.secs_to_next_month, 30);
        assert_eq!(c.month, 55 * 12 + 11);
        let next = Calendar::at(t + chrono::Duration::seconds(31));
        assert_eq!((next.day, next.month), (c.day + 1, c.month + 1));
        let (day, month) = Calendar::starts(t);
        assert_eq!(day, Utc.with_ymd_and_hms(2025, 12, 31, 0, 0, 0).unwrap());
        assert_eq!(month, Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap());
    }
}
