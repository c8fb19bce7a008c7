//! The shell's help: `grammar/help.md`, compiled in with `include_str!`.
//!
//! The text lives in `grammar/` beside the grammar, as plain text a reader of the
//! repository can review, and this module only cuts it into sections. The file's preamble
//! states its format: `## NAME, ALIAS` headings, the first line of a section as its
//! summary, `Example:` lines that the tests run through the parser, and a
//! `{crash_points}` line that is replaced by the list generated from
//! [`CrashPoint::ALL`], so that `HELP CRASH` can never miss a point, and a `{settings}`
//! line replaced by the settings, their descriptions and an example of each, generated
//! from [`SETTINGS`], the table `SET` reads.

use crate::cluster::CrashPoint;
use crate::config::SETTINGS;
use std::fmt::Write;

/// The help file.
const HELP_FILE: &str = include_str!("../../grammar/help.md");

/// The line of a section replaced by the generated list of crash points.
const CRASH_POINTS_MARK: &str = "{crash_points}";

/// The line of a section replaced by the generated list of settings.
const SETTINGS_MARK: &str = "{settings}";

/// The width of the name column in the list of commands.
const NAME_WIDTH: usize = 12;

/// The longest line of a generated list, as the hand-written text keeps to.
const LINE_WIDTH: usize = 79;

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
            let name = topic.names[0].to_string();
            (topic.examples().into_iter()).map(move |example| (name.clone(), example))
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

    /// The section's `Example:` lines (generated ones included), without the label.
    fn examples(&self) -> Vec<String> {
        (self.render().lines())
            .filter_map(|line| line.trim().strip_prefix("Example:"))
            .map(|example| example.trim().to_string())
            .collect()
    }

    /// The section as `HELP topic` prints it.
    fn render(&self) -> String {
        let mut out = format!("{}\n\n", self.names.join(", "));
        for line in self.text.trim().lines() {
            if line.trim() == CRASH_POINTS_MARK {
                out.push_str(&crash_points());
            } else if line.trim() == SETTINGS_MARK {
                out.push_str(&settings());
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

/// The widest usage of a setting that shares its first line with its text.
const USAGE_WIDTH: usize = 28;

/// Every setting as `name <usage>` beside its description, wrapped, then an example of
/// each.
fn settings() -> String {
    let usages: Vec<String> = (SETTINGS.iter())
        .map(|setting| format!("{} {}", setting.name, setting.usage()))
        .collect();
    // A usage too long for the column (a choice of many values, as `mistake`) gets
    // lines of its own, broken after a `|`, and its text starts below it.
    let fits = |usage: &&String| usage.len() <= USAGE_WIDTH;
    let widest = usages.iter().filter(fits).map(|u| u.len()).max();
    let column = 2 + widest.unwrap_or(0) + 3;
    let mut out = String::new();
    for (setting, usage) in SETTINGS.iter().zip(&usages) {
        let own_lines = !fits(&usage);
        if own_lines {
            for line in wrap(&usage.replace('|', "| "), LINE_WIDTH - 2) {
                let _ = writeln!(out, "  {}", line.replace("| ", "|"));
            }
        }
        for (index, line) in wrap(setting.doc, LINE_WIDTH - column).iter().enumerate() {
            let first = index == 0 && !own_lines;
            let left = if first { usage.as_str() } else { "" };
            let _ = writeln!(out, "  {left:<width$}{line}", width = column - 2);
        }
    }
    out.push('\n');
    for setting in SETTINGS {
        let _ = writeln!(out, "Example: SET {} {}", setting.name, setting.example);
    }
    out
}

/// `text`'s words in lines of at most `width` characters (a longer word gets its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let Some(line) = lines.last_mut() else {
            break;
        };
        if line.is_empty() {
            line.push_str(word);
        } else if line.len() + 1 + word.len() <= width {
            line.push(' ');
            line.push_str(word);
        } else {
            lines.push(word.to_string());
        }
    }
    lines
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
                !topic.examples().is_empty(),
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

    #[test]
    fn the_settings_mark_is_expanded_within_the_line_width() {
        let set = help(Some("SET")).unwrap();
        assert!(!set.contains(SETTINGS_MARK));
        assert!(set.lines().all(|line| line.len() <= LINE_WIDTH), "{set}");
        let deadlock = "  deadlock detect|wait-die|wound-wait|no-wait|timeout|off\n";
        assert!(set.contains(deadlock), "{set}");
        assert!(set.contains("  lock_timeout <duration>  "), "{set}");
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
    }
}
