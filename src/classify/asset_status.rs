//! [`AssetStatus`]: where a LightFlow asset stands (`queued`, `running`, `finished`, `error`, `canceled`).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a LightFlow asset stands, as its `status` and its callbacks say.
///
/// LightFlow documents five statuses; an asset runs `queued`, then `running`, and ends `finished`, `error` or
/// `canceled`. Parsing ignores ASCII case and surrounding whitespace, and takes `cancelled` for `canceled`;
/// any other word is an [`UnknownStatus`] error rather than a guess, since a new status could be an end.
///
/// ```
/// use lightflow_remedy::classify::AssetStatus;
///
/// assert_eq!("finished".parse(), Ok(AssetStatus::Finished));
/// assert_eq!(" Cancelled ".parse(), Ok(AssetStatus::Canceled));
/// assert!(AssetStatus::Error.is_end() && !AssetStatus::Running.is_end());
/// assert!("archived".parse::<AssetStatus>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetStatus {
    /// Waiting to be processed.
    Queued,
    /// Being processed.
    Running,
    /// Processed: the asset can be played.
    Finished,
    /// Processing failed; the asset carries `assetError`.
    Error,
    /// Processing was canceled.
    Canceled,
}

crate::names::names!(AssetStatus {
    Queued => "queued",
    Running => "running",
    Finished => "finished",
    Error => "error",
    Canceled => "canceled",
});

impl AssetStatus {
    /// Whether the asset's processing has ended (`finished`, `error` or `canceled`).
    pub fn is_end(self) -> bool {
        matches!(self, AssetStatus::Finished | AssetStatus::Error | AssetStatus::Canceled)
    }
}

/// A status that is not one of the five LightFlow documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an asset status (expected queued, running, finished, error or canceled)")]
pub struct UnknownStatus(pub String);

impl FromStr for AssetStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim();
        if word.eq_ignore_ascii_case("cancelled") {
            return Ok(AssetStatus::Canceled);
        }
        AssetStatus::ALL
            .into_iter()
            .find(|status| word.eq_ignore_ascii_case(status.as_str()))
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in AssetStatus::ALL {
            assert_eq!(status.as_str().parse::<AssetStatus>(), Ok(status));
            assert_eq!(status.as_str().to_uppercase().parse::<AssetStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
        }
        for bad in ["", "done", "errored", "canceld", "finished!"] {
            assert!(bad.parse::<AssetStatus>().is_err(), "{bad}");
        }
    }
}
