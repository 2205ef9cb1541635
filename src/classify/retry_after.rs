//! `Retry-After`: a server's hint of how long to wait (RFC 9110, section 10.2.3).

use std::time::{Duration, SystemTime};

use super::error::ClassifyError;

/// Parses a `Retry-After` value: a whole number of seconds, or an HTTP date (a date in the past means now).
///
/// ```
/// use lightflow_remedy::classify::retry_after;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// assert_eq!(retry_after("120", now)?, Duration::from_secs(120));
/// assert_eq!(retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now)?, Duration::from_secs(60));
/// assert!(retry_after("soon", now).is_err());
/// # Ok::<(), lightflow_remedy::ClassifyError>(())
/// ```
pub fn retry_after(value: &str, now: SystemTime) -> Result<Duration, ClassifyError> {
    let trimmed = value.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        // A huge number of seconds is still a wait; it is clamped by the policy's `max_hint`.
        let seconds = trimmed.parse::<u64>().unwrap_or(u64::MAX);
        return Ok(Duration::from_secs(seconds));
    }
    let at =
        httpdate::parse_http_date(trimmed).map_err(|_| ClassifyError::InvalidRetryAfter { value: value.to_owned() })?;
    Ok(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_dates_resolve_against_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(retry_after(&later, now).unwrap(), Duration::from_secs(90));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after(&earlier, now).unwrap(), Duration::ZERO);
        assert_eq!(retry_after("99999999999999999999999", now).unwrap(), Duration::from_secs(u64::MAX));
    }
}
