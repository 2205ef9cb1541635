//! RFC 3339 timestamps, as LightFlow writes dates in callbacks (`2019-02-14T20:32:48.898Z`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http_date::{days_from_civil, is_leap};

/// The time an RFC 3339 timestamp names: `YYYY-MM-DDThh:mm:ss`, an optional fraction, and `Z` or an offset
/// (`+01:00`); `t`, `z` and a space for `T` are accepted too. `None` for anything else, including a
/// timestamp without a zone (it names no single time).
pub(crate) fn parse(text: &str) -> Option<SystemTime> {
    let s = text.trim().as_bytes();
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, sep, h0, h1, b':', n0, n1, b':', s0, s1, rest @ ..] = s else {
        return None;
    };
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (digits(&[*y0, *y1, *y2, *y3])?, digits(&[*m0, *m1])?, digits(&[*d0, *d1])?);
    let (hour, minute, second) = (digits(&[*h0, *h1])?, digits(&[*n0, *n1])?, digits(&[*s0, *s1])?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // The fraction, to nanoseconds (digits past the ninth are dropped).
    let (nanos, zone) = match rest {
        [b'.', fraction @ ..] => {
            let len = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if len == 0 {
                return None;
            }
            let kept = &fraction[..len.min(9)];
            let nanos = digits(kept)? * 10i64.pow(9 - kept.len() as u32);
            (nanos, &fraction[len..])
        }
        zone => (0, zone),
    };
    let offset = match zone {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), oh0, oh1, b':', om0, om1] => {
            let (oh, om) = (digits(&[*oh0, *oh1])?, digits(&[*om0, *om1])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    // The fraction counts forward from the whole second, before 1970 too.
    let whole = if seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs()))
    };
    whole?.checked_add(Duration::from_nanos(nanos as u64))
}

fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64, nanos: u32) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::new(seconds, nanos))
    }

    #[test]
    fn rfc_3339_timestamps() {
        let table = [
            ("2019-02-14T20:32:48.898Z", at(1_550_176_368, 898_000_000)),
            ("2019-02-14T20:32:48Z", at(1_550_176_368, 0)),
            ("2019-02-14t20:32:48z", at(1_550_176_368, 0)),
            ("2019-02-14 20:32:48Z", at(1_550_176_368, 0)),
            ("2019-02-14T21:32:48.5+01:00", at(1_550_176_368, 500_000_000)),
            ("2019-02-14T19:32:48-01:00", at(1_550_176_368, 0)),
            ("2019-02-14T20:32:48.1234567891Z", at(1_550_176_368, 123_456_789)),
            ("1970-01-01T00:00:00Z", at(0, 0)),
            ("2019-02-14T20:32:48", None),
            ("2019-02-14T20:32:48.Z", None),
            ("2019-02-30T20:32:48Z", None),
            ("2019-13-01T20:32:48Z", None),
            ("2019-02-14T24:00:00Z", None),
            ("2019-02-14T20:32:48+0100", None),
            ("14/02/2019", None),
            ("", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse(text), expected, "{text}");
        }
        assert!(parse("1969-12-31T23:59:59.5Z").is_some());
    }
}
