//! Repeated background lines, collapsed: a participant left in doubt asks again every
//! inquiry interval, and with `TRACE ON` a hundred identical `INQUIRE` lines would bury
//! the prompt. A line equal to the one printed just before it is held and counted
//! instead; the count is printed, as `LINE x20` (how many times in all), when another
//! line comes or after [`HOLD`] of repeats, so a long run still shows it goes on.

use std::time::{Duration, Instant};

/// How long repeats are held before their count is printed.
pub const HOLD: Duration = Duration::from_secs(5);

/// The state of the collapsing: the last line printed and its repeats since.
#[derive(Default)]
pub struct Collapse {
    last: Option<String>,
    /// Times `last` was seen since it was first printed, that one included.
    seen: usize,
    /// Times `last` had been seen when its count was last printed.
    printed: usize,
    /// When the first repeat not yet printed came.
    held_since: Option<Instant>,
}

impl Collapse {
    /// The lines of `text` to print now, at `now`.
    pub fn lines(&mut self, text: &str, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for line in text.lines() {
            if self.last.as_deref() == Some(line) {
                self.seen += 1;
                self.held_since.get_or_insert(now);
                continue;
            }
            out.extend(self.flush());
            self.last = Some(line.to_string());
            self.seen = 1;
            self.printed = 1;
            out.push(line.to_string());
        }
        out.extend(self.due(now));
        out
    }

    /// The count of repeats held for [`HOLD`] or longer, if any.
    pub fn due(&mut self, now: Instant) -> Option<String> {
        let since = self.held_since?;
        if now.duration_since(since) < HOLD {
            return None;
        }
        self.flush()
    }

    /// The count of the repeats held, if any.
    fn flush(&mut self) -> Option<String> {
        self.held_since = None;
        let last = self.last.as_ref()?;
        if self.seen == self.printed {
            return None;
        }
        self.printed = self.seen;
        Some(format!("{last} x{}", self.seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_and_printed_when_another_line_comes() {
        let mut collapse = Collapse::default();
        let now = Instant::now();
        let inquire = "node1 -> node0  INQUIRE T10  (lost: node 0 is down)";
        let text = format!("{inquire}\n").repeat(20);
        assert_eq!(collapse.lines(&text, now), [inquire]);
        assert_eq!(
            collapse.lines("T10 committed\n", now),
            [format!("{inquire} x20").as_str(), "T10 committed"]
        );
    }

    #[test]
    fn a_long_run_of_repeats_shows_its_count_every_hold() {
        let mut collapse = Collapse::default();
        let start = Instant::now();
        assert_eq!(collapse.lines("a\na\n", start), ["a"]);
        assert_eq!(collapse.due(start + HOLD / 2), None);
        assert_eq!(collapse.due(start + HOLD), Some("a x2".to_string()));
        assert_eq!(collapse.due(start + HOLD * 3), None, "nothing new held");
        assert_eq!(
            collapse.lines("a\n", start + HOLD * 3),
            Vec::<String>::new()
        );
        assert_eq!(collapse.lines("b\n", start + HOLD * 3), ["a x3", "b"]);
        assert_eq!(
            collapse.lines("a\n", start + HOLD * 3),
            ["a"],
            "not a repeat now"
        );
    }
}
