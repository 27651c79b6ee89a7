//! Time for the Plane simulator without a date crate: parsing the RFC 3339 timestamps a seed
//! carries, writing timestamps the way Plane renders them (DRF: microseconds, `Z` for UTC, no
//! fraction when it is zero, like Python's `isoformat`), dates (`YYYY-MM-DD`) and HTTP dates.

use std::time::{SystemTime, UNIX_EPOCH};

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Microseconds since the Unix epoch, now.
pub(crate) fn now_micros() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a calendar date `YYYY-MM-DD` into a day number.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    if s.len() != 10 || s.as_bytes()[4] != b'-' || s.as_bytes()[7] != b'-' {
        return None;
    }
    let year = i64::from(digits(&s[0..4])?);
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Writes a day number as `YYYY-MM-DD`.
pub(crate) fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses an RFC 3339 timestamp (`2026-11-22T03:46:10.911280Z`, `...+05:30`; `T` or a space)
/// into microseconds since the epoch. Fractions beyond microseconds are truncated.
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    if s.len() < 20 {
        return None;
    }
    let days = parse_date(&s[..10])?;
    let sep = s.as_bytes()[10];
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let rest = &s[11..];
    if rest.len() < 8 || rest.as_bytes()[2] != b':' || rest.as_bytes()[5] != b':' {
        return None;
    }
    let hour = i64::from(digits(&rest[0..2])?);
    let minute = i64::from(digits(&rest[3..5])?);
    let second = i64::from(digits(&rest[6..8])?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &rest[8..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let kept: String = frac[..len]
            .chars()
            .chain("000000".chars())
            .take(6)
            .collect();
        micros = i64::from(digits(&kept)?);
        rest = &frac[len..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh = i64::from(digits(&rest[1..3])?);
            let om = i64::from(digits(&rest[4..6])?);
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * MICROS_PER_SEC + micros)
}

/// Writes microseconds since the epoch as Plane renders a UTC datetime:
/// `2026-11-22T03:46:10.911280Z`, or `2026-11-22T03:46:10Z` when the fraction is zero.
pub(crate) fn format_timestamp(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let frac = micros.rem_euclid(MICROS_PER_SEC);
    let days = secs.div_euclid(SECS_PER_DAY);
    let tod = secs.rem_euclid(SECS_PER_DAY);
    let date = format_date(days);
    let (h, m, s) = (tod / 3600, tod / 60 % 60, tod % 60);
    if frac == 0 {
        format!("{date}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{date}T{h:02}:{m:02}:{s:02}.{frac:06}Z")
    }
}

/// An IMF-fixdate for the `Date` header (RFC 9110 §5.6.7): `Sun, 22 Nov 2026 03:46:09 GMT`.
pub(crate) fn http_date(epoch_secs: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch_secs.div_euclid(SECS_PER_DAY);
    let tod = epoch_secs.rem_euclid(SECS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(mo - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} GMT",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let s = "2026-11-22T03:46:10.911280Z";
        let us = parse_timestamp(s).unwrap();
        assert_eq!(format_timestamp(us), s);
        assert_eq!(
            format_timestamp(parse_timestamp("2026-11-22T09:16:10+05:30").unwrap()),
            "2026-11-22T03:46:10Z"
        );
        assert_eq!(parse_timestamp("2026-11-22T03:46:10.9112809Z").unwrap(), us);
        assert!(parse_timestamp("2026-02-30T00:00:00Z").is_none());
        assert!(parse_timestamp("yesterday").is_none());
    }

    #[test]
    fn dates_and_http_dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(format_date(parse_date("2026-12-31").unwrap()), "2026-12-31");
        assert_eq!(parse_date("2026-13-01"), None);
        // The `date` header of fixture 02-states-list.json, for X-RateLimit-Reset 1795319230 - 60.
        assert_eq!(http_date(1_795_319_169), "Sun, 22 Nov 2026 03:46:09 GMT");
    }
}
