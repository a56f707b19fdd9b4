//! cbrq's native ingest core.
//!
//! The byte work of reading dumps, done in one pass per file with the GIL
//! released: checking the JSON grammar and dropping the blanks between tokens
//! ([`json::compact`]), cutting responses into their records
//! ([`json::elements`], [`json::members`]), NDJSON lines ([`lines::compact_lines`]),
//! and finding unknown keys ([`keys::unknown_keys`]). The records come out as
//! one buffer and an offsets array, the shape of an Arrow string column, so no
//! Python object is made per record. The Python bindings are in `python.rs`
//! (feature `python`, which maturin turns on).

pub mod instants;
pub mod json;
pub mod keys;
pub mod lines;
#[cfg(feature = "python")]
mod python;

/// Records back to back (no separators) and their offsets (`n + 1` of them).
///
/// ```
/// use _native::Records;
/// let mut records = Records::default();
/// records.push(b"{}");
/// records.push(b"[1]");
/// assert_eq!(records.text, b"{}[1]");
/// assert_eq!(records.offsets, vec![0, 2, 5]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records {
    /// The records' text, one after the other.
    pub text: Vec<u8>,
    /// Where each record starts, and where the last one ends.
    pub offsets: Vec<i64>,
}

impl Default for Records {
    fn default() -> Self {
        Self {
            text: Vec::new(),
            offsets: vec![0],
        }
    }
}

impl Records {
    /// Add one record.
    pub fn push(&mut self, record: &[u8]) {
        self.text.extend_from_slice(record);
        self.close();
    }

    /// End the record whose text has just been appended to `text`.
    pub fn close(&mut self) {
        self.offsets.push(self.text.len() as i64);
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The elements of the array at `text[start..end]` (compact, checked) as [`Records`].
///
/// ```
/// let text = b"{\"backups\":[{\"id\":\"a\"},{\"id\":\"b\"}]}";
/// let got = _native::records(text, 11, text.len() - 1);
/// assert_eq!(got.text, b"{\"id\":\"a\"}{\"id\":\"b\"}");
/// assert_eq!(got.offsets, vec![0, 10, 20]);
/// ```
pub fn records(text: &[u8], start: usize, end: usize) -> Records {
    let spans = json::elements(text, start, end);
    let mut out = Records {
        text: Vec::with_capacity(end - start),
        offsets: Vec::with_capacity(spans.len() + 1),
    };
    out.offsets.push(0);
    for (from, to) in spans {
        out.push(&text[from..to]);
    }
    out
}

/// The records of `text` with offsets `offsets`, one per line (for a
/// newline-delimited JSON reader).
///
/// ```
/// assert_eq!(_native::join_lines(b"{}[1]", &[0, 2, 5]), b"{}\n[1]");
/// ```
pub fn join_lines(text: &[u8], offsets: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + offsets.len());
    for (i, pair) in offsets.windows(2).enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(&text[pair[0] as usize..pair[1] as usize]);
    }
    out
}
