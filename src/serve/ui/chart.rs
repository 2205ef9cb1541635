//! The overview's chart: the jobs submitted in each of the last hours as stacked bars (recovered, failed,
//! cancelled, still running), drawn on the server as inline SVG (no script, no style attribute: the colours
//! come from the stylesheet's classes), with each bar's counts in its tooltip.

use std::collections::BTreeMap;

use maud::{Markup, html};

use crate::store::{RUNNING, TallyRow, Timestamp};

/// The states a bar stacks, bottom first.
pub(crate) const STATES: [&str; 4] = ["recovered", "failed", "cancelled", RUNNING];

const WIDTH: i64 = 760;
const HEIGHT: i64 = 220;
const LEFT: i64 = 40;
const BOTTOM: i64 = 24;
const TOP: i64 = 10;

/// Counts by state in each of `hours` buckets of `bucket_ms`, the last one starting at `last`.
pub(crate) fn buckets(tally: &[TallyRow], last: i64, bucket_ms: i64, hours: i64) -> Vec<(i64, [u64; 4])> {
    let mut by: BTreeMap<i64, [u64; 4]> = (0..hours).map(|i| (last - (hours - 1 - i) * bucket_ms, [0; 4])).collect();
    for row in tally {
        let Some(counts) = by.get_mut(&row.bucket.0) else { continue };
        let i = STATES.iter().position(|s| *s == row.state).unwrap_or(1);
        counts[i] += row.jobs;
    }
    by.into_iter().collect()
}

/// The bars of `buckets`.
pub(crate) fn chart(buckets: &[(i64, [u64; 4])]) -> Markup {
    let most = buckets.iter().map(|(_, c)| c.iter().sum::<u64>()).max().unwrap_or(0).max(1);
    // A top of the scale people read: 1, 2, 5, 10, 20, 50, ...
    let mut top = 1u64;
    while top < most {
        top = match top.to_string().as_bytes().first() {
            Some(b'1') => top * 2,
            Some(b'2') => top / 2 * 5,
            _ => top * 2,
        };
    }
    let plot = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / i64::try_from(buckets.len().max(1)).unwrap_or(1);
    let bar = (slot * 7 / 10).max(2);
    let y_of = |n: u64| TOP + plot - i64::try_from(n.saturating_mul(plot as u64) / top).unwrap_or(plot);
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label="Jobs submitted each hour, by how they stand" {
            @for tick in [0, top / 2, top] {
                line x1=(LEFT) x2=(WIDTH) y1=(y_of(tick)) y2=(y_of(tick)) {}
                text x=(LEFT - 6) y=(y_of(tick) + 4) text-anchor="end" { (tick) }
            }
            @for (i, (start, counts)) in buckets.iter().enumerate() {
                @let x = LEFT + i64::try_from(i).unwrap_or(0) * slot + (slot - bar) / 2;
                g {
                    title { (hour(*start)) " UTC: " (counts[0]) " recovered, " (counts[1]) " failed, " (counts[2]) " cancelled, " (counts[3]) " running" }
                    @for (state, y, height) in segments(counts, &y_of) {
                        rect class=(state) x=(x) y=(y) width=(bar) height=(height) {}
                    }
                    @if i % 2 == buckets.len() % 2 || buckets.len() <= 12 {
                        text x=(x + bar / 2) y=(HEIGHT - 6) text-anchor="middle" { (hour(*start)) }
                    }
                }
            }
        }
        div.legend {
            @for state in STATES { span { i class=(state) {} (state) } }
        }
    }
}

/// The stacked rectangles of one bar, bottom first: each state's class, top and height.
fn segments(counts: &[u64; 4], y_of: &dyn Fn(u64) -> i64) -> Vec<(&'static str, i64, i64)> {
    let mut below = 0;
    let mut out = Vec::new();
    for (state, n) in STATES.iter().zip(counts) {
        if *n > 0 {
            out.push((*state, y_of(below + n), y_of(below) - y_of(below + n)));
        }
        below += n;
    }
    out
}

/// `14:00` of a bucket's start.
fn hour(ms: i64) -> String {
    let text = super::layout::at(Timestamp(ms));
    text.get(11..16).unwrap_or(&text).to_owned()
}
