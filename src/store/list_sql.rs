//! The conditions of a [`ListFilter`] as SQL, for the SQLite and PostgreSQL stores alike: only the conditions
//! the filter sets, so that the database's planner sees each (a `(?1 IS NULL OR phase = ?1)` would hide an
//! index from it), every value bound, never spliced into the text.

use super::category::code_ranges;
use super::rows::{ListFilter, Phase};

/// How a database writes what differs between the two.
pub(crate) struct Dialect {
    /// The `n`-th placeholder, from 1 (`?1`, `$1`).
    pub(crate) placeholder: fn(usize) -> String,
    /// Whether `asset_id` holds the text of the placeholder (`instr(..) > 0`, `strpos(..) > 0`).
    pub(crate) contains: fn(&str) -> String,
    /// `last_code` compared in binary order (PostgreSQL: `COLLATE "C"`).
    pub(crate) code_text: &'static str,
}

/// A filter as SQL: `conditions` (each starting with ` AND `) and the text values they bind, in order; the
/// limit and the offset follow them as the next two placeholders.
pub(crate) struct ListSql {
    /// ` AND phase = ?1 AND ...`, or empty.
    pub(crate) conditions: String,
    /// The values of the placeholders, in order.
    pub(crate) binds: Vec<String>,
}

impl ListSql {
    /// The conditions of `filter` in `dialect`.
    pub(crate) fn of(filter: &ListFilter, dialect: &Dialect) -> ListSql {
        let mut sql = ListSql { conditions: String::new(), binds: Vec::new() };
        if let Some(phase) = filter.phase {
            let p = sql.bind(phase.as_str(), dialect);
            // The partial index of active jobs by phase is usable only when the query says it is about them.
            let active = if phase == Phase::Finished { "" } else { " AND phase <> 'finished'" };
            sql.conditions.push_str(&format!("{active} AND phase = {p}"));
        }
        if let Some(outcome) = &filter.outcome {
            let p = sql.bind(outcome, dialect);
            sql.conditions.push_str(&format!(" AND phase = 'finished' AND outcome = {p}"));
        }
        if let Some(code) = &filter.code {
            let p = sql.bind(code, dialect);
            sql.conditions.push_str(&format!(" AND last_code = {p}"));
        }
        if let Some(asset) = &filter.asset {
            let p = sql.bind(asset, dialect);
            sql.conditions.push_str(&format!(" AND {}", (dialect.contains)(&p)));
        }
        if let Some(category) = filter.category {
            let mut ranges = Vec::new();
            for (low, high) in code_ranges(category) {
                let (low, high) = (sql.bind(&low, dialect), sql.bind(&high, dialect));
                ranges.push(format!("{} BETWEEN {low} AND {high}", dialect.code_text));
            }
            let any = if ranges.is_empty() { "1 = 0".to_owned() } else { ranges.join(" OR ") };
            sql.conditions.push_str(&format!(" AND ({any})"));
        }
        sql
    }

    /// The placeholder of the next value, `value` bound to it.
    fn bind(&mut self, value: &str, dialect: &Dialect) -> String {
        self.binds.push(value.to_owned());
        (dialect.placeholder)(self.binds.len())
    }

    /// The placeholders of the limit and the offset, after the conditions' values.
    pub(crate) fn limit_offset(&self, dialect: &Dialect) -> String {
        let n = self.binds.len();
        format!("LIMIT {} OFFSET {}", (dialect.placeholder)(n + 1), (dialect.placeholder)(n + 2))
    }
}
