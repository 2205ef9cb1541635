//! Where things are in a JSON text: the line and column of the value at a field path, for errors found after
//! parsing (serde_json's `Value` keeps no positions), and parser positions counted in characters.
//!
//! Lines and columns count from 1; a column counts characters, not bytes, so that it matches what an editor
//! shows for text that is not ASCII.

use crate::diagnostic::Pos;

/// The position of the value at `path` (object keys, outermost first; empty for the whole document) in
/// `text`, which must be valid JSON. When a key appears twice the last one counts, as when parsing.
pub(crate) fn value_at(text: &str, path: &[&str]) -> Option<Pos> {
    let bytes = text.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    for key in path {
        at = member(text, at, key)?;
    }
    (at < bytes.len()).then(|| pos_at(text, at))
}

/// The position of a JSON parser's error at `line` and byte `column` (serde_json's), with the column counted
/// in characters; serde_json's column 0 (nothing read on the line) is column 1.
pub(crate) fn parser_pos(text: &str, line: usize, column: usize) -> Pos {
    let start = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum::<usize>();
    let line_text = text[start..].split('\n').next().unwrap_or("");
    let mut byte = column.saturating_sub(1).min(line_text.len());
    while !line_text.is_char_boundary(byte) {
        byte -= 1;
    }
    let chars = line_text[..byte].chars().count();
    Pos { line: saturating_u32(line.max(1)), column: saturating_u32(chars + 1) }
}

/// The line and character column of byte `at` of `text`.
fn pos_at(text: &str, at: usize) -> Pos {
    let before = text.get(..at).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    Pos { line: saturating_u32(line), column: saturating_u32(before[line_start..].chars().count() + 1) }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The start of the value of `key` in the object that starts at `at`; `None` if it is not an object or has
/// no such key.
fn member(text: &str, at: usize, key: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let mut i = skip_whitespace(bytes, at + 1);
    let mut found = None;
    while bytes.get(i) == Some(&b'"') {
        let end = string_end(bytes, i)?;
        // Keys may be escaped (`"code"` written `"\u0063ode"`): compare them decoded.
        let name: Option<String> = serde_json::from_str(&text[i..end]).ok();
        i = skip_whitespace(bytes, end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let value = skip_whitespace(bytes, i + 1);
        if name.as_deref() == Some(key) {
            found = Some(value);
        }
        i = skip_whitespace(bytes, value_end(bytes, value)?);
        match bytes.get(i) {
            Some(b',') => i = skip_whitespace(bytes, i + 1),
            _ => break,
        }
    }
    found
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index just past the string that starts (with its `"`) at `i`.
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index just past the value that starts at `i`; containers are skipped without recursion.
fn value_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => string_end(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while bytes.get(i).is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, column: u32) -> Option<Pos> {
        Some(Pos { line, column })
    }

    #[test]
    fn values_are_found_by_path() {
        let text = "{\n  \"id\": \"é\", \"assetError\": {\"message\": [1, {\"code\": 0}],\n    \"code\": 99},\n  \
                    \"x\": {\"code\": 1}\n}";
        let table: &[(&[&str], Option<Pos>)] = &[
            (&[], pos(1, 1)),
            (&["id"], pos(2, 9)),
            (&["assetError"], pos(2, 28)),
            (&["assetError", "message"], pos(2, 40)),
            (&["assetError", "code"], pos(3, 13)),
            (&["x", "code"], pos(4, 17)),
            (&["missing"], None),
            (&["id", "code"], None),
        ];
        for (path, expected) in table {
            assert_eq!(value_at(text, path), *expected, "{path:?}");
        }
    }

    #[test]
    fn escaped_and_repeated_keys_count_as_parsing_does() {
        assert_eq!(value_at(r#"{"\u0063ode": 1}"#, &["code"]), pos(1, 15));
        assert_eq!(value_at(r#"{"code": 1, "code": 2}"#, &["code"]), pos(1, 21));
        assert_eq!(value_at("  \n\t [1]", &[]), pos(2, 3));
        assert_eq!(value_at(r#"{"a": "}\"{", "b": 2}"#, &["b"]), pos(1, 20));
    }

    #[test]
    fn parser_columns_count_characters() {
        let text = "{\"é\": x}";
        let e = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
        assert_eq!(parser_pos(text, e.line(), e.column()), Pos { line: 1, column: 7 });
        assert_eq!(parser_pos("", 1, 0), Pos { line: 1, column: 1 });
        assert_eq!(parser_pos("ab\ncd", 2, 99), Pos { line: 2, column: 3 });
    }
}
