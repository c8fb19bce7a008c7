//! Repeated background lines, collapsed: a participant left in doubt asks again every
//! inquiry interval, and with `TRACE ON` a hundred identical `INQUIRE` lines would bury
//! the prompt. Several participants asking make a round of several lines that repeats
//! (node 1 asks node 0 and node 2, then node 2 asks node 0 and node 1), so a line is a
//! repeat when it equals one of the last [`WINDOW`] different lines printed, not only
//! the one just before it. A repeat is held and counted instead of printed; the counts
//! are printed, as `LINE x20` (how many times in all), when a line that is not a repeat
//! comes or after [`HOLD`] of repeats, so a long run still shows it goes on.

use std::time::{Duration, Instant};

/// How long repeats are held before their count is printed.
pub const HOLD: Duration = Duration::from_secs(5);

/// How many different recent lines a line is compared with.
pub const WINDOW: usize = 8;

/// One recent line and its repeats.
struct Recent {
    line: String,
    /// Times it was seen since it was first printed, that one included.
    seen: usize,
    /// Times it had been seen when its count was last printed.
    printed: usize,
}

/// The state of the collapsing: the recent lines printed and their repeats since.
#[derive(Default)]
pub struct Collapse {
    recent: Vec<Recent>,
    /// When the first repeat not yet printed came.
    held_since: Option<Instant>,
}

impl Collapse {
    /// The lines of `text` to print now, at `now`.
    pub fn lines(&mut self, text: &str, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some(recent) = self.recent.iter_mut().find(|r| r.line == line) {
                recent.seen += 1;
                self.held_since.get_or_insert(now);
                continue;
            }
            out.extend(self.flush());
            if self.recent.len() == WINDOW {
                self.recent.remove(0);
            }
            self.recent.push(Recent {
                line: line.to_string(),
                seen: 1,
                printed: 1,
            });
            out.push(line.to_string());
        }
        out.extend(self.due(now));
        out
    }

    /// The counts of repeats held for [`HOLD`] or longer, if any.
    pub fn due(&mut self, now: Instant) -> Vec<String> {
        match self.held_since {
            Some(since) if now.duration_since(since) >= HOLD => self.flush(),
            _ => Vec::new(),
        }
    }

    /// The counts of the repeats held, in the order their lines were first printed.
    fn flush(&mut self) -> Vec<String> {
        self.held_since = None;
        let mut out = Vec::new();
        for recent in &mut self.recent {
            if recent.seen > recent.printed {
                recent.printed = recent.seen;
                out.push(format!("{} x{}", recent.line, recent.seen));
            }
        }
        out
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
    fn a_round_of_several_lines_that_repeats_is_collapsed_line_by_line() {
        let mut collapse = Collapse::default();
        let now = Instant::now();
        let round = "n1 -> n0 INQUIRE\nn1 -> n2 INQUIRE\nn2 -> n0 INQUIRE\nn2 -> n1 INQUIRE\n";
        let first: Vec<&str> = round.lines().collect();
        assert_eq!(collapse.lines(round, now), first);
        for _ in 0..9 {
            assert_eq!(collapse.lines(round, now), Vec::<String>::new());
        }
        let counted: Vec<String> = first.iter().map(|l| format!("{l} x10")).collect();
        assert_eq!(collapse.due(now + HOLD), counted);
    }

    #[test]
    fn a_long_run_of_repeats_shows_its_count_every_hold() {
        let mut collapse = Collapse::default();
        let start = Instant::now();
        assert_eq!(collapse.lines("a\na\n", start), ["a"]);
        assert_eq!(collapse.due(start + HOLD / 2), Vec::<String>::new());
        assert_eq!(collapse.due(start + HOLD), ["a x2"]);
        assert_eq!(
            collapse.due(start + HOLD * 3),
            Vec::<String>::new(),
            "nothing new held"
        );
        assert_eq!(
            collapse.lines("a\n", start + HOLD * 3),
            Vec::<String>::new()
        );
        assert_eq!(collapse.lines("b\n", start + HOLD * 3), ["a x3", "b"]);
    }

    #[test]
    fn a_line_out_of_the_window_is_printed_again() {
        let mut collapse = Collapse::default();
        let now = Instant::now();
        let lines: Vec<String> = (0..=WINDOW).map(|n| format!("line {n}\n")).collect();
        for line in &lines {
            assert_eq!(collapse.lines(line, now), [line.trim_end()]);
        }
        assert_eq!(collapse.lines(&lines[0], now), ["line 0"], "forgotten");
    }
}
