//! The shell's help: `grammar/help.md`, compiled in with `include_str!`.
//!
//! The text lives in `grammar/` beside the grammar, as plain text a reader of the
//! repository can review, and this module only cuts it into sections. The file's preamble
//! states its format: `## NAME, ALIAS` headings, the first line of a section as its
//! summary, `Example:` lines that the tests run through the parser, and a
//! `{crash_points}` line that is replaced by the list generated from
//! [`CrashPoint::ALL`], so that `HELP CRASH` can never miss a point.

use crate::cluster::CrashPoint;
use std::fmt::Write;

/// The help file.
const HELP_FILE: &str = include_str!("../../grammar/help.md");

/// The line of a section replaced by the generated list of crash points.
const CRASH_POINTS_MARK: &str = "{crash_points}";

/// The width of the name column in the list of commands.
const NAME_WIDTH: usize = 12;

/// The help for `HELP` (no topic: the list of commands and topics) or `HELP topic`
/// (matched ignoring case, aliases included). An unknown topic is an error that names
/// every topic.
pub fn help(topic: Option<&str>) -> Result<String, String> {
    let topics = topics();
    let Some(wanted) = topic.map(str::trim) else {
        return Ok(overview(&topics));
    };
    match topics.iter().find(|topic| topic.answers_to(wanted)) {
        Some(topic) => Ok(topic.render()),
        None => {
            let names: Vec<_> = topics.iter().map(|topic| topic.names[0]).collect();
            Err(format!(
                "no help on '{wanted}'; the topics are: {}",
                names.join(", ")
            ))
        }
    }
}

/// Every `Example:` line of the help, with the topic it belongs to, so that tests can run
/// them all.
pub fn examples() -> Vec<(String, String)> {
    topics()
        .iter()
        .flat_map(|topic| {
            topic
                .examples()
                .map(|example| (topic.names[0].to_string(), example.to_string()))
        })
        .collect()
}

/// One section of the help file.
struct Topic {
    /// The names it answers to; the first is the one listed.
    names: Vec<&'static str>,
    /// The section's text, after the heading.
    text: &'static str,
}

impl Topic {
    /// The first line of the section.
    fn summary(&self) -> &'static str {
        self.text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .unwrap_or("")
    }

    /// Whether the topic is a command (upper-case name) rather than a general topic.
    fn is_command(&self) -> bool {
        !self.names[0].chars().any(char::is_lowercase)
    }

    /// Whether `HELP wanted` means this topic.
    fn answers_to(&self, wanted: &str) -> bool {
        self.names
            .iter()
            .any(|name| name.eq_ignore_ascii_case(wanted))
    }

    /// The section's `Example:` lines, without the label.
    fn examples(&self) -> impl Iterator<Item = &'static str> {
        self.text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Example:"))
            .map(str::trim)
    }

    /// The section as `HELP topic` prints it.
    fn render(&self) -> String {
        let mut out = format!("{}\n\n", self.names.join(", "));
        for line in self.text.trim().lines() {
            if line.trim() == CRASH_POINTS_MARK {
                out.push_str(&crash_points());
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// The sections of the help file, in order; the preamble before the first is skipped.
fn topics() -> Vec<Topic> {
    HELP_FILE
        .split("\n## ")
        .skip(1)
        .map(|section| {
            let (heading, text) = section.split_once('\n').unwrap_or((section, ""));
            Topic {
                names: heading.split(',').map(str::trim).collect(),
                text,
            }
        })
        .collect()
}

/// `HELP` without a topic: each command with its summary, then the general topics.
fn overview(topics: &[Topic]) -> String {
    let mut out = String::from("Commands (HELP <command> explains one):\n");
    for topic in topics.iter().filter(|topic| topic.is_command()) {
        let _ = writeln!(out, "  {:<NAME_WIDTH$}{}", topic.names[0], topic.summary());
    }
    let general: Vec<_> = topics
        .iter()
        .filter(|topic| !topic.is_command())
        .map(|topic| topic.names[0])
        .collect();
    let _ = writeln!(out, "Topics (HELP <topic>): {}", general.join(", "));
    out
}

/// Every crash point with what happened before the node dies there, one per line.
fn crash_points() -> String {
    let mut out = String::new();
    for point in CrashPoint::ALL {
        let _ = writeln!(out, "  {:<10} {}", point.name(), point.describe());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_have_names_summaries_and_examples() {
        for topic in topics() {
            assert!(!topic.names[0].is_empty(), "a heading without a name");
            assert!(
                !topic.summary().is_empty(),
                "{} has no summary",
                topic.names[0]
            );
            assert!(
                topic.examples().next().is_some(),
                "{} has no example",
                topic.names[0]
            );
        }
    }

    #[test]
    fn aliases_find_their_section() {
        assert_eq!(help(Some("rollback")), help(Some("ABORT")));
        assert_eq!(help(Some("show log")), help(Some("SHOW")));
    }

    #[test]
    fn the_crash_points_mark_is_expanded() {
        let crash = help(Some("CRASH")).unwrap();
        assert!(!crash.contains(CRASH_POINTS_MARK));
        assert!(crash.contains("  broadcast  coordinator: decision sent"));
    }
}
