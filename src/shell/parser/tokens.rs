//! The tokens: keywords, integers, words and quoted strings, each consuming the blanks
//! after it, and the character classes.

use super::{Mistake, Parsed, failure, failure_with_hint, no_match, shown, token_at};
use crate::shell::command::Text;
use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::take_while1;
use nom::character::complete::{char, space0};
use nom::sequence::terminated;

/// `keyword = bare_word , separation ;` (the bare word equals the keyword, ignoring
/// ASCII case)
pub(super) fn keyword<'a>(
    wanted: &'static str,
) -> impl Parser<&'a str, Output = (), Error = Mistake<'a>> {
    move |input: &'a str| {
        let (rest, found) = bare_word(input)?;
        if !found.eq_ignore_ascii_case(wanted) {
            return Err(no_match(input));
        }
        separation(rest)
    }
}

/// `integer = digit , { digit } , separation ;`
pub(super) fn integer(input: &str) -> Parsed<'_, u64> {
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
///
/// A run of characters that is neither (`@home`, `a=b`, `don't`) is refused with a hint
/// to quote it, rather than read in part and left to a vaguer error further on.
pub(super) fn text(input: &str) -> Parsed<'_, String> {
    needs_quotes(input)?;
    alt((word.map(String::from), quoted)).parse(input)
}

/// Fails if the text at `input` is not a quoted string but holds a character a bare
/// word cannot hold, before the blank, `;` or `#` that ends it. The hint shows it quoted.
fn needs_quotes(input: &str) -> Result<(), nom::Err<Mistake<'_>>> {
    if input.starts_with(['"', '\'']) || input.starts_with("--") {
        return Ok(());
    }
    let end = input
        .find(|c: char| c.is_whitespace() || c == ';' || c == '#')
        .unwrap_or(input.len());
    let run = &input[..end];
    let Some(at) = run.find(|c: char| !is_word_char(c)) else {
        return Ok(());
    };
    let bad = &input[at..];
    let c = bad.chars().next().unwrap_or('?');
    if c == '"' {
        // `x"y"`: `separation` asks for the space that was probably meant.
        return Ok(());
    }
    let quoted = Text(run).to_string();
    let message = if c == '\'' && at > 0 {
        format!(
            "a ' inside a word would start a quoted string: {}",
            shown(run)
        )
    } else {
        format!(
            "'{}' cannot be part of a bare word (letters, digits and _ - . / : only)",
            shown(&c.to_string())
        )
    };
    Err(failure_with_hint(
        bad,
        message,
        format!("put it in double quotes: {}", shown(&quoted)),
    ))
}

/// `word = bare_word , separation ;`
pub(super) fn word(input: &str) -> Parsed<'_, &str> {
    terminated(bare_word, separation).parse(input)
}

/// `bare_word = word_char , { word_char } ;` (not beginning with `--`, which starts a
/// comment)
pub(super) fn bare_word(input: &str) -> Parsed<'_, &str> {
    if input.starts_with("--") {
        return Err(no_match(input));
    }
    take_while1(is_word_char).parse(input)
}

/// `quoted = double_quoted | single_quoted ;`
pub(super) fn quoted(input: &str) -> Parsed<'_, String> {
    alt((double_quoted, single_quoted)).parse(input)
}

/// `single_quoted = "'" , { literal_char } , "'" , separation ;`
///
/// Accepted because SQL shells and redis-cli quote with `'`, so it is what a student
/// types first. Every character inside stands for itself (no escapes, as in a Unix
/// shell); a text holding `'` is written in double quotes, which is how kv2pc prints
/// every quoted text.
pub(super) fn single_quoted(input: &str) -> Parsed<'_, String> {
    let (rest, _) = char('\'').parse(input)?;
    match rest.find('\'') {
        Some(end) => separation(&rest[end + 1..]).map(|(after, ())| (after, rest[..end].into())),
        None => Err(failure_with_hint(
            input,
            "unterminated string: add a closing '",
            "inside '...' every character is itself; to hold a ' use double quotes",
        )),
    }
}

/// `double_quoted = '"' , { string_char | escape } , '"' , separation ;`
pub(super) fn double_quoted(input: &str) -> Parsed<'_, String> {
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
pub(super) fn escape(input: &str) -> Parsed<'_, char> {
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

/// `separation = ? no word_char, no '"' and no "'" ? , ws ;`
pub(super) fn separation(input: &str) -> Parsed<'_, ()> {
    match input.chars().next() {
        Some(next) if is_word_char(next) || next == '"' || next == '\'' => {
            let token = token_at(input).unwrap_or_default();
            Err(failure(input, format!("put a space before '{token}'")))
        }
        _ => ws.map(|_| ()).parse(input),
    }
}

/// `ws = { " " | "\t" } ;`
pub(super) fn ws(input: &str) -> Parsed<'_, &str> {
    space0(input)
}

/// `word_char = ? a letter or digit, or one of _ - . / : ? ;`
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':')
}

/// `name_char = ? a letter or digit, or one of _ - ? ;`
pub(super) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-')
}
