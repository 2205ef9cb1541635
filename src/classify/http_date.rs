//! HTTP-date (RFC 9110, section 5.6.7): the preferred IMF-fixdate and the two obsolete forms a recipient must
//! still accept, RFC 850 and asctime, read into seconds since the Unix epoch.
//!
//! Written here rather than taken from a date crate because the RFC's rules are not a date library's: a date
//! before 1970 is still a date (in the past), a leap second `:60` is allowed, and a two-digit RFC 850 year is
//! resolved against the current time (more than 50 years ahead means the century before).

use std::time::{SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;

/// Why a value is not an HTTP-date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateError {
    /// Not one of the three forms.
    Syntax,
    /// The right form, but a day or time that does not exist (31 April, 25:00).
    Impossible,
}

/// Seconds since the Unix epoch of an HTTP-date; negative before 1970. `now` resolves a two-digit RFC 850
/// year. The value must be exactly one of the three forms (HTTP-date is case-sensitive); the day name is
/// checked for its form, not against the date.
pub(crate) fn parse(value: &str, now: SystemTime) -> Result<i64, DateError> {
    let s = value.as_bytes();
    if let Some(date) = imf_fixdate(s) {
        return date.seconds();
    }
    if let Some(mut date) = rfc850(s) {
        date.year = resolve_two_digit_year(&date, unix_seconds(now))?;
        return date.seconds();
    }
    if let Some(date) = asctime(s) {
        return date.seconds();
    }
    Err(DateError::Syntax)
}

/// The fields of a date as written.
#[derive(Debug, Clone, Copy)]
struct Fields {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

impl Fields {
    fn seconds(&self) -> Result<i64, DateError> {
        let days_in_month = match self.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if is_leap(self.year) => 29,
            2 => 28,
            _ => return Err(DateError::Impossible),
        };
        // `second` may be 60: a leap second (RFC 9110 allows 00:00:00 to 23:59:60).
        if !(1..=days_in_month).contains(&self.day) || self.hour > 23 || self.minute > 59 || self.second > 60 {
            return Err(DateError::Impossible);
        }
        let days = days_from_civil(self.year, self.month, self.day);
        Ok(days * DAY + self.hour * 3600 + self.minute * 60 + self.second)
    }
}

/// RFC 9110: a recipient of an RFC 850 date "MUST interpret a timestamp that appears to be more than 50 years
/// in the future as representing the most recent year in the past that had the same last two digits".
fn resolve_two_digit_year(date: &Fields, now: i64) -> Result<i64, DateError> {
    let (now_year, now_month, now_day) = civil_from_days(now.div_euclid(DAY));
    // 29 February fifty years on may not exist: the 28th is the same limit to within a day.
    let leap_day_gone = now_month == 2 && now_day == 29 && !is_leap(now_year + 50);
    let limit = Fields { year: now_year + 50, month: now_month, day: now_day - i64::from(leap_day_gone), ..*date };
    let limit = Fields { hour: 0, minute: 0, second: 0, ..limit }.seconds()? + now.rem_euclid(DAY);
    let century = now_year.div_euclid(100) * 100;
    // The latest of the candidate years whose timestamp is not more than 50 years ahead.
    for year in [century + 100 + date.year, century + date.year, century - 100 + date.year] {
        if (Fields { year, ..*date }).seconds().is_ok_and(|t| t <= limit) {
            return Ok(year);
        }
    }
    Ok(century - 100 + date.year)
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2),
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn imf_fixdate(s: &[u8]) -> Option<Fields> {
    let [d0, d1, d2, b',', b' ', rest @ ..] = s else { return None };
    day_name(&[*d0, *d1, *d2])?;
    let [a, b, b' ', m0, m1, m2, b' ', y0, y1, y2, y3, b' ', time @ ..] = rest else { return None };
    let (hour, minute, second) = time_gmt(time)?;
    Some(Fields {
        year: digits(&[*y0, *y1, *y2, *y3])?,
        month: month(&[*m0, *m1, *m2])?,
        day: digits(&[*a, *b])?,
        hour,
        minute,
        second,
    })
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`; the year is two digits until [`resolve_two_digit_year`].
fn rfc850(s: &[u8]) -> Option<Fields> {
    let comma = s.iter().position(|&b| b == b',')?;
    let (name, rest) = s.split_at(comma);
    long_day_name(name)?;
    let [b',', b' ', a, b, b'-', m0, m1, m2, b'-', y0, y1, b' ', time @ ..] = rest else { return None };
    let (hour, minute, second) = time_gmt(time)?;
    Some(Fields {
        year: digits(&[*y0, *y1])?,
        month: month(&[*m0, *m1, *m2])?,
        day: digits(&[*a, *b])?,
        hour,
        minute,
        second,
    })
}

/// `Sun Nov  6 08:49:37 1994`
fn asctime(s: &[u8]) -> Option<Fields> {
    let [d0, d1, d2, b' ', m0, m1, m2, b' ', a, b, b' ', h0, h1, b':', n0, n1, b':', s0, s1, b' ', y0, y1, y2, y3] = s
    else {
        return None;
    };
    day_name(&[*d0, *d1, *d2])?;
    let day = if *a == b' ' { digits(&[*b])? } else { digits(&[*a, *b])? };
    Some(Fields {
        year: digits(&[*y0, *y1, *y2, *y3])?,
        month: month(&[*m0, *m1, *m2])?,
        day,
        hour: digits(&[*h0, *h1])?,
        minute: digits(&[*n0, *n1])?,
        second: digits(&[*s0, *s1])?,
    })
}

/// `08:49:37 GMT`, the end of IMF-fixdate and RFC 850 dates.
fn time_gmt(s: &[u8]) -> Option<(i64, i64, i64)> {
    let [h0, h1, b':', n0, n1, b':', s0, s1, b' ', b'G', b'M', b'T'] = s else { return None };
    Some((digits(&[*h0, *h1])?, digits(&[*n0, *n1])?, digits(&[*s0, *s1])?))
}

fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
}

fn day_name(s: &[u8; 3]) -> Option<()> {
    [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"].contains(&s).then_some(())
}

fn long_day_name(s: &[u8]) -> Option<()> {
    const NAMES: [&[u8]; 7] = [b"Monday", b"Tuesday", b"Wednesday", b"Thursday", b"Friday", b"Saturday", b"Sunday"];
    NAMES.contains(&s).then_some(())
}

fn month(s: &[u8; 3]) -> Option<i64> {
    const NAMES: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    NAMES.iter().position(|m| *m == s).map(|i| i as i64 + 1)
}

pub(crate) fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// 1994-11-06T08:49:37Z, RFC 9110's example.
    const EXAMPLE: i64 = 784_111_777;

    #[test]
    fn the_three_forms_of_the_rfc_example() {
        let now = at(1_700_000_000);
        for form in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse(form, now), Ok(EXAMPLE), "{form}");
        }
    }

    #[test]
    fn malformed_and_impossible_dates() {
        let now = at(1_700_000_000);
        let table = [
            ("sun, 06 Nov 1994 08:49:37 GMT", DateError::Syntax),
            ("Sun, 06 nov 1994 08:49:37 GMT", DateError::Syntax),
            ("Sun, 06 Nov 1994 08:49:37 UTC", DateError::Syntax),
            ("Sun,  6 Nov 1994 08:49:37 GMT", DateError::Syntax),
            ("Sun, 06 Nov 94 08:49:37 GMT", DateError::Syntax),
            ("Sun, 06 Nov 1994 8:49:37 GMT", DateError::Syntax),
            ("Sunday, 06-Nov-1994 08:49:37 GMT", DateError::Syntax),
            ("Sun Nov 6 08:49:37 1994", DateError::Syntax),
            ("2024-01-01T00:00:00Z", DateError::Syntax),
            ("", DateError::Syntax),
            ("Thu, 31 Apr 2025 00:00:00 GMT", DateError::Impossible),
            ("Thu, 29 Feb 2025 00:00:00 GMT", DateError::Impossible),
            ("Thu, 01 Jan 2025 24:00:00 GMT", DateError::Impossible),
            ("Thu, 01 Jan 2025 23:60:00 GMT", DateError::Impossible),
            ("Thu, 00 Jan 2025 23:00:00 GMT", DateError::Impossible),
        ];
        for (value, expected) in table {
            assert_eq!(parse(value, now), Err(expected), "{value:?}");
        }
        // A leap year's 29 February and a leap second exist.
        assert!(parse("Thu, 29 Feb 2024 00:00:00 GMT", now).is_ok());
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:60 GMT", now), Ok(EXAMPLE + 23));
    }

    #[test]
    fn dates_outside_the_unix_era_are_dates() {
        let now = at(1_700_000_000);
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT", now), Ok(0));
        assert_eq!(parse("Wed, 31 Dec 1969 23:59:59 GMT", now), Ok(-1));
        assert_eq!(parse("Mon, 01 Jan 0001 00:00:00 GMT", now), Ok(-62_135_596_800));
        assert_eq!(parse("Fri, 31 Dec 9999 23:59:59 GMT", now), Ok(253_402_300_799));
    }

    #[test]
    fn two_digit_years_are_resolved_against_now() {
        let year_of = |value: &str, now: SystemTime| {
            let t = parse(value, now).unwrap();
            civil_from_days(t.div_euclid(DAY)).0
        };
        let day = |y, m, d| at((days_from_civil(y, m, d) * DAY) as u64);
        let in_2026 = day(2026, 5, 28);
        // RFC 9110: more than 50 years ahead is the century before; 50 years or less ahead stays ahead.
        assert_eq!(year_of("Monday, 01-Jan-76 00:00:00 GMT", in_2026), 2076);
        assert_eq!(year_of("Monday, 01-Jun-76 00:00:00 GMT", in_2026), 1976);
        assert_eq!(year_of("Monday, 01-Jan-26 00:00:00 GMT", in_2026), 2026);
        assert_eq!(year_of("Monday, 01-Jan-94 00:00:00 GMT", in_2026), 1994);
        assert_eq!(year_of("Monday, 01-Jan-00 00:00:00 GMT", in_2026), 2000);
        // Near the end of a century the next one is closer.
        let in_2090 = day(2090, 1, 1);
        assert_eq!(year_of("Monday, 01-Jan-01 00:00:00 GMT", in_2090), 2101);
        assert_eq!(year_of("Monday, 01-Jan-41 00:00:00 GMT", in_2090), 2041);
    }

    #[test]
    fn imf_fixdates_agree_with_a_formatter() {
        // Spread over 1970..=9999, with odd seconds.
        let mut t: u64 = 0;
        while t < 253_402_300_799 {
            let formatted = httpdate::fmt_http_date(at(t));
            assert_eq!(parse(&formatted, at(0)), Ok(t as i64), "{formatted}");
            t = t * 3 / 2 + 86_399 + 37;
        }
    }

    #[test]
    fn civil_days_round_trip() {
        for days in [-800_000, -1, 0, 1, 365, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }
}
