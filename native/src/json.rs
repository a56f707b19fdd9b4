//! One pass over JSON text: check its grammar (RFC 8259) and drop the whitespace
//! between tokens, keeping strings, escapes and numbers exactly as written.
//!
//! The result is what `cbrq` keeps as a record's `_payload` and what the typed
//! reader parses. Nothing is decoded here: a number stays its digits, an escape
//! stays its backslash.
//!
//! ```
//! use _native::json::compact;
//! let mut out = Vec::new();
//! compact(b"{ \"a\" : [1 , 2e3] }", &mut out).unwrap();
//! assert_eq!(out, b"{\"a\":[1,2e3]}");
//! ```

use std::fmt;

/// Arrays and objects nested deeper than this are refused ("nested too deeply"):
/// the readers after this one (Python's `json`, the record checker) recurse.
pub const MAX_DEPTH: usize = 900;

/// What is wrong with the text, and the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Offset of the offending byte in the input.
    pub offset: usize,
    /// What was expected or found.
    pub kind: ErrorKind,
}

/// The kinds of grammar problems, each with its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A byte that cannot start or continue a value here.
    InvalidCharacter,
    /// A number that breaks the grammar (`01`, `1.`, `-`).
    InvalidNumber,
    /// A backslash followed by something that is no JSON escape.
    InvalidEscape,
    /// A `\u` escape of half a UTF-16 surrogate pair without its other half.
    InvalidSurrogate,
    /// A control character (below U+0020) inside a string.
    ControlCharacter,
    /// The text ends inside a value.
    Truncated,
    /// Something follows the one top-level value.
    TrailingCharacters,
    /// An object key is not a string.
    ExpectedKey,
    /// No `:` after an object key.
    ExpectedColon,
    /// Neither `,` nor `}` after an object member.
    ExpectedCommaOrBrace,
    /// Neither `,` nor `]` after an array element.
    ExpectedCommaOrBracket,
    /// More than [`MAX_DEPTH`] arrays and objects open at once.
    TooDeep,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidCharacter => "invalid character",
            Self::InvalidNumber => "invalid number",
            Self::InvalidEscape => "invalid escaped character",
            Self::InvalidSurrogate => "invalid utf-16 surrogate pair",
            Self::ControlCharacter => "invalid character in a string (a control character)",
            Self::Truncated => "input data was truncated",
            Self::TrailingCharacters => "trailing characters",
            Self::ExpectedKey => "object keys must be strings",
            Self::ExpectedColon => "expected ':'",
            Self::ExpectedCommaOrBrace => "expected ',' or '}'",
            Self::ExpectedCommaOrBracket => "expected ',' or ']'",
            Self::TooDeep => "nested too deeply",
        })
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JSON is malformed: {} (byte {})", self.kind, self.offset)
    }
}

impl std::error::Error for JsonError {}

/// The offset of the first byte below U+0020 in `run`, if any.
#[inline]
fn first_control(run: &[u8]) -> Option<usize> {
    if run.iter().fold(0u8, |seen, &b| seen | u8::from(b < 0x20)) == 0 {
        None
    } else {
        run.iter().position(|&b| b < 0x20)
    }
}

#[inline]
fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The compacting reader: input, position, output.
struct Reader<'a, 'o> {
    data: &'a [u8],
    pos: usize,
    out: &'o mut Vec<u8>,
}

impl Reader<'_, '_> {
    fn fail<T>(&self, kind: ErrorKind) -> Result<T, JsonError> {
        let kind = if self.pos >= self.data.len() && kind != ErrorKind::TooDeep {
            ErrorKind::Truncated
        } else {
            kind
        };
        Err(JsonError {
            offset: self.pos,
            kind,
        })
    }

    #[inline]
    fn skip_blank(&mut self) {
        while self.pos < self.data.len() && is_blank(self.data[self.pos]) {
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// A string from its opening quote; copies it verbatim.
    fn string(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        self.pos += 1;
        loop {
            let rest = &self.data[self.pos..];
            let Some(offset) = memchr::memchr2(b'"', b'\\', rest) else {
                self.pos = self.data.len();
                return self.fail(ErrorKind::Truncated);
            };
            // A control character before the quote or backslash (a vectorised scan).
            if let Some(bad) = first_control(&rest[..offset]) {
                self.pos += bad;
                return self.fail(ErrorKind::ControlCharacter);
            }
            self.pos += offset;
            match self.data[self.pos] {
                b'"' => {
                    self.pos += 1;
                    self.out.extend_from_slice(&self.data[start..self.pos]);
                    return Ok(());
                }
                _ => self.escape()?,
            }
        }
    }

    /// An escape from its backslash; checked, not decoded.
    fn escape(&mut self) -> Result<(), JsonError> {
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                if (0xDC00..=0xDFFF).contains(&unit) {
                    self.pos -= 6;
                    return self.fail(ErrorKind::InvalidSurrogate);
                }
                if (0xD800..=0xDBFF).contains(&unit) {
                    // A high surrogate must be followed by a low one.
                    if !self.data[self.pos..].starts_with(b"\\u") {
                        return self.fail(ErrorKind::InvalidSurrogate);
                    }
                    self.pos += 2;
                    let low = self.hex4()?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        self.pos -= 6;
                        return self.fail(ErrorKind::InvalidSurrogate);
                    }
                }
                Ok(())
            }
            _ => self.fail(ErrorKind::InvalidEscape),
        }
    }

    /// Four hex digits of a `\u` escape, as a UTF-16 code unit.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut unit = 0u32;
        for _ in 0..4 {
            match self.peek().and_then(|b| char::from(b).to_digit(16)) {
                Some(digit) => {
                    unit = unit * 16 + digit;
                    self.pos += 1;
                }
                None => return self.fail(ErrorKind::InvalidEscape),
            }
        }
        Ok(unit)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// A number, copied verbatim once its grammar holds.
    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return self.fail(ErrorKind::InvalidNumber);
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.fail(ErrorKind::InvalidCharacter),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return self.fail(ErrorKind::InvalidNumber);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.fail(ErrorKind::InvalidNumber);
            }
        }
        self.out.extend_from_slice(&self.data[start..self.pos]);
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.data[self.pos..].starts_with(word) {
            self.pos += word.len();
            self.out.extend_from_slice(word);
            Ok(())
        } else {
            self.fail(ErrorKind::InvalidCharacter)
        }
    }

    /// An object key and its colon, after the blank before the key.
    fn key(&mut self) -> Result<(), JsonError> {
        if self.peek() != Some(b'"') {
            return self.fail(ErrorKind::ExpectedKey);
        }
        self.string()?;
        self.skip_blank();
        if self.peek() != Some(b':') {
            return self.fail(ErrorKind::ExpectedColon);
        }
        self.pos += 1;
        self.out.push(b':');
        self.skip_blank();
        Ok(())
    }

    /// One whole value at the current position (blanks before it already skipped).
    fn value(&mut self) -> Result<(), JsonError> {
        // `true` for an open object, `false` for an open array.
        let mut open: Vec<bool> = Vec::new();
        loop {
            // A value starts here.
            match self.peek() {
                Some(b'{') | Some(b'[') => {
                    let object = self.data[self.pos] == b'{';
                    if open.len() >= MAX_DEPTH {
                        return self.fail(ErrorKind::TooDeep);
                    }
                    self.out.push(self.data[self.pos]);
                    self.pos += 1;
                    self.skip_blank();
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.out.push(close);
                        self.pos += 1;
                    } else {
                        open.push(object);
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => self.string()?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return self.fail(ErrorKind::InvalidCharacter),
            }
            // After a value: close what ends here, or go on to the next member.
            loop {
                let Some(&object) = open.last() else {
                    return Ok(());
                };
                self.skip_blank();
                match self.peek() {
                    Some(b',') => {
                        self.out.push(b',');
                        self.pos += 1;
                        self.skip_blank();
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        self.out.push(b'}');
                        self.pos += 1;
                        open.pop();
                    }
                    Some(b']') if !object => {
                        self.out.push(b']');
                        self.pos += 1;
                        open.pop();
                    }
                    _ if object => return self.fail(ErrorKind::ExpectedCommaOrBrace),
                    _ => return self.fail(ErrorKind::ExpectedCommaOrBracket),
                }
            }
        }
    }
}

/// Check that `data` is one JSON value (blanks around it allowed) and append it,
/// without the blanks between tokens, to `out`.
///
/// On error `out` may hold a part of the value.
///
/// ```
/// use _native::json::compact;
/// let mut out = Vec::new();
/// assert!(compact(b"[1,]", &mut out).is_err());
/// ```
pub fn compact(data: &[u8], out: &mut Vec<u8>) -> Result<(), JsonError> {
    let mut reader = Reader { data, pos: 0, out };
    reader.skip_blank();
    reader.value()?;
    reader.skip_blank();
    if reader.pos < data.len() {
        return reader.fail(ErrorKind::TrailingCharacters);
    }
    Ok(())
}

/// The end (exclusive) of the value starting at `start` in compact, checked JSON.
///
/// Only strings and brackets are tracked: the text has been through [`compact`].
///
/// ```
/// use _native::json::value_end;
/// assert_eq!(value_end(b"[{\"a\":\"]\"},2]", 1), 10);
/// ```
pub fn value_end(text: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut pos = start;
    while pos < text.len() {
        match text[pos] {
            b'"' => {
                pos = string_end(text, pos);
                if depth == 0 {
                    return pos;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return pos;
                }
                depth -= 1;
                if depth == 0 {
                    return pos + 1;
                }
            }
            b',' | b':' if depth == 0 => return pos,
            _ => {}
        }
        pos += 1;
    }
    pos
}

/// The end (exclusive) of the string whose opening quote is at `start`.
pub fn string_end(text: &[u8], start: usize) -> usize {
    let mut pos = start + 1;
    while let Some(offset) = memchr::memchr2(b'"', b'\\', &text[pos.min(text.len())..]) {
        pos += offset;
        if text[pos] == b'"' {
            return pos + 1;
        }
        pos += 2;
    }
    text.len()
}

/// The spans of the elements of the array in `text[start..end]` (compact, checked).
///
/// ```
/// use _native::json::elements;
/// assert_eq!(elements(b"[1,[2,3],\"x\"]", 0, 13), vec![(1, 2), (3, 8), (9, 12)]);
/// ```
pub fn elements(text: &[u8], start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut pos = start + 1;
    let last = end.saturating_sub(1).min(text.len());
    while pos < last {
        let stop = value_end(text, pos).min(last);
        spans.push((pos, stop));
        pos = stop + 1;
    }
    spans
}

/// The members of the object in `text[start..end]` (compact, checked): each key's
/// span without its quotes, and its value's span.
///
/// ```
/// use _native::json::members;
/// let text = b"{\"a\":1,\"b\":[2]}";
/// assert_eq!(members(text, 0, text.len()), vec![((2, 3), (5, 6)), ((8, 9), (11, 14))]);
/// ```
pub fn members(text: &[u8], start: usize, end: usize) -> Vec<((usize, usize), (usize, usize))> {
    let mut found = Vec::new();
    let mut pos = start + 1;
    let last = end.saturating_sub(1).min(text.len());
    while pos < last {
        let key_end = string_end(text, pos);
        let value_start = key_end + 1;
        if value_start >= last {
            break; // not compact JSON: no value after the key
        }
        let value_stop = value_end(text, value_start).min(last);
        found.push(((pos + 1, key_end - 1), (value_start, value_stop)));
        pos = value_stop + 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        let mut out = Vec::new();
        compact(text.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn err(text: &[u8]) -> JsonError {
        compact(text, &mut Vec::new()).unwrap_err()
    }

    #[test]
    fn drops_blanks_between_tokens_only() {
        assert_eq!(
            ok(" { \"a b\" : [ 1 , 2.5e-3 ] ,\n\"c\":\t\"x  y\" } "),
            "{\"a b\":[1,2.5e-3],\"c\":\"x  y\"}"
        );
        assert_eq!(ok("[\r\n]"), "[]");
        assert_eq!(ok("{ }"), "{}");
        assert_eq!(ok("\"\\u00e9\\n\""), "\"\\u00e9\\n\"");
        assert_eq!(ok("[true,false,null,-0,1E+2]"), "[true,false,null,-0,1E+2]");
        assert_eq!(ok("[1e400]"), "[1e400]");
    }

    #[test]
    fn refuses_what_json_refuses() {
        assert_eq!(err(b"[01]").kind, ErrorKind::InvalidNumber);
        assert_eq!(err(b"[1.]").kind, ErrorKind::InvalidNumber);
        assert_eq!(err(b"[-]").kind, ErrorKind::InvalidCharacter);
        assert_eq!(err(b"[NaN]").kind, ErrorKind::InvalidCharacter);
        assert_eq!(err(b"[\"a\x01\"]").kind, ErrorKind::ControlCharacter);
        assert_eq!(err(b"[\"\\x\"]").kind, ErrorKind::InvalidEscape);
        assert_eq!(err(br#"["\udc00"]"#).kind, ErrorKind::InvalidSurrogate);
        assert_eq!(err(br#"["\ud800"]"#).kind, ErrorKind::InvalidSurrogate);
        assert_eq!(
            err(br#"["\ud800\u0041"]"#).kind,
            ErrorKind::InvalidSurrogate
        );
        assert_eq!(ok(r#"["\ud83d\ude00\u00e9"]"#), r#"["\ud83d\ude00\u00e9"]"#);
        assert_eq!(
            err(b"[1]x"),
            JsonError {
                offset: 3,
                kind: ErrorKind::TrailingCharacters
            }
        );
        assert_eq!(err(b"[1\x0c]").kind, ErrorKind::ExpectedCommaOrBracket);
        assert_eq!(err(b"{\"a\" 1}").kind, ErrorKind::ExpectedColon);
        assert_eq!(err(b"{1:2}").kind, ErrorKind::ExpectedKey);
        assert_eq!(err(b"{\"a\":1,}").kind, ErrorKind::ExpectedKey);
        assert_eq!(err(b"[1,]").kind, ErrorKind::InvalidCharacter);
        assert_eq!(err(b"{\"a\":1").kind, ErrorKind::Truncated);
        assert_eq!(err(b"\"abc").kind, ErrorKind::Truncated);
        assert_eq!(err(b"").kind, ErrorKind::Truncated);
        assert_eq!(err(b"tru").kind, ErrorKind::InvalidCharacter);
    }

    #[test]
    fn depth_is_bounded_without_recursion() {
        let deep = "[".repeat(100_000);
        assert_eq!(err(deep.as_bytes()).kind, ErrorKind::TooDeep);
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(ok(&fine), fine);
    }

    #[test]
    fn message_names_the_byte() {
        assert_eq!(
            err(b"[1,}").to_string(),
            "JSON is malformed: invalid character (byte 3)"
        );
    }

    #[test]
    fn spans_follow_strings_with_brackets_and_escapes() {
        let text = br#"[{"a":"]\"}"},[],"x,y"]"#;
        assert_eq!(
            elements(text, 0, text.len()),
            vec![(1, 13), (14, 16), (17, 22)]
        );
        let object = br#"{"k\"":{"x":[1]},"n":null}"#;
        let found = members(object, 0, object.len());
        assert_eq!(&object[found[0].0 .0..found[0].0 .1], br#"k\""#);
        assert_eq!(&object[found[0].1 .0..found[0].1 .1], br#"{"x":[1]}"#);
        assert_eq!(&object[found[1].1 .0..found[1].1 .1], b"null");
        assert!(elements(b"[]", 0, 2).is_empty());
    }

    #[test]
    fn spans_stay_inside_text_that_is_not_compact_json() {
        for text in [
            &b"{\""[..],
            b"{\"a",
            b"{\"a\":",
            b"[\"",
            b"{\"a\"}",
            b"}}",
            b"[[",
            b"\\",
        ] {
            for (key, value) in members(text, 0, text.len()) {
                assert!(key.0 <= key.1 && key.1 <= text.len() && value.0 <= value.1);
                assert!(value.1 <= text.len());
            }
            for (from, to) in elements(text, 0, text.len()) {
                assert!(from <= to && to <= text.len());
            }
        }
    }
}
