//! What a store refuses to keep, checked before anything reaches its database: ids, references and keys must be
//! short, non-empty text without control characters (a NUL, which PostgreSQL's text cannot hold, or a line
//! break in a log line), and a report must be of a bounded size. Every store applies the same checks, so a
//! value is refused alike on each ([`StoreError::Invalid`]).

use super::error::StoreError;
use super::rows::{NewJob, ReportTarget};

/// The longest id, reference or key kept, in bytes (a LightFlow uuid is 36; an asset id of a host is short).
pub const MAX_ID_BYTES: usize = 512;

/// The largest report kept, in bytes of JSON.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;

/// Refuses an id-like `value` of `field` that is empty, too long or holds control characters.
pub(crate) fn id(field: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.is_empty() {
        "it is empty".to_owned()
    } else if value.len() > MAX_ID_BYTES {
        format!("it is {} bytes long, more than {MAX_ID_BYTES}", value.len())
    } else if let Some(c) = value.chars().find(|c| c.is_control()) {
        format!("it holds the control character U+{:04X}", u32::from(c))
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid { field, reason })
}

/// Refuses a new job whose asset id or dedupe key would be refused.
pub(crate) fn new_job(new: &NewJob<'_>) -> Result<(), StoreError> {
    id("asset id", new.asset_id)?;
    new.dedupe_key.map_or(Ok(()), |key| id("dedupe key", key))
}

/// Refuses a report whose target or result would be refused.
pub(crate) fn report(target: ReportTarget<'_>, result: &str) -> Result<(), StoreError> {
    match target {
        ReportTarget::Asset(asset) | ReportTarget::AssetEndedAt(asset, _) => id("asset id", asset)?,
        ReportTarget::Reference(reference) => id("reference", reference)?,
        ReportTarget::Attempt { .. } => {}
    }
    if result.len() > MAX_REPORT_BYTES {
        return Err(StoreError::Invalid {
            field: "report",
            reason: format!("it is {} bytes long, more than {MAX_REPORT_BYTES}", result.len()),
        });
    }
    Ok(())
}

/// Refuses an asset record whose id, alias or parameters would be refused.
pub(crate) fn asset(asset_id: &str, alias: Option<&str>, parameters: &str) -> Result<(), StoreError> {
    id("asset id", asset_id)?;
    alias.map_or(Ok(()), |alias| id("alias", alias))?;
    if parameters.len() > super::MAX_PARAMETERS_BYTES {
        return Err(StoreError::Invalid {
            field: "parameters",
            reason: format!("they are {} bytes long, more than {}", parameters.len(), super::MAX_PARAMETERS_BYTES),
        });
    }
    Ok(())
}

/// Refuses an action whose fields would be refused (each is short text, as an id is).
pub(crate) fn action(action: &super::NewAction<'_>) -> Result<(), StoreError> {
    id("asset id", action.asset_id)?;
    id("action", action.action)?;
    id("role", action.role)?;
    id("who", action.who)?;
    id("answer", action.answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_refused_for_what_no_id_has() {
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let cases: &[(&str, Option<&str>)] = &[
            ("6f1c0c5e-2b8a-4c1e-9b7e-0d3f5a1c2e4b", None),
            ("asset/ä-1", None),
            ("", Some("empty")),
            ("a\0b", Some("U+0000")),
            ("a\nb", Some("U+000A")),
            ("a\u{7f}", Some("U+007F")),
            (&long, Some("513 bytes")),
        ];
        for (value, refused) in cases {
            match (id("reference", value), refused) {
                (Ok(()), None) => {}
                (Err(StoreError::Invalid { field, reason }), Some(why)) => {
                    assert_eq!(field, "reference");
                    assert!(reason.contains(why), "{value:?}: {reason}");
                }
                (got, want) => panic!("{value:?}: {got:?}, wanted refusal {want:?}"),
            }
        }
        assert!(id("reference", &"x".repeat(MAX_ID_BYTES)).is_ok());
        let big = "x".repeat(MAX_REPORT_BYTES + 1);
        assert!(matches!(report(ReportTarget::Reference("u"), &big), Err(StoreError::Invalid { field: "report", .. })));
    }
}
