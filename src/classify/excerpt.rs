//! Short excerpts of text that came from outside: a body that is not the JSON LightFlow documents (a proxy's
//! HTML 502, a plain-text "Service Unavailable"), or a header value quoted in an error.
//!
//! An excerpt is one line (whitespace and control characters collapse to single spaces), at most a bounded
//! number of characters (cut on a character boundary, with `…` when cut), and, for a body that is markup,
//! the page's text: tags, comments, scripts and styles taken out and the common entities decoded.

/// The most characters of a body's excerpt kept as a failure's message.
pub(crate) const MAX_EXCERPT: usize = 200;

/// The message made of a body that is not a JSON object with a string `message`.
pub(crate) fn excerpt(body: &str) -> String {
    let mut out = Line::new(MAX_EXCERPT);
    if body.trim_start().starts_with('<') {
        markup_text(body, &mut out);
    } else {
        out.extend(body);
    }
    out.finish()
}

/// `value` as one line of at most `max` characters, for quoting in errors and notes.
pub(crate) fn quote(value: &str, max: usize) -> String {
    let mut out = Line::new(max);
    out.extend(value);
    out.finish()
}

/// A line being built: whitespace collapsed, bounded.
struct Line {
    text: String,
    chars: usize,
    max: usize,
    space: bool,
}

impl Line {
    fn new(max: usize) -> Self {
        Line { text: String::new(), chars: 0, max: max.max(1), space: false }
    }

    /// Whether one more character than fits has been seen (so the line is cut).
    fn full(&self) -> bool {
        self.chars > self.max
    }

    /// Pushes the characters of `text` until the line is full.
    fn extend(&mut self, text: &str) {
        for c in text.chars() {
            if self.full() {
                return;
            }
            self.push(c);
        }
    }

    fn push(&mut self, c: char) {
        if self.full() {
            return;
        }
        if c.is_whitespace() || c.is_control() {
            self.space = true;
            return;
        }
        if std::mem::take(&mut self.space) && self.chars > 0 {
            self.text.push(' ');
            self.chars += 1;
        }
        self.text.push(c);
        self.chars += 1;
    }

    fn finish(mut self) -> String {
        if self.full() {
            // Keep `max − 1` characters and mark the cut.
            let keep = self.text.char_indices().nth(self.max - 1).map_or(self.text.len(), |(i, _)| i);
            self.text.truncate(keep);
            let trimmed = self.text.trim_end().len();
            self.text.truncate(trimmed);
            self.text.push('…');
        }
        self.text
    }
}

/// The text of a markup document, into `out`, until it is full.
fn markup_text(mut rest: &str, out: &mut Line) {
    while !rest.is_empty() && !out.full() {
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |i| &after[i + 3..]);
            out.push(' ');
        } else if rest.starts_with('<') && rest[1..].starts_with(|c: char| c.is_ascii_alphabetic() || "/!?".contains(c))
        {
            let name = tag_name(&rest[1..]);
            rest = rest.find('>').map_or("", |i| &rest[i + 1..]);
            // What a script or style holds is not text a reader sees.
            if name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("style") {
                rest = skip_past_closing(rest, name);
            }
            out.push(' ');
        } else if let Some((c, len)) = rest.starts_with('&').then(|| entity(rest)).flatten() {
            out.push(c);
            rest = &rest[len..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
}

/// The element name at the start of a tag's text (after `<`).
fn tag_name(s: &str) -> &str {
    let end = s.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(s.len());
    &s[..end]
}

/// What follows `</name ...>`, matched without regard to case; nothing if there is no closing tag.
fn skip_past_closing<'a>(rest: &'a str, name: &str) -> &'a str {
    let closing = format!("</{name}");
    let at = rest.as_bytes().windows(closing.len()).position(|w| w.eq_ignore_ascii_case(closing.as_bytes()));
    // `at` is the index of an ASCII `<`, a character boundary.
    match at {
        Some(at) => rest[at..].find('>').map_or("", |i| &rest[at + i + 1..]),
        None => "",
    }
}

/// The character an entity at the start of `s` stands for, and the entity's length in bytes.
fn entity(s: &str) -> Option<(char, usize)> {
    // Entities are short: look no further than a dozen characters for the `;`.
    let (end, _) = s.char_indices().take(12).find(|&(_, c)| c == ';')?;
    let name = &s[1..end];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        _ => {
            let code = match name.strip_prefix('#') {
                Some(hex) if hex.starts_with(['x', 'X']) => u32::from_str_radix(&hex[1..], 16).ok()?,
                Some(decimal) => decimal.parse::<u32>().ok()?,
                None => return None,
            };
            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
        }
    };
    Some((c, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_become_one_short_line() {
        let nginx = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad \
                     Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
        let table = [
            (nginx, "502 Bad Gateway 502 Bad Gateway nginx"),
            ("Service Unavailable\n", "Service Unavailable"),
            ("  a\t\tb \r\n c  ", "a b c"),
            (
                "<!DOCTYPE html><!-- hidden --><p>Tom &amp; Jerry &lt;3 &#233;&#x41;&bogus;</p>",
                "Tom & Jerry <3 éA&bogus;",
            ),
            ("<html><head><style>p { color: red }</style><SCRIPT>alert('x < y')</script></head><p>shown</p>", "shown"),
            ("a < b and c > d", "a < b and c > d"),
            ("<p>unclosed", "unclosed"),
            ("<p", ""),
            ("<script>never closed", ""),
            ("", ""),
            ("\u{0}\u{7}bell", "bell"),
        ];
        for (body, expected) in table {
            assert_eq!(excerpt(body), expected, "{body:?}");
        }
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        for filler in ["é", "x", "日本", "🦀 "] {
            let body = filler.repeat(1000);
            let cut = excerpt(&body);
            // A space before the cut is dropped, so the excerpt may be one shorter.
            assert!((MAX_EXCERPT - 1..=MAX_EXCERPT).contains(&cut.chars().count()), "{filler}: {cut}");
            assert!(cut.ends_with('…'));
        }
        let exact = "y".repeat(MAX_EXCERPT);
        assert_eq!(excerpt(&exact), exact, "a body that fits is not cut");
        assert_eq!(quote("abcdef", 4), "abc…");
        assert_eq!(quote("ab\ncd", 10), "ab cd");
    }
}
