//! The parser of the shell's command language: one function per rule of
//! `grammar/kv2pc.ebnf`, named after the rule, its `///` line quoting the rule
//! (`tests/grammar.rs` checks that the two agree).
//!
//! The rules live in one file per part of the grammar, in its order: `statements` (a
//! line, its statements and comments), `commands` (one function per command), `arguments`
//! (nodes, keys, durations and the other arguments) and `tokens` (keywords, words, quoted
//! strings, separation, character classes). This module holds the entry points and the
//! error type they share.
//!
//! # Design
//!
//! - **nom 8 over `&str`, with our own error type** (`Mistake`): the input left at the
//!   mistake, from which the column is computed, and the sentence the user will read.
//!   A rule that has read its keyword commits with `cut`, so the error reported is the
//!   innermost one, and `context` names what was expected there; a more specific message
//!   set deeper (an unterminated string, a node number out of range) is never overwritten.
//! - **Every token consumes the blanks after it**, never before, so each rule starts on
//!   its first character and an error points at the token that is wrong, not at the
//!   space before it.
//! - **Keywords are whole words compared by ASCII case folding.** `BEGINX` is one word, so
//!   it is not `BEGIN`. nom's `tag_no_case` is deliberately not used: on `&str` it folds
//!   Unicode case and then slices by the keyword's byte length, so `LOC\u{212A}S` (a Kelvin
//!   sign, three bytes, folds to `k`) would be cut inside a character and panic.
//! - **Tokens must be separated**: `x"y"` is an error, not the two tokens `x` and `"y"`,
//!   because reading it as `PUT x "y"` would silently store something else than meant.
//!
//! # Limits
//!
//! The parser knows nothing of the running cluster: `node 5` in a 3-node cluster parses
//! (only numbers from `MAX_NODES` on are refused), and `SET` names and values are words
//! for the executor to check. Columns count characters, so a caret under a line holding
//! wide characters (CJK, emoji) may sit a little to the left on a terminal.

mod arguments;
mod commands;
mod statements;
mod tokens;

use super::command::Command;
use nom::IResult;
use nom::error::{ContextError, ErrorKind};
use statements::{command_line, line};
use std::fmt;
pub(crate) use tokens::is_word_char;

/// Parses a line of one or more commands separated by `;`; a `;` inside a quoted string
/// does not separate. Empty statements are skipped, and a line with none (blank, or only
/// a comment) gives `[Command::Empty]`, so the result is never empty.
pub fn parse_line(input: &str) -> Result<Vec<Command>, ParseError> {
    let (_, mut commands) = line(input).map_err(|error| ParseError::locate(input, error))?;
    if commands.is_empty() {
        commands.push(Command::Empty);
    }
    Ok(commands)
}

/// Parses exactly one command (or `Command::Empty` for a blank or comment line); a `;`
/// outside a string is an error here.
pub fn parse_command(input: &str) -> Result<Command, ParseError> {
    let (_, command) = command_line(input).map_err(|error| ParseError::locate(input, error))?;
    Ok(command.unwrap_or(Command::Empty))
}

/// A line that does not parse: where, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Where the problem starts, in characters from 1; one past the last character when
    /// something is missing at the end of the line.
    pub column: usize,
    /// What was expected there, or what is wrong, as a sentence for the user.
    pub message: String,
    /// The word or character found at `column`, shortened; `None` at the end of the line.
    pub found: Option<String>,
    /// What to do about it, when the message alone would leave a student guessing
    /// (quote a character, put a space after a session prefix, the command to leave).
    pub hint: Option<String>,
}

impl ParseError {
    /// Turns nom's error into a `ParseError` located in `line`.
    fn locate(line: &str, error: nom::Err<Mistake<'_>>) -> ParseError {
        let mistake = match error {
            nom::Err::Error(mistake) | nom::Err::Failure(mistake) => mistake,
            nom::Err::Incomplete(_) => Mistake::new("", None),
        };
        let hint = mistake.hint;
        // `at` is always a suffix of `line`: every rule only slices its input forward.
        let offset = line.len().saturating_sub(mistake.at.len());
        let column = line.char_indices().take_while(|&(i, _)| i < offset).count() + 1;
        let found = token_at(mistake.at);
        let message = mistake.message.unwrap_or_else(|| match &found {
            Some(token) => format!("unexpected '{token}'"),
            None => "unexpected end of line".to_string(),
        });
        ParseError {
            column,
            message,
            found,
            hint,
        }
    }

    /// The error as the shell prints it: `syntax error: ` and the message, the line with
    /// a caret under the column, and the hint if there is one:
    ///
    /// ```text
    /// syntax error: '@' cannot be part of a bare word
    /// PUT x @home
    ///       ^
    /// hint: quote it: "@home"
    /// ```
    pub fn report(&self, line: &str) -> String {
        let rendered = self.render(line);
        let (shown, caret) = rendered.split_once('\n').unwrap_or((&rendered, "^"));
        let caret = caret.split_once('^').map_or("", |(indent, _)| indent);
        let mut text = format!("syntax error: {}\n{shown}\n{caret}^", self.message);
        if let Some(hint) = &self.hint {
            text.push_str(&format!("\nhint: {hint}"));
        }
        text
    }

    /// The line, a caret under the column and the message, on two lines:
    ///
    /// ```text
    /// CRASH node two
    ///            ^ expected a node number
    /// ```
    ///
    /// Control characters in the line are shown as `?` (one column each) so that they
    /// neither move the caret nor reach the terminal; tabs are kept, and copied into the
    /// caret's indentation so that it lines up.
    pub fn render(&self, line: &str) -> String {
        let shown: String = line
            .chars()
            .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
            .collect();
        let indent: String = line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!("{shown}\n{indent}^ {}", self.message)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A mistake found while parsing: where it is and, once known, the sentence for the user.
/// `message` is `None` for a plain "this alternative does not match"; `context` or the
/// rule that called fills it in with what was expected there.
#[derive(Debug)]
struct Mistake<'a> {
    /// The input from the mistake to the end of the line.
    at: &'a str,
    /// What to tell the user.
    message: Option<String>,
    /// What to do about it, if the message does not say.
    hint: Option<String>,
}

impl Mistake<'_> {
    fn new(at: &str, message: Option<String>) -> Mistake<'_> {
        Mistake {
            at,
            message,
            hint: None,
        }
    }
}

impl<'a> nom::error::ParseError<&'a str> for Mistake<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        Mistake::new(input, None)
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

impl<'a> ContextError<&'a str> for Mistake<'a> {
    /// The innermost message wins: it is the most specific.
    fn add_context(input: &'a str, context: &'static str, other: Self) -> Self {
        match other.message {
            Some(_) => other,
            None => Mistake::new(input, Some(context.to_string())),
        }
    }
}

/// What every rule returns.
type Parsed<'a, T> = IResult<&'a str, T, Mistake<'a>>;

/// A committed error: the rule matched far enough to know this is what the user meant.
fn failure(at: &str, message: impl Into<String>) -> nom::Err<Mistake<'_>> {
    nom::Err::Failure(Mistake::new(at, Some(message.into())))
}

/// A committed error with a hint saying what to do about it.
fn failure_with_hint(
    at: &str,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> nom::Err<Mistake<'_>> {
    let mut mistake = Mistake::new(at, Some(message.into()));
    mistake.hint = Some(hint.into());
    nom::Err::Failure(mistake)
}

/// A recoverable error: this rule does not match here, another alternative may.
fn no_match(at: &str) -> nom::Err<Mistake<'_>> {
    nom::Err::Error(Mistake::new(at, None))
}

/// The most characters of user input quoted back in a message.
const MAX_SHOWN: usize = 24;

/// `text` as quoted in a message: at most `MAX_SHOWN` characters, control characters
/// escaped so that they cannot act on the terminal.
fn shown(text: &str) -> String {
    let mut shown = String::new();
    for c in text.chars().take(MAX_SHOWN) {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    if text.chars().nth(MAX_SHOWN).is_some() {
        shown.push_str("...");
    }
    shown
}

/// The token at the start of `input` as quoted in a message: a word, or one character.
fn token_at(input: &str) -> Option<String> {
    let first = input.chars().next()?;
    if !is_word_char(first) {
        return Some(shown(&input[..first.len_utf8()]));
    }
    let end = input.find(|c| !is_word_char(c)).unwrap_or(input.len());
    Some(shown(&input[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_messages_are_short_and_escaped() {
        assert_eq!(token_at("ab\u{1b}c"), Some("ab".into()));
        assert_eq!(token_at("\u{1b}[2J"), Some("\\u{1b}".into()));
        let long = format!("{}...", "x".repeat(MAX_SHOWN));
        assert_eq!(token_at(&"x".repeat(100)), Some(long));
        assert_eq!(token_at(""), None);
    }
}
