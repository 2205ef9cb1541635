//! [`ListQuery`]: the filters and paging of `GET /assets`, as LightFlow documents them (API 2.0.1).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::classify::AssetStatus;

/// The filters and paging of a `GET /assets` call, as LightFlow documents them (API 2.0.1). Unset filters are
/// not sent.
///
/// | parameter | here |
/// |---|---|
/// | `uuid` | [`ListQuery::uuid`] |
/// | `status` (comma-separated) | [`ListQuery::status`] |
/// | `creationDateFrom`, `creationDateTo` (ISO date) | [`ListQuery::created_from`], [`ListQuery::created_to`] |
/// | `referenceId` | [`ListQuery::reference_id`] |
/// | `inputUrlPath` | [`ListQuery::input_url_path`] |
/// | `name`, `label`, `tags` | [`ListQuery::name`], [`ListQuery::label`], [`ListQuery::tags`] |
/// | `features` (comma-separated) | [`ListQuery::features`] |
/// | `showDemo` | [`ListQuery::show_demo`] |
/// | `pageIndex`, `pageSize` | [`ListQuery::page`] |
///
/// Not documented, and so not relied on: how filters match (exact, prefix or substring), the default and
/// largest page size, and the sort order. The sample shows `pageIndex` 0 for the first page. Dates are sent as
/// RFC 3339 timestamps in UTC with milliseconds (`2019-02-14T20:32:48.898Z`, the form of LightFlow's callback
/// dates); that LightFlow takes a time of day there, and not only a date, is **assumed**.
///
/// ```
/// use lightflow_remedy::classify::AssetStatus;
/// use lightflow_remedy::lightflow::ListQuery;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let query = ListQuery::new()
///     .input_url_path("https://example.com/in.mp4")
///     .status([AssetStatus::Finished, AssetStatus::Running])
///     .created_from(UNIX_EPOCH + Duration::from_millis(1_550_176_368_898))
///     .page(0, 50);
/// assert_eq!(
///     query.pairs(),
///     [
///         ("status", "finished,running".to_owned()),
///         ("creationDateFrom", "2019-02-14T20:32:48.898Z".to_owned()),
///         ("inputUrlPath", "https://example.com/in.mp4".to_owned()),
///         ("pageIndex", "0".to_owned()),
///         ("pageSize", "50".to_owned()),
///     ]
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    uuid: Option<String>,
    status: Vec<AssetStatus>,
    creation_date_from: Option<String>,
    creation_date_to: Option<String>,
    reference_id: Option<String>,
    input_url_path: Option<String>,
    name: Option<String>,
    label: Option<String>,
    tags: Option<String>,
    features: Vec<String>,
    show_demo: Option<bool>,
    page: Option<(u64, u64)>,
}

impl ListQuery {
    /// No filter: every asset, on LightFlow's first page.
    pub fn new() -> Self {
        ListQuery::default()
    }

    /// `uuid`: the asset with this uuid.
    pub fn uuid(mut self, uuid: impl Into<String>) -> Self {
        self.uuid = Some(uuid.into());
        self
    }

    /// `status`: assets in any of these statuses.
    pub fn status(mut self, statuses: impl IntoIterator<Item = AssetStatus>) -> Self {
        self.status = statuses.into_iter().collect();
        self
    }

    /// `creationDateFrom`: assets created at or after `at`.
    pub fn created_from(mut self, at: SystemTime) -> Self {
        self.creation_date_from = Some(iso_timestamp(at));
        self
    }

    /// `creationDateTo`: assets created at or before `at`.
    pub fn created_to(mut self, at: SystemTime) -> Self {
        self.creation_date_to = Some(iso_timestamp(at));
        self
    }

    /// `referenceId`: assets with this reference id.
    pub fn reference_id(mut self, reference_id: impl Into<String>) -> Self {
        self.reference_id = Some(reference_id.into());
        self
    }

    /// `inputUrlPath`: assets made from this input URL.
    pub fn input_url_path(mut self, url: impl Into<String>) -> Self {
        self.input_url_path = Some(url.into());
        self
    }

    /// `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// `label`.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// `tags`, as LightFlow takes it (one string).
    pub fn tags(mut self, tags: impl Into<String>) -> Self {
        self.tags = Some(tags.into());
        self
    }

    /// `features`: assets with any of these features (`perceptual-quality`, `content-moderation`, ...).
    pub fn features(mut self, features: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.features = features.into_iter().map(Into::into).collect();
        self
    }

    /// `showDemo`: with `true`, the demo account's assets too.
    pub fn show_demo(mut self, show: bool) -> Self {
        self.show_demo = Some(show);
        self
    }

    /// `pageIndex` and `pageSize`.
    pub fn page(mut self, index: u64, size: u64) -> Self {
        self.page = Some((index, size));
        self
    }

    /// The same filters on page `index` (of the size set by [`ListQuery::page`], or LightFlow's default).
    pub(crate) fn page_index(&self, index: u64) -> Self {
        let mut next = self.clone();
        next.page = Some((index, self.page.map_or(0, |(_, size)| size)));
        next
    }

    /// The query's parameters, in the order they are sent: names as LightFlow documents them, values as text
    /// (not yet percent-encoded).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut text = |name: &'static str, value: &Option<String>| {
            if let Some(value) = value {
                out.push((name, value.clone()));
            }
        };
        text("uuid", &self.uuid);
        let statuses =
            (!self.status.is_empty()).then(|| self.status.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","));
        text("status", &statuses);
        text("creationDateFrom", &self.creation_date_from);
        text("creationDateTo", &self.creation_date_to);
        text("referenceId", &self.reference_id);
        text("inputUrlPath", &self.input_url_path);
        text("name", &self.name);
        text("label", &self.label);
        text("tags", &self.tags);
        text("features", &(!self.features.is_empty()).then(|| self.features.join(",")));
        text("showDemo", &self.show_demo.map(|b| b.to_string()));
        if let Some((index, size)) = self.page {
            out.push(("pageIndex", index.to_string()));
            if size > 0 {
                out.push(("pageSize", size.to_string()));
            }
        }
        out
    }
}

/// `at` as an RFC 3339 timestamp in UTC with milliseconds: `2019-02-14T20:32:48.898Z`. A time before 1970 is
/// written as 1970's first instant (LightFlow has no assets from then).
pub fn iso_timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::classify::Callback;

    #[test]
    fn timestamps_read_back_as_the_same_instant() {
        let table: &[(u64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_550_176_368_898, "2019-02-14T20:32:48.898Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (253_402_300_799_000, "9999-12-31T23:59:59.000Z"),
        ];
        for (millis, text) in table {
            let at = UNIX_EPOCH + Duration::from_millis(*millis);
            assert_eq!(iso_timestamp(at), *text);
            // Read back the way callbacks' dates are.
            let callback = Callback::from_query(&format!("status=finished&endDate={text}")).unwrap();
            assert_eq!(callback.end_time(), Some(at), "{text}");
        }
        assert_eq!(iso_timestamp(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn every_documented_filter_has_its_name() {
        let q = ListQuery::new()
            .uuid("u")
            .status([AssetStatus::Queued])
            .created_from(UNIX_EPOCH)
            .created_to(UNIX_EPOCH)
            .reference_id("r")
            .input_url_path("i")
            .name("n")
            .label("l")
            .tags("t")
            .features(["perceptual-quality", "content-moderation"])
            .show_demo(false)
            .page(2, 10);
        let names: Vec<&str> = q.pairs().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "uuid",
                "status",
                "creationDateFrom",
                "creationDateTo",
                "referenceId",
                "inputUrlPath",
                "name",
                "label",
                "tags",
                "features",
                "showDemo",
                "pageIndex",
                "pageSize"
            ]
        );
        assert_eq!(q.page_index(3).pairs().last(), Some(&("pageSize", "10".to_owned())));
        assert!(ListQuery::new().pairs().is_empty());
    }
}
