//! RFC 3339 timestamps in UTC with nanoseconds, trailing zeros trimmed, as Go's `time.RFC3339Nano` prints them
//! (Docker's json-file `time` field and its inspect times). A few lines of calendar arithmetic instead of a date
//! crate keep the monitor small.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, formatted.
pub fn now() -> String {
    format(SystemTime::now())
}

/// `t` as `2026-11-22T10:00:00.123456789Z`.
pub fn format(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        // Before 1970: only a broken clock gets here; print the epoch rather than garbage.
        Err(_) => (0, 0),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Howard Hinnant's days-to-civil: days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(format(t), "2023-11-14T22:13:20.12Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 1); // leap day 2000
        assert_eq!(format(t), "2000-02-29T00:00:00.000000001Z");
        let t = UNIX_EPOCH + Duration::new(4_102_444_799, 999_999_999);
        assert_eq!(format(t), "2099-12-31T23:59:59.999999999Z");
    }
}
