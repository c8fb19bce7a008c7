//! The commands: one function per command rule, each reading its keyword and then
//! committing (`cut`) to its arguments.

use super::arguments::{
    count, crash_point, duration, key, key_prefix, lesson_name, node, path, resolution,
    session_name, setting_name, setting_value, step_number, tid, topic, txn_id, value,
};
use super::statements::{comment, end_of_line, statement};
use super::tokens::{bare_word, integer, is_name_char, keyword, ws};
use super::{Parsed, failure, failure_with_hint, no_match, shown, token_at};
use crate::keyrange::KeyRange;
use crate::shell::command::{Command, Delivery, DiagramForm, ExploreBound, ExploreWhat, Text};
use nom::Parser;
use nom::branch::alt;
use nom::character::complete::char;
use nom::combinator::{cut, opt};
use nom::error::context;
use nom::multi::many0;
use nom::sequence::preceded;

/// `command = transaction_command | cluster_command | inspect_command | shell_command | unknown_command ;`
pub(super) fn command(input: &str) -> Parsed<'_, Command> {
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
pub(super) fn unknown_command(input: &str) -> Parsed<'_, Command> {
    let Some(token) = token_at(input) else {
        return Err(no_match(input));
    };
    if input.starts_with(';') || comment(input).is_ok() {
        return Err(no_match(input));
    }
    let run = &input[..input.find([' ', '\t', ';']).unwrap_or(input.len())];
    if run.starts_with(['\\', '.']) && run.len() > 1 {
        let message = format!("unknown command '{}'", shown(run));
        return Err(failure_with_hint(input, message, meta_hint(run)));
    }
    let message = if bare_word(input).is_ok() {
        format!("unknown command '{token}'; type HELP for the list")
    } else {
        format!("expected a command, not '{token}'; type HELP for the list")
    };
    match missing_space(&token, input) {
        Some(hint) => Err(failure_with_hint(input, message, hint)),
        None => Err(failure(input, message)),
    }
}

/// The hint for a `\x` or `.x` command of psql or sqlite3 that kv2pc does not have.
fn meta_hint(run: &str) -> String {
    let lower = run.to_ascii_lowercase();
    if ["\\d", "\\dt", "\\l", ".tables", ".keys", ".dump"].contains(&lower.as_str()) {
        return "kv2pc's commands are words, without \\ or .: KEYS lists the keys".into();
    }
    "kv2pc's commands are words, without \\ or .: type HELP for the list, \
     or QUIT (or \\q, or Ctrl-D) to leave"
        .into()
}

/// `bob:GET x` is the word `bob:GET`: if it reads as a session name, a colon and a
/// command, the hint says to put a space after the colon.
fn missing_space(token: &str, input: &str) -> Option<String> {
    let (session, after) = token.split_once(':')?;
    if session.is_empty() || after.is_empty() || !session.chars().all(is_name_char) {
        return None;
    }
    let rest = &input[session.len() + 1..];
    let statement = rest.split(';').next().unwrap_or(rest).trim_end();
    command(rest).ok()?;
    Some(format!(
        "to run {} in session {session}, put a space after the colon: {session}: {}",
        after.to_ascii_uppercase(),
        shown(statement)
    ))
}

/// `transaction_command = begin | get | scan | put | del | commit | abort ;`
pub(super) fn transaction_command(input: &str) -> Parsed<'_, Command> {
    alt((begin, get, scan, put, del, commit, abort)).parse(input)
}

/// `begin = "BEGIN" , [ read_only ] ;`
pub(super) fn begin(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("BEGIN"), opt(read_only))
        .map(|read_only| Command::Begin {
            read_only: read_only.is_some(),
        })
        .parse(input)
}

/// `read_only = "READ" , "ONLY" ;`
pub(super) fn read_only(input: &str) -> Parsed<'_, ()> {
    let only = context("expected ONLY after READ", keyword("ONLY"));
    preceded(keyword("READ"), cut(only)).parse(input)
}

/// `get = "GET" , key , [ for_update ] ;`
pub(super) fn get(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("GET"), cut((key, opt(for_update))))
        .map(|(key, for_update)| Command::Get {
            key,
            for_update: for_update.is_some(),
        })
        .parse(input)
}

/// `for_update = "FOR" , "UPDATE" ;`
pub(super) fn for_update(input: &str) -> Parsed<'_, ()> {
    let update = context(
        "expected UPDATE after FOR, as in: GET x FOR UPDATE",
        keyword("UPDATE"),
    );
    preceded(keyword("FOR"), cut(update)).parse(input)
}

/// `scan = "SCAN" , ( scan_prefix | scan_between ) ;`
pub(super) fn scan(input: &str) -> Parsed<'_, Command> {
    let range = context(
        "expected PREFIX or FROM after SCAN, as in: SCAN PREFIX acct/ or SCAN FROM k1 TO k5",
        alt((scan_prefix, scan_between)),
    );
    preceded(keyword("SCAN"), cut(range))
        .map(|range| Command::Scan { range })
        .parse(input)
}

/// `scan_prefix = "PREFIX" , key_prefix ;`
pub(super) fn scan_prefix(input: &str) -> Parsed<'_, KeyRange> {
    let prefix = context(
        "expected a key prefix after PREFIX, as in: SCAN PREFIX acct/",
        key_prefix,
    );
    preceded(keyword("PREFIX"), cut(prefix))
        .map(KeyRange::Prefix)
        .parse(input)
}

/// `scan_between = "FROM" , key , "TO" , key ;` (TO included, not before FROM)
pub(super) fn scan_between(input: &str) -> Parsed<'_, KeyRange> {
    let (rest, ()) = keyword("FROM").parse(input)?;
    let to = context(
        "expected TO and the last key after the first one, as in: SCAN FROM k1 TO k5",
        keyword("TO"),
    );
    let (after, (from, to)) = cut((key, preceded(to, key))).parse(rest)?;
    if to < from {
        let message = format!(
            "that range is empty: {} sorts after {} (keys compare byte by byte); \
             write the smaller key first: SCAN FROM {} TO {}",
            shown(&from),
            shown(&to),
            Text(&to),
            Text(&from)
        );
        return Err(failure(rest, message));
    }
    Ok((after, KeyRange::Between { from, to }))
}

/// `put = "PUT" , key , value ;`
pub(super) fn put(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("PUT"), cut((key, value)))
        .map(|(key, value)| Command::Put { key, value })
        .parse(input)
}

/// `del = "DEL" , key ;`
pub(super) fn del(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("DEL"), cut(key))
        .map(|key| Command::Del { key })
        .parse(input)
}

/// `commit = "COMMIT" ;`
pub(super) fn commit(input: &str) -> Parsed<'_, Command> {
    keyword("COMMIT").map(|()| Command::Commit).parse(input)
}

/// `abort = "ABORT" | "ROLLBACK" ;`
pub(super) fn abort(input: &str) -> Parsed<'_, Command> {
    alt((keyword("ABORT"), keyword("ROLLBACK")))
        .map(|()| Command::Abort)
        .parse(input)
}

/// `cluster_command = session | crash | restart | checkpoint | tick | set | resolve | step | deliver | next | drop ;`
pub(super) fn cluster_command(input: &str) -> Parsed<'_, Command> {
    alt((
        session, crash, restart, checkpoint, tick, set, resolve, step, deliver, next, drop,
    ))
    .parse(input)
}

/// `step = "STEP" , ( "ON" | "OFF" ) ;`
pub(super) fn step(input: &str) -> Parsed<'_, Command> {
    let (rest, on) = switch(input, "STEP", "expected ON or OFF after STEP")?;
    Ok((rest, Command::Step { on }))
}

/// `word , ( "ON" | "OFF" )`, read as whether it is on; `expected` is the error after
/// the word.
fn switch<'a>(input: &'a str, word: &'static str, expected: &'static str) -> Parsed<'a, bool> {
    let on_off = alt((keyword("ON").map(|()| true), keyword("OFF").map(|()| false)));
    preceded(keyword(word), cut(context(expected, on_off))).parse(input)
}

/// `deliver = "DELIVER" , ( "ALL" | node | step_number ) ;`
pub(super) fn deliver(input: &str) -> Parsed<'_, Command> {
    let which = alt((
        keyword("ALL").map(|()| Delivery::All),
        node.map(Delivery::Node),
        step_number.map(Delivery::Number),
    ));
    let which = context(
        "expected what to deliver: a number from SHOW QUEUE, node N or ALL, as in: DELIVER 3",
        which,
    );
    preceded(keyword("DELIVER"), cut(which))
        .map(|which| Command::Deliver { which })
        .parse(input)
}

/// `next = "NEXT" ;`
pub(super) fn next(input: &str) -> Parsed<'_, Command> {
    keyword("NEXT")
        .map(|()| Command::Deliver {
            which: Delivery::Next,
        })
        .parse(input)
}

/// `drop = "DROP" , step_number ;`
pub(super) fn drop(input: &str) -> Parsed<'_, Command> {
    let number = context(
        "expected the number of a held message, from SHOW QUEUE, as in: DROP 3",
        step_number,
    );
    preceded(keyword("DROP"), cut(number))
        .map(|number| Command::Drop { number })
        .parse(input)
}

/// `session = "SESSION" , session_name , [ "ON" , node ] ;`
pub(super) fn session(input: &str) -> Parsed<'_, Command> {
    let on_node = preceded(keyword("ON"), cut(node));
    preceded(keyword("SESSION"), cut((session_name, opt(on_node))))
        .map(|(name, node)| Command::Session { name, node })
        .parse(input)
}

/// `crash = "CRASH" , node , [ "AT" , crash_point ] ;`
pub(super) fn crash(input: &str) -> Parsed<'_, Command> {
    let at_point = preceded(keyword("AT"), cut(crash_point));
    preceded(keyword("CRASH"), cut((node, opt(at_point))))
        .map(|(node, at)| Command::Crash { node, at })
        .parse(input)
}

/// `restart = "RESTART" , node ;`
pub(super) fn restart(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("RESTART"), cut(node))
        .map(|node| Command::Restart { node })
        .parse(input)
}

/// `resolve = "RESOLVE" , txn_id , resolution , "ON" , node ;`
pub(super) fn resolve(input: &str) -> Parsed<'_, Command> {
    let on_node = preceded(keyword("ON"), cut(node));
    let on_node = context(
        "expected ON and the node, as in: RESOLVE T4 COMMIT ON node 2",
        on_node,
    );
    preceded(keyword("RESOLVE"), cut((txn_id, resolution, on_node)))
        .map(|(tid, commit, node)| Command::Resolve { tid, commit, node })
        .parse(input)
}

/// `checkpoint = "CHECKPOINT" , node ;`
pub(super) fn checkpoint(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("CHECKPOINT"), cut(node))
        .map(|node| Command::Checkpoint { node })
        .parse(input)
}

/// `tick = "TICK" , duration ;`
pub(super) fn tick(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("TICK"), cut(duration))
        .map(|duration| Command::Tick { duration })
        .parse(input)
}

/// `set = "SET" , [ setting_name , [ "=" | "TO" ] , setting_value ] ;` (`SET` alone is
/// `SHOW SETTINGS`, which prints `name = value`, so that form is read back, as is
/// PostgreSQL's `SET name TO value`)
pub(super) fn set(input: &str) -> Parsed<'_, Command> {
    let (rest, ()) = keyword("SET").parse(input)?;
    if rest.starts_with(';') || end_of_line(rest).is_ok() {
        return Ok((rest, Command::ShowSettings));
    }
    let (rest, name) = cut(setting_name).parse(rest)?;
    let rest = match rest.strip_prefix('=') {
        Some(after) => after.trim_start_matches([' ', '\t']),
        None => keyword("TO").parse(rest).map_or(rest, |(after, ())| after),
    };
    let (rest, value) = cut(setting_value).parse(rest)?;
    Ok((rest, Command::Set { name, value }))
}

/// `inspect_command = status | show | where | keys | trace | diagram | check ;`
pub(super) fn inspect_command(input: &str) -> Parsed<'_, Command> {
    alt((status, show, r#where, keys, trace, diagram, check)).parse(input)
}

/// `check = "CHECK" ;`
pub(super) fn check(input: &str) -> Parsed<'_, Command> {
    keyword("CHECK").map(|()| Command::Check).parse(input)
}

/// `keys = "KEYS" , [ key_prefix ] ;`
pub(super) fn keys(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("KEYS"), opt(key_prefix))
        .map(|prefix| Command::Keys { prefix })
        .parse(input)
}

/// `status = "STATUS" ;`
pub(super) fn status(input: &str) -> Parsed<'_, Command> {
    keyword("STATUS").map(|()| Command::Status).parse(input)
}

/// `show = "SHOW" , ( show_locks | show_waits | show_log | show_settings | show_queue ) ;`
pub(super) fn show(input: &str) -> Parsed<'_, Command> {
    let what = context(
        "expected LOCKS, WAITS, LOG, SETTINGS or QUEUE after SHOW",
        alt((show_locks, show_waits, show_log, show_settings, show_queue)),
    );
    preceded(keyword("SHOW"), cut(what)).parse(input)
}

/// `show_settings = "SETTINGS" ;`
pub(super) fn show_settings(input: &str) -> Parsed<'_, Command> {
    keyword("SETTINGS")
        .map(|()| Command::ShowSettings)
        .parse(input)
}

/// `show_queue = "QUEUE" ;`
pub(super) fn show_queue(input: &str) -> Parsed<'_, Command> {
    keyword("QUEUE").map(|()| Command::ShowQueue).parse(input)
}

/// `show_locks = "LOCKS" ;`
pub(super) fn show_locks(input: &str) -> Parsed<'_, Command> {
    keyword("LOCKS").map(|()| Command::ShowLocks).parse(input)
}

/// `show_waits = "WAITS" ;`
pub(super) fn show_waits(input: &str) -> Parsed<'_, Command> {
    keyword("WAITS").map(|()| Command::ShowWaits).parse(input)
}

/// `show_log = "LOG" , node , [ "LAST" , count ] ;`
pub(super) fn show_log(input: &str) -> Parsed<'_, Command> {
    let last = preceded(keyword("LAST"), cut(count));
    preceded(keyword("LOG"), cut((node, opt(last))))
        .map(|(node, last)| Command::ShowLog { node, last })
        .parse(input)
}

/// `where = "WHERE" , key ;`
pub(super) fn r#where(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("WHERE"), cut(key))
        .map(|key| Command::Where { key })
        .parse(input)
}

/// `trace = "TRACE" , ( "ON" | "OFF" ) ;`
pub(super) fn trace(input: &str) -> Parsed<'_, Command> {
    let (rest, on) = switch(input, "TRACE", "expected ON or OFF after TRACE")?;
    Ok((rest, Command::Trace { on }))
}

/// `shell_command = source | help | timing | quit | meta_command | lesson | explore ;`
pub(super) fn shell_command(input: &str) -> Parsed<'_, Command> {
    alt((source, help, timing, quit, meta_command, lesson, explore)).parse(input)
}

/// `source = "SOURCE" , path ;`
pub(super) fn source(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("SOURCE"), cut(path))
        .map(|path| Command::Source { path })
        .parse(input)
}

/// `help = "HELP" , [ topic ] ;`
pub(super) fn help(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("HELP"), opt(topic))
        .map(|topic| Command::Help { topic })
        .parse(input)
}

/// `timing = "TIMING" , ( "ON" | "OFF" ) ;`
pub(super) fn timing(input: &str) -> Parsed<'_, Command> {
    let (rest, on) = switch(input, "TIMING", "expected ON or OFF after TIMING")?;
    Ok((rest, Command::Timing { on }))
}

/// `quit = "QUIT" | "EXIT" ;`
pub(super) fn quit(input: &str) -> Parsed<'_, Command> {
    alt((keyword("QUIT"), keyword("EXIT")))
        .map(|()| Command::Quit)
        .parse(input)
}

/// `meta_command = ( "\q" | "\quit" | ".quit" | ".exit" | "\?" | "\h" | ".help" ) , ws ;`
///
/// What users of psql and sqlite3 type to leave or to ask for help, in any case: read
/// as `QUIT` and `HELP`, since a student who wants to leave should not be kept in.
/// Other `\x` and `.x` commands are `unknown_command`'s, with a hint.
pub(super) fn meta_command(input: &str) -> Parsed<'_, Command> {
    let end = input.find([' ', '\t', ';']).unwrap_or(input.len());
    let command = match input[..end].to_ascii_lowercase().as_str() {
        "\\q" | "\\quit" | ".quit" | ".exit" => Command::Quit,
        "\\?" | "\\h" | ".help" => Command::Help { topic: None },
        _ => return Err(no_match(input)),
    };
    ws.map(|_| command.clone()).parse(&input[end..])
}

/// `diagram = "DIAGRAM" , [ tid ] , [ diagram_form ] ;`
pub(super) fn diagram(input: &str) -> Parsed<'_, Command> {
    let (rest, (tid, form)) =
        preceded(keyword("DIAGRAM"), (opt(tid), opt(diagram_form))).parse(input)?;
    if !rest.starts_with(';') && end_of_line(rest).is_err() {
        let message = match (tid, &form) {
            (_, Some(_)) => "expected the end of the command after the form of the chart",
            (Some(_), None) => "expected ASCII, UNICODE or TO \"file.svg\" after the transaction",
            (None, None) => {
                "expected a transaction such as T4, ASCII, UNICODE or TO \"file.svg\" after DIAGRAM"
            }
        };
        return Err(failure(rest, message));
    }
    let form = form.unwrap_or(DiagramForm::Auto);
    Ok((rest, Command::Diagram { tid, form }))
}

/// `diagram_form = "ASCII" | "UNICODE" | "TO" , path ;`
pub(super) fn diagram_form(input: &str) -> Parsed<'_, DiagramForm> {
    let to = preceded(keyword("TO"), cut(path)).map(DiagramForm::Svg);
    let mut form = alt((
        keyword("ASCII").map(|()| DiagramForm::Ascii),
        keyword("UNICODE").map(|()| DiagramForm::Unicode),
        to,
    ));
    form.parse(input)
}

/// `lesson = "LESSON" , [ lesson_name ] ;`
pub(super) fn lesson(input: &str) -> Parsed<'_, Command> {
    preceded(keyword("LESSON"), opt(lesson_name))
        .map(|name| Command::Lesson { name })
        .parse(input)
}

/// `explore = "EXPLORE" , { explore_bound } , ( "FILE" , path | statement , { ";" , ws , statement } ) ;`
///
/// The statements run to the end of the line, `;` and all: they are what EXPLORE
/// explores, not commands of the line.
pub(super) fn explore(input: &str) -> Parsed<'_, Command> {
    let (rest, ()) = keyword("EXPLORE").parse(input)?;
    let (mut rest, bounds) = many0(explore_bound).parse(rest)?;
    if let Ok((after, path)) = preceded(keyword("FILE"), cut(path)).parse(rest) {
        let what = ExploreWhat::File(path);
        return Ok((after, Command::Explore { bounds, what }));
    }
    let expected = "expected the transactions to explore after EXPLORE, such as \
                    EXPLORE BEGIN; PUT x 1; PUT y 2; COMMIT (or FILE \"script.kv\")";
    let mut statements = Vec::new();
    loop {
        let (after, command) = statement(rest).map_err(|error| match error {
            nom::Err::Error(_) => failure(rest, expected),
            other => other,
        })?;
        statements.push(command);
        match (char(';'), ws).parse(after) {
            Ok((next, _)) if token_at(next).is_some() && comment(next).is_err() => rest = next,
            Ok((next, _)) => return Ok((next, explored(bounds, statements))),
            Err(_) => return Ok((after, explored(bounds, statements))),
        }
    }
}

fn explored(bounds: Vec<ExploreBound>, statements: Vec<Command>) -> Command {
    Command::Explore {
        bounds,
        what: ExploreWhat::Statements(statements),
    }
}

/// `explore_bound = ( "DEPTH" | "CRASHES" | "TICKS" ) , integer | "TIME" , duration ;`
pub(super) fn explore_bound(input: &str) -> Parsed<'_, ExploreBound> {
    let number = |word: &'static str| {
        let message = match word {
            "DEPTH" => "expected the most moves in one run after DEPTH, such as DEPTH 40",
            "CRASHES" => "expected the most crashes in one run after CRASHES, such as CRASHES 1",
            _ => "expected the most ticks in one run after TICKS, such as TICKS 2",
        };
        preceded(keyword(word), cut(context(message, integer)))
    };
    let time = "expected a time after TIME, such as TIME 10s";
    alt((
        number("DEPTH").map(|n| ExploreBound::Depth(n as usize)),
        number("CRASHES").map(|n| ExploreBound::Crashes(n as usize)),
        number("TICKS").map(|n| ExploreBound::Ticks(n as usize)),
        preceded(keyword("TIME"), cut(context(time, duration))).map(ExploreBound::Time),
    ))
    .parse(input)
}
