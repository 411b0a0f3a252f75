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
            .map_err(|e| {
                // croner's own words name neither the field nor its range; ours do when the
                // problem is in one field (pm2: `minutes value out of range: '61'`).
                let why = field_problem(expr.trim()).unwrap_or_else(|| e.to_string());
                format!("`{expr}` is not a cron pattern: {why}")
            })
    }

    /// The first time strictly after `after` that the pattern matches.
    pub fn next_after(&self, after: &DateTime<Local>) -> Option<DateTime<Local>> {
        self.cron.find_next_occurrence(after, false).ok()
    }
}

/// A field's name and the values it allows, for error messages.
struct Field {
    name: &'static str,
    low: u32,
    high: u32,
    /// Names allowed beside numbers (`JAN`, `MON`), uppercase.
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [Field; 6] = [
    Field {
        name: "second",
        low: 0,
        high: 59,
        names: &[],
    },
    Field {
        name: "minute",
        low: 0,
        high: 59,
        names: &[],
    },
    Field {
        name: "hour",
        low: 0,
        high: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        low: 1,
        high: 31,
        names: &[],
    },
    Field {
        name: "month",
        low: 1,
        high: 12,
        names: MONTHS,
    },
    // croner takes 7 for Sunday too, as most crons do.
    Field {
        name: "day of week",
        low: 0,
        high: 7,
        names: DAYS,
    },
];

/// The first problem found in one field of a pattern croner refused, said with the field's name
/// and range: `the minute field allows 0-59, not 61`. None when the problem is not in a field
/// (then croner's message stands), so this never refuses what croner accepts.
fn field_problem(expr: &str) -> Option<String> {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    let fields: &[Field] = match parts.len() {
        5 => &FIELDS[1..],
        6 => &FIELDS,
        n if !expr.starts_with('@') => {
            return Some(format!(
                "{n} field(s); a pattern has 5 (minute hour day-of-month month day-of-week) or 6 (second first)"
            ))
        }
        _ => return None,
    };
    parts
        .iter()
        .zip(fields)
        .find_map(|(text, field)| field.problem(text))
}

impl Field {
    fn problem(&self, text: &str) -> Option<String> {
        text.split(',').find_map(|item| self.item_problem(item))
    }

    /// One list item: `*`, `?`, `N`, `A-B`, any of those `/STEP`, `L`, `NW`, `N#K`, `NL`.
    fn item_problem(&self, item: &str) -> Option<String> {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(0) => return Some(format!("the {} field: a step of 0 in `{item}`", self.name)),
                Ok(_) => {}
                Err(_) => {
                    return Some(format!(
                        "the {} field: the step in `{item}` is not a number",
                        self.name
                    ))
                }
            }
        }
        if matches!(range, "*" | "?" | "L" | "LW") {
            return None;
        }
        let range = range
            .split_once('#')
            .map_or(range, |(day, _)| day)
            .trim_end_matches(['W', 'L', 'w', 'l']);
        let (from, to) = range.split_once('-').unwrap_or((range, range));
        [from, to]
            .into_iter()
            .find_map(|value| self.value_problem(value))
    }

    fn value_problem(&self, value: &str) -> Option<String> {
        if value.is_empty() {
            return None; // `L`-style suffixes alone: croner's message is better
        }
        if let Ok(n) = value.parse::<u64>() {
            if n < u64::from(self.low) || n > u64::from(self.high) {
                return Some(format!(
                    "the {} field allows {}, not {value}",
                    self.name,
                    self.allowed()
                ));
            }
            return None;
        }
        if self.names.contains(&value.to_ascii_uppercase().as_str()) {
            return None;
        }
        Some(format!(
            "the {} field allows {}, not `{value}`",
            self.name,
            self.allowed()
        ))
    }

    /// `0-59`, `1-12 or JAN-DEC`.
    fn allowed(&self) -> String {
        match (self.names.first(), self.names.last()) {
            (Some(first), Some(last)) => format!("{}-{} or {first}-{last}", self.low, self.high),
            _ => format!("{}-{}", self.low, self.high),
        }
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
        for (bad, says) in [
            ("61 * * * *", "the minute field allows 0-59, not 61"),
            ("* 24 * * *", "the hour field allows 0-23, not 24"),
            ("* * 0 * *", "the day of month field allows 1-31, not 0"),
            (
                "* * * 13 *",
                "the month field allows 1-12 or JAN-DEC, not 13",
            ),
            (
                "* * * * 8",
                "the day of week field allows 0-7 or SUN-SAT, not 8",
            ),
            (
                "* * * * MON-FUN",
                "the day of week field allows 0-7 or SUN-SAT, not `FUN`",
            ),
            ("70 * * * * *", "the second field allows 0-59, not 70"),
            ("0-61/5 * * * *", "the minute field allows 0-59, not 61"),
            ("*/0 * * * *", "the minute field: a step of 0"),
            ("a b c d e", "the minute field allows 0-59, not `a`"),
            ("* * *", "3 field(s); a pattern has 5"),
        ] {
            let err = CronPattern::parse(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
        for good in [
            "0 3 * * MON-FRI",
            "0 0 L * *",
            "0 0 15W * *",
            "0 0 * * 5#2",
            "0 0 * * 7",
        ] {
            CronPattern::parse(good).expect(good);
        }
        assert!(is_off("0") && is_off(" 0 ") && !is_off("0 * * * *"));
    }
}
