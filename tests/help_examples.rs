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
        assert!(
            !text.contains("could not read the command"),
            "{topic}: {example}\n{text}"
        );
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
        assert_eq!(output, format!("{} = {}\n", setting.name, setting.example));
    }
}
