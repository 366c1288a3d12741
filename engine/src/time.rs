//! RFC 3339 timestamps as Docker prints them (`2026-11-22T13:28:02.123456789Z`) and their unix seconds.
//! Hand-written: two conversions are all berthd needs, not a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` in UTC with nanoseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339_parts(d.as_secs() as i64, d.subsec_nanos())
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// Seconds and nanoseconds since the epoch as RFC 3339, UTC.
pub fn rfc3339_parts(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2024-01-02T03:04:05.123Z`, `…+02:00`); 0 when absent or
/// malformed.
pub fn unix_seconds(rfc3339: Option<&str>) -> i64 {
    let Some(s) = rfc3339 else { return 0 };
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) =
        (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16), num(17..19))
    else {
        return 0;
    };
    // Days from civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    if let Some(pos) = s.get(19..).and_then(|t| t.find(['+', '-'])) {
        let off = &s[19 + pos..];
        if let (Some(oh), Some(om)) =
            (off.get(1..3).and_then(|x| x.parse::<i64>().ok()), off.get(4..6).and_then(|x| x.parse::<i64>().ok()))
        {
            let delta = oh * 3600 + om * 60;
            secs += if off.starts_with('-') { delta } else { -delta };
        }
    }
    secs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(rfc3339_parts(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339_parts(1_709_208_000, 5), "2024-02-29T12:00:00.000000005Z");
        assert_eq!(unix_seconds(Some("2024-02-29T12:00:00Z")), 1_709_208_000);
        assert_eq!(unix_seconds(Some("2024-02-29T12:00:00.123456789Z")), 1_709_208_000);
        assert_eq!(unix_seconds(Some("2024-02-29T14:00:00+02:00")), 1_709_208_000);
        assert_eq!(unix_seconds(Some(&rfc3339_parts(1_900_000_000, 7))), 1_900_000_000);
        assert_eq!(unix_seconds(Some("garbage")), 0);
        assert_eq!(unix_seconds(None), 0);
    }
}
