//! NDJSON: one JSON value per line, blank lines skipped.
//!
//! ```
//! use _native::lines::compact_lines;
//! let (got, numbers) = compact_lines(b"{ \"a\": 1 }\n\n[2]\r\n").unwrap();
//! assert_eq!(got.text, b"{\"a\":1}[2]");
//! assert_eq!(got.offsets, vec![0, 7, 10]);
//! assert_eq!(numbers, vec![1, 3]);
//! ```

use crate::json::{compact, JsonError};
use crate::Records;

/// A line that is not one JSON value: its number (from 1) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The line's number, counting from 1.
    pub line: usize,
    /// What is wrong, with the byte offset inside the line.
    pub error: JsonError,
}

/// Each non-blank line of `data` compacted, as [`Records`], and each one's line number.
pub fn compact_lines(data: &[u8]) -> Result<(Records, Vec<i64>), LineError> {
    let mut out = Records {
        text: Vec::with_capacity(data.len()),
        offsets: vec![0],
    };
    let mut numbers = Vec::new();
    for (index, line) in data.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r')) {
            continue;
        }
        let before = out.text.len();
        if let Err(error) = compact(line, &mut out.text) {
            out.text.truncate(before);
            return Err(LineError {
                line: index + 1,
                error,
            });
        }
        out.close();
        numbers.push(index as i64 + 1);
    }
    Ok((out, numbers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::ErrorKind;

    #[test]
    fn names_the_bad_line() {
        let err = compact_lines(b"{}\n\n{\"a\":}\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.error.kind, ErrorKind::InvalidCharacter);
    }

    #[test]
    fn blank_input_has_no_records() {
        assert!(compact_lines(b" \n\t\r\n").unwrap().0.is_empty());
    }
}
