//! Unknown keys: the key names, at any depth, that no typed schema knows, and
//! where they sit (their paths of keys from the record, and the paths of every
//! key under them). A list's elements share the list's path.
//!
//! ```
//! use _native::keys::{Known, unknown_keys};
//! let known = Known::new(["id", "status"]);
//! let found = unknown_keys(br#"{"id":"a","fail_code":{"Code":"E1"}}"#, &known);
//! assert_eq!(found.names, vec!["Code".to_string(), "fail_code".to_string()]);
//! assert_eq!(found.paths.len(), 2);
//! ```

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use crate::json::string_end;

/// FNV-1a: key names are short, and a lookup happens for every key of every record.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

type FnvSet<T> = HashSet<T, BuildHasherDefault<Fnv>>;

/// Paths are kept this many keys deep at most (names at any depth): they are
/// for people to read (`fail_code (Code, Description)`), and a record nested
/// hundreds deep would otherwise give hundreds of ever longer paths.
pub const PATH_DEPTH: usize = 8;

/// The key names every typed schema knows (as written in JSON, without quotes).
pub struct Known(FnvSet<Vec<u8>>);

impl Known {
    /// The set of `names`.
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self(
            names
                .into_iter()
                .map(|n| n.as_ref().as_bytes().to_vec())
                .collect(),
        )
    }

    fn contains(&self, raw: &[u8]) -> bool {
        self.0.contains(raw)
    }
}

/// What [`unknown_keys`] found: sorted names, and paths in order of discovery.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unknown {
    /// Every unknown key name, decoded, sorted.
    pub names: Vec<String>,
    /// Each distinct path of an unknown key or a key under one.
    pub paths: Vec<Vec<String>>,
}

/// One open container while walking: an object (its current key) or an array.
struct Frame {
    object: bool,
    /// The current key of an object (raw span inside the quotes).
    key: (usize, usize),
    /// Whether this container sits under an unknown key.
    inside: bool,
    /// Whether the object's current key is unknown (or is under one).
    key_flagged: bool,
}

/// Walk compact, checked JSON `text` (one value or several back to back) and collect
/// the unknown keys.
pub fn unknown_keys(text: &[u8], known: &Known) -> Unknown {
    let mut names: FnvSet<Vec<u8>> = FnvSet::default();
    let mut seen_paths: HashSet<u64> = HashSet::new();
    let mut paths: Vec<Vec<String>> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        match text[pos] {
            b'{' | b'[' => {
                let inside = stack.last().is_some_and(|f| f.inside || f.key_flagged);
                stack.push(Frame {
                    object: text[pos] == b'{',
                    key: (0, 0),
                    inside,
                    key_flagged: false,
                });
                pos += 1;
            }
            b'}' | b']' => {
                stack.pop();
                pos += 1;
            }
            b'"' => {
                let end = string_end(text, pos);
                let is_key = text.get(end) == Some(&b':')
                    && stack.last().is_some_and(|f| f.object)
                    && matches!(text[pos - 1], b'{' | b',');
                if is_key {
                    let raw = &text[pos + 1..end - 1];
                    let unknown = !known.contains(raw);
                    if unknown && !names.contains(raw) {
                        names.insert(raw.to_vec());
                    }
                    let frame = stack.last_mut().expect("a key sits in an object");
                    frame.key = (pos + 1, end - 1);
                    frame.key_flagged = frame.inside || unknown;
                    if frame.key_flagged {
                        note_path(text, &stack, &mut seen_paths, &mut paths);
                    }
                }
                pos = end;
            }
            _ => pos += 1,
        }
    }
    let mut names: Vec<String> = names.iter().map(|raw| decode_key(raw)).collect();
    names.sort();
    Unknown { names, paths }
}

/// Record the path of the current key (every open object's key), once.
fn note_path(text: &[u8], stack: &[Frame], seen: &mut HashSet<u64>, paths: &mut Vec<Vec<String>>) {
    if stack.iter().filter(|f| f.object).count() > PATH_DEPTH {
        return;
    }
    let mut hasher = Fnv::default();
    for frame in stack.iter().filter(|f| f.object) {
        hasher.write(&text[frame.key.0..frame.key.1]);
        hasher.write(&[0xff]);
    }
    if seen.insert(hasher.finish()) {
        paths.push(
            stack
                .iter()
                .filter(|f| f.object)
                .map(|f| decode_key(&text[f.key.0..f.key.1]))
                .collect(),
        );
    }
}

/// A key's text inside its quotes, with JSON escapes decoded.
///
/// ```
/// use _native::keys::decode_key;
/// assert_eq!(decode_key(br#"q\"uote \u00e9 \ud83d\ude00"#), "q\"uote é 😀");
/// ```
pub fn decode_key(raw: &[u8]) -> String {
    if !raw.contains(&b'\\') {
        return String::from_utf8_lossy(raw).into_owned();
    }
    let mut out: Vec<u16> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let flush = |bytes: &mut Vec<u8>, out: &mut Vec<u16>| {
        out.extend(String::from_utf8_lossy(bytes).encode_utf16());
        bytes.clear();
    };
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 >= raw.len() {
            bytes.push(raw[i]);
            i += 1;
            continue;
        }
        let simple = match raw[i + 1] {
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            other => Some(other),
        };
        if let Some(byte) = simple {
            bytes.push(byte);
            i += 2;
            continue;
        }
        let unit = raw
            .get(i + 2..i + 6)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u16::from_str_radix(h, 16).ok());
        match unit {
            Some(unit) => {
                flush(&mut bytes, &mut out);
                out.push(unit);
                i += 6;
            }
            None => {
                bytes.push(raw[i]);
                i += 1;
            }
        }
    }
    flush(&mut bytes, &mut out);
    String::from_utf16_lossy(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Unknown {
        unknown_keys(
            text.as_bytes(),
            &Known::new(["id", "status", "extend_info", "code"]),
        )
    }

    fn path(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nothing_unknown() {
        assert_eq!(
            found(r#"{"id":"a","extend_info":{"code":1}}{"id":"b"}"#),
            Unknown::default()
        );
    }

    #[test]
    fn nested_unknown_keys_carry_their_children() {
        let got = found(r#"{"id":"a","extend_info":{"zz":{"status":1,"y":[{"w":2}]}}}"#);
        assert_eq!(got.names, vec!["w", "y", "zz"]);
        assert_eq!(
            got.paths,
            vec![
                path(&["extend_info", "zz"]),
                path(&["extend_info", "zz", "status"]),
                path(&["extend_info", "zz", "y"]),
                path(&["extend_info", "zz", "y", "w"]),
            ]
        );
    }

    #[test]
    fn known_names_under_known_keys_stay_unreported() {
        let got = found(r#"{"status":"x","id":{"status":"y"}}"#);
        assert_eq!(got, Unknown::default());
    }

    #[test]
    fn strings_that_look_like_keys_are_values() {
        let got = found(r#"{"id":"\"x\":","status":["a","b:"],"k":"v"}"#);
        assert_eq!(got.names, vec!["k"]);
        assert_eq!(got.paths, vec![path(&["k"])]);
    }

    #[test]
    fn paths_are_listed_once_across_records() {
        let got = found(r#"{"fail":{"c":1}}{"fail":{"c":2}}[{"fail":3}]"#);
        assert_eq!(got.paths, vec![path(&["fail"]), path(&["fail", "c"])]);
    }

    #[test]
    fn paths_stop_at_their_depth() {
        let deep = format!("{}1{}", "{\"a\":".repeat(20), "}".repeat(20));
        let got = found(&deep);
        assert_eq!(got.names, vec!["a"]);
        assert_eq!(got.paths.len(), PATH_DEPTH);
        assert_eq!(got.paths[PATH_DEPTH - 1].len(), PATH_DEPTH);
    }

    #[test]
    fn escaped_names_are_decoded() {
        let got = found(r#"{"q\"uote":1,"x\\y":2}"#);
        assert_eq!(got.names, vec!["q\"uote", "x\\y"]);
    }
}
