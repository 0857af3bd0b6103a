//! Wall-clock time for manifests and lock files: Unix seconds and their UTC text.
//!
//! Why a module of its own, and not a date crate: the one format regulab writes,
//! `YYYY-MM-DDTHH:MM:SSZ`, is a dozen lines of civil-calendar arithmetic, tested here;
//! every timestamp regulab writes (run manifests, [`crate::lock`]) goes through it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds (0 when the clock is before 1970).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (proleptic Gregorian calendar, UTC).
pub fn utc_string(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_strings() {
        assert_eq!(utc_string(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_string(951_782_400.0), "2000-02-29T00:00:00Z");
        // 1_795_611_599 = 20_782 days + 46_799 s (12:59:59)
        assert_eq!(utc_string(1_795_611_599.5), "2026-11-25T12:59:59Z");
    }
}
