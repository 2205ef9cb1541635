//! `Retry-After`: a server's hint of how long to wait (RFC 9110, section 10.2.3).
//!
//! `Retry-After = HTTP-date / delay-seconds`, where `delay-seconds = 1*DIGIT`. Anything else (`soon`, `-100`,
//! `1.5`, an empty value, a date that does not exist) is not a hint. Classification drops such a value and says
//! so in the failure's notes, as the AWS SDKs ignore it, rather than refusing the whole failure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::ClassifyError;
use super::excerpt::quote;
use super::http_date::{self, DateError};

/// The longest hint kept: 2³¹ seconds (about 68 years), the value RFC 9111 (section 1.2.2) has a cache use for
/// delta-seconds it cannot represent. A policy's `max_hint` clamps it much further.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(1 << 31);

/// How many characters of an unreadable value errors and notes quote.
const QUOTED: usize = 64;

/// Parses a `Retry-After` value: delay-seconds (digits only), or an HTTP-date (IMF-fixdate, or the obsolete
/// RFC 850 and asctime forms) resolved against `now`. A date in the past means no wait; a wait longer than
/// [`MAX_RETRY_AFTER`] is that long. Surrounding whitespace is not part of the value.
///
/// ```
/// use lightflow_remedy::classify::retry_after;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// assert_eq!(retry_after("120", now)?, Duration::from_secs(120));
/// assert_eq!(retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now)?, Duration::from_secs(60));
/// assert_eq!(retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now)?, Duration::from_secs(60));
/// assert_eq!(retry_after("Sun Nov  6 08:48:37 1994", now)?, Duration::ZERO); // in the past
/// for bad in ["soon", "-100", "1.5", "", "+5"] {
///     assert!(retry_after(bad, now).is_err(), "{bad}");
/// }
/// # Ok::<(), lightflow_remedy::ClassifyError>(())
/// ```
pub fn retry_after(value: &str, now: SystemTime) -> Result<Duration, ClassifyError> {
    parse(value, now).map_err(|reason| ClassifyError::InvalidRetryAfter { value: quote(value, QUOTED), reason })
}

/// The note a failure carries when its Retry-After value was dropped.
pub(crate) fn ignored_note(value: &str, reason: &str) -> String {
    format!("Retry-After `{}` ignored: {reason}", quote(value, QUOTED))
}

/// The wait, or why `value` is not a Retry-After value.
pub(crate) fn parse(value: &str, now: SystemTime) -> Result<Duration, &'static str> {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if value.is_empty() {
        return Err("the value is empty");
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits that overflow are still a (very long) wait.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Ok(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    match http_date::parse(value, now) {
        Ok(at) => Ok(until(at, now)),
        Err(DateError::Impossible) => Err("an HTTP-date with a day or time that does not exist"),
        Err(DateError::Syntax) => Err(not_a_number_or_date(value)),
    }
}

/// What is wrong with a value that is neither form, in the words that help most.
fn not_a_number_or_date(value: &str) -> &'static str {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if let Some(rest) = value.strip_prefix('-')
        && numeric(rest)
    {
        return "a negative number: delay-seconds are whole seconds, 0 or more";
    }
    if let Some(rest) = value.strip_prefix('+')
        && numeric(rest)
    {
        return "a signed number: delay-seconds are digits only";
    }
    if numeric(value) {
        return "a fraction: delay-seconds are whole seconds";
    }
    "neither delay-seconds (digits only) nor an HTTP-date (IMF-fixdate, RFC 850 or asctime)"
}

/// From `now` until `at` (seconds since the epoch): nothing for a time in the past, at most [`MAX_RETRY_AFTER`].
fn until(at: i64, now: SystemTime) -> Duration {
    let now_nanos: i128 = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let wait = i128::from(at) * 1_000_000_000 - now_nanos;
    if wait <= 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX)).min(MAX_RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9110_values() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        let table: &[(&str, Result<Duration, &str>)] = &[
            ("0", Ok(Duration::ZERO)),
            ("120", Ok(Duration::from_secs(120))),
            ("007", Ok(Duration::from_secs(7))),
            (" 30\t", Ok(Duration::from_secs(30))),
            ("99999999999999999999999", Ok(MAX_RETRY_AFTER)),
            (&later, Ok(Duration::from_secs(90))),
            (&earlier, Ok(Duration::ZERO)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Ok(MAX_RETRY_AFTER)),
            ("Thu, 01 Jan 1900 00:00:00 GMT", Ok(Duration::ZERO)),
            ("", Err("empty")),
            ("   ", Err("empty")),
            ("-100", Err("negative")),
            ("-1.5", Err("negative")),
            ("+5", Err("signed")),
            ("1.5", Err("fraction")),
            ("1e3", Err("neither")),
            ("soon", Err("neither")),
            ("120 seconds", Err("neither")),
            ("Sat, 31 Feb 2026 00:00:00 GMT", Err("does not exist")),
            ("Sun, 06 Nov 99999 08:49:37 GMT", Err("neither")),
            ("2026-01-01T00:00:00Z", Err("neither")),
        ];
        for (value, expected) in table {
            match (parse(value, now), expected) {
                (Ok(d), Ok(e)) => assert_eq!(d, *e, "{value:?}"),
                (Err(reason), Err(words)) => assert!(reason.contains(words), "{value:?}: {reason}"),
                (got, _) => panic!("{value:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn an_error_quotes_the_value_on_one_bounded_line() {
        let long = format!("x{}\ny", "z".repeat(500));
        let err = retry_after(&long, UNIX_EPOCH).unwrap_err().to_string();
        assert!(!err.contains('\n') && err.chars().count() < 300, "{err}");
        assert!(ignored_note("soon", "nope").starts_with("Retry-After `soon` ignored: nope"));
    }
}
