//! Lines and statements: how a line is cut into commands, session prefixes and comments.

use super::commands::command;
use super::tokens::{is_name_char, is_word_char, ws};
use super::{Parsed, failure, shown, token_at};
use crate::shell::command::Command;
use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::{char, satisfy};
use nom::combinator::{not, opt, rest};
use nom::multi::separated_list0;
use nom::sequence::{delimited, preceded, terminated};

/// `line = ws , [ statement ] , { ";" , ws , [ statement ] } , end_of_line ;`
pub(super) fn line(input: &str) -> Parsed<'_, Vec<Command>> {
    let statements = separated_list0(terminated(char(';'), ws), opt(statement));
    delimited(ws, statements, end_of_line)
        .map(|commands| commands.into_iter().flatten().collect())
        .parse(input)
}

/// `command_line = ws , [ statement ] , end_of_line ;`
pub(super) fn command_line(input: &str) -> Parsed<'_, Option<Command>> {
    delimited(ws, opt(statement), end_of_line).parse(input)
}

/// `statement = [ session_prefix ] , command ;`
pub(super) fn statement(input: &str) -> Parsed<'_, Command> {
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
pub(super) fn session_prefix(input: &str) -> Parsed<'_, String> {
    let colon_ending_the_word = (char(':'), not(satisfy(is_word_char)), ws);
    terminated(take_while1(is_name_char), colon_ending_the_word)
        .map(String::from)
        .parse(input)
}

/// `end_of_line = [ comment ] , ? end of input ? ;`
pub(super) fn end_of_line(input: &str) -> Parsed<'_, ()> {
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
pub(super) fn comment(input: &str) -> Parsed<'_, &str> {
    preceded(alt((tag("#"), tag("--"))), rest).parse(input)
}
