//! The lessons compiled into the binary, and the player that replays one step by step
//! (`player`).
//!
//! A lesson is a recorded transcript of `tests/transcripts/lessons/` (see
//! [`super::transcript`]): its comments teach, its `> ` lines are the steps, and the
//! lines after each are what the step printed when it was recorded. [`LESSONS`] holds
//! their text, read with `include_str!`, so the program carries its course with it; a
//! test checks that the table lists every file of the folder, so a new lesson cannot be
//! forgotten. A lesson's name is the one its first line gives it (`# Lesson 5b: ...`):
//! `kv2pc lesson 5b` and `LESSON 5b` play it; the file's name without its `.txt` works too.
//!
//! The table is in teaching order, which is the files' order except for the four parts
//! of lesson 5, in the protocol order of their crash points (prepare, vote, commit, ack).

mod player;
#[cfg(test)]
mod tests_player;

pub use player::{Learner, Played, play};

use super::output::Outcome;

/// A lesson: a transcript with a name and a title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lesson {
    /// The file's name in `tests/transcripts/lessons/`.
    pub file: &'static str,
    /// The transcript.
    pub text: &'static str,
}

/// Includes a lesson of `tests/transcripts/lessons/`.
macro_rules! lesson {
    ($file:literal) => {
        Lesson {
            file: $file,
            text: include_str!(concat!("../../../tests/transcripts/lessons/", $file)),
        }
    };
}

/// Every lesson, in teaching order.
pub const LESSONS: &[Lesson] = &[
    lesson!("01-commit-across-nodes.txt"),
    lesson!("02-abort.txt"),
    lesson!("03-lock-wait.txt"),
    lesson!("04-deadlock.txt"),
    lesson!("05-participant-crash-prepare.txt"),
    lesson!("05-participant-crash-vote.txt"),
    lesson!("05-participant-crash-commit.txt"),
    lesson!("05-participant-crash-ack.txt"),
    lesson!("06-coordinator-crash-after-decision.txt"),
    lesson!("07-vote-timeout.txt"),
    lesson!("08-whole-cluster-restart.txt"),
    lesson!("09-read-for-update.txt"),
    lesson!("10-step-a-commit.txt"),
    lesson!("11-hold-an-fsync-and-crash.txt"),
    lesson!("12-lost-message.txt"),
    lesson!("13-heuristic-gone-wrong.txt"),
    lesson!("14-reading-a-diagram.txt"),
    lesson!("15-mistake-vote-before-fsync.txt"),
    lesson!("16-mistake-commit-before-decision-fsync.txt"),
    lesson!("17-mistake-forget-in-doubt.txt"),
    lesson!("18-mistake-presume-commit-without-log.txt"),
    lesson!("20-check-your-history.txt"),
    lesson!("21-deadlock-policies.txt"),
    lesson!("22-phantoms.txt"),
    lesson!("23-ask-the-explorer.txt"),
    lesson!("24-parallel-commits.txt"),
];

impl Lesson {
    /// The first comment line (after any `#! ` directive) without its `# `:
    /// `Lesson 4: a deadlock, found and broken.`
    pub fn heading(&self) -> &'static str {
        let first = (self.text.lines())
            .find(|line| line.starts_with('#') && !is_directive(line))
            .unwrap_or("");
        first.trim_start_matches('#').trim()
    }

    /// The name the heading gives: `4`, `5b` (the file's name if it gives none).
    pub fn name(&self) -> &'static str {
        let heading = self.heading();
        heading
            .strip_prefix("Lesson ")
            .and_then(|rest| rest.split_once(':'))
            .map(|(name, _)| name.trim())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| self.stem())
    }

    /// What the heading says after the name: `a deadlock, found and broken.`
    pub fn title(&self) -> &'static str {
        let heading = self.heading();
        match heading.split_once(':') {
            Some((_, title)) if heading.starts_with("Lesson ") => title.trim(),
            _ => heading,
        }
    }

    /// The file's name without `.txt`.
    pub fn stem(&self) -> &'static str {
        self.file.strip_suffix(".txt").unwrap_or(self.file)
    }
}

/// Whether a transcript's line is a directive (`#! nodes 2`), not a comment.
fn is_directive(line: &str) -> bool {
    line.strip_prefix("#!")
        .is_some_and(|rest| rest.starts_with(char::is_whitespace))
}

/// The lesson called `wanted` (its name or file name, ignoring case). An unknown name
/// is an error that says which exist: `5`, which has parts, names them.
pub fn find(wanted: &str) -> Result<&'static Lesson, String> {
    let wanted = wanted.trim();
    let matches = |lesson: &&Lesson| {
        lesson.name().eq_ignore_ascii_case(wanted)
            || lesson.stem().eq_ignore_ascii_case(wanted)
            || lesson.file.eq_ignore_ascii_case(wanted)
    };
    if let Some(lesson) = LESSONS.iter().find(matches) {
        return Ok(lesson);
    }
    let parts: Vec<&str> = (LESSONS.iter())
        .map(Lesson::name)
        .filter(|name| {
            name.len() > wanted.len()
                && name[..wanted.len()].eq_ignore_ascii_case(wanted)
                && name[wanted.len()..]
                    .chars()
                    .all(|c| c.is_ascii_alphabetic())
        })
        .collect();
    if !wanted.is_empty() && !parts.is_empty() {
        return Err(format!(
            "lesson {wanted} has {} parts: {}; play one of them, e.g. {}",
            parts.len(),
            parts.join(", "),
            parts[0]
        ));
    }
    let names: Vec<&str> = LESSONS.iter().map(Lesson::name).collect();
    Err(format!(
        "there is no lesson '{wanted}'; the lessons are {} (LESSON lists them)",
        names.join(", ")
    ))
}

/// The list `LESSON` and `kv2pc lesson` print: a line per lesson, its name and title.
pub fn listing() -> Vec<String> {
    let width = LESSONS.iter().map(|l| l.name().len()).max().unwrap_or(0);
    let mut lines: Vec<String> = (LESSONS.iter())
        .map(|lesson| format!("{:>width$}  {}", lesson.name(), lesson.title()))
        .collect();
    lines.push(
        "(LESSON N plays one at the prompt, step by step; so does kv2pc lesson N)".to_string(),
    );
    lines
}

/// `LESSON [name]` in the shell: without a name, the list; with one, the lesson to
/// play if the shell is `hosted` at the prompt, else an error that says where to play it.
pub fn command(
    name: Option<&str>,
    hosted: bool,
    outcome: &mut Outcome,
) -> Result<Option<&'static Lesson>, String> {
    let Some(name) = name else {
        for line in listing() {
            outcome.say(line);
        }
        return Ok(None);
    };
    let lesson = find(name)?;
    let id = lesson.name();
    if !hosted {
        return Err(format!(
            "LESSON {id} plays only at the interactive prompt; from a shell command line, \
             run kv2pc lesson {id} (LESSON alone lists the lessons)"
        ));
    }
    outcome.say(format!(
        "lesson {id} starts on a cluster of its own; yours waits until you leave it"
    ));
    Ok(Some(lesson))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every file of the lessons folder is in the table, once, and nothing else is.
    #[test]
    fn the_table_lists_every_lesson_file() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/transcripts/lessons");
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".txt"))
            .collect();
        let listed: BTreeSet<String> = LESSONS.iter().map(|l| l.file.to_string()).collect();
        assert_eq!(listed.len(), LESSONS.len(), "a lesson is listed twice");
        assert_eq!(
            listed, on_disk,
            "src/shell/lesson/mod.rs LESSONS must list every lesson file"
        );
        for lesson in LESSONS {
            let text = std::fs::read_to_string(format!("{dir}/{}", lesson.file)).unwrap();
            assert_eq!(lesson.text, text, "{} is stale", lesson.file);
        }
    }

    #[test]
    fn every_lesson_has_a_name_of_its_own_and_parses() {
        let names: BTreeSet<&str> = LESSONS.iter().map(Lesson::name).collect();
        assert_eq!(names.len(), LESSONS.len(), "two lessons share a name");
        for lesson in LESSONS {
            assert!(lesson.heading().starts_with("Lesson "), "{}", lesson.file);
            assert!(!lesson.title().is_empty(), "{}", lesson.file);
            let transcript = crate::shell::transcript::parse(lesson.text).unwrap();
            assert!(transcript.steps().count() > 0, "{}", lesson.file);
        }
    }

    #[test]
    fn lessons_are_found_by_name_or_file_and_a_part_names_its_siblings() {
        assert_eq!(find("4").unwrap().file, "04-deadlock.txt");
        assert_eq!(find("5B").unwrap().file, "05-participant-crash-vote.txt");
        assert_eq!(find("02-abort").unwrap().name(), "2");
        assert_eq!(find("4").unwrap().title(), "a deadlock, found and broken.");
        let parts = find("5").unwrap_err();
        assert_eq!(
            parts,
            "lesson 5 has 4 parts: 5a, 5b, 5c, 5d; play one of them, e.g. 5a"
        );
        let unknown = find("42").unwrap_err();
        assert!(unknown.starts_with("there is no lesson '42'; the lessons are 1, 2"));
    }

    #[test]
    fn the_listing_has_a_line_per_lesson_and_a_hint() {
        let lines = listing();
        assert_eq!(lines.len(), LESSONS.len() + 1);
        assert_eq!(lines[3], " 4  a deadlock, found and broken.");
        assert_eq!(lines[4], "5a  a participant crashes at \"prepare\".");
    }
}
