//! The line editor's helper: tab completion, and the glue that gives rustyline the
//! hints of `hint.rs` and dims them.
//!
//! Completion reads the statement typed before the cursor (see `words::Typed`) and
//! offers the words that may come next there: keywords, `node` and the node numbers,
//! crash points, session names (and `name:` prefixes), settings, help topics, lesson
//! names, and file names after `SOURCE`. Keywords are completed in upper case, or in lower case if the
//! user is typing in lower case; `node`, crash points and settings are lower case as
//! the help writes them. Keys are never completed: the shell does not list them.

use colored::Colorize;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::{Context, Helper, Validator};
use std::borrow::Cow;

use super::hint::{UsageHint, usage_hint};
use super::words::{Typed, command_keywords, is_lower};
use kv2pc::config::{SETTINGS, setting};

/// The line editor's helper: completion, hints, and the colour of hints.
#[derive(Helper, Validator)]
pub struct KvHelper {
    /// The session names, refreshed by the prompt loop after each command.
    pub sessions: Vec<String>,
    nodes: u32,
    topics: Vec<String>,
    color: bool,
    files: FilenameCompleter,
}

impl KvHelper {
    /// A helper for a cluster of `nodes` nodes; hints are dimmed if `color`.
    pub fn new(nodes: u32, color: bool) -> KvHelper {
        let mut topics: Vec<String> = Vec::new();
        for (topic, _) in kv2pc::shell::help::examples() {
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
        KvHelper {
            sessions: Vec::new(),
            nodes,
            topics,
            color,
            files: FilenameCompleter::new(),
        }
    }

    /// The words that may come after `words` (upper-cased, session prefix removed).
    fn next_words(&self, words: &[String]) -> Vec<Word> {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let keywords = |list: &[&str]| list.iter().map(|k| Word::Keyword(k.to_string())).collect();
        let names = |list: &[&str]| list.iter().map(|n| Word::Name(n.to_string())).collect();
        match words.as_slice() {
            [] => self.first_words(),
            ["BEGIN"] => keywords(&["READ"]),
            ["BEGIN", "READ"] => keywords(&["ONLY"]),
            ["GET", _] => keywords(&["FOR"]),
            ["GET", _, "FOR"] => keywords(&["UPDATE"]),
            ["SCAN"] => keywords(&["PREFIX", "FROM"]),
            ["SCAN", "FROM", _] => keywords(&["TO"]),
            ["CRASH" | "RESTART" | "CHECKPOINT"] | ["SHOW", "LOG"] | ["SESSION", _, "ON"] => {
                names(&["node"])
            }
            ["CRASH" | "RESTART" | "CHECKPOINT", "NODE"]
            | ["SHOW", "LOG", "NODE"]
            | ["SESSION", _, "ON", "NODE"] => {
                (0..self.nodes).map(|n| Word::Name(n.to_string())).collect()
            }
            ["CRASH", "NODE", _] => keywords(&["AT"]),
            ["CRASH", "NODE", _, "AT"] => names(&kv2pc::shell::executor::crash_point_names()),
            ["SHOW"] => keywords(&["LOCKS", "LOG", "SETTINGS"]),
            ["SHOW", "LOG", "NODE", _] => keywords(&["LAST"]),
            ["SESSION"] => self
                .sessions
                .iter()
                .map(|s| Word::Name(s.clone()))
                .collect(),
            ["SESSION", _] => keywords(&["ON"]),
            ["TRACE" | "TIMING"] => keywords(&["ON", "OFF"]),
            ["SET"] => names(&SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>()),
            ["SET", name] => setting(name).map_or(Vec::new(), |s| names(s.values())),
            ["HELP"] => self.topics.iter().map(|t| Word::topic(t)).collect(),
            ["LESSON"] => (kv2pc::shell::lesson::LESSONS.iter())
                .map(|lesson| Word::Name(lesson.name().to_string()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The command keywords, then `name:` for each session.
    fn first_words(&self) -> Vec<Word> {
        let mut words: Vec<Word> = command_keywords()
            .map(|k| Word::Keyword(k.to_string()))
            .collect();
        words.extend(self.sessions.iter().map(|s| Word::Name(format!("{s}:"))));
        words
    }

    /// The completions of the word being typed at the end of `before`, and where it
    /// starts.
    pub fn completions(&self, before: &str) -> (usize, Vec<String>) {
        let typed = Typed::read(before);
        let partial = &before[typed.start..];
        if partial.starts_with(['"', '\'']) {
            return (typed.start, Vec::new());
        }
        let found = (self.next_words(&typed.words).into_iter())
            .filter_map(|word| word.completing(partial))
            .collect();
        (typed.start, found)
    }
}

/// A word completion may offer.
enum Word {
    /// A keyword, shown in the case the user is typing in.
    Keyword(String),
    /// A name, shown as it is.
    Name(String),
}

impl Word {
    /// A help topic: commands are keywords, general topics names.
    fn topic(topic: &str) -> Word {
        if topic.chars().any(char::is_lowercase) {
            Word::Name(topic.to_string())
        } else {
            Word::Keyword(topic.to_string())
        }
    }

    /// The word as completion of `partial`, if it completes it.
    fn completing(self, partial: &str) -> Option<String> {
        let text = match self {
            Word::Keyword(keyword) if is_lower(partial) => keyword.to_ascii_lowercase(),
            Word::Keyword(keyword) | Word::Name(keyword) => keyword,
        };
        let matches = text.len() >= partial.len()
            && text.is_char_boundary(partial.len())
            && text[..partial.len()].eq_ignore_ascii_case(partial);
        matches.then_some(text)
    }
}

impl Completer for KvHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        if Typed::read(before).words == ["SOURCE"] {
            return self.files.complete(line, pos, ctx);
        }
        let (start, words) = self.completions(before);
        let pairs = (words.into_iter())
            .map(|word| Pair {
                replacement: format!("{word} "),
                display: word,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for KvHelper {
    type Hint = UsageHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<UsageHint> {
        (pos == line.len()).then(|| usage_hint(line)).flatten()
    }
}

impl Highlighter for KvHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(hint.dimmed().to_string())
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> KvHelper {
        let mut helper = KvHelper::new(3, false);
        helper.sessions = vec!["alice".into(), "main".into()];
        helper
    }

    fn complete(before: &str) -> Vec<String> {
        helper().completions(before).1
    }

    #[test]
    fn keywords_complete_in_the_case_being_typed() {
        assert_eq!(complete("CRA"), ["CRASH"]);
        assert_eq!(complete("cra"), ["crash"]);
        assert_eq!(complete("ch"), ["checkpoint"]);
        assert_eq!(complete("S").len(), 6);
        assert_eq!(complete("al"), ["alice:"]);
    }

    #[test]
    fn arguments_complete_by_position() {
        assert_eq!(complete("CRASH "), ["node"]);
        assert_eq!(complete("crash node "), ["0", "1", "2"]);
        assert_eq!(complete("CRASH node 1 "), ["AT"]);
        let points = complete("CRASH node 1 AT ");
        assert_eq!(points.len(), kv2pc::CrashPoint::ALL.len());
        assert_eq!(complete("CRASH node 1 AT de"), ["decide", "decision"]);
        assert_eq!(complete("bob: SHOW LOG "), ["node"]);
        assert_eq!(complete("PUT x 1; SESSION "), ["alice", "main"]);
        let settings: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        assert_eq!(complete("SET "), settings);
        assert_eq!(
            complete("set deadlock "),
            [
                "detect",
                "wait-die",
                "wound-wait",
                "no-wait",
                "timeout",
                "off"
            ]
        );
        assert_eq!(complete("SET Deadlock o"), ["off"]);
        assert!(complete("SET vote_timeout ").is_empty());
        assert_eq!(complete("help cr"), ["crash"]);
        assert_eq!(complete("HELP sy"), ["syntax"]);
        assert!(complete("GET ").is_empty());
        assert_eq!(complete("GET x "), ["FOR"]);
        assert_eq!(complete("SCAN "), ["PREFIX", "FROM"]);
        assert_eq!(complete("scan from a t"), ["to"]);
        assert_eq!(complete("get x for u"), ["update"]);
        assert!(complete("PUT \"a b").is_empty());
        assert_eq!(complete("lesson 5"), ["5a", "5b", "5c", "5d"]);
        assert_eq!(
            complete("LESSON ").len(),
            kv2pc::shell::lesson::LESSONS.len()
        );
    }

    proptest::proptest! {
        #[test]
        fn no_line_makes_completion_or_hints_panic(line in "\\PC{0,40}") {
            let helper = helper();
            for (pos, _) in line.char_indices().chain([(line.len(), ' ')]) {
                let (start, _) = helper.completions(&line[..pos]);
                proptest::prop_assert!(start <= pos);
            }
            let _ = usage_hint(&line);
        }
    }
}
