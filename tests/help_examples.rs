//! Every `Example:` line of `HELP` runs in a real shell over a fresh cluster: it parses,
//! it executes without a panic, and `HELP <topic>` itself answers. (Some examples fail
//! at run time on purpose in an empty cluster, e.g. `COMMIT` with no transaction: their
//! errors must still be the shell's clear errors, never a parse error.)

use kv2pc::shell::{Shell, help};
use kv2pc::{Cluster, Config};

#[test]
fn every_help_example_runs_in_a_shell() {
    let examples = help::examples();
    assert!(examples.len() > 20, "too few examples: {}", examples.len());
    for (topic, example) in examples {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            manual_clock: true,
            ..Config::default()
        };
        let mut shell = Shell::new(Cluster::open(dir.path(), config).unwrap());
        shell.set_base_dir(dir.path());
        let help = shell.execute(&format!("HELP {topic}"));
        assert!(
            !help.failed(),
            "HELP {topic} failed: {}",
            help.render(false)
        );
        let output = shell.execute(&example);
        let text = output.render(false);
        assert!(!text.contains("syntax error"), "{topic}: {example}\n{text}");
    }
}

/// `SET` reads every setting as the table describes it, in any case, and echoes it as
/// stored; the prompt offers the same names.
#[test]
fn set_reads_and_echoes_every_setting_of_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.path(), config).unwrap());
    for setting in kv2pc::config::SETTINGS {
        let line = format!("SET {} {}", setting.name.to_uppercase(), setting.example);
        let output = shell.execute(&line).render(false);
        let echo = format!("{} = {}\n", setting.name, setting.example);
        if setting.name == "mistake" {
            // A teaching mistake is echoed, then warned of (tests/mistakes.rs).
            assert!(output.starts_with(&echo), "{output}");
            assert!(output[echo.len()..].starts_with("warning: "), "{output}");
        } else {
            assert_eq!(output, echo);
        }
    }
}

/// The examples of the listing commands print what `HELP` says they do: `KEYS` the
/// committed keys sorted with their nodes and a count, `KEYS prefix` only those that
/// start with it, `SHOW SETTINGS` and `SET` alone every setting of the table.
#[test]
fn the_listing_examples_show_keys_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.path(), config).unwrap());
    let setup = "PUT x 1; PUT account/bob 2; PUT account/alice 3; BEGIN; PUT account/eve 4";
    assert!(!shell.execute(setup).failed());
    let example = |topic: &str, start: &str| {
        let examples = help::examples();
        let (_, example) = (examples.iter())
            .find(|(t, e)| t == topic && e == start)
            .unwrap_or_else(|| panic!("no {start} example in HELP {topic}"))
            .clone();
        example
    };
    let keys = shell.execute(&example("KEYS", "KEYS")).render(false);
    let owner = |key: &str| shell.cluster().owner(key);
    let expected = format!(
        "account/alice  node {}\naccount/bob    node {}\nx              node {}\n(3 keys)\n",
        owner("account/alice"),
        owner("account/bob"),
        owner("x")
    );
    assert_eq!(keys, expected, "the uncommitted account/eve is not listed");
    let prefixed = shell
        .execute(&example("KEYS", "KEYS account/"))
        .render(false);
    assert!(
        prefixed.ends_with("(2 keys starting with account/)\n"),
        "{prefixed}"
    );
    for (topic, start) in [("SHOW", "SHOW SETTINGS"), ("SET", "SET")] {
        let listed = shell.execute(&example(topic, start)).render(false);
        let names: Vec<&str> = listed
            .lines()
            .map(|l| l.split(" = ").next().unwrap())
            .collect();
        let table: Vec<&str> = kv2pc::config::SETTINGS.iter().map(|s| s.name).collect();
        assert_eq!(names, table, "{start}: {listed}");
        assert!(listed.contains("vote_timeout = 1s\n"), "{listed}");
    }
}

/// The examples of `HELP DIAGRAM` succeed after a commit of T4 across two nodes: the
/// text forms draw its chart, and `TO` writes the SVG file where `SOURCE` paths start.
#[test]
fn the_diagram_examples_draw_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.path().join("data"), config).unwrap());
    shell.set_base_dir(dir.path());
    for line in ["PUT x 1", "BEGIN", "PUT x 2; PUT y 3", "COMMIT"] {
        assert!(!shell.execute(line).failed(), "{line}");
    }
    let examples: Vec<String> = (help::examples().into_iter())
        .filter(|(topic, _)| topic == "DIAGRAM")
        .map(|(_, example)| example)
        .collect();
    assert!(examples.len() >= 3, "{examples:?}");
    for example in examples {
        let output = shell.execute(&example);
        let text = output.render(false);
        assert!(!output.failed(), "{example}\n{text}");
        assert!(
            text.contains("T4") || text.contains("COMMIT"),
            "{example}\n{text}"
        );
    }
    let svg = std::fs::read_to_string(dir.path().join("t4.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("PREPARE"), "{svg}");
}

/// `HELP LESSON`'s examples: `LESSON` lists the lessons compiled in; `LESSON 4`, which
/// plays at the prompt only, says so in a script and names the command line's way.
#[test]
fn the_lesson_examples_list_and_point_a_script_to_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.path(), config).unwrap());
    let examples: Vec<String> = (help::examples().into_iter())
        .filter(|(topic, _)| topic == "LESSON")
        .map(|(_, example)| example)
        .collect();
    assert_eq!(examples, ["LESSON", "LESSON 4"]);
    let listed = shell.execute(&examples[0]).render(false);
    let count = kv2pc::shell::lesson::LESSONS.len();
    assert_eq!(listed.lines().count(), count + 1, "{listed}");
    assert!(
        listed.contains(" 4  a deadlock, found and broken.\n"),
        "{listed}"
    );
    let played = shell.execute(&examples[1]);
    let error = played.outcomes[0].error.clone().unwrap_or_default();
    assert!(error.contains("run kv2pc lesson 4"), "{error}");
}

/// `HELP COMMIT` explains parallel commits, and its `SET commit` example does what it
/// says: the setting reads `parallel` after it, and `SET commit classic` goes back.
#[test]
fn the_commit_help_switches_to_parallel_commits_as_it_says() {
    let commit_help = help::help(Some("COMMIT")).expect("HELP COMMIT");
    assert!(
        commit_help.contains("Parallel commits (SET commit parallel"),
        "{commit_help}"
    );
    assert!(commit_help.contains("Staged"), "{commit_help}");
    let examples = help::examples();
    let (_, example) = (examples.iter())
        .find(|(topic, example)| topic == "COMMIT" && example.starts_with("SET commit"))
        .expect("an Example: SET commit line in HELP COMMIT");
    assert_eq!(example, "SET commit parallel");
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.path(), config).unwrap());
    let setting = |shell: &mut Shell| {
        let settings = shell.execute("SHOW SETTINGS").render(false);
        (settings.lines())
            .find(|line| line.starts_with("commit = "))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no commit setting in:\n{settings}"))
    };
    assert_eq!(setting(&mut shell), "commit = classic");
    assert_eq!(shell.execute(example).render(false), "commit = parallel\n");
    assert_eq!(setting(&mut shell), "commit = parallel");
    assert_eq!(
        shell.execute("SET commit classic").render(false),
        "commit = classic\n"
    );
    assert_eq!(setting(&mut shell), "commit = classic");
}
