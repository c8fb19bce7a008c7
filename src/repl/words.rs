//! What the line editor knows of the command language, shared by completion and hints:
//! each command's usage and how to read the statement typed so far. (The settings and
//! their values come from the library's one table of them, `kv2pc::config::SETTINGS`.)
//!
//! The usages copy the `Usage:` lines of `grammar/help.md`; a test keeps them in step,
//! and another checks that every keyword is a command of the parser.

/// Each command's keywords and the rest of its usage, as `HELP` gives them.
pub const USAGES: &[(&str, &str)] = &[
    ("BEGIN", "[READ ONLY]"),
    ("GET", "<key> [FOR UPDATE]"),
    ("SCAN", "PREFIX <prefix> | FROM <first key> TO <last key>"),
    ("PUT", "<key> <value>"),
    ("DEL", "<key>"),
    ("COMMIT", ""),
    ("ABORT", ""),
    ("ROLLBACK", ""),
    ("SESSION", "<name> [ON node <N>]"),
    ("CRASH", "node <N> [AT <point>]"),
    ("RESTART", "node <N>"),
    ("CHECKPOINT", "node <N>"),
    ("STATUS", ""),
    ("SHOW", "LOCKS | LOG node <N> [LAST <n>] | SETTINGS"),
    ("SHOW LOCKS", ""),
    ("SHOW LOG", "node <N> [LAST <n>]"),
    ("SHOW SETTINGS", ""),
    ("WHERE", "<key>"),
    ("KEYS", "[prefix]"),
    ("TRACE", "ON | OFF"),
    ("TICK", "<duration>"),
    ("TIMING", "ON | OFF"),
    ("SET", "<name> <value>"),
    ("SOURCE", "<path>"),
    ("HELP", "[topic]"),
    ("QUIT", ""),
    ("EXIT", ""),
    ("LESSON", "[name]"),
    ("RESOLVE", "T<n> COMMIT|ABORT ON node <N>"),
];

/// Whether the user is typing in lower case.
pub fn is_lower(partial: &str) -> bool {
    partial.chars().any(char::is_lowercase) && !partial.chars().any(char::is_uppercase)
}

/// The first word of every command, in the order of `USAGES`.
pub fn command_keywords() -> impl Iterator<Item = &'static str> {
    USAGES
        .iter()
        .map(|(keywords, _)| *keywords)
        .filter(|keywords| !keywords.contains(' '))
}

/// The statement typed before the cursor: its complete words (upper-cased, without a
/// session prefix) and where the word being typed starts.
pub struct Typed {
    /// The complete words, upper-cased, without a session prefix.
    pub words: Vec<String>,
    /// Where the word being typed starts (the end of the text if none is).
    pub start: usize,
}

impl Typed {
    /// Reads the statement that ends at the end of `before`.
    pub fn read(before: &str) -> Typed {
        let mut words: Vec<String> = Vec::new();
        let mut word_start: Option<usize> = None;
        // The quote open, if any: `"..."` takes backslash escapes, `'...'` none.
        let (mut quote, mut escaped): (Option<char>, bool) = (None, false);
        for (index, c) in before.char_indices() {
            if let Some(open) = quote {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if open == '"' => escaped = true,
                    _ if c == open => quote = None,
                    _ => {}
                }
                continue;
            }
            match c {
                c if c.is_whitespace() => {
                    if let Some(start) = word_start.take() {
                        words.push(before[start..index].to_ascii_uppercase());
                    }
                }
                ';' => {
                    words.clear();
                    word_start = None;
                }
                _ => {
                    word_start.get_or_insert(index);
                    quote = Some(c).filter(|c| *c == '"' || *c == '\'');
                }
            }
        }
        if words
            .first()
            .is_some_and(|w| w.len() > 1 && w.ends_with(':'))
        {
            words.remove(0);
        }
        let start = word_start.unwrap_or(before.len());
        Typed { words, start }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usages_match_the_help() {
        for (keywords, usage) in USAGES {
            if ["SHOW", "TRACE", "TIMING"].contains(keywords) {
                continue;
            }
            let help = kv2pc::shell::help::help(Some(keywords)).unwrap();
            let expected = format!("{keywords} {usage}");
            assert!(
                help.contains(expected.trim_end()),
                "{expected:?} not in HELP"
            );
        }
    }

    #[test]
    fn every_keyword_is_a_command_of_the_parser() {
        for keyword in command_keywords() {
            if let Err(error) = kv2pc::shell::parse_command(keyword) {
                assert!(!error.message.contains("unknown command"), "{keyword}");
            }
        }
    }

    #[test]
    fn words_skip_quotes_session_prefixes_and_earlier_statements() {
        let typed = Typed::read("PUT \"a b\" 1; bob: crash no");
        assert_eq!((typed.words, typed.start), (vec!["CRASH".to_string()], 24));
        let typed = Typed::read("PUT 'a; b\\' 1; show ");
        assert_eq!(typed.words, vec!["SHOW".to_string()]);
        assert_eq!(Typed::read("GET x ").start, 6);
    }
}
