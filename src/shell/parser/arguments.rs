//! The arguments of commands: nodes, crash points, durations, keys, values and names,
//! each checked for what the parser can know alone.

use super::tokens::{integer, is_name_char, keyword, text, word};
use super::{Mistake, Parsed, failure, failure_with_hint, shown};
use crate::cluster::CrashPoint;
use crate::types::{self, MAX_NODES, NodeId, TxnId};
use nom::Parser;
use nom::combinator::cut;
use nom::error::context;
use nom::sequence::preceded;
use std::time::Duration;

/// `node = "node" , node_number ;`
pub(super) fn node(input: &str) -> Parsed<'_, NodeId> {
    let node = preceded(keyword("node"), cut(node_number));
    context("expected 'node' and a node number, as in: node 1", node).parse(input)
}

/// `node_number = integer ;` (below `MAX_NODES`)
pub(super) fn node_number(input: &str) -> Parsed<'_, NodeId> {
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

/// `crash_point = "prepare" | "vote" | "commit" | "ack" | "decide" | "decision" | "broadcast" | "staging" | "staged" ;`
pub(super) fn crash_point(input: &str) -> Parsed<'_, CrashPoint> {
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

/// `txn_id = tid ;`, where a transaction must be named: anything else is an error
/// that says how to write one.
pub(super) fn txn_id(input: &str) -> Parsed<'_, types::TxnId> {
    tid(input).map_err(|error| match error {
        nom::Err::Error(_) => failure(input, "expected a transaction, as in: T4"),
        other => other,
    })
}

/// `resolution = "COMMIT" | "ABORT" ;` (true for COMMIT)
pub(super) fn resolution(input: &str) -> Parsed<'_, bool> {
    let commit = keyword("COMMIT").map(|()| true);
    let abort = keyword("ABORT").map(|()| false);
    nom::branch::alt((commit, abort))
        .parse(input)
        .map_err(|error| match error {
            nom::Err::Error(_) => failure(input, "expected COMMIT or ABORT: how to settle it"),
            other => other,
        })
}

/// `count = integer ;`
pub(super) fn count(input: &str) -> Parsed<'_, usize> {
    let (rest, number) =
        context("expected a number of records after LAST", integer).parse(input)?;
    match usize::try_from(number) {
        Ok(count) => Ok((rest, count)),
        Err(_) => Err(failure(input, format!("{number} is too large a number"))),
    }
}

/// `step_number = integer ;` (a number `SHOW QUEUE` lists)
pub(super) fn step_number(input: &str) -> Parsed<'_, u64> {
    integer(input)
}

/// `duration = digit , { digit } , [ "." , digit , { digit } ] , ( "ms" | "s" | "m" ) , separation ;`
///
/// Units in any case; read by `clock::parse_duration`, the shell's one duration grammar.
pub(super) fn duration(input: &str) -> Parsed<'_, Duration> {
    let (rest, token) = word(input).map_err(|error| match error {
        nom::Err::Error(_) => failure(input, "expected a duration such as 500ms, 2s, 1.5s or 1m"),
        other => other,
    })?;
    match crate::clock::parse_duration(token) {
        Ok(duration) => Ok((rest, duration)),
        Err(message) => Err(failure(input, message)),
    }
}

/// `key = text ;` (not empty, at most `MAX_KEY_LEN` bytes)
pub(super) fn key(input: &str) -> Parsed<'_, String> {
    let (rest, key) = context("expected a key", text)
        .parse(input)
        .map_err(|error| at_comment(input, error))?;
    match types::check_key(&key) {
        Ok(()) => Ok((rest, key)),
        Err(error) => Err(failure(input, error.to_string())),
    }
}

/// `value = text ;` (at most `MAX_VALUE_LEN` bytes)
pub(super) fn value(input: &str) -> Parsed<'_, String> {
    let (rest, value) = context("expected a value after the key", text)
        .parse(input)
        .map_err(|error| at_comment(input, error))?;
    match types::check_value(&value) {
        Ok(()) => Ok((rest, value)),
        Err(error) => Err(failure(input, error.to_string())),
    }
}

/// A key or value was expected where a comment starts (`PUT w --`): say that it is one.
fn at_comment<'a>(input: &'a str, error: nom::Err<Mistake<'a>>) -> nom::Err<Mistake<'a>> {
    let marker = ["--", "#"].into_iter().find(|m| input.starts_with(m));
    match (error, marker) {
        (nom::Err::Error(mistake), Some(marker)) => {
            let message = mistake.message.unwrap_or_default();
            let hint = format!(
                "{marker} starts a comment, which runs to the end of the line; \
                 to use it as text, quote it: \"{marker}\""
            );
            failure_with_hint(input, message, hint)
        }
        (error, _) => error,
    }
}

/// `key_prefix = text ;`
pub(super) fn key_prefix(input: &str) -> Parsed<'_, String> {
    text(input)
}

/// `path = text ;`
pub(super) fn path(input: &str) -> Parsed<'_, String> {
    context("expected a file path (quote it if it holds spaces)", text).parse(input)
}

/// `session_name = word ;` (letters, digits, `_` and `-` only)
pub(super) fn session_name(input: &str) -> Parsed<'_, String> {
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
pub(super) fn setting_name(input: &str) -> Parsed<'_, String> {
    context("expected a setting name; type HELP SET for the list", word)
        .map(String::from)
        .parse(input)
}

/// `setting_value = text ;`
pub(super) fn setting_value(input: &str) -> Parsed<'_, String> {
    let expected = "expected a value for the setting, as in: SET vote_timeout 2s";
    context(expected, text).parse(input)
}

/// `topic = text ;`
pub(super) fn topic(input: &str) -> Parsed<'_, String> {
    text(input)
}

/// `tid = bare_word , separation ;` (`T` and a number, in any case: `T4`, `t4`)
pub(super) fn tid(input: &str) -> Parsed<'_, TxnId> {
    let (rest, name) = word(input)?;
    let number = name.strip_prefix(['T', 't']).filter(|n| !n.is_empty());
    match number.map(|n| (n.chars().all(|c| c.is_ascii_digit()), n.parse())) {
        Some((true, Ok(number))) if number > 0 => Ok((rest, TxnId(number))),
        Some((true, _)) => Err(failure(input, format!("there is no transaction {name}"))),
        _ => Err(super::no_match(input)),
    }
}

/// `lesson_name = text ;`
pub(super) fn lesson_name(input: &str) -> Parsed<'_, String> {
    text(input)
}
