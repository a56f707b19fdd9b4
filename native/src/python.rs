//! The Python bindings: `engine._native`. Every function releases the GIL while it
//! works, raises `engine._native.JsonSyntaxError` (a `ValueError`) for bad JSON,
//! and returns records as `(text: bytes, offsets: bytes)`, offsets being
//! little-endian int64 (`numpy.frombuffer(offsets, "<i8")`).

use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::json::{self, JsonError};
use crate::keys::{unknown_keys as find_unknown, Known};
use crate::lines::compact_lines;
use crate::Records;

create_exception!(
    _native,
    JsonSyntaxError,
    PyValueError,
    "Not valid JSON: args are (message, byte offset, line or 0, too deep)."
);

fn syntax_error(error: &JsonError, line: usize) -> PyErr {
    let too_deep = error.kind == json::ErrorKind::TooDeep;
    JsonSyntaxError::new_err((error.to_string(), error.offset, line, too_deep))
}

fn records_out<'py>(
    py: Python<'py>,
    records: &Records,
) -> (Bound<'py, PyBytes>, Bound<'py, PyBytes>) {
    let offsets: Vec<u8> = records
        .offsets
        .iter()
        .flat_map(|o| o.to_le_bytes())
        .collect();
    (PyBytes::new(py, &records.text), PyBytes::new(py, &offsets))
}

fn span(text: &[u8], start: usize, end: usize) -> PyResult<()> {
    if start >= end || end > text.len() {
        return Err(PyValueError::new_err(format!(
            "span {start}..{end} is not inside a text of {} bytes",
            text.len()
        )));
    }
    Ok(())
}

/// compact(data: bytes) -> bytes: the one JSON value in `data` without blanks between tokens.
#[pyfunction]
fn compact<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let result = py.detach(|| {
        let mut out = Vec::with_capacity(data.len());
        json::compact(data, &mut out).map(|()| out)
    });
    match result {
        Ok(out) => Ok(PyBytes::new(py, &out)),
        Err(error) => Err(syntax_error(&error, 0)),
    }
}

/// lines(data: bytes) -> (text, offsets, line numbers): each non-blank NDJSON line
/// compacted, and its number (int64, from 1).
#[pyfunction]
fn lines<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
)> {
    match py.detach(|| compact_lines(data)) {
        Ok((records, numbers)) => {
            let (text, offsets) = records_out(py, &records);
            let numbers: Vec<u8> = numbers.iter().flat_map(|n| n.to_le_bytes()).collect();
            Ok((text, offsets, PyBytes::new(py, &numbers)))
        }
        Err(bad) => Err(syntax_error(&bad.error, bad.line)),
    }
}

/// members(text, start, end) -> [(key: bytes, start, end)]: an object's members
/// (compact, checked text; keys as written, without quotes).
#[pyfunction]
fn members<'py>(
    py: Python<'py>,
    text: &[u8],
    start: usize,
    end: usize,
) -> PyResult<Vec<(Bound<'py, PyBytes>, usize, usize)>> {
    span(text, start, end)?;
    Ok(json::members(text, start, end)
        .into_iter()
        .map(|((ks, ke), (vs, ve))| (PyBytes::new(py, &text[ks..ke]), vs, ve))
        .collect())
}

/// elements(text, start, end) -> [(start, end)]: an array's elements (compact, checked text).
#[pyfunction]
fn elements(text: &[u8], start: usize, end: usize) -> PyResult<Vec<(usize, usize)>> {
    span(text, start, end)?;
    Ok(json::elements(text, start, end))
}

/// records(text, start, end) -> (text, offsets): an array's elements back to back.
#[pyfunction]
fn records<'py>(
    py: Python<'py>,
    text: &[u8],
    start: usize,
    end: usize,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    span(text, start, end)?;
    let out = py.detach(|| crate::records(text, start, end));
    Ok(records_out(py, &out))
}

/// join_lines(text, offsets) -> bytes: the records one per line.
#[pyfunction]
fn join_lines<'py>(py: Python<'py>, text: &[u8], offsets: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let offsets = decode_offsets(text, offsets)?;
    let out = py.detach(|| crate::join_lines(text, &offsets));
    Ok(PyBytes::new(py, &out))
}

fn decode_offsets(text: &[u8], raw: &[u8]) -> PyResult<Vec<i64>> {
    if raw.len() % 8 != 0 || raw.len() < 8 {
        return Err(PyValueError::new_err("offsets must be int64, at least one"));
    }
    let offsets: Vec<i64> = raw
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect();
    let ordered = offsets.windows(2).all(|w| w[0] <= w[1]);
    let inside = offsets.first().is_some_and(|&o| o >= 0)
        && offsets.last().is_some_and(|&o| o as usize <= text.len());
    if !ordered || !inside {
        return Err(PyValueError::new_err("offsets must rise within the text"));
    }
    Ok(offsets)
}

/// unknown_keys(text, known) -> (names, paths): key names no schema knows, at any
/// depth, in compact checked records back to back; and their paths (with every
/// key under them), each a list of names.
#[pyfunction]
fn unknown_keys(
    py: Python<'_>,
    text: &[u8],
    known: Vec<String>,
) -> (Vec<String>, Vec<Vec<String>>) {
    let known = Known::new(known);
    let found = py.detach(|| find_unknown(text, &known));
    (found.names, found.paths)
}

/// The bytes of a contiguous buffer (a pyarrow `Buffer`, `bytes`, a NumPy array).
fn bytes_of(buffer: &PyBuffer<u8>) -> PyResult<&[u8]> {
    if !buffer.is_c_contiguous() {
        return Err(PyValueError::new_err("a buffer must be contiguous"));
    }
    // SAFETY: the view is contiguous, holds `len_bytes` bytes, and `buffer` (which
    // keeps the exporter's memory alive and unmoved) outlives the slice.
    Ok(unsafe { std::slice::from_raw_parts(buffer.buf_ptr() as *const u8, buffer.len_bytes()) })
}

/// instants(data, offsets, validity, offset, length) -> (values, bitmap, nulls): the
/// timestamps of an Arrow large-string column (its buffers, its offset and length)
/// parsed to UTC microseconds: int64 values and an Arrow validity bitmap.
#[pyfunction]
#[pyo3(signature = (data, offsets, validity, offset, length))]
fn instants<'py>(
    py: Python<'py>,
    data: PyBuffer<u8>,
    offsets: PyBuffer<u8>,
    validity: Option<PyBuffer<u8>>,
    offset: usize,
    length: usize,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, usize)> {
    let raw = bytes_of(&offsets)?;
    let end = offset
        .checked_add(length)
        .and_then(|n| n.checked_add(1))
        .and_then(|n| n.checked_mul(8))
        .filter(|&n| n <= raw.len())
        .ok_or_else(|| PyValueError::new_err("offsets: fewer than offset + length + 1 int64"))?;
    let offsets: Vec<i64> = raw[offset * 8..end]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect();
    let data = bytes_of(&data)?;
    let bits = validity.as_ref().map(bytes_of).transpose()?;
    let (values, bitmap, nulls) =
        py.detach(|| crate::instants::parse_column(data, &offsets, bits.map(|b| (b, offset))));
    let values: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok((PyBytes::new(py, &values), PyBytes::new(py, &bitmap), nulls))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("JsonSyntaxError", m.py().get_type::<JsonSyntaxError>())?;
    m.add("MAX_DEPTH", json::MAX_DEPTH)?;
    m.add("PATH_DEPTH", crate::keys::PATH_DEPTH)?;
    m.add_function(wrap_pyfunction!(compact, m)?)?;
    m.add_function(wrap_pyfunction!(lines, m)?)?;
    m.add_function(wrap_pyfunction!(members, m)?)?;
    m.add_function(wrap_pyfunction!(elements, m)?)?;
    m.add_function(wrap_pyfunction!(records, m)?)?;
    m.add_function(wrap_pyfunction!(join_lines, m)?)?;
    m.add_function(wrap_pyfunction!(unknown_keys, m)?)?;
    m.add_function(wrap_pyfunction!(instants, m)?)?;
    Ok(())
}
