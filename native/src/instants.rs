//! The timestamp grammar of CBR dumps (SPEC §1), as `engine/instants.py` gives it:
//! `YYYY-MM-DDTHH:MM:SS`, an optional `.fraction` of 1 to 9 digits (digits past
//! the sixth truncated), an optional zone (`Z` or `±HH:MM`, none meaning UTC).
//! Days that do not exist, leap seconds and instants outside years 1..9999
//! after the offset are invalid. The answer is microseconds since the Unix
//! epoch, UTC.
//!
//! ```
//! use _native::instants::parse;
//! assert_eq!(parse(b"1970-01-01T08:00:00.5+08:00"), Some(500_000));
//! assert_eq!(parse(b"2026-02-29T00:00:00"), None);
//! ```

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// The number written by the ASCII digits `text[from..to]`, if all are digits.
fn number(text: &[u8], from: usize, to: usize) -> Option<i64> {
    text.get(from..to)?.iter().try_fold(0i64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// The first instant that may be stored: 0001-01-01T00:00:00 UTC.
pub fn min_micros() -> i64 {
    days_from_civil(1, 1, 1) * MICROS_PER_DAY
}

/// The last instant that may be stored: 9999-12-31T23:59:59.999999 UTC.
pub fn max_micros() -> i64 {
    days_from_civil(10_000, 1, 1) * MICROS_PER_DAY - 1
}

/// One timestamp, or `None` when it breaks the grammar.
pub fn parse(text: &[u8]) -> Option<i64> {
    if text.len() < 19
        || text[4] != b'-'
        || text[7] != b'-'
        || text[10] != b'T'
        || text[13] != b':'
        || text[16] != b':'
    {
        return None;
    }
    let year = number(text, 0, 4)?;
    let month = number(text, 5, 7)?;
    let day = number(text, 8, 10)?;
    let hour = number(text, 11, 13)?;
    let minute = number(text, 14, 16)?;
    let second = number(text, 17, 19)?;
    let valid_date = year >= 1 && (1..=12).contains(&month);
    if !valid_date || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut pos = 19;
    let mut micros = 0;
    if text.get(pos) == Some(&b'.') {
        let start = pos + 1;
        let digits = text[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let kept = digits.min(6);
        micros = number(text, start, start + kept)? * 10i64.pow((6 - kept) as u32);
        pos = start + digits;
    }
    let offset_minutes = match &text[pos..] {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hours = number(text, pos + 1, pos + 3)?;
            let minutes = number(text, pos + 4, pos + 6)?;
            if minutes > 59 {
                return None;
            }
            let size = hours * 60 + minutes;
            if *sign == b'-' {
                -size
            } else {
                size
            }
        }
        _ => return None,
    };
    let seconds = hour * 3600 + minute * 60 + second - offset_minutes * 60;
    let value =
        days_from_civil(year, month, day) * MICROS_PER_DAY + seconds * MICROS_PER_SECOND + micros;
    (min_micros()..=max_micros())
        .contains(&value)
        .then_some(value)
}

/// An Arrow validity bitmap and the bit where the column starts in it.
pub type Validity<'a> = Option<(&'a [u8], usize)>;

/// Parse a string column given as Arrow buffers: `offsets` (`n + 1`) into `data`,
/// and its validity (absent means all valid). Returns the values (0 where null)
/// and an Arrow validity bitmap, with the count of nulls.
pub fn parse_column(
    data: &[u8],
    offsets: &[i64],
    valid: Validity<'_>,
) -> (Vec<i64>, Vec<u8>, usize) {
    let n = offsets.len().saturating_sub(1);
    let mut values = vec![0i64; n];
    let mut bitmap = vec![0u8; n.div_ceil(8)];
    let mut nulls = 0;
    for i in 0..n {
        let present = valid.is_none_or(|(bits, start)| {
            let bit = start + i;
            bits.get(bit / 8)
                .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
        });
        let parsed = if present {
            let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
            data.get(from..to).and_then(parse)
        } else {
            None
        };
        match parsed {
            Some(value) => {
                values[i] = value;
                bitmap[i / 8] |= 1 << (i % 8);
            }
            None => nulls += 1,
        }
    }
    (values, bitmap, nulls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<i64> {
        parse(text.as_bytes())
    }

    #[test]
    fn every_form_of_the_grammar() {
        let base = 1_582_268_454 * MICROS_PER_SECOND; // 2020-02-21T07:00:54Z
        assert_eq!(at("2020-02-21T07:00:54"), Some(base));
        assert_eq!(at("2020-02-21T07:00:54Z"), Some(base));
        assert_eq!(at("2020-02-21T07:00:54.065135"), Some(base + 65_135));
        assert_eq!(at("2020-02-21T15:00:54.065+08:00"), Some(base + 65_000));
        assert_eq!(at("2020-02-21T06:30:54.1-00:30"), Some(base + 100_000));
        assert_eq!(at("2020-02-21T07:00:54.123456789Z"), Some(base + 123_456));
    }

    #[test]
    fn what_the_grammar_refuses() {
        for bad in [
            "2020-02-21",
            "2020-02-21 07:00:54",
            "2020-02-21T24:00:00",
            "2020-02-21T07:60:00",
            "2020-02-21T07:00:60",
            "2020-02-30T07:00:00",
            "2021-02-29T00:00:00",
            "0000-01-01T00:00:00",
            "2020-13-01T00:00:00",
            "2020-02-21T07:00:54.",
            "2020-02-21T07:00:54.1234567890",
            "2020-02-21T07:00:54+08",
            "2020-02-21T07:00:54+08:60",
            "2020-02-21T07:00:54z",
            "2020-02-21T07:00:54Z\n",
            "２０２０-02-21T07:00:54",
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        assert_eq!(
            at("2000-02-29T00:00:00"),
            Some(951_782_400 * MICROS_PER_SECOND)
        );
        assert_eq!(at("0001-01-01T00:00:00"), Some(min_micros()));
        assert_eq!(at("9999-12-31T23:59:59.999999"), Some(max_micros()));
    }

    #[test]
    fn columns_keep_nulls_and_count_failures() {
        let data = b"2020-02-21T07:00:54Zbad";
        let (values, bitmap, nulls) = parse_column(data, &[0, 20, 23, 23], Some((&[0b0110], 1)));
        assert_eq!(values[0], 1_582_268_454 * MICROS_PER_SECOND);
        assert_eq!(bitmap, vec![0b001]);
        assert_eq!(nulls, 2);
    }
}
