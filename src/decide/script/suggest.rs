//! "Did you mean" suggestions for misspelt names, and names quoted in messages.
//!
//! Both are bounded: only names of sensible length are compared (an edit distance is quadratic in the lengths
//! it compares), and a quoted name is cut, so that a 100 KB name costs no more than a short one.

use super::limits::MAX_QUOTED;

/// The longest name compared for a suggestion; longer ones are nobody's typo.
const MAX_COMPARED: usize = 48;
/// The most edits a suggestion may be away.
const MAX_EDITS: usize = 2;

/// ` (did you mean `x`?)` when one of `candidates` is close to `word`, else nothing.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    if word.len() > MAX_COMPARED {
        return String::new();
    }
    candidates
        .filter(|c| c.len() <= MAX_COMPARED && c.len().abs_diff(word.len()) <= MAX_EDITS)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(d, c)| d <= MAX_EDITS && d < c.len())
        .min()
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// `` `name` ``, cut to a readable length.
pub(crate) fn quoted(name: &str) -> String {
    format!("`{}`", super::sandbox::cut(name, MAX_QUOTED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_and_bounded() {
        let names = ["retry", "resubmit", "republish"];
        assert_eq!(did_you_mean("retyr", names.into_iter()), " (did you mean `retry`?)");
        assert_eq!(did_you_mean("frobnicate", names.into_iter()), "");
        let long = "r".repeat(100_000);
        let started = std::time::Instant::now();
        assert_eq!(did_you_mean(&long, [long.as_str()].into_iter()), "");
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        assert!(quoted(&long).len() < 100);
    }
}
