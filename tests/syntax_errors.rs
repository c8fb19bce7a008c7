//! Errors a student understands: a line that does not parse is a "syntax error", shown
//! with the line, a caret and what was expected, and a hint where the message alone
//! would leave one guessing (characters that need quotes, a `'` inside a word, a `--`
//! comment where a value was meant, a missing space after a session prefix, psql's and
//! sqlite3's own commands). Also what is accepted so that no hint is needed: single
//! quotes, decimal durations, `\q`, `.quit`, `exit`.

use kv2pc::shell::{Command, Shell, parse_line};
use kv2pc::{Cluster, Config};
use std::time::Duration;

/// The message and hint of a line that must not parse, with its column.
fn mistake(line: &str) -> (usize, String, Option<String>) {
    let error = parse_line(line).expect_err(line);
    (error.column, error.message, error.hint)
}

/// The one command of a line that must parse.
fn one(line: &str) -> Command {
    match parse_line(line)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .as_slice()
    {
        [command] => command.clone(),
        other => panic!("{line:?} gave {other:?}"),
    }
}

fn put(key: &str, value: &str) -> Command {
    Command::Put {
        key: key.into(),
        value: value.into(),
    }
}

#[test]
fn a_syntax_error_says_so_with_the_line_a_caret_and_a_hint() {
    let line = "PUT x @home";
    let report = parse_line(line).unwrap_err().report(line);
    assert_eq!(
        report,
        "syntax error: '@' cannot be part of a bare word (letters, digits and _ - . / : only)\n\
         PUT x @home\n      ^\nhint: put it in double quotes: \"@home\""
    );
    // Without a hint, three lines.
    let line = "CRASH node two";
    let report = parse_line(line).unwrap_err().report(line);
    assert_eq!(
        report,
        "syntax error: expected a node number\nCRASH node two\n           ^"
    );
}

#[test]
fn the_shell_prints_syntax_error_never_could_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.path(), config).unwrap());
    let text = shell.execute("GETT x").render(false);
    assert_eq!(
        text,
        "error: syntax error: unknown command 'GETT'; type HELP for the list\nGETT x\n^\n"
    );
}

#[test]
fn characters_that_need_quotes_are_named_with_the_text_quoted() {
    let hint = |quoted: &str| Some(format!("put it in double quotes: {quoted}"));
    let bare = "cannot be part of a bare word (letters, digits and _ - . / : only)";
    assert_eq!(
        mistake("PUT x @home"),
        (7, format!("'@' {bare}"), hint("\"@home\""))
    );
    // In the middle of a word the whole word is quoted, not what follows the character.
    assert_eq!(
        mistake("PUT a=b 1"),
        (6, format!("'=' {bare}"), hint("\"a=b\""))
    );
    assert_eq!(
        mistake("PUT x don't"),
        (
            10,
            "a ' inside a word would start a quoted string: don't".into(),
            hint("\"don't\"")
        )
    );
    // A " right after a word still asks for the space that was probably meant.
    assert_eq!(mistake("PUT x\"y\" 1").1, "put a space before '\"'");
}

#[test]
fn single_quotes_quote_and_every_character_inside_is_itself() {
    assert_eq!(one("PUT x 'single'"), put("x", "single"));
    assert_eq!(one("PUT 'two words' 'a\\n;b'"), put("two words", "a\\n;b"));
    assert_eq!(one("PUT x '\"hi\"'"), put("x", "\"hi\""));
    assert_eq!(one("PUT x ''"), put("x", ""));
    let (column, message, hint) = mistake("PUT x 'open");
    assert_eq!(
        (column, message.as_str()),
        (7, "unterminated string: add a closing '")
    );
    assert!(hint.unwrap().contains("double quotes"));
    assert_eq!(mistake("PUT x 'a'b").1, "put a space before 'b'");
    // What was read in single quotes prints in double quotes, and reads back the same.
    let printed = one("PUT x 'it \"is\"'").to_string();
    assert_eq!(printed, "PUT x \"it \\\"is\\\"\"");
    assert_eq!(one(&printed), put("x", "it \"is\""));
}

#[test]
fn a_dash_dash_comment_is_a_comment_where_a_word_would_begin() {
    let (column, message, hint) = mistake("PUT w --");
    assert_eq!(
        (column, message.as_str()),
        (7, "expected a value after the key")
    );
    assert_eq!(
        hint.as_deref(),
        Some(
            "-- starts a comment, which runs to the end of the line; to use it as text, quote it: \"--\""
        )
    );
    assert!(
        mistake("GET # x")
            .2
            .unwrap()
            .starts_with("# starts a comment")
    );
    assert_eq!(one("PUT w 1 -- note"), put("w", "1"));
    assert_eq!(one("PUT w a--b"), put("w", "a--b"));
    assert_eq!(one("PUT w \"--\""), put("w", "--"));
    assert_eq!(one("PUT w -1"), put("w", "-1"));
    // A value beginning with -- prints quoted, so that it reads back.
    assert_eq!(put("w", "--").to_string(), "PUT w \"--\"");
}

#[test]
fn a_session_prefix_without_its_space_gets_a_hint() {
    let (column, message, hint) = mistake("bob:GET x");
    assert_eq!(
        (column, message.as_str()),
        (1, "unknown command 'bob:GET'; type HELP for the list")
    );
    assert_eq!(
        hint.as_deref(),
        Some("to run GET in session bob, put a space after the colon: bob: GET x")
    );
    assert_eq!(
        mistake("alice:put k 1; COMMIT").2.as_deref(),
        Some("to run PUT in session alice, put a space after the colon: alice: put k 1")
    );
    // Not a command after the colon: no hint.
    assert_eq!(mistake("bob:nothing").2, None);
}

#[test]
fn psql_and_sqlite3_commands_are_understood_or_answered() {
    for quit in [
        "\\q", "\\quit", ".quit", ".exit", ".QUIT", "exit", "EXIT", "quit",
    ] {
        assert_eq!(one(quit), Command::Quit, "{quit}");
    }
    for help in ["\\?", "\\h", ".help"] {
        assert_eq!(one(help), Command::Help { topic: None }, "{help}");
    }
    assert_eq!(one("\\q -- bye"), Command::Quit);
    let (_, message, hint) = mistake(".tables");
    assert_eq!(message, "unknown command '.tables'");
    assert!(hint.unwrap().ends_with("KEYS lists the keys"));
    let (_, message, hint) = mistake("\\timing");
    assert_eq!(message, "unknown command '\\timing'");
    assert!(hint.unwrap().contains("QUIT (or \\q, or Ctrl-D) to leave"));
}

#[test]
fn durations_take_decimals() {
    assert_eq!(
        one("TICK 1.5s"),
        Command::Tick {
            duration: Duration::from_millis(1500)
        }
    );
    assert_eq!(
        one("TICK 0.25m"),
        Command::Tick {
            duration: Duration::from_secs(15)
        }
    );
}

#[test]
fn the_new_commands_and_their_mistakes() {
    assert_eq!(one("KEYS"), Command::Keys { prefix: None });
    assert_eq!(
        one("keys 'acc'"),
        Command::Keys {
            prefix: Some("acc".into())
        }
    );
    assert_eq!(one("SET"), Command::ShowSettings);
    assert_eq!(one("SET ; "), Command::ShowSettings);
    assert_eq!(one("show settings"), Command::ShowSettings);
    assert_eq!(one("show waits"), Command::ShowWaits);
    assert_eq!(
        mistake("SHOW WAIT").1,
        "expected LOCKS, WAITS, LOG, SETTINGS or QUEUE after SHOW"
    );
    assert_eq!(
        mistake("SHOW WAITS x").1,
        "unexpected 'x' after the command"
    );
    assert_eq!(
        mistake("SHOW SETTING").1,
        "expected LOCKS, WAITS, LOG, SETTINGS or QUEUE after SHOW"
    );
    assert_eq!(mistake("KEYS a b").1, "unexpected 'b' after the command");
    assert_eq!(
        mistake("SET deadlock").1,
        "expected a value for the setting, as in: SET vote_timeout 2s"
    );
}

#[test]
fn set_reads_the_form_show_settings_prints_and_postgresqls_to() {
    let set = |value: &str| Command::Set {
        name: "vote_timeout".into(),
        value: value.into(),
    };
    assert_eq!(one("SET vote_timeout 2s"), set("2s"));
    assert_eq!(one("SET vote_timeout = 2s"), set("2s"));
    assert_eq!(one("set vote_timeout to 2s"), set("2s"));
    assert_eq!(
        mistake("SET vote_timeout =").1,
        "expected a value for the setting, as in: SET vote_timeout 2s"
    );
    // Every line SHOW SETTINGS prints is a SET that reads back.
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.path(), config).unwrap());
    let listed = shell.execute("SHOW SETTINGS").render(false);
    for line in listed.lines() {
        let again = shell.execute(&format!("SET {line}")).render(false);
        assert_eq!(again.trim_end(), line, "SET {line}");
    }
}

#[test]
fn step_mode_commands_and_their_mistakes() {
    use kv2pc::shell::command::Delivery;
    let deliver = |which| Command::Deliver { which };
    assert_eq!(one("step on"), Command::Step { on: true });
    assert_eq!(one("STEP OFF"), Command::Step { on: false });
    assert_eq!(one("show queue"), Command::ShowQueue);
    assert_eq!(one("DELIVER 3"), deliver(Delivery::Number(3)));
    assert_eq!(one("deliver node 2"), deliver(Delivery::Node(2)));
    assert_eq!(one("DELIVER all"), deliver(Delivery::All));
    assert_eq!(one("next"), deliver(Delivery::Next));
    assert_eq!(one("DROP 7"), Command::Drop { number: 7 });
    for (line, at, message) in [
        ("STEP", 5, "expected ON or OFF after STEP"),
        ("STEP MAYBE", 6, "expected ON or OFF after STEP"),
        (
            "DELIVER",
            8,
            "expected what to deliver: a number from SHOW QUEUE, node N or ALL, as in: DELIVER 3",
        ),
        ("DELIVER node x", 14, "expected a node number"),
        (
            "DROP x",
            6,
            "expected the number of a held message, from SHOW QUEUE, as in: DROP 3",
        ),
        ("NEXT 3", 6, "unexpected '3' after the command"),
    ] {
        let (column, said, _) = mistake(line);
        assert_eq!((column, said.as_str()), (at, message), "for {line:?}");
    }
}

#[test]
fn check_and_its_mistakes() {
    assert_eq!(one("CHECK"), Command::Check);
    assert_eq!(one("check"), Command::Check);
    // CHECK is no prefix of CHECKPOINT, nor CHECKPOINT of CHECK.
    assert_eq!(one("CHECKPOINT node 1"), Command::Checkpoint { node: 1 });
    for (line, at, message) in [
        ("CHECK x", 7, "unexpected 'x' after the command"),
        ("CHECK node 1", 7, "unexpected 'node' after the command"),
    ] {
        let (column, said, _) = mistake(line);
        assert_eq!((column, said.as_str()), (at, message), "for {line:?}");
    }
    assert!(parse_line("CHECKS").is_err());
}

#[test]
fn scan_says_which_range_forms_it_takes_and_refuses_an_empty_one() {
    let (column, message, _) = mistake("SCAN acct/");
    assert_eq!(column, 6);
    assert_eq!(
        message,
        "expected PREFIX or FROM after SCAN, as in: SCAN PREFIX acct/ or SCAN FROM k1 TO k5"
    );
    let (column, message, _) = mistake("SCAN FROM k1 k5");
    assert_eq!(column, 14);
    assert!(message.starts_with("expected TO"), "{message}");
    let (_, message, _) = mistake("SCAN FROM k5 TO k1");
    assert_eq!(
        message,
        "that range is empty: k5 sorts after k1 (keys compare byte by byte); write the \
         smaller key first: SCAN FROM k1 TO k5"
    );
    let (_, message, _) = mistake("SCAN PREFIX");
    assert!(message.starts_with("expected a key prefix"), "{message}");
    // Both ends may be one key, and a quoted prefix may be empty: every key.
    assert_eq!(one("scan from k1 to k1").to_string(), "SCAN FROM k1 TO k1");
    assert_eq!(one("SCAN PREFIX \"\"").to_string(), "SCAN PREFIX \"\"");
}
