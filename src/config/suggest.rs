//! "Did you mean" for unknown keys and names: ecosystem keys (`max_memory_restar`,
//! `maxMemoryRestart`), `balance` strategies, `depends_on` app names. Case-insensitive; camelCase
//! and kebab-case are compared as snake_case, then by edit distance (with transpositions).

/// The closest of `known` to `unknown`, when it is close enough to be what was meant.
pub fn did_you_mean<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let wanted = normalise(unknown);
    if wanted.is_empty() {
        return None;
    }
    if let Some(same) = known.iter().find(|k| normalise(k) == wanted) {
        return Some(same);
    }
    let limit = match wanted.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    known
        .iter()
        .map(|k| (distance(&wanted, &normalise(k)), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `unknown key `max_memory_restar`, did you mean `max_memory_restart`?`
pub fn unknown_key_message(key: &str, known: &[&str]) -> String {
    match did_you_mean(key, known) {
        Some(suggestion) => format!("unknown key `{key}`, did you mean `{suggestion}`?"),
        None => format!("unknown key `{key}`"),
    }
}

/// Lowercase snake_case: `maxMemoryRestart`, `Max-Memory-Restart` -> `max_memory_restart`.
fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut previous_lower = false;
    for c in s.trim().chars() {
        if c == '-' || c == ' ' {
            out.push('_');
            previous_lower = false;
        } else if c.is_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            previous_lower = false;
        } else {
            out.push(c);
            previous_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions (`nmae` -> `name` is 1).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &[
        "name",
        "script",
        "instances",
        "exec_mode",
        "max_memory_restart",
        "max_restarts",
        "min_uptime",
        "env",
        "apps",
    ];

    #[test]
    fn typos() {
        assert_eq!(
            did_you_mean("max_memory_restar", KEYS),
            Some("max_memory_restart")
        );
        assert_eq!(did_you_mean("instance", KEYS), Some("instances"));
        assert_eq!(did_you_mean("nmae", KEYS), Some("name"));
        assert_eq!(did_you_mean("scirpt", KEYS), Some("script"));
        assert_eq!(did_you_mean("app", KEYS), Some("apps"));
        assert_eq!(did_you_mean("max_restart", KEYS), Some("max_restarts"));
    }

    #[test]
    fn case_and_camel_case() {
        assert_eq!(
            did_you_mean("maxMemoryRestart", KEYS),
            Some("max_memory_restart")
        );
        assert_eq!(did_you_mean("execMode", KEYS), Some("exec_mode"));
        assert_eq!(did_you_mean("min-uptime", KEYS), Some("min_uptime"));
        assert_eq!(did_you_mean("NAME", KEYS), Some("name"));
        assert_eq!(did_you_mean("MinUptime", KEYS), Some("min_uptime"));
    }

    #[test]
    fn nothing_close() {
        assert_eq!(did_you_mean("colour", KEYS), None);
        assert_eq!(did_you_mean("", KEYS), None);
        assert_eq!(did_you_mean("x", KEYS), None);
        assert_eq!(did_you_mean("anything", &[]), None);
    }

    #[test]
    fn messages() {
        assert_eq!(
            unknown_key_message("max_memory_restar", KEYS),
            "unknown key `max_memory_restar`, did you mean `max_memory_restart`?"
        );
        assert_eq!(unknown_key_message("colour", KEYS), "unknown key `colour`");
    }

    #[test]
    fn distances() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
