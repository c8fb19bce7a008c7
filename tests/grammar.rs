//! The shell's command language against its specification: the grammar in
//! `grammar/kv2pc.ebnf` (every rule has its parser function, every example parses), the
//! help in `grammar/help.md` (every example parses and prints back to itself), the error
//! messages a user sees, and properties over arbitrary input (no panic, columns in range,
//! printing then parsing gives the same command).

use kv2pc::CrashPoint;
use kv2pc::shell::help::{examples, help};
use kv2pc::shell::{Command, parse_command, parse_line};
use kv2pc::types::{MAX_KEY_LEN, MAX_VALUE_LEN};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::Duration;

const GRAMMAR: &str = include_str!("../grammar/kv2pc.ebnf");
/// The parser's source: `src/shell/parser/`, one file per part of the grammar.
const PARSER: &str = concat!(
    include_str!("../src/shell/parser/mod.rs"),
    include_str!("../src/shell/parser/statements.rs"),
    include_str!("../src/shell/parser/commands.rs"),
    include_str!("../src/shell/parser/arguments.rs"),
    include_str!("../src/shell/parser/tokens.rs"),
);

/// Parses a line that must parse, showing the rendered error otherwise.
fn parsed(line: &str) -> Vec<Command> {
    parse_line(line).unwrap_or_else(|error| panic!("{line:?} failed:\n{}", error.render(line)))
}

/// Parses a line holding one command.
fn one(line: &str) -> Command {
    match parsed(line).as_slice() {
        [command] => command.clone(),
        other => panic!("{line:?} gave {other:?}"),
    }
}

/// The column and message of a line that must not parse.
fn error(line: &str) -> (usize, String) {
    let error = parse_line(line).expect_err(line);
    (error.column, error.message)
}

/// Prints each command of `line` and parses it back.
fn assert_round_trip(line: &str) {
    for command in parsed(line) {
        let printed = command.to_string();
        let again = parse_command(&printed).unwrap_or_else(|error| {
            panic!("{printed:?} from {line:?}:\n{}", error.render(&printed))
        });
        assert_eq!(again, command, "{line:?} printed as {printed:?}");
    }
}

/// `GET key`, a plain read.
fn get(key: &str) -> Command {
    Command::Get {
        key: key.into(),
        for_update: false,
    }
}

/// The index of a command's variant: a `match` without a wildcard, so that a new variant
/// does not compile until the coverage test below accounts for it.
fn variant(command: &Command) -> usize {
    match command {
        Command::Begin { .. } => 0,
        Command::Get { .. } => 1,
        Command::Put { .. } => 2,
        Command::Del { .. } => 3,
        Command::Commit => 4,
        Command::Abort => 5,
        Command::Session { .. } => 6,
        Command::In { .. } => 7,
        Command::Crash { .. } => 8,
        Command::Restart { .. } => 9,
        Command::Checkpoint { .. } => 10,
        Command::Status => 11,
        Command::ShowLocks => 12,
        Command::ShowLog { .. } => 13,
        Command::Where { .. } => 14,
        Command::Trace { .. } => 15,
        Command::Tick { .. } => 16,
        Command::Set { .. } => 17,
        Command::Source { .. } => 18,
        Command::Help { .. } => 19,
        Command::Quit => 20,
        Command::Empty => 21,
        Command::Timing { .. } => 22,
        Command::ShowSettings => 23,
        Command::Keys { .. } => 24,
        Command::Diagram { .. } => 25,
        Command::Lesson { .. } => 26,
        Command::Resolve { .. } => 27,
        Command::Step { .. } => 28,
        Command::ShowQueue => 29,
        Command::Deliver { .. } => 30,
        Command::Drop { .. } => 31,
        Command::Check => 32,
        Command::Scan { .. } => 33,
        Command::Explore { .. } => 34,
        Command::ShowWaits => 35,
    }
}
const VARIANTS: usize = 36;

/// The grammar without its comments, one rule per line: `(name, whole rule)`.
fn grammar_rules() -> Vec<(String, String)> {
    let mut text = GRAMMAR.to_string();
    while let Some(start) = text.find("(*") {
        let end = text[start..]
            .find("*)")
            .map_or(text.len(), |end| start + end + 2);
        text.replace_range(start..end, "");
    }
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|rule| {
            assert!(
                rule.ends_with(" ;"),
                "a rule spans lines or lacks its ';': {rule}"
            );
            let (name, _) = rule.split_once(" = ").expect("a rule is 'name = body ;'");
            (name.to_string(), rule.to_string())
        })
        .collect()
}

/// The `Example:` lines of the grammar's comments: those that start with the label.
fn grammar_examples() -> Vec<String> {
    GRAMMAR
        .lines()
        .map(|line| line.trim_start().trim_start_matches("(*").trim_start())
        .filter_map(|line| line.strip_prefix("Example:"))
        .map(|example| example.trim().trim_end_matches("*)").trim().to_string())
        .collect()
}

// ---- The grammar and the help are specifications that hold ----

#[test]
fn every_grammar_rule_has_its_parser_function_quoting_it() {
    let rules = grammar_rules();
    assert!(
        rules.len() > 40,
        "only {} rules read from the grammar",
        rules.len()
    );
    for (name, rule) in &rules {
        let body = rule.split_once(" = ").unwrap().1;
        let is_character_class = body.starts_with('?') && body.matches('?').count() == 2;
        if is_character_class {
            continue;
        }
        assert!(
            PARSER.contains(&format!("/// `{rule}`")),
            "no `///` line quotes: {rule}"
        );
        let function = [
            format!("fn {name}("),
            format!("fn {name}<"),
            format!("fn r#{name}("),
        ];
        assert!(
            function.iter().any(|f| PARSER.contains(f.as_str())),
            "no function for {name}"
        );
    }
}

#[test]
fn the_parser_source_read_here_holds_every_parser_file() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/shell/parser");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(
            PARSER.contains(&source),
            "add {} to PARSER in tests/grammar.rs",
            path.display()
        );
    }
}

#[test]
fn every_quoted_rule_in_the_parser_is_in_the_grammar() {
    let rules: BTreeSet<String> = grammar_rules().into_iter().map(|(_, rule)| rule).collect();
    for line in PARSER.lines().map(str::trim) {
        let Some(quoted) = line
            .strip_prefix("/// `")
            .and_then(|rest| rest.split('`').next())
        else {
            continue;
        };
        if quoted.contains(" = ") && quoted.ends_with(" ;") {
            assert!(
                rules.contains(quoted),
                "the parser quotes a rule the grammar lacks: {quoted}"
            );
        }
    }
}

#[test]
fn every_example_in_the_grammar_parses_and_prints_back() {
    let examples = grammar_examples();
    assert!(
        examples.len() >= 20,
        "only {} examples in the grammar",
        examples.len()
    );
    for example in examples {
        assert_round_trip(&example);
    }
}

#[test]
fn the_crash_point_rule_names_every_crash_point() {
    let rule = grammar_rules()
        .into_iter()
        .find(|(name, _)| name == "crash_point")
        .unwrap()
        .1;
    let quoted: Vec<String> = CrashPoint::ALL
        .iter()
        .map(|p| format!("\"{}\"", p.name()))
        .collect();
    assert_eq!(rule, format!("crash_point = {} ;", quoted.join(" | ")));
}

#[test]
fn every_help_example_parses_and_prints_back() {
    let examples = examples();
    assert!(
        examples.len() >= 40,
        "only {} help examples",
        examples.len()
    );
    for (topic, example) in &examples {
        let commands = parsed(example);
        let only_a_comment = commands == [Command::Empty];
        assert!(
            !only_a_comment || example.starts_with('#'),
            "{topic}: {example:?} is empty"
        );
        assert_round_trip(example);
    }
}

#[test]
fn the_help_examples_show_every_kind_of_command() {
    let shown: BTreeSet<usize> = examples()
        .iter()
        .flat_map(|(_, example)| parsed(example))
        .map(|c| variant(&c))
        .collect();
    let missing: Vec<usize> = (0..VARIANTS).filter(|v| !shown.contains(v)).collect();
    assert!(
        missing.is_empty(),
        "variants without a help example: {missing:?}"
    );
}

#[test]
fn every_command_name_is_a_help_topic() {
    for (_, example) in examples() {
        for command in parsed(&example)
            .into_iter()
            .filter(|c| *c != Command::Empty)
        {
            assert!(
                help(Some(command.name())).is_ok(),
                "no help for {}",
                command.name()
            );
        }
    }
}

#[test]
fn help_crash_explains_every_crash_point() {
    let text = help(Some("crash")).unwrap();
    for point in CrashPoint::ALL {
        assert!(
            text.contains(point.describe()),
            "HELP CRASH lacks: {}",
            point.describe()
        );
        let explained = text
            .lines()
            .filter(|line| line.split_whitespace().next() == Some(point.name()));
        assert_eq!(
            explained.count(),
            2,
            "{} should be listed once and explained once",
            point
        );
    }
}

/// `HELP SET` is generated from the one table of settings: each has its usage line
/// (`name <kind>`; a long choice broken after a `|` onto the next lines) and an example.
#[test]
fn help_set_describes_every_setting_of_the_table() {
    let text = help(Some("SET")).unwrap();
    let joined = text.replace("|\n  ", "|");
    for setting in kv2pc::config::SETTINGS {
        let usage = format!("  {} {} ", setting.name, setting.usage());
        assert!(
            // Beside its description, or on lines of its own above it (broken after a
            // `|` if long).
            (joined.lines()).any(|line| line.starts_with(&usage) || line == usage.trim_end()),
            "HELP SET lacks a line starting {usage:?}:\n{text}"
        );
        let example = format!("Example: SET {} {}", setting.name, setting.example);
        assert!(text.contains(&example), "HELP SET lacks {example:?}");
    }
}

#[test]
fn help_set_names_every_setting_and_its_values() {
    let text = help(Some("SET")).unwrap();
    for word in [
        "vote_timeout <duration>",
        "deadlock detect|wait-die|wound-wait|no-wait|timeout|off",
        "lock_timeout <duration>",
        "checkpoint_bytes <n>",
    ] {
        assert!(text.contains(word), "HELP SET lacks {word}");
    }
}

#[test]
fn help_without_topic_lists_commands_and_topics() {
    let overview = help(None).unwrap();
    for command in [
        "BEGIN", "COMMIT", "CRASH", "RESTART", "TRACE", "SET", "SHOW", "QUIT",
    ] {
        assert!(
            overview
                .lines()
                .any(|l| l.trim_start().starts_with(command)),
            "{command}"
        );
    }
    assert!(overview.contains("sessions") && overview.contains("syntax"));
    let wide = overview.lines().find(|line| line.chars().count() > 80);
    assert_eq!(wide, None, "HELP should fit in 80 columns");
    assert!(help(Some(" Trace ")).unwrap().contains("TRACE ON"));
}

#[test]
fn an_unknown_help_topic_names_the_topics() {
    let error = help(Some("teleport")).unwrap_err();
    assert!(error.starts_with("no help on 'teleport'"), "{error}");
    for topic in ["BEGIN", "CRASH", "SET", "TRACE", "sessions", "syntax"] {
        assert!(error.contains(topic), "{error} lacks {topic}");
    }
}

// ---- What a user sees when a line is wrong ----

#[test]
fn errors_point_at_the_mistake_and_say_what_to_do() {
    let points = "prepare, vote, commit, ack, decide, decision, broadcast, staging, staged";
    let cases: Vec<(&str, usize, String)> = vec![
        ("CRASH node two", 12, "expected a node number".into()),
        ("CRASH node 2x", 12, "expected a node number".into()),
        (
            "CRASH 2",
            7,
            "expected 'node' and a node number, as in: node 1".into(),
        ),
        (
            "CRASH node2",
            7,
            "expected 'node' and a node number, as in: node 1".into(),
        ),
        (
            "CRASH node 2 AT later",
            17,
            format!("expected a crash point ({points})"),
        ),
        (
            "CRASH node 2 AT",
            16,
            format!("expected a crash point ({points})"),
        ),
        ("PUT x", 6, "expected a value after the key".into()),
        ("PUT", 4, "expected a key".into()),
        (
            "BEGINX",
            1,
            "unknown command 'BEGINX'; type HELP for the list".into(),
        ),
        (
            "FOO bar",
            1,
            "unknown command 'FOO'; type HELP for the list".into(),
        ),
        (
            "!",
            1,
            "expected a command, not '!'; type HELP for the list".into(),
        ),
        ("BEGIN x", 7, "unexpected 'x' after the command".into()),
        ("BEGIN READ", 11, "expected ONLY after READ".into()),
        (
            "TICK 5",
            6,
            "a duration needs a unit: write 5ms, 5s or 5m".into(),
        ),
        (
            "TICK soon",
            6,
            "expected a duration such as 500ms, 2s, 1.5s or 1m".into(),
        ),
        (
            "TICK",
            5,
            "expected a duration such as 500ms, 2s, 1.5s or 1m".into(),
        ),
        (
            "TICK 5h",
            6,
            "unknown unit 'h': use ms, s or m, as in 500ms, 2s, 1.5s or 1m".into(),
        ),
        (
            "GET \"abc",
            5,
            "unterminated string: add a closing \"".into(),
        ),
        (
            "GET \"abc\\",
            5,
            "unterminated string: add a closing \"".into(),
        ),
        (
            "GET \"a\\q\"",
            7,
            "unknown escape '\\q': write \\\" \\\\ \\n or \\t".into(),
        ),
        ("GET \"\"", 5, "a key cannot be empty".into()),
        ("PUT x\"y\" 1", 6, "put a space before '\"'".into()),
        (
            "SHOW LOG node 1 LAST x",
            22,
            "expected a number of records after LAST".into(),
        ),
        (
            "SHOW",
            5,
            "expected LOCKS, WAITS, LOG, SETTINGS or QUEUE after SHOW".into(),
        ),
        (
            "SHOW LOGS",
            6,
            "expected LOCKS, WAITS, LOG, SETTINGS or QUEUE after SHOW".into(),
        ),
        ("TRACE maybe", 7, "expected ON or OFF after TRACE".into()),
        (
            "SET \"x\"",
            5,
            "expected a setting name; type HELP SET for the list".into(),
        ),
        (
            "SET deadlock",
            13,
            "expected a value for the setting, as in: SET vote_timeout 2s".into(),
        ),
        (
            "SOURCE",
            7,
            "expected a file path (quote it if it holds spaces)".into(),
        ),
        ("SESSION", 8, "expected a session name".into()),
        (
            "SESSION b.o.b",
            9,
            "'b.o.b' cannot name a session: use letters, digits, _ and -".into(),
        ),
        (
            "a: b: GET x",
            4,
            "sessions do not nest: give a command one 'name:' prefix at most".into(),
        ),
        ("bob:", 5, "expected a command after 'bob:'".into()),
        (
            "bob: # nothing",
            6,
            "expected a command after 'bob:'".into(),
        ),
        (
            "PUT clé valeur extra",
            16,
            "unexpected 'extra' after the command".into(),
        ),
        (
            "BEGIN; COMIT",
            8,
            "unknown command 'COMIT'; type HELP for the list".into(),
        ),
    ];
    for (line, column, message) in cases {
        assert_eq!(error(line), (column, message), "for {line:?}");
    }
}

#[test]
fn node_numbers_stop_below_max_nodes_and_never_overflow() {
    assert_eq!(one("RESTART node 63"), Command::Restart { node: 63 });
    assert_eq!(one("RESTART node 007"), Command::Restart { node: 7 });
    let (column, message) = error("RESTART node 64");
    assert_eq!(column, 14);
    assert!(
        message.starts_with("there is no node 64: a cluster has at most 64 nodes"),
        "{message}"
    );
    let (column, message) = error("RESTART node 99999999999999999999999999");
    assert_eq!(
        (column, message.as_str()),
        (14, "999999999999999999999999... is too large a number")
    );
}

#[test]
fn durations_take_ms_or_s_and_never_overflow() {
    let tick = |line| match one(line) {
        Command::Tick { duration } => duration,
        other => panic!("{other:?}"),
    };
    assert_eq!(tick("TICK 500ms"), Duration::from_millis(500));
    assert_eq!(tick("tick 2S"), Duration::from_secs(2));
    assert_eq!(
        tick("TICK 18446744073709551615s"),
        Duration::from_secs(u64::MAX)
    );
    let (column, message) = error("TICK 18446744073709551616s");
    assert_eq!(
        (column, message.as_str()),
        (6, "18446744073709551616s is too long a duration")
    );
}

#[test]
fn keys_and_values_keep_to_their_size_limits() {
    let key = "k".repeat(MAX_KEY_LEN);
    let value = "v".repeat(MAX_VALUE_LEN);
    assert_eq!(
        one(&format!("PUT {key} {value}")),
        Command::Put { key, value }
    );
    let (column, message) = error(&format!("GET {}", "k".repeat(MAX_KEY_LEN + 1)));
    assert_eq!(
        (column, message.as_str()),
        (5, "a key can be at most 1024 bytes long; this one has 1025")
    );
    let (column, _) = error(&format!("PUT x \"{}\"", "v".repeat(MAX_VALUE_LEN + 1)));
    assert_eq!(column, 7);
}

#[test]
fn an_error_renders_with_a_caret_under_its_column() {
    let line = "CRASH node two";
    let rendered = parse_line(line).unwrap_err().render(line);
    assert_eq!(
        rendered,
        "CRASH node two\n           ^ expected a node number"
    );
    let line = "\tPUT x";
    let rendered = parse_line(line).unwrap_err().render(line);
    assert_eq!(rendered, "\tPUT x\n\t     ^ expected a value after the key");
    let line = "GET \u{1b}[2J";
    let rendered = parse_line(line).unwrap_err().render(line);
    let bare = "cannot be part of a bare word (letters, digits and _ - . / : only)";
    assert_eq!(rendered, format!("GET ?[2J\n    ^ '\\u{{1b}}' {bare}"));
}

#[test]
fn an_error_says_what_it_found() {
    let error = parse_line("TRACE maybe").unwrap_err();
    assert_eq!(error.found.as_deref(), Some("maybe"));
    assert_eq!(parse_line("PUT x").unwrap_err().found, None);
    assert_eq!(
        error.to_string(),
        "column 7: expected ON or OFF after TRACE"
    );
}

// ---- What parses, and into what ----

#[test]
fn keywords_ignore_case_but_keys_do_not() {
    assert_eq!(one("begin READ only"), Command::Begin { read_only: true });
    assert_eq!(
        one("Crash NODE 2 at Prepare"),
        Command::Crash {
            node: 2,
            at: Some(CrashPoint::Prepare)
        }
    );
    assert_eq!(
        one("show log Node 1 Last 5"),
        Command::ShowLog {
            node: 1,
            last: Some(5)
        }
    );
    assert_eq!(one("rollback"), Command::Abort);
    assert_eq!(one("Exit"), Command::Quit);
    assert_eq!(one("get Key"), get("Key"));
}

#[test]
fn every_command_parses_into_its_variant() {
    let cases = [
        ("BEGIN", Command::Begin { read_only: false }),
        ("DEL k", Command::Del { key: "k".into() }),
        ("COMMIT", Command::Commit),
        (
            "SESSION bob",
            Command::Session {
                name: "bob".into(),
                node: None,
            },
        ),
        (
            "SESSION bob ON node 1",
            Command::Session {
                name: "bob".into(),
                node: Some(1),
            },
        ),
        ("CRASH node 2", Command::Crash { node: 2, at: None }),
        ("CHECKPOINT node 0", Command::Checkpoint { node: 0 }),
        ("STATUS", Command::Status),
        ("CHECK", Command::Check),
        ("SHOW LOCKS", Command::ShowLocks),
        ("SHOW WAITS", Command::ShowWaits),
        (
            "SHOW LOG node 3",
            Command::ShowLog {
                node: 3,
                last: None,
            },
        ),
        ("WHERE a/b", Command::Where { key: "a/b".into() }),
        ("SHOW SETTINGS", Command::ShowSettings),
        ("SET", Command::ShowSettings),
        ("KEYS", Command::Keys { prefix: None }),
        (
            "KEYS acc",
            Command::Keys {
                prefix: Some("acc".into()),
            },
        ),
        ("TRACE OFF", Command::Trace { on: false }),
        (
            "SET deadlock detect",
            Command::Set {
                name: "deadlock".into(),
                value: "detect".into(),
            },
        ),
        (
            "SOURCE x.kv",
            Command::Source {
                path: "x.kv".into(),
            },
        ),
        ("HELP", Command::Help { topic: None }),
        (
            "HELP crash",
            Command::Help {
                topic: Some("crash".into()),
            },
        ),
        ("LESSON", Command::Lesson { name: None }),
        (
            "lesson 5b",
            Command::Lesson {
                name: Some("5b".into()),
            },
        ),
    ];
    for (line, command) in cases {
        assert_eq!(one(line), command, "for {line:?}");
    }
}

#[test]
fn get_for_update_is_a_suffix_that_keys_named_for_do_not_confuse() {
    let for_update = |key: &str| Command::Get {
        key: key.into(),
        for_update: true,
    };
    assert_eq!(one("GET x FOR UPDATE"), for_update("x"));
    assert_eq!(one("get x for update"), for_update("x"));
    assert_eq!(one("GET for FOR UPDATE"), for_update("for"));
    assert_eq!(one("GET for"), get("for"));
    assert_eq!(one("GET \"FOR UPDATE\""), get("FOR UPDATE"));
    assert_eq!(for_update("a b").to_string(), "GET \"a b\" FOR UPDATE");
    assert_round_trip("GET x FOR UPDATE; GET \"for\" for update");
    let expected = "expected UPDATE after FOR, as in: GET x FOR UPDATE".to_string();
    assert_eq!(error("GET x FOR"), (10, expected.clone()));
    assert_eq!(error("GET x FOR SHARE"), (11, expected));
    assert_eq!(
        error("GET x FOR UPDATE NOW").1,
        "unexpected 'NOW' after the command"
    );
}

#[test]
fn quoted_strings_hold_escapes_spaces_and_semicolons() {
    let commands = parsed(r#"PUT "a;b" "say \"hi\"\\ \n\t;"; GET "a;b""#);
    let value = "say \"hi\"\\ \n\t;".to_string();
    assert_eq!(
        commands,
        [
            Command::Put {
                key: "a;b".into(),
                value
            },
            get("a;b"),
        ]
    );
    assert_eq!(
        one(r#"PUT x """#),
        Command::Put {
            key: "x".into(),
            value: String::new()
        }
    );
    assert_eq!(one("GET \"日本 語\""), get("日本 語"));
}

#[test]
fn semicolons_separate_commands_and_comments_end_the_line() {
    assert_eq!(
        parsed("BEGIN; PUT x 1 ;COMMIT;"),
        [
            Command::Begin { read_only: false },
            Command::Put {
                key: "x".into(),
                value: "1".into()
            },
            Command::Commit,
        ]
    );
    assert_eq!(parsed(" ; ;"), [Command::Empty]);
    assert_eq!(parsed(""), [Command::Empty]);
    assert_eq!(parsed("  -- just a comment"), [Command::Empty]);
    assert_eq!(
        parsed("BEGIN # COMMIT; ABORT"),
        [Command::Begin { read_only: false }]
    );
    // `--` starts a comment where a word would start, as `HELP syntax` says; inside a
    // word it is text, and quoted it is text anywhere.
    assert_eq!(error("PUT x --5").1, "expected a value after the key");
    assert_eq!(
        parsed("PUT x a--5 -- a comment"),
        [Command::Put {
            key: "x".into(),
            value: "a--5".into()
        }]
    );
    assert_eq!(
        parsed("PUT x \"--5\""),
        [Command::Put {
            key: "x".into(),
            value: "--5".into()
        }]
    );
    assert_eq!(
        parse_command("COMMIT; ABORT").unwrap_err().message,
        "unexpected ';' after the command"
    );
    assert_eq!(parse_command("  # nothing").unwrap(), Command::Empty);
}

#[test]
fn a_session_prefix_runs_one_command_elsewhere() {
    let in_bob = |command| Command::In {
        session: "bob".into(),
        command: Box::new(command),
    };
    assert_eq!(
        one("bob: PUT x 1"),
        in_bob(Command::Put {
            key: "x".into(),
            value: "1".into()
        })
    );
    assert_eq!(one("bob:\tCOMMIT"), in_bob(Command::Commit));
    assert_eq!(parsed("bob: BEGIN; alice-2: GET x").len(), 2);
    assert_eq!(one("GET bob:"), get("bob:"));
    assert_eq!(
        error("bob:PUT x 1").1,
        "unknown command 'bob:PUT'; type HELP for the list"
    );
    assert_eq!(
        "bob: ABORT".parse::<Command>().unwrap(),
        in_bob(Command::Abort)
    );
}

#[test]
fn a_kelvin_sign_is_not_a_k_and_does_not_panic() {
    // nom's `tag_no_case` folds U+212A to 'k' and then slices inside it: not used.
    assert_eq!(error("SHOW LOC\u{212A}S").0, 6);
    assert_eq!(error("CHEC\u{212A}POINT node 1").0, 1);
}

#[test]
fn bare_words_take_letters_digits_and_some_punctuation() {
    let key = "user/42:name.first-name_x";
    assert_eq!(one(&format!("GET {key}")), get(key));
    assert_eq!(one("GET café"), get("café"));
}

// ---- Properties ----

/// A token of the command language or something close to it, to reach deep rules.
fn token() -> impl Strategy<Value = String> {
    const WORDS: &[&str] = &[
        "BEGIN",
        "read",
        "ONLY",
        "GET",
        "PUT",
        "DEL",
        "COMMIT",
        "ROLLBACK",
        "SESSION",
        "ON",
        "node",
        "CRASH",
        "AT",
        "prepare",
        "broadcast",
        "RESTART",
        "CHECKPOINT",
        "STATUS",
        "SHOW",
        "LOCKS",
        "LOG",
        "LAST",
        "WHERE",
        "TRACE",
        "OFF",
        "TICK",
        "SET",
        "SOURCE",
        "HELP",
        "QUIT",
        "bob:",
        ":",
        ";",
        "#",
        "--",
        "\"",
        "\\",
        "\\\"",
        "2",
        "63",
        "64",
        "500ms",
        "2s",
        "99999999999999999999",
        "x",
        "é",
        "\u{212A}",
        "\t",
        "\u{0}",
    ];
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(String::from),
        1 => any::<String>(),
        1 => "[a-z0-9:;\"\\\\# .-]{0,6}",
    ]
}

/// Checks what must hold for any input: no panic, a column inside the line (or just
/// after it), a renderable error, and commands that print back to themselves.
fn check_any_line(line: &str) -> Result<(), TestCaseError> {
    match parse_line(line) {
        Err(error) => {
            let length = line.chars().count();
            prop_assert!(
                (1..=length + 1).contains(&error.column),
                "column {}",
                error.column
            );
            prop_assert!(!error.message.is_empty());
            let _ = error.render(line);
        }
        Ok(commands) => {
            for command in commands {
                let printed = command.to_string();
                prop_assert_eq!(
                    parse_command(&printed),
                    Ok(command),
                    "printed {:?}",
                    printed
                );
            }
        }
    }
    let _ = parse_command(line);
    Ok(())
}

proptest! {
    #[test]
    fn any_string_parses_or_fails_cleanly(line in any::<String>()) {
        check_any_line(&line)?;
    }

    #[test]
    fn any_token_soup_parses_or_fails_cleanly(
        tokens in prop::collection::vec(token(), 0..12),
        glue in proptest::sample::select(vec![" ", "", "  ", "\t"]),
    ) {
        check_any_line(&tokens.join(glue))?;
    }

    #[test]
    fn any_key_and_value_print_back(key in ".{1,40}", value in any::<String>()) {
        let command = Command::Put { key, value };
        prop_assert_eq!(parse_command(&command.to_string()), Ok(command));
    }
}
