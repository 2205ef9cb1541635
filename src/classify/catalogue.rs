//! The LightFlow error catalogue: every code LightFlow documents, its name, category and downstream.
//!
//! Codes are not grouped by thousands alone: the protection codes 2050–2066 sit inside the storage thousands,
//! and 2400–2499 / 2500–2599 are ranges that carry the HTTP status the remote server answered while LightFlow
//! downloaded the input (status = code − 2000).
//!
//! ```
//! use lightflow_remedy::classify::catalogue::{self, Category, Downstream};
//!
//! let info = catalogue::describe(2404);
//! assert_eq!(info.category, Category::Storage);
//! assert_eq!(info.downstream, Downstream::InputStorage);
//! assert_eq!(info.http_status, Some(404));
//! assert!(catalogue::lookup(2404).is_some());
//!
//! // 2418 is not named by the catalogue, but its range is.
//! assert_eq!(catalogue::describe(2418).name, "Remote server returned HTTP 418 while downloading the input");
//! // A code the catalogue does not know is still a valid failure.
//! assert_eq!(catalogue::describe(2099).category, Category::Unknown);
//! ```

use std::borrow::Cow;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The smallest LightFlow asset error code this library accepts.
pub const MIN_ASSET_CODE: u16 = 1000;
/// The largest LightFlow asset error code this library accepts (codes have four digits).
pub const MAX_ASSET_CODE: u16 = 9999;
/// The smallest HTTP status that counts as a failed API call.
pub const MIN_HTTP_ERROR: u16 = 400;
/// The largest HTTP status that counts as a failed API call.
pub const MAX_HTTP_ERROR: u16 = 599;

/// The family a code belongs to; policies can match a whole category with `on("brightcove", ...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// General errors (1xxx).
    General,
    /// Storage errors: downloading the input (2001–2007, 24xx, 25xx, 2070).
    Storage,
    /// Brightcove errors (3xxx).
    Brightcove,
    /// Packaging and uploading errors (4xxx).
    Packaging,
    /// Protection (DRM) errors (2050–2066).
    Protection,
    /// Inference errors (6xxx).
    Inference,
    /// LightFlow encoder errors (7xxx).
    Encoder,
    /// A LightFlow API call that failed with an HTTP status.
    Api,
    /// A call to one of the host's hooks that did not answer in time.
    Timeout,
    /// A code the catalogue does not know.
    Unknown,
}

crate::names::names!(Category {
    General => "general",
    Storage => "storage",
    Brightcove => "brightcove",
    Packaging => "packaging",
    Protection => "protection",
    Inference => "inference",
    Encoder => "encoder",
    Api => "api",
    Timeout => "timeout",
    Unknown => "unknown",
});

/// The error for a category name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown category `{0}` (expected one of: general, storage, brightcove, packaging, protection, inference, encoder, api, timeout, unknown)"
)]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

/// The service a failure points at: what a circuit breaker guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Downstream {
    /// The storage the input is downloaded from (2001–2007, 24xx, 25xx, 2070).
    InputStorage,
    /// Brightcove (3xxx).
    Brightcove,
    /// The server outputs are uploaded to (4001–4005, 4013).
    OutputUpload,
    /// The EZDRM key server (2050–2055).
    Ezdrm,
    /// The Irdeto key server (2060–2065).
    Irdeto,
    /// The LightFlow service itself (1xxx, 2066, 4014, 6001, 7001, and unknown codes).
    LightflowService,
    /// The LightFlow API (HTTP errors of API calls).
    LightflowApi,
}

crate::names::names!(Downstream {
    InputStorage => "input_storage",
    Brightcove => "brightcove",
    OutputUpload => "output_upload",
    Ezdrm => "ezdrm",
    Irdeto => "irdeto",
    LightflowService => "lightflow_service",
    LightflowApi => "lightflow_api",
});

/// One code named by the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The asset error code.
    pub code: u16,
    /// The catalogue's text for it.
    pub name: &'static str,
    /// Its category.
    pub category: Category,
    /// What it points at.
    pub downstream: Downstream,
}

const fn entry(code: u16, name: &'static str, category: Category, downstream: Downstream) -> Entry {
    Entry { code, name, category, downstream }
}

use Category as C;
use Downstream as D;

/// Every code of LightFlow's "API errors" page, in the page's order.
pub const ENTRIES: &[Entry] = &[
    entry(1001, "Unknown error", C::General, D::LightflowService),
    entry(1002, "Error on asset creation", C::General, D::LightflowService),
    entry(1003, "Error on asset processing", C::General, D::LightflowService),
    entry(2001, "Error downloading input file", C::Storage, D::InputStorage),
    entry(2002, "Error downloading input file: could not connect to remote server", C::Storage, D::InputStorage),
    entry(2003, "Input file is invalid or corrupt", C::Storage, D::InputStorage),
    entry(2004, "Input file bitrate exceeds the allowed limit for trial accounts", C::Storage, D::InputStorage),
    entry(2005, "Input file duration exceeds the allowed limit for trial accounts", C::Storage, D::InputStorage),
    entry(
        2006,
        "Input file format is not valid for 4K: asset has a width below 2560 pixels",
        C::Storage,
        D::InputStorage,
    ),
    entry(2007, "Storage credentials error", C::Storage, D::InputStorage),
    entry(2401, "Unauthorized (please review your bucket credentials)", C::Storage, D::InputStorage),
    entry(2403, "Forbidden (your user does have not access to the resource)", C::Storage, D::InputStorage),
    entry(2404, "Not found (the resource does not exist)", C::Storage, D::InputStorage),
    entry(2429, "Too many requests (the external service is overloaded, try again later)", C::Storage, D::InputStorage),
    entry(
        2500,
        "Remote server problem (the external service is not responding, try again later or contact support)",
        C::Storage,
        D::InputStorage,
    ),
    entry(
        2503,
        "Service unavailable (the external service is not responding, try again later or contact support)",
        C::Storage,
        D::InputStorage,
    ),
    entry(
        2504,
        "Gateway timeout (the external service is not responding, try again later or contact support)",
        C::Storage,
        D::InputStorage,
    ),
    entry(2070, "Error downloading subtitles", C::Storage, D::InputStorage),
    entry(3001, "Error connecting to Brightcove", C::Brightcove, D::Brightcove),
    entry(3002, "Brightcove encoder: input file is invalid or corrupt", C::Brightcove, D::Brightcove),
    entry(
        3003,
        "Reference Id assigned to this asset is already in use and could not be published in Brightcove",
        C::Brightcove,
        D::Brightcove,
    ),
    entry(3004, "Brightcove encoder: Error creating the encoding profile for this asset", C::Brightcove, D::Brightcove),
    entry(3005, "Error publishing asset on Brightcove", C::Brightcove, D::Brightcove),
    entry(4001, "Error uploading MP4 result files", C::Packaging, D::OutputUpload),
    entry(4002, "Error uploading DASH result files", C::Packaging, D::OutputUpload),
    entry(4003, "Error uploading HLS result files", C::Packaging, D::OutputUpload),
    entry(4004, "Error connecting to upload server", C::Packaging, D::OutputUpload),
    entry(4013, "Error uploading thumbnails", C::Packaging, D::OutputUpload),
    entry(4014, "Error stitching video chunks", C::Packaging, D::LightflowService),
    entry(4005, "Unknown error preparing/uploading output files", C::Packaging, D::OutputUpload),
    entry(2050, "EZDRM response is not as expected", C::Protection, D::Ezdrm),
    entry(2051, "EZDRM request timed out", C::Protection, D::Ezdrm),
    entry(2052, "EZDRM request has too many redirects", C::Protection, D::Ezdrm),
    entry(2053, "EZDRM returned a general http error", C::Protection, D::Ezdrm),
    entry(2054, "EZDRM general request error", C::Protection, D::Ezdrm),
    entry(2055, "EZDRM request returned internal server error", C::Protection, D::Ezdrm),
    entry(2060, "Irdeto response is not as expected", C::Protection, D::Irdeto),
    entry(2061, "Irdeto request timed out", C::Protection, D::Irdeto),
    entry(2062, "Irdeto request has too many redirects", C::Protection, D::Irdeto),
    entry(2063, "Irdeto returned a general http error", C::Protection, D::Irdeto),
    entry(2064, "Irdeto general request error", C::Protection, D::Irdeto),
    entry(2065, "Irdeto request returned internal server error", C::Protection, D::Irdeto),
    entry(2066, "DRM protection not selected", C::Protection, D::LightflowService),
    entry(6001, "Error uploading inference results", C::Inference, D::LightflowService),
    entry(7001, "Error encoding input", C::Encoder, D::LightflowService),
];

/// The range of asset codes that carry a remote HTTP 4xx status (2400–2499).
pub const REMOTE_4XX: std::ops::RangeInclusive<u16> = 2400..=2499;
/// The range of asset codes that carry a remote HTTP 5xx status (2500–2599).
pub const REMOTE_5XX: std::ops::RangeInclusive<u16> = 2500..=2599;

/// The catalogue entry for `code`, if the catalogue names it.
pub fn lookup(code: u16) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.code == code)
}

/// What the catalogue says of an asset error code, including codes it names only by range and codes it
/// does not know (category [`Category::Unknown`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeInfo {
    /// The catalogue's text, or a description built from the range.
    pub name: Cow<'static, str>,
    /// The category.
    pub category: Category,
    /// What the failure points at.
    pub downstream: Downstream,
    /// For 24xx and 25xx, the HTTP status the remote server answered.
    pub http_status: Option<u16>,
}

/// Describes any asset error code; see the [module docs](self).
pub fn describe(code: u16) -> CodeInfo {
    let http_status = remote_http_status(code);
    if let Some(e) = lookup(code) {
        return CodeInfo { name: Cow::Borrowed(e.name), category: e.category, downstream: e.downstream, http_status };
    }
    match http_status {
        Some(status) => CodeInfo {
            name: Cow::Owned(format!("Remote server returned HTTP {status} while downloading the input")),
            category: Category::Storage,
            downstream: Downstream::InputStorage,
            http_status,
        },
        None => CodeInfo {
            name: Cow::Borrowed("Code not in the LightFlow catalogue"),
            category: Category::Unknown,
            downstream: Downstream::LightflowService,
            http_status: None,
        },
    }
}

/// For codes of the 24xx and 25xx ranges, the HTTP status of the remote server (code − 2000).
pub fn remote_http_status(code: u16) -> Option<u16> {
    (REMOTE_4XX.contains(&code) || REMOTE_5XX.contains(&code)).then(|| code - 2000)
}

/// Every code the catalogue names, in ascending order.
pub fn codes() -> Vec<u16> {
    let mut codes: Vec<u16> = ENTRIES.iter().map(|e| e.code).collect();
    codes.sort_unstable();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_in_range() {
        let codes = codes();
        let mut dedup = codes.clone();
        dedup.dedup();
        assert_eq!(codes, dedup, "a code is listed twice");
        assert!(codes.iter().all(|c| (MIN_ASSET_CODE..=MAX_ASSET_CODE).contains(c)));
        assert_eq!(codes.len(), 45);
    }

    #[test]
    fn protection_codes_sit_inside_the_storage_thousands() {
        for code in [2050, 2055, 2060, 2065, 2066] {
            assert_eq!(describe(code).category, Category::Protection, "{code}");
        }
        assert_eq!(describe(2066).downstream, Downstream::LightflowService);
        assert_eq!(describe(2051).downstream, Downstream::Ezdrm);
        assert_eq!(describe(2061).downstream, Downstream::Irdeto);
    }

    #[test]
    fn ranges_carry_the_remote_status() {
        assert_eq!(remote_http_status(2400), Some(400));
        assert_eq!(remote_http_status(2599), Some(599));
        assert_eq!(remote_http_status(2600), None);
        assert_eq!(remote_http_status(2399), None);
        let info = describe(2502);
        assert_eq!(info.category, Category::Storage);
        assert_eq!(info.downstream, Downstream::InputStorage);
    }

    #[test]
    fn categories_round_trip_through_their_names() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
        }
        assert!("brightcov".parse::<Category>().is_err());
    }
}
