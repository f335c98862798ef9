//! RFC 3339 UTC timestamps without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC). Times before 1970 are clamped to the epoch.
pub fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Unix milliseconds as an RFC 3339 UTC timestamp (before 1970: the epoch).
pub fn utc_timestamp_of_ms(ms: i64) -> String {
    utc_timestamp(UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Unix milliseconds as a UTC date `YYYY-MM-DD` (before 1970: the epoch).
pub fn utc_date_of_ms(ms: i64) -> String {
    utc_timestamp_of_ms(ms).chars().take(10).collect()
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM` (UTC; for an acquisition time, the scanner's wall
/// clock as written in the headers; before 1970: the epoch).
pub fn utc_minute_of_ms(ms: i64) -> String {
    let t = utc_timestamp_of_ms(ms);
    format!("{} {}", &t[..10], &t[11..16])
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
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
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z (a leap day)
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(utc_timestamp(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(utc_timestamp(t), "2099-12-31T23:59:59.000Z");
        assert_eq!(utc_date_of_ms(1_709_210_096_789), "2024-02-29");
        assert_eq!(utc_date_of_ms(-5), "1970-01-01");
        assert_eq!(utc_minute_of_ms(1_709_210_096_789), "2024-02-29 12:34");
    }
}
