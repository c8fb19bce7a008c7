//! The parser of the shell's command language: one function per rule of
//! `grammar/kv2pc.ebnf`, named after the rule, its `///` line quoting the rule
//! (`tests/grammar.rs` checks that the two agree).
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

use super::command::Command;
use crate::CrashPoint;
use crate::types::{self, MAX_NODES, NodeId};
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::{char, satisfy, space0};
use nom::combinator::{cut, not, opt, rest};
use nom::error::{ContextError, ErrorKind, context};
use nom::multi::separated_list0;
use nom::sequence::{delimited, preceded, terminated};
use nom::{IResult, Parser};
use std::fmt;
use std::time::Duration;

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
}

impl ParseError {
    /// Turns nom's error into a `ParseError` located in `line`.
    fn locate(line: &str, error: nom::Err<Mistake<'_>>) -> ParseError {
        let mistake = match error {
            nom::Err::Error(mistake) | nom::Err::Failure(mistake) => mistake,
            nom::Err::Incomplete(_) => Mistake::new("", None),
        };
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
        }
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
}

impl Mistake<'_> {
    fn new(at: &str, message: Option<String>) -> Mistake<'_> {
        Mistake { at, message }
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

// ---- Lines and statements ----

/// `line = ws , [ statement ] , { ";" , ws , [ statement ] } , end_of_line ;`
fn line(input: &str) -> Parsed<'_, Vec<Command>> {
    let statements = separated_list0(terminated(char(';'), ws), opt(statement));
    delimited(ws, statements, end_of_line)
        .map(|commands| commands.into_iter().flatten().collect())
        .parse(input)
}

/// `command_line = ws , [ statement ] , end_of_line ;`
fn command_line(input: &str) -> Parsed<'_, Option<Command>> {
    delimited(ws, opt(statement), end_of_line).parse(input)
}

/// `statement = [ session_prefix ] , command ;`
fn statement(input: &str) -> Parsed<'_, Command> {
    let (rest, session) = opt(session_prefix).parse(input)?;
    let Some(session) = session else {
        return command(input);
    };
    if session_prefix(rest).is_ok() {
        let message = "sessions do not nest: give a command one 'name:' prefix at most";
        return Err(failure(rest, message));
    }
    let missing = || format!("expected a command after '{}:'", shown(&session));
    let (rest, inner) = command(rest).map_err(|error| match error {
        nom::Err::Error(_) => failure(rest, missing()),
        other => other,
    })?;
    let command = Box::new(inner);
    Ok((rest, Command::In { session, command }))
}

/// `session_prefix = name_char , { name_char } , ":" , ? no word_char ? , ws ;`
fn session_prefix(input: &str) -> Parsed<'_, String> {
    let colon_ending_the_word = (char(':'), not(satisfy(is_word_char)), ws);
    terminated(take_while1(is_name_char), colon_ending_the_word)
        .map(String::from)
        .parse(input)
}

/// `end_of_line = [ comment ] , ? end of input ? ;`
fn end_of_line(input: &str) -> Parsed<'_, ()> {
    let (rest, _) = opt(comment).parse(input)?;
    match token_at(rest) {
        None => Ok((rest, ())),
        Some(token) => {
            let message = format!("unexpected '{token}' after the command");
            Err(failure(rest, message))
        }
    }
}

/// `comment = ( "#" | "--" ) , ? any characters ? ;`
fn comment(input: &str) -> Parsed<'_, &str> {
    preceded(alt((tag("#"), tag("--"))), rest).parse(input)
}

// ---- Commands ----

/// `command = transaction_command | cluster_command | inspect_command | shell_command | unknown_command ;`
fn command(input: &str) -> Parsed<'_, Command> {
    alt((
        transaction_command,
        cluster_command,
        inspect_command,
        shell_command,
        unknown_command,
    ))
    .parse(input)
}

/// `unknown_command = bare_word | ? any other character but ";" or a comment ? ;`
fn unknown_command(input: &str) -> Parsed<'_, Command> {
    let Some(token) = token_at(input) else {
        return Err(no_match(input));
    };
    if input.starts_with(';') || comment(input).is_ok() {
        return Err(no_match(input));
    }
    let message = if bare_word(input).is_ok() {
        format!("unknown command '{token}'; type HELP for the list")
    } else {
        format!("expected a command, not '{token}'; type HELP for the list")
    };
    Err(failure(input, message))
}

/// `transaction_command = begin | get | put | del | commit | abort ;`
fn transaction_command(input: &str) -> Parsed<'_, Command> {
    alt((begin, get, put, del, commit, abort)).parse(input)
}

/// `begin = "BEGIN" , [ read_only ] ;`
fn begin(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("BEGIN"), opt(read_only))
        .map(|read_only| Command::Begin {
            read_only: read_only.is_some(),
        })
        .parse(input)
}

/// `read_only = "READ" , "ONLY" ;`
fn read_only(input: &str) -> Parsed<'_, ()> {
    let only = context("expected ONLY after READ", keyword("ONLY"));
    preceded(keyword("READ"), cut(only)).parse(input)
}

/// `get = "GET" , key ;`
fn get(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("GET"), cut(key))
        .map(|key| Command::Get { key })
        .parse(input)
}

/// `put = "PUT" , key , value ;`
fn put(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("PUT"), cut((key, value)))
        .map(|(key, value)| Command::Put { key, value })
        .parse(input)
}

/// `del = "DEL" , key ;`
fn del(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("DEL"), cut(key))
        .map(|key| Command::Del { key })
        .parse(input)
}

/// `commit = "COMMIT" ;`
fn commit(input: &str) -> Parsed<'_, Command> {
    keyword("COMMIT").map(|()| Command::Commit).parse(input)
}

/// `abort = "ABORT" | "ROLLBACK" ;`
fn abort(input: &str) -> Parsed<'_, Command> {
    alt((keyword("ABORT"), keyword("ROLLBACK")))
        .map(|()| Command::Abort)
        .parse(input)
}

/// `cluster_command = session | crash | restart | checkpoint | tick | set ;`
fn cluster_command(input: &str) -> Parsed<'_, Command> {
    alt((session, crash, restart, checkpoint, tick, set)).parse(input)
}

/// `session = "SESSION" , session_name , [ "ON" , node ] ;`
fn session(input: &str) -> Parsed<'_, Command> {
    let on_node = preceded(keyword("ON"), cut(node));
    preceded(keyword("SESSION"), cut((session_name, opt(on_node))))
        .map(|(name, node)| Command::Session { name, node })
        .parse(input)
}

/// `crash = "CRASH" , node , [ "AT" , crash_point ] ;`
fn crash(input: &str) -> Parsed<'_, Command> {
    let at_point = preceded(keyword("AT"), cut(crash_point));
    preceded(keyword("CRASH"), cut((node, opt(at_point))))
        .map(|(node, at)| Command::Crash { node, at })
        .parse(input)
}

/// `restart = "RESTART" , node ;`
fn restart(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("RESTART"), cut(node))
        .map(|node| Command::Restart { node })
        .parse(input)
}

/// `checkpoint = "CHECKPOINT" , node ;`
fn checkpoint(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("CHECKPOINT"), cut(node))
        .map(|node| Command::Checkpoint { node })
        .parse(input)
}

/// `tick = "TICK" , duration ;`
fn tick(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("TICK"), cut(duration))
        .map(|duration| Command::Tick { duration })
        .parse(input)
}

/// `set = "SET" , setting_name , setting_value ;`
fn set(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("SET"), cut((setting_name, setting_value)))
        .map(|(name, value)| Command::Set { name, value })
        .parse(input)
}

/// `inspect_command = status | show | where | trace ;`
fn inspect_command(input: &str) -> Parsed<'_, Command> {
    alt((status, show, r#where, trace)).parse(input)
}

/// `status = "STATUS" ;`
fn status(input: &str) -> Parsed<'_, Command> {
    keyword("STATUS").map(|()| Command::Status).parse(input)
}

/// `show = "SHOW" , ( show_locks | show_log ) ;`
fn show(input: &str) -> Parsed<'_, Command> {
    let what = context(
        "expected LOCKS or LOG after SHOW",
        alt((show_locks, show_log)),
    );
    preceded(keyword("SHOW"), cut(what)).parse(input)
}

/// `show_locks = "LOCKS" ;`
fn show_locks(input: &str) -> Parsed<'_, Command> {
    keyword("LOCKS").map(|()| Command::ShowLocks).parse(input)
}

/// `show_log = "LOG" , node , [ "LAST" , count ] ;`
fn show_log(input: &str) -> Parsed<'_, Command> {
    let last = preceded(keyword("LAST"), cut(count));
    preceded(keyword("LOG"), cut((node, opt(last))))
        .map(|(node, last)| Command::ShowLog { node, last })
        .parse(input)
}

/// `where = "WHERE" , key ;`
fn r#where(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("WHERE"), cut(key))
        .map(|key| Command::Where { key })
        .parse(input)
}

/// `trace = "TRACE" , ( "ON" | "OFF" ) ;`
fn trace(input: &str) -> Parsed<'_, Command> {
    let on_off = alt((keyword("ON").map(|()| true), keyword("OFF").map(|()| false)));
    let on_off = context("expected ON or OFF after TRACE", on_off);
    preceded(keyword("TRACE"), cut(on_off))
        .map(|on| Command::Trace { on })
        .parse(input)
}

/// `shell_command = source | help | quit ;`
fn shell_command(input: &str) -> Parsed<'_, Command> {
    alt((source, help, quit)).parse(input)
}

/// `source = "SOURCE" , path ;`
fn source(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("SOURCE"), cut(path))
        .map(|path| Command::Source { path })
        .parse(input)
}

/// `help = "HELP" , [ topic ] ;`
fn help(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("HELP"), opt(topic))
        .map(|topic| Command::Help { topic })
        .parse(input)
}

/// `quit = "QUIT" | "EXIT" ;`
fn quit(input: &str) -> Parsed<'_, Command> {
    alt((keyword("QUIT"), keyword("EXIT")))
        .map(|()| Command::Quit)
        .parse(input)
}

// ---- Arguments ----

/// `node = "node" , node_number ;`
fn node(input: &str) -> Parsed<'_, NodeId> {
    let node = preceded(keyword("node"), cut(node_number));
    context("expected 'node' and a node number, as in: node 1", node).parse(input)
}

/// `node_number = integer ;` (below `MAX_NODES`)
fn node_number(input: &str) -> Parsed<'_, NodeId> {
    let (rest, number) = context("expected a node number", integer).parse(input)?;
    let last = MAX_NODES - 1;
    match NodeId::try_from(number) {
        Ok(node) if node <= last => Ok((rest, node)),
        _ => {
            let message = format!(
                "there is no node {number}: a cluster has at most {MAX_NODES} nodes, \
                 numbered from 0 to {last}"
            );
            Err(failure(input, message))
        }
    }
}

/// `crash_point = "prepare" | "vote" | "commit" | "ack" | "decide" | "decision" | "broadcast" ;`
fn crash_point(input: &str) -> Parsed<'_, CrashPoint> {
    let names: Vec<_> = CrashPoint::ALL.iter().map(|point| point.name()).collect();
    let expected = || {
        failure(
            input,
            format!("expected a crash point ({})", names.join(", ")),
        )
    };
    let (rest, name) = word(input).map_err(|error| match error {
        nom::Err::Error(_) => expected(),
        other => other,
    })?;
    let point = name.parse().map_err(|_| expected())?;
    Ok((rest, point))
}

/// `count = integer ;`
fn count(input: &str) -> Parsed<'_, usize> {
    let (rest, number) =
        context("expected a number of records after LAST", integer).parse(input)?;
    match usize::try_from(number) {
        Ok(count) => Ok((rest, count)),
        Err(_) => Err(failure(input, format!("{number} is too large a number"))),
    }
}

/// `duration = digit , { digit } , ( "ms" | "s" ) , separation ;`
fn duration(input: &str) -> Parsed<'_, Duration> {
    const EXPECTED: &str = "expected a duration such as 500ms or 2s";
    let (rest, token) = word(input).map_err(|error| match error {
        nom::Err::Error(_) => failure(input, EXPECTED),
        other => other,
    })?;
    let digits_end = token
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(token.len());
    let (digits, unit) = token.split_at(digits_end);
    if digits.is_empty() {
        return Err(failure(input, EXPECTED));
    }
    let too_long = || format!("{} is too long a duration", shown(token));
    let amount: u64 = digits.parse().map_err(|_| failure(input, too_long()))?;
    let message = match unit.to_ascii_lowercase().as_str() {
        "ms" => return Ok((rest, Duration::from_millis(amount))),
        "s" => return Ok((rest, Duration::from_secs(amount))),
        "" => format!("a duration needs a unit: write {amount}ms or {amount}s"),
        _ => format!(
            "unknown unit '{}': use ms or s, as in 500ms or 2s",
            shown(unit)
        ),
    };
    Err(failure(input, message))
}

/// `key = text ;` (not empty, at most `MAX_KEY_LEN` bytes)
fn key(input: &str) -> Parsed<'_, String> {
    let (rest, key) = context("expected a key", text).parse(input)?;
    match types::check_key(&key) {
        Ok(()) => Ok((rest, key)),
        Err(error) => Err(failure(input, error.to_string())),
    }
}

/// `value = text ;` (at most `MAX_VALUE_LEN` bytes)
fn value(input: &str) -> Parsed<'_, String> {
    let (rest, value) = context("expected a value after the key", text).parse(input)?;
    match types::check_value(&value) {
        Ok(()) => Ok((rest, value)),
        Err(error) => Err(failure(input, error.to_string())),
    }
}

/// `path = text ;`
fn path(input: &str) -> Parsed<'_, String> {
    context("expected a file path (quote it if it holds spaces)", text).parse(input)
}

/// `session_name = word ;` (letters, digits, `_` and `-` only)
fn session_name(input: &str) -> Parsed<'_, String> {
    let (rest, name) = context("expected a session name", word).parse(input)?;
    if name.chars().all(is_name_char) {
        return Ok((rest, name.to_string()));
    }
    let message = format!(
        "'{}' cannot name a session: use letters, digits, _ and -",
        shown(name)
    );
    Err(failure(input, message))
}

/// `setting_name = word ;`
fn setting_name(input: &str) -> Parsed<'_, String> {
    context("expected a setting name; type HELP SET for the list", word)
        .map(String::from)
        .parse(input)
}

/// `setting_value = text ;`
fn setting_value(input: &str) -> Parsed<'_, String> {
    let expected = "expected a value for the setting, as in: SET vote_timeout 2s";
    context(expected, text).parse(input)
}

/// `topic = text ;`
fn topic(input: &str) -> Parsed<'_, String> {
    text(input)
}

// ---- Tokens ----

/// `keyword = bare_word , separation ;` (the bare word equals the keyword, ignoring
/// ASCII case)
fn keyword<'a>(wanted: &'static str) -> impl Parser<&'a str, Output = (), Error = Mistake<'a>> {
    move |input: &'a str| {
        let (rest, found) = bare_word(input)?;
        if !found.eq_ignore_ascii_case(wanted) {
            return Err(no_match(input));
        }
        separation(rest)
    }
}

/// `integer = digit , { digit } , separation ;`
fn integer(input: &str) -> Parsed<'_, u64> {
    // Read as a whole word, so that `2x` is not the number 2 followed by junk.
    let (rest, digits) = word(input)?;
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(no_match(input));
    }
    let too_large = || format!("{} is too large a number", shown(digits));
    let number = digits.parse().map_err(|_| failure(input, too_large()))?;
    Ok((rest, number))
}

/// `text = word | quoted ;`
fn text(input: &str) -> Parsed<'_, String> {
    alt((word.map(String::from), quoted)).parse(input)
}

/// `word = bare_word , separation ;`
fn word(input: &str) -> Parsed<'_, &str> {
    terminated(bare_word, separation).parse(input)
}

/// `bare_word = word_char , { word_char } ;`
fn bare_word(input: &str) -> Parsed<'_, &str> {
    take_while1(is_word_char).parse(input)
}

/// `quoted = '"' , { string_char | escape } , '"' , separation ;`
fn quoted(input: &str) -> Parsed<'_, String> {
    let (mut rest, _) = char('"').parse(input)?;
    let unterminated = || failure(input, "unterminated string: add a closing \"");
    let mut text = String::new();
    loop {
        match rest.chars().next() {
            None => return Err(unterminated()),
            Some('"') => return separation(&rest[1..]).map(|(rest, ())| (rest, text)),
            Some('\\') => {
                let (after, escaped) = escape(rest).map_err(|error| match error {
                    nom::Err::Error(_) => unterminated(),
                    other => other,
                })?;
                text.push(escaped);
                rest = after;
            }
            Some(other) => {
                text.push(other);
                rest = &rest[other.len_utf8()..];
            }
        }
    }
}

/// `escape = "\" , ( '"' | "\" | "n" | "t" ) ;`
fn escape(input: &str) -> Parsed<'_, char> {
    let mut chars = input.chars();
    if chars.next() != Some('\\') {
        return Err(no_match(input));
    }
    let escaped = match chars.next() {
        Some('"') => '"',
        Some('\\') => '\\',
        Some('n') => '\n',
        Some('t') => '\t',
        None => return Err(no_match(input)),
        Some(other) => {
            let message = format!(
                "unknown escape '\\{}': write \\\" \\\\ \\n or \\t",
                shown(&other.to_string())
            );
            return Err(failure(input, message));
        }
    };
    Ok((chars.as_str(), escaped))
}

/// `separation = ? no word_char and no '"' ? , ws ;`
fn separation(input: &str) -> Parsed<'_, ()> {
    match input.chars().next() {
        Some(next) if is_word_char(next) || next == '"' => {
            let token = token_at(input).unwrap_or_default();
            Err(failure(input, format!("put a space before '{token}'")))
        }
        _ => ws.map(|_| ()).parse(input),
    }
}

/// `ws = { " " | "\t" } ;`
fn ws(input: &str) -> Parsed<'_, &str> {
    space0(input)
}

/// `word_char = ? a letter or digit, or one of _ - . / : ? ;`
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':')
}

/// `name_char = ? a letter or digit, or one of _ - ? ;`
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-')
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
