//! Quantities compose files write as text: durations (`1m30s`), byte sizes (`512m`) and file modes (`0440`).
//!
//! Docker Compose parses these with Go's `time.ParseDuration` (plus `d` and `w`, from str2duration) and
//! go-units' `RAMInBytes`, and prints durations with Go's `time.Duration.String()`. berth must read and print them
//! the same way, or `berth config` would disagree with `docker compose config` on the same file.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a string duration looks like: Go's syntax, one or more `<number><unit>` groups, or a bare `0`.
pub const DURATION_PATTERN: &str = r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d|w))+)$";

/// What a string byte size looks like: a number, an optional space, and a unit `b`, `k`, `kb`, `kib`, … `p`.
pub const BYTE_SIZE_PATTERN: &str = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+) ?([bB]|[kKmMgGtTpP]([bB]|[iI][bB])?)?$";

/// What a string file mode looks like: octal digits, as in `0440`.
pub const FILE_MODE_PATTERN: &str = r"^[0-7]+$";

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// A span of time in nanoseconds, as Go's `time.Duration` (which bounds it to ±292 years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub const fn from_nanos(nanos: i64) -> Self {
        Duration(nanos)
    }

    pub const fn from_secs(secs: i64) -> Self {
        Duration(secs.saturating_mul(NANOS_PER_SECOND as i64))
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// The duration for timers and sleeps; `None` when negative.
    pub fn to_std(self) -> Option<std::time::Duration> {
        u64::try_from(self.0).ok().map(std::time::Duration::from_nanos)
    }

    /// Parse Go's duration syntax (`300ms`, `-1.5h`, `2h45m`), with str2duration's `d` (24h) and `w` (7d).
    pub fn parse(input: &str) -> Result<Self, DurationError> {
        let fail = |reason| DurationError { input: input.to_string(), reason };
        let (negative, mut rest) = match input.as_bytes().first() {
            Some(b'-') => (true, &input[1..]),
            Some(b'+') => (false, &input[1..]),
            _ => (false, input),
        };
        if rest == "0" {
            return Ok(Duration(0));
        }
        if rest.is_empty() {
            return Err(fail("empty duration"));
        }
        const LIMIT: u64 = 1 << 63;
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let (whole, after_whole, whole_digits) = leading_int(rest).ok_or_else(|| fail("number too large"))?;
            rest = after_whole;
            let (mut fraction, mut scale, mut fraction_digits) = (0u64, 1f64, false);
            if let Some(after_dot) = rest.strip_prefix('.') {
                (fraction, scale, rest, fraction_digits) = leading_fraction(after_dot);
            }
            if !whole_digits && !fraction_digits {
                return Err(fail("expected a number"));
            }
            let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
            if unit_len == 0 {
                return Err(fail("missing unit (use ns, us, ms, s, m, h, d or w)"));
            }
            let unit =
                unit_nanos(&rest[..unit_len]).ok_or_else(|| fail("unknown unit (use ns, us, ms, s, m, h, d or w)"))?;
            rest = &rest[unit_len..];
            if whole > LIMIT / unit {
                return Err(fail("duration too large"));
            }
            let mut value = whole * unit;
            if fraction > 0 {
                // Go computes the fractional part in floating point, truncating toward zero.
                value += (fraction as f64 * (unit as f64 / scale)) as u64;
                if value > LIMIT {
                    return Err(fail("duration too large"));
                }
            }
            total = total.checked_add(value).filter(|t| *t <= LIMIT).ok_or_else(|| fail("duration too large"))?;
        }
        if negative {
            // -(1 << 63) is the one value whose magnitude does not fit an i64.
            Ok(Duration(0i64.wrapping_sub_unsigned(total)))
        } else {
            i64::try_from(total).map(Duration).map_err(|_| fail("duration too large"))
        }
    }
}

/// Nanoseconds per unit; the spellings Go and str2duration accept.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => NANOS_PER_MICRO,
        "ms" => NANOS_PER_MILLI,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        "d" => 86_400 * NANOS_PER_SECOND,
        "w" => 7 * 86_400 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// Leading decimal digits: value, rest, and whether there were any. `None` on overflow.
fn leading_int(s: &str) -> Option<(u64, &str, bool)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for b in s[..digits].bytes() {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        if value > 1 << 63 {
            return None;
        }
    }
    Some((value, &s[digits..], digits > 0))
}

/// Leading fraction digits as Go reads them: digits past what fits are dropped, not an error.
fn leading_fraction(s: &str) -> (u64, f64, &str, bool) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (mut value, mut scale, mut overflow) = (0u64, 1f64, false);
    for b in s[..digits].bytes() {
        if overflow {
            continue;
        }
        match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(b - b'0'))).filter(|v| *v <= 1 << 63) {
            Some(v) => {
                value = v;
                scale *= 10.0;
            }
            None => overflow = true,
        }
    }
    (value, scale, &s[digits..], digits > 0)
}

impl fmt::Display for Duration {
    /// Go's `time.Duration.String()`: `1h2m3.5s`, `1m30s`, `1.5ms`, `2µs`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.0 < 0;
        let nanos = self.0.unsigned_abs();
        let mut out = String::new();
        if negative {
            out.push('-');
        }
        if nanos == 0 {
            out.push_str("0s");
        } else if nanos < NANOS_PER_SECOND {
            let (unit, per) = if nanos < NANOS_PER_MICRO {
                ("ns", 1)
            } else if nanos < NANOS_PER_MILLI {
                ("µs", NANOS_PER_MICRO)
            } else {
                ("ms", NANOS_PER_MILLI)
            };
            push_decimal(&mut out, nanos / per, nanos % per, per);
            out.push_str(unit);
        } else {
            let secs = nanos / NANOS_PER_SECOND;
            let (hours, minutes) = (secs / 3_600, secs / 60 % 60);
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            if hours > 0 || minutes > 0 {
                out.push_str(&format!("{minutes}m"));
            }
            push_decimal(&mut out, secs % 60, nanos % NANOS_PER_SECOND, NANOS_PER_SECOND);
            out.push('s');
        }
        f.write_str(&out)
    }
}

/// `whole.fraction` with the fraction's trailing zeros (and a bare dot) left out, as Go's `fmtFrac` does.
fn push_decimal(out: &mut String, whole: u64, fraction: u64, per: u64) {
    out.push_str(&whole.to_string());
    if fraction > 0 {
        let width = per.ilog10() as usize;
        let digits = format!("{fraction:0width$}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `10s` or `1m30s`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }

            // Compose prints a number and parses the text, so `0` is a duration and `10` lacks a unit.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration in Go syntax: `10s`, `1m30s`, `1.5h`, `500ms`; also `d` and `w`.",
        })
    }
}

/// A number of bytes. Written as an integer or as text with a binary unit (`512m` is 512 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {input:?}: {reason}")]
pub struct ByteSizeError {
    pub input: String,
    pub reason: &'static str,
}

impl ByteSize {
    pub const fn bytes(self) -> i64 {
        self.0
    }

    /// Parse as go-units' `RAMInBytes`: `10`, `2b`, `10k`, `512m`, `1gb`, `1.5GiB`, `4 t`; units are powers of 1024.
    pub fn parse(input: &str) -> Result<Self, ByteSizeError> {
        let fail = |reason| ByteSizeError { input: input.to_string(), reason };
        let Some(sep) = input.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
            return Err(fail("expected a number"));
        };
        let (number, suffix) = if input.as_bytes()[sep] == b' ' {
            (&input[..sep], &input[sep + 1..])
        } else {
            (&input[..=sep], &input[sep + 1..])
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(fail("expected a number"));
        }
        let size: f64 = number.parse().map_err(|_| fail("expected a number"))?;
        let suffix = suffix.to_ascii_lowercase();
        let multiplier: f64 = match suffix.as_bytes() {
            [] | [b'b'] => 1.0,
            [unit] | [unit, b'b'] | [unit, b'i', b'b'] => match unit {
                b'k' => 1024f64,
                b'm' => 1024f64.powi(2),
                b'g' => 1024f64.powi(3),
                b't' => 1024f64.powi(4),
                b'p' => 1024f64.powi(5),
                _ => return Err(fail("unknown unit (use b, k, m, g, t or p)")),
            },
            _ => return Err(fail("unknown unit (use b, k, m, g, t or p)")),
        };
        let bytes = size * multiplier;
        if bytes >= i64::MAX as f64 {
            return Err(fail("size too large"));
        }
        // Go converts with int64(), which truncates the fraction of a byte.
        Ok(ByteSize(bytes as i64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ByteSize::parse(s)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ByteSizeVisitor;

        impl Visitor<'_> for ByteSizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes, or a size such as `512m` or `1gb`")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                i64::try_from(v).map(ByteSize).map_err(|_| E::custom(format!("size {v} too large")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
                if v.is_finite() && v.abs() < i64::MAX as f64 {
                    Ok(ByteSize(v as i64))
                } else {
                    Err(E::custom(format!("size {v} out of range")))
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["number", "string"],
            "pattern": BYTE_SIZE_PATTERN,
            "description": "A size: a number of bytes, or text with a binary unit such as `512m`, `1gb`, `10k`.",
        })
    }
}

/// Permission bits of a file berth mounts (secrets, configs). Text is octal, as compose reads it: `"0440"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileMode(pub u32);

impl fmt::Display for FileMode {
    /// Octal with a leading zero, as compose prints it: `0440`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0{:o}", self.0)
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileModeVisitor;

        impl Visitor<'_> for FileModeVisitor {
            type Value = FileMode;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file mode, as a number or octal text such as \"0440\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileMode, E> {
                u32::try_from(v).map(FileMode).map_err(|_| E::custom(format!("file mode {v} out of range")))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
                u32::try_from(v).map(FileMode).map_err(|_| E::custom(format!("file mode {v} out of range")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                u32::from_str_radix(v, 8).map(FileMode).map_err(|_| E::custom(format!("invalid octal file mode {v:?}")))
            }
        }

        deserializer.deserialize_any(FileModeVisitor)
    }
}

impl JsonSchema for FileMode {
    fn schema_name() -> Cow<'static, str> {
        "FileMode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["integer", "string"],
            "minimum": 0,
            "pattern": FILE_MODE_PATTERN,
            "description": "Permission bits: a number, or octal text such as \"0440\".",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Duration {
        match Duration::parse(s) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn duration_parses_go_syntax() {
        let s = 1_000_000_000;
        assert_eq!(d("1m30s").as_nanos(), 90 * s);
        assert_eq!(d("10s").as_nanos(), 10 * s);
        assert_eq!(d("1h2m").as_nanos(), 3_720 * s);
        assert_eq!(d("500ms").as_nanos(), 500_000_000);
        assert_eq!(d("1.5s").as_nanos(), 1_500_000_000);
        assert_eq!(d("2us").as_nanos(), 2_000);
        assert_eq!(d("2µs").as_nanos(), 2_000);
        assert_eq!(d("3ns").as_nanos(), 3);
        assert_eq!(d("0").as_nanos(), 0);
        assert_eq!(d("-1.5h").as_nanos(), -5_400 * s);
        assert_eq!(d("+5s").as_nanos(), 5 * s);
        assert_eq!(d(".5s").as_nanos(), 500_000_000);
        assert_eq!(d("1d").as_nanos(), 86_400 * s);
        assert_eq!(d("1w2d").as_nanos(), 9 * 86_400 * s);
    }

    #[test]
    fn duration_rejects_bad_text() {
        for bad in ["", "10", "s", "1x", "1.s.", "-", ".s", "1h 2m", "9999999999999999999h"] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn duration_prints_like_go() {
        let cases = [
            ("1m30s", "1m30s"),
            ("90s", "1m30s"),
            ("10s", "10s"),
            ("1h2m", "1h2m0s"),
            ("1h", "1h0m0s"),
            ("2m", "2m0s"),
            ("500ms", "500ms"),
            ("1.5s", "1.5s"),
            ("1500ms", "1.5s"),
            ("2us", "2µs"),
            ("1.5ms", "1.5ms"),
            ("100ns", "100ns"),
            ("0", "0s"),
            ("-1m30s", "-1m30s"),
            ("25h", "25h0m0s"),
            ("1h2m3.004005s", "1h2m3.004005s"),
        ];
        for (input, printed) in cases {
            assert_eq!(d(input).to_string(), printed, "{input}");
        }
    }

    #[test]
    fn duration_serde() {
        let v: Duration = serde_json::from_value(serde_json::json!("1m30s")).unwrap_or_default();
        assert_eq!(serde_json::to_value(v).ok(), Some(serde_json::json!("1m30s")));
        assert!(serde_json::from_value::<Duration>(serde_json::json!(0)).is_ok());
        assert!(serde_json::from_value::<Duration>(serde_json::json!(10)).is_err());
        assert_eq!(d("1s").to_std(), Some(std::time::Duration::from_secs(1)));
        assert_eq!(d("-1s").to_std(), None);
    }

    fn b(s: &str) -> i64 {
        match ByteSize::parse(s) {
            Ok(b) => b.bytes(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn byte_size_parses_ram_units() {
        assert_eq!(b("512m"), 512 * 1024 * 1024);
        assert_eq!(b("1gb"), 1024 * 1024 * 1024);
        assert_eq!(b("1GB"), 1024 * 1024 * 1024);
        assert_eq!(b("10k"), 10 * 1024);
        assert_eq!(b("10KiB"), 10 * 1024);
        assert_eq!(b("2b"), 2);
        assert_eq!(b("2"), 2);
        assert_eq!(b("1.5g"), 1536 * 1024 * 1024);
        assert_eq!(b("1t"), 1 << 40);
        assert_eq!(b("4 m"), 4 << 20);
        for bad in ["", "m", "1x", "1kbb", "1bk", "-1", "1mi", "1.5.5"] {
            assert!(ByteSize::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn byte_size_serde() {
        let from = |j| serde_json::from_value::<ByteSize>(j).ok();
        assert_eq!(from(serde_json::json!("512m")), Some(ByteSize(512 << 20)));
        assert_eq!(from(serde_json::json!(1024)), Some(ByteSize(1024)));
        assert_eq!(from(serde_json::json!(-1)), Some(ByteSize(-1)));
        assert_eq!(serde_json::to_value(ByteSize(536_870_912)).ok(), Some(serde_json::json!(536_870_912)));
    }

    #[test]
    fn file_mode_reads_octal_text() {
        let from = |j| serde_json::from_value::<FileMode>(j).ok();
        assert_eq!(from(serde_json::json!("0440")), Some(FileMode(0o440)));
        assert_eq!(from(serde_json::json!(288)), Some(FileMode(0o440)));
        assert_eq!(from(serde_json::json!("0999")), None);
        assert_eq!(serde_json::to_value(FileMode(0o440)).ok(), Some(serde_json::json!("0440")));
    }
}
