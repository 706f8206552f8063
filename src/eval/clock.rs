//! The moment an answer is for: what the kernel's time matches read.
//!
//! - nft `meta time` is the real time in nanoseconds since the epoch;
//!   `meta hour` the seconds since midnight **UTC** (`nft_meta_hour`: nft
//!   converts the hours it is given from its own local time to UTC when it
//!   loads the rule, so the kernel compares UTC); `meta day` the weekday
//!   (0 Sunday .. 6 Saturday) in the **kernel's timezone**
//!   (`nft_meta_weekday` subtracts `sys_tz.tz_minuteswest`).
//! - xt `time` (`xt_time.c`): UTC, or the kernel's timezone with
//!   `XT_TIME_LOCAL_TZ` (`--kerneltz`); date range, time of day (a start
//!   after the stop wraps midnight; `--contiguous` counts the part after
//!   midnight as the previous day), weekdays (1 Monday .. 7 Sunday) and
//!   days of the month.
//!
//! The kernel's timezone is the one `settimeofday` last gave it (what
//! `gettimeofday` returns as `tz_minuteswest`; 0 unless something set it).

use crate::snapshot::xt::XtInfo;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;

/// A moment, with the kernel's timezone at that moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// Nanoseconds since the epoch (UTC).
    pub unix_ns: u64,
    /// The kernel's timezone: minutes west of UTC (`sys_tz.tz_minuteswest`;
    /// -60 for UTC+1).
    pub minutes_west: i32,
}

impl Clock {
    /// The moment `t` with the kernel's timezone `minutes_west` (times
    /// before the epoch are taken as the epoch).
    pub fn at(t: SystemTime, minutes_west: i32) -> Clock {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Clock {
            unix_ns: u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            minutes_west,
        }
    }

    /// Now, with the kernel's timezone as the kernel has it.
    pub fn now() -> Clock {
        Clock::at(SystemTime::now(), crate::nft::sys::kernel_minutes_west())
    }

    /// Seconds since the epoch.
    pub fn secs(&self) -> i64 {
        (self.unix_ns / 1_000_000_000) as i64
    }

    /// The moment as RFC 3339 (UTC, whole seconds).
    pub fn rfc3339(&self) -> String {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_nanos(self.unix_ns))
            .to_string()
    }

    /// The kernel's timezone as an offset, `UTC+01:00`.
    pub fn zone_text(&self) -> String {
        let east = -self.minutes_west;
        let sign = if east < 0 { '-' } else { '+' };
        format!(
            "UTC{sign}{:02}:{:02}",
            east.unsigned_abs() / 60,
            east.unsigned_abs() % 60
        )
    }

    /// Seconds since the epoch in the kernel's timezone.
    fn local_secs(&self) -> i64 {
        self.secs() - 60 * i64::from(self.minutes_west)
    }

    /// `meta day`: 0 Sunday .. 6 Saturday, in the kernel's timezone.
    pub fn nft_day(&self) -> u8 {
        ((4 + self.local_secs().div_euclid(DAY)).rem_euclid(7)) as u8
    }

    /// `meta hour`: seconds since midnight UTC.
    pub fn nft_hour(&self) -> u32 {
        self.secs().rem_euclid(DAY) as u32
    }

    /// `meta time`: nanoseconds since the epoch.
    pub fn nft_time(&self) -> u64 {
        self.unix_ns
    }

    /// Whether an xt `time` match holds (`time_mt`); `None` for other
    /// infos.
    pub fn xt_time(&self, info: &XtInfo) -> Option<bool> {
        let XtInfo::Time {
            date,
            daytime,
            monthdays,
            weekdays,
            flags,
        } = info
        else {
            return None;
        };
        let mut stamp = if flags & 1 != 0 {
            self.local_secs()
        } else {
            self.secs()
        };
        if stamp < i64::from(date[0]) || stamp > i64::from(date[1]) {
            return Some(false);
        }
        let t = stamp.rem_euclid(DAY);
        let (start, stop) = (i64::from(daytime[0]), i64::from(daytime[1]));
        if start < stop {
            if t < start || t > stop {
                return Some(false);
            }
        } else {
            if t < start && t > stop {
                return Some(false);
            }
            if flags & 2 != 0 && t <= stop {
                stamp -= DAY;
            }
        }
        let days = stamp.div_euclid(DAY);
        // 1 Monday .. 7 Sunday; 1970-01-01 was a Thursday.
        let weekday = (4 + days - 1).rem_euclid(7) + 1;
        if weekdays & (1u8 << weekday) == 0 {
            return Some(false);
        }
        if *monthdays != 0xFFFF_FFFE {
            let (_, _, mday) = civil(days);
            if monthdays & (1u32 << mday) == 0 {
                return Some(false);
            }
        }
        Some(true)
    }
}

/// The civil date (year, month 1-12, day 1-31) of a day count since the
/// epoch (proleptic Gregorian; Howard Hinnant's `civil_from_days`).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(s: &str, west: i32) -> Clock {
        Clock::at(humantime::parse_rfc3339(s).unwrap(), west)
    }

    fn time(daytime: [u32; 2], weekdays: u8, monthdays: u32, flags: u8) -> XtInfo {
        XtInfo::Time {
            date: [0, u32::MAX],
            daytime,
            monthdays,
            weekdays,
            flags,
        }
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(20_793), (2026, 12, 6));
    }

    #[test]
    fn nft_keys_read_utc_hours_and_kernel_zone_weekdays() {
        // Sunday 2026-12-06 23:30 UTC; in UTC+1 it is already Monday.
        let c = clock("2026-12-06T23:30:00Z", 0);
        assert_eq!(c.nft_day(), 0);
        assert_eq!(c.nft_hour(), 23 * 3600 + 1800);
        let c = clock("2026-12-06T23:30:00Z", -60);
        assert_eq!(c.nft_day(), 1);
        assert_eq!(c.nft_hour(), 23 * 3600 + 1800, "hour stays UTC");
        assert_eq!(c.zone_text(), "UTC+01:00");
        assert_eq!(c.rfc3339(), "2026-12-06T23:30:00Z");
    }

    #[test]
    fn xt_time_follows_time_mt() {
        let all_days = 0xFE;
        let all_mdays = 0xFFFF_FFFE;
        let c = clock("2026-12-06T10:00:00Z", -120); // Sunday, 12:00 in UTC+2
        let h = |x: u32| x * 3600;
        assert_eq!(
            c.xt_time(&time([h(9), h(11)], all_days, all_mdays, 0)),
            Some(true)
        );
        assert_eq!(
            c.xt_time(&time([h(11), h(13)], all_days, all_mdays, 0)),
            Some(false)
        );
        // --kerneltz: 12:00 local.
        assert_eq!(
            c.xt_time(&time([h(11), h(13)], all_days, all_mdays, 1)),
            Some(true)
        );
        // Wrapping 22:00-11:00 holds at 10:00.
        assert_eq!(
            c.xt_time(&time([h(22), h(11)], all_days, all_mdays, 0)),
            Some(true)
        );
        // Weekdays: Sunday is 7.
        assert_eq!(
            c.xt_time(&time([0, h(24) - 1], 1 << 7, all_mdays, 0)),
            Some(true)
        );
        assert_eq!(
            c.xt_time(&time([0, h(24) - 1], 1 << 6, all_mdays, 0)),
            Some(false)
        );
        // --contiguous: 10:00 Sunday belongs to Saturday's 22:00-11:00.
        assert_eq!(
            c.xt_time(&time([h(22), h(11)], 1 << 6, all_mdays, 2)),
            Some(true)
        );
        // Days of the month.
        assert_eq!(
            c.xt_time(&time([0, h(24) - 1], all_days, 1 << 6, 0)),
            Some(true)
        );
        assert_eq!(
            c.xt_time(&time([0, h(24) - 1], all_days, 1 << 7, 0)),
            Some(false)
        );
        // Date range.
        let mut t = time([0, h(24) - 1], all_days, all_mdays, 0);
        if let XtInfo::Time { date, .. } = &mut t {
            *date = [0, c.secs() as u32 - 1];
        }
        assert_eq!(c.xt_time(&t), Some(false));
    }
}
