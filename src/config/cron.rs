//! `cron_restart` patterns. pm2 reads them with croner (JavaScript); rcluster with croner's Rust
//! flavour, so a pattern means the same under both: 5 fields (minute first) or 6 (seconds first),
//! names (`MON`, `JAN`), lists, ranges, steps, `L`, `W`, `#` and `@hourly`-style macros, in the
//! daemon's local time. pm2 reads `0` as "no cron restart".

use chrono::{DateTime, Local};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

#[derive(Debug, Clone)]
pub struct CronPattern {
    cron: Cron,
}

impl CronPattern {
    pub fn parse(expr: &str) -> Result<CronPattern, String> {
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        parser
            .parse(expr.trim())
            .map(|cron| CronPattern { cron })
            .map_err(|e| format!("`{expr}` is not a cron pattern: {e}"))
    }

    /// The first time strictly after `after` that the pattern matches.
    pub fn next_after(&self, after: &DateTime<Local>) -> Option<DateTime<Local>> {
        self.cron.find_next_occurrence(after, false).ok()
    }
}

/// pm2's spelling of "off".
pub fn is_off(expr: &str) -> bool {
    expr.trim() == "0"
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};

    #[test]
    fn five_and_six_fields_and_macros() {
        let at = Local
            .with_ymd_and_hms(2026, 3, 4, 10, 20, 30)
            .single()
            .expect("a plain local time");
        let every_5_min = CronPattern::parse("*/5 * * * *").expect("5 fields");
        let next = every_5_min.next_after(&at).expect("next");
        assert_eq!((next.hour(), next.minute(), next.second()), (10, 25, 0));
        let every_10_s = CronPattern::parse("*/10 * * * * *").expect("6 fields");
        let next = every_10_s.next_after(&at).expect("next");
        assert_eq!((next.minute(), next.second()), (20, 40));
        let hourly = CronPattern::parse("@hourly").expect("macro");
        assert_eq!(hourly.next_after(&at).expect("next").hour(), 11);
        let monday = CronPattern::parse("0 3 * * MON").expect("names");
        assert_eq!(
            monday
                .next_after(&at)
                .expect("next")
                .format("%a %H:%M")
                .to_string(),
            "Mon 03:00"
        );
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in [
            "",
            "* * *",
            "61 * * * *",
            "* * * * * * * *",
            "@often",
            "a b c d e",
        ] {
            let err = CronPattern::parse(bad).expect_err(bad);
            assert!(err.contains("is not a cron pattern"), "{bad}: {err}");
        }
        assert!(is_off("0") && is_off(" 0 ") && !is_off("0 * * * *"));
    }
}
