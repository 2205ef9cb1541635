//! Option maps: `#{ attempts: 3, initial: "1m", jitter: 0.25 }` into [`Backoff`].

use std::time::Duration;

use rhai::{Dynamic, Map};

use crate::decide::backoff::{Attempts, Backoff, Jitter};

/// The backoff options every waiting action accepts.
pub(crate) const BACKOFF_OPTIONS: &[&str] = &[
    "attempts",
    "initial",
    "multiplier",
    "max_delay",
    "min_delay",
    "max_elapsed",
    "jitter",
    "respect_retry_after",
    "max_hint",
    "give_up_on_repeat",
    "reconcile_first",
    "await_result",
];

/// The options of `republish`, besides the backoff options.
pub(crate) const REPUBLISH_OPTIONS: &[&str] = &["new_reference_id"];

/// The defaults of each waiting action.
pub(crate) fn defaults(action: &str) -> Backoff {
    match action {
        "resubmit" => Backoff { initial: Duration::ZERO, ..Backoff::default() }.attempts(1),
        "republish" => {
            Backoff { initial: Duration::from_secs(30), min_delay: Duration::from_secs(30), ..Backoff::default() }
                .attempts(1)
        }
        _ => Backoff::default(),
    }
}

/// Reads `map` into the defaults of `action`; `extra` names further keys the caller reads itself.
pub(crate) fn backoff(action: &str, map: &Map, extra: &[&str]) -> Result<Backoff, String> {
    let mut b = defaults(action);
    let (mut max_hint_given, mut max_delay_given) = (false, false);
    for (key, value) in map {
        let key = key.as_str();
        match key {
            "attempts" => b.attempts = attempts(value)?,
            "initial" => b.initial = duration(key, value)?,
            "multiplier" => b.multiplier = number(key, value)?,
            "max_delay" => {
                b.max_delay = duration(key, value)?;
                max_delay_given = true;
            }
            "min_delay" => b.min_delay = duration(key, value)?,
            "max_elapsed" => b.max_elapsed = Some(duration(key, value)?),
            "jitter" => b.jitter = jitter(value)?,
            "respect_retry_after" => b.respect_retry_after = boolean(key, value)?,
            "max_hint" => {
                b.max_hint = duration(key, value)?;
                max_hint_given = true;
            }
            "give_up_on_repeat" => b.give_up_on_repeat = boolean(key, value)?,
            "reconcile_first" => b.reconcile_first = boolean(key, value)?,
            "await_result" => b.await_result = Some(duration(key, value)?),
            _ if extra.contains(&key) => {}
            _ => {
                let known: Vec<&str> = BACKOFF_OPTIONS.iter().chain(extra).copied().collect();
                return Err(format!(
                    "unknown option `{key}` for {action}{} (options: {})",
                    super::suggest::did_you_mean(key, known.iter().copied()),
                    known.join(", ")
                ));
            }
        }
    }
    if !max_delay_given {
        // A default cap never cuts below what the script asked for explicitly.
        b.max_delay = b.max_delay.max(b.initial).max(b.min_delay);
    }
    if !max_hint_given {
        // A hint may always wait at least as long as the backoff itself would.
        b.max_hint = b.max_hint.max(b.max_delay);
    }
    b.validate().map_err(|e| format!("{action}: {e}"))?;
    Ok(b)
}

/// A boolean option.
pub(crate) fn boolean(key: &str, value: &Dynamic) -> Result<bool, String> {
    value.as_bool().map_err(|t| format!("option `{key}` must be true or false, found {t}"))
}

fn attempts(value: &Dynamic) -> Result<Attempts, String> {
    if let Ok(n) = value.as_int() {
        return match u32::try_from(n) {
            Ok(n) => Attempts::limited(n)
                .ok_or_else(|| "attempts must be at least 1 (a stage that never acts is a mistake; remove it)".into()),
            Err(_) if n < 0 => Err(format!("attempts must be at least 1, found {n}")),
            Err(_) => Err(format!("attempts must be at most {}, found {n}; use \"unlimited\"", u32::MAX)),
        };
    }
    match value.clone().into_immutable_string() {
        Ok(s) if s == "unlimited" => Ok(Attempts::Unlimited),
        Ok(s) => Err(format!("attempts must be a whole number or \"unlimited\", found \"{s}\"")),
        Err(t) => Err(format!("attempts must be a whole number or \"unlimited\", found {t}")),
    }
}

fn duration(key: &str, value: &Dynamic) -> Result<Duration, String> {
    let s = value
        .clone()
        .into_immutable_string()
        .map_err(|t| format!("option `{key}` must be a duration string such as \"30s\", found {t}"))?;
    let shown = super::sandbox::cut(s.trim(), super::limits::MAX_QUOTED);
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!("option `{key}`: cannot read \"{shown}\" as a duration ({e}); write e.g. \"500ms\", \"30s\", \"2m\"")
    })?;
    if d > Backoff::MAX_DURATION {
        return Err(format!(
            "option `{key}`: \"{shown}\" is longer than {}, the longest duration a policy may give",
            humantime::format_duration(Backoff::MAX_DURATION)
        ));
    }
    Ok(d)
}

fn number(key: &str, value: &Dynamic) -> Result<f64, String> {
    if let Ok(f) = value.as_float() {
        return Ok(f);
    }
    value.as_int().map(|i| i as f64).map_err(|t| format!("option `{key}` must be a number, found {t}"))
}

fn jitter(value: &Dynamic) -> Result<Jitter, String> {
    if let Ok(p) = number("jitter", value) {
        return Ok(Jitter::Proportional(p));
    }
    let text = value
        .clone()
        .into_immutable_string()
        .map_err(|t| format!("option `jitter` must be none, full, equal, decorrelated or a proportion, found {t}"))?;
    match text.as_str() {
        "none" => Ok(Jitter::None),
        "full" => Ok(Jitter::Full),
        "equal" => Ok(Jitter::Equal),
        "decorrelated" => Ok(Jitter::Decorrelated),
        other => other.parse::<f64>().map(Jitter::Proportional).map_err(|_| {
            format!("option `jitter`: \"{other}\" is not none, full, equal, decorrelated or a proportion such as 0.25")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect()
    }

    #[test]
    fn options_are_read_with_defaults() {
        let b = backoff(
            "retry",
            &map(&[
                ("attempts", Dynamic::from(5_i64)),
                ("initial", Dynamic::from("1m")),
                ("multiplier", Dynamic::from(4_i64)),
                ("max_delay", Dynamic::from("30m")),
                ("jitter", Dynamic::from(0.25)),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(b.attempts, Attempts::limited(5).unwrap());
        assert_eq!(b.initial, Duration::from_secs(60));
        assert_eq!(b.multiplier, 4.0);
        assert_eq!(b.jitter, Jitter::Proportional(0.25));
        assert_eq!(b.max_hint, Duration::from_secs(30 * 60), "max_hint follows a longer max_delay");
    }

    #[test]
    fn bad_options_say_what_is_wrong() {
        let table: &[(&str, Dynamic, &str)] = &[
            ("attempts", Dynamic::from(0_i64), "at least 1"),
            ("attempts", Dynamic::from(-3_i64), "at least 1"),
            ("attempts", Dynamic::from("many"), "unlimited"),
            ("initial", Dynamic::from("soon"), "cannot read \"soon\""),
            ("initial", Dynamic::from("31days"), "longer than 30days"),
            ("max_elapsed", Dynamic::from("584years"), "longer than"),
            ("max_delay", Dynamic::from("99999999999999999999999s"), "cannot read"),
            ("initial", Dynamic::from(5_i64), "duration string"),
            ("multiplier", Dynamic::from("x"), "must be a number"),
            ("jitter", Dynamic::from("lots"), "not none, full"),
            ("respect_retry_after", Dynamic::from(1_i64), "true or false"),
            ("attemps", Dynamic::from(1_i64), "did you mean `attempts`"),
            ("await_result", Dynamic::from("0s"), "retry: await_result (0s) must be at least 1ms"),
            ("await_result", Dynamic::from("900us"), "must be at least 1ms"),
            ("await_result", Dynamic::from("31days"), "longer than 30days"),
            ("await_result", Dynamic::from("-1h"), "cannot read \"-1h\""),
            ("await_result", Dynamic::from("later"), "cannot read \"later\""),
            ("await_result", Dynamic::from(3600_i64), "option `await_result` must be a duration string"),
            ("await_result", Dynamic::TRUE, "duration string"),
            ("await_results", Dynamic::from("1h"), "did you mean `await_result`"),
        ];
        for (key, value, expected) in table {
            let err = backoff("retry", &map(&[(key, value.clone())]), &[]).expect_err(key);
            assert!(err.contains(expected), "{key}: {err}");
        }
    }

    #[test]
    fn await_result_is_read_for_every_waiting_action() {
        let table: &[(&str, &[&str], &str, Duration)] = &[
            ("retry", &[], "2h", Duration::from_secs(7200)),
            ("resubmit", &[], "45m", Duration::from_secs(45 * 60)),
            ("republish", REPUBLISH_OPTIONS, "90s", Duration::from_secs(90)),
            ("retry", &[], "1ms", Duration::from_millis(1)),
            ("retry", &[], " 30days ", Duration::from_secs(30 * 86_400)),
        ];
        for (action, extra, text, expected) in table {
            let b = backoff(action, &map(&[("await_result", Dynamic::from(*text))]), extra).unwrap();
            assert_eq!(b.await_result, Some(*expected), "{action} {text}");
        }
        assert_eq!(backoff("retry", &Map::new(), &[]).unwrap().await_result, None, "unset: the remediator's");
    }

    #[test]
    fn republish_defaults_wait_for_the_reference_id_lock() {
        let b = backoff("republish", &Map::new(), REPUBLISH_OPTIONS).unwrap();
        assert_eq!(b.min_delay, Duration::from_secs(30));
        assert_eq!(b.attempts, Attempts::limited(1).unwrap());
        assert!(backoff("republish", &map(&[("new_reference_id", Dynamic::TRUE)]), REPUBLISH_OPTIONS).is_ok());
        assert!(backoff("retry", &map(&[("new_reference_id", Dynamic::TRUE)]), &[]).is_err());
    }
}
