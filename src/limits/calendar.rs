//! Quota days and months in a fixed offset from UTC (China has no daylight saving, so a fixed
//! +8 is exact). Pure arithmetic on Unix seconds.

/// Days since 1970-01-01 in the offset's local calendar.
pub fn day_number(now_secs: u64, offset_hours: i8) -> u32 {
    let local = now_secs as i64 + i64::from(offset_hours) * 3600;
    local.div_euclid(86_400).max(0) as u32
}

/// A month id (`year * 12 + month - 1`) for a day number.
pub fn month_number(day: u32) -> u32 {
    let (y, m, _) = civil_from_days(i64::from(day));
    (y * 12 + (m as i64 - 1)).max(0) as u32
}

/// (year, month 1-12, day 1-31) for days since 1970-01-01 (proleptic Gregorian; the well-known
/// era-based algorithm: 400-year eras of 146,097 days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_420), (2025, 11, 28));
    }

    #[test]
    fn utc8_midnight_splits_days() {
        // 2024-11-28 00:00:00 UTC+8 is 2024-11-27 16:00:00 UTC = 1732723200.
        let midnight = 1_732_723_200;
        assert_eq!(day_number(midnight - 1, 8) + 1, day_number(midnight, 8));
        assert_eq!(day_number(midnight + 86_399, 8), day_number(midnight, 8));
        // The same instant is still the 27th in UTC.
        assert_eq!(day_number(midnight, 0), day_number(midnight - 1, 8));
    }

    #[test]
    fn months_roll_over() {
        // 2024-11-30 23:59:59 and 2024-12-01 00:00:00, UTC+8.
        let dec1 = 1_732_982_400;
        let nov = month_number(day_number(dec1 - 1, 8));
        let dec = month_number(day_number(dec1, 8));
        assert_eq!(dec, nov + 1);
        assert_eq!(
            civil_from_days(i64::from(day_number(dec1, 8))),
            (2024, 12, 1)
        );
    }
}
