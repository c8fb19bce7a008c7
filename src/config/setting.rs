//! The one description of the settings `SET` changes: [`SETTINGS`], a table of
//! [`Setting`]s, each with its name, the kind of value it takes (a duration, one of a
//! few choices, or a number), a description and an example.
//!
//! Everything that knows of settings reads this table and nothing else: the shell's
//! `SET` ([`Settings::set`]: the name, the value's grammar, the errors that name what
//! is allowed, and the value echoed back as it is stored), `HELP SET` (the list of
//! settings and their examples are generated from it), and the prompt's completion (the
//! names, and the values of a choice). Durations are read and written by the one
//! duration grammar, `clock::parse_duration` and `clock::format_duration`. A setting
//! added here is therefore settable, described and completed at once; `tests/grammar.rs`
//! and this module's tests check that each shows what it reads.

use super::{CommitMode, DeadlockPolicy, Mistake, Settings};
use crate::clock::{format_duration, parse_duration};
use std::time::Duration;

/// One setting of the running cluster.
pub struct Setting {
    /// Its name, as `SET` takes it (in any case).
    pub name: &'static str,
    /// What value it takes, and where in [`Settings`] it lives.
    pub kind: Kind,
    /// What it does, for `HELP SET`: one paragraph, wrapped when shown.
    pub doc: &'static str,
    /// A value to show in `HELP SET`'s example, `SET <name> <example>`.
    pub example: &'static str,
}

/// The kinds of value a setting takes, each with how to read and store it.
pub enum Kind {
    /// A duration in the shell's one grammar (`500ms`, `2s`, `1.5s`, `1m`).
    Duration {
        /// The current value.
        get: fn(&Settings) -> Duration,
        /// Stores a value.
        set: fn(&mut Settings, Duration),
    },
    /// One of a few words, in any case.
    Choice {
        /// The words, as shown.
        values: &'static [&'static str],
        /// The current value, as one of `values`.
        get: fn(&Settings) -> &'static str,
        /// Stores the value named by one of `values`; false for any other word.
        set: fn(&mut Settings, &str) -> bool,
    },
    /// A whole number of `unit`.
    Number {
        /// What it counts, as in "a number of bytes".
        unit: &'static str,
        /// The current value.
        get: fn(&Settings) -> u64,
        /// Stores a value.
        set: fn(&mut Settings, u64),
    },
}

/// Every setting, in the order the shell lists them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "vote_timeout",
        kind: Kind::Duration {
            get: |s| s.vote_timeout,
            set: |s, value| s.vote_timeout = value,
        },
        doc: "How long a coordinator waits for votes before it aborts (default 1s). \
              Shorter frees the locks of a transaction whose participant died sooner; \
              too short aborts transactions that were only slow.",
        example: "2s",
    },
    Setting {
        name: "inquiry_interval",
        kind: Kind::Duration {
            get: |s| s.inquiry_interval,
            set: |s, value| s.inquiry_interval = value,
        },
        doc: "How often an in-doubt participant asks its coordinator, and the other \
              participants, for the outcome (default 1s).",
        example: "500ms",
    },
    Setting {
        name: "deadlock",
        kind: Kind::Choice {
            values: &[
                "detect",
                "wait-die",
                "wound-wait",
                "no-wait",
                "timeout",
                "off",
            ],
            get: |s| s.deadlock.name(),
            set: |s, word| match DeadlockPolicy::named(word) {
                Some(policy) => {
                    s.deadlock = policy;
                    true
                }
                None => false,
            },
        },
        doc: "detect (the default): whenever a request starts waiting for a lock, the \
              cluster-wide wait-for graph is checked; a cycle aborts its youngest \
              transaction (the one whose BEGIN came last, whichever node coordinates \
              it: ids do not tell, as each node numbers its own), and its client is \
              told the cycle. Prepared transactions wait for nothing, so they are never \
              victims. wait-die: a request that conflicts waits only if its transaction \
              is older (began first) than every one it would wait for; a younger one \
              aborts at once. wound-wait: an older requester aborts the younger \
              transactions in its way (not prepared ones: it waits for those), and a \
              younger one waits. Either way waits all run one way in age, so no cycle \
              forms. no-wait: any conflict aborts the requester. timeout: a wait longer \
              than lock_timeout aborts the waiter. off: nothing is done, and deadlocked \
              transactions wait for good (or until a node crashes): a way to see why \
              detection is needed. A policy rules requests from then on: waits queued \
              before stay, and SET deadlock detect (or timeout) breaks their cycles.",
        example: "wait-die",
    },
    Setting {
        name: "lock_timeout",
        kind: Kind::Duration {
            get: |s| s.lock_timeout,
            set: |s, value| s.lock_timeout = value,
        },
        doc: "Under SET deadlock timeout, how long a request may wait for a lock before \
              its transaction aborts (default 1s), checked at each tick.",
        example: "500ms",
    },
    Setting {
        name: "checkpoint_bytes",
        kind: Kind::Number {
            unit: "bytes",
            get: |s| s.checkpoint_bytes,
            set: |s, value| s.checkpoint_bytes = value,
        },
        doc: "A node checkpoints on its own when its log grows past n bytes (default \
              67108864, 64 MiB).",
        example: "1048576",
    },
    Setting {
        name: "network",
        kind: Kind::Choice {
            values: &["reliable", "lossy"],
            get: |s| if s.lossy { "lossy" } else { "reliable" },
            set: |s, word| match word {
                "reliable" | "lossy" => {
                    s.lossy = word == "lossy";
                    true
                }
                _ => false,
            },
        },
        doc: "reliable (the default, as the problem statement assumes): a message is lost \
              only with a node that is down. lossy: in step mode (STEP ON), DROP n loses \
              the queued message n on the way, and no one is told, so you can watch \
              what the vote timeout and the inquiries of a participant in doubt do \
              about it.",
        example: "lossy",
    },
    Setting {
        name: "mistake",
        kind: Kind::Choice {
            values: &[
                "off",
                "vote-before-fsync",
                "commit-before-decision-fsync",
                "forget-in-doubt",
                "presume-commit-without-log",
                "release-read-locks-at-prepare",
                "no-tombstone",
                "no-range-locks",
            ],
            get: |s| s.mistake.map_or("off", Mistake::name),
            set: |s, word| match (word, Mistake::named(word)) {
                ("off", _) => {
                    s.mistake = None;
                    true
                }
                (_, Some(mistake)) => {
                    s.mistake = Some(mistake);
                    true
                }
                _ => false,
            },
        },
        doc: "off (the default): the protocol as it should be. Any other value switches \
              in a deliberately broken variant, for teaching only: vote-before-fsync \
              (a participant votes YES before its Prepare is durable), \
              commit-before-decision-fsync (the coordinator sends COMMIT before its \
              Decision is durable), forget-in-doubt (a restarted participant drops a \
              Prepare with no outcome), presume-commit-without-log (a coordinator with \
              no record of a transaction answers an inquiry COMMIT), \
              release-read-locks-at-prepare, no-tombstone (a late PREPARE after an \
              abort votes YES), no-range-locks (SCAN locks only the keys it found). \
              EXPLORE finds the run that each one breaks.",
        example: "vote-before-fsync",
    },
    Setting {
        name: "commit",
        kind: Kind::Choice {
            values: &["classic", "parallel"],
            get: |s| s.commit.name(),
            set: |s, word| match CommitMode::named(word) {
                Some(mode) => {
                    s.commit = mode;
                    true
                }
                None => false,
            },
        },
        doc: "classic (the default): two-phase commit as the lessons teach it: every \
              participant forces its Prepare, then the coordinator forces its Decision, \
              and only then is the client told COMMIT (two fsyncs in sequence). \
              parallel: the coordinator sends the PREPAREs first and forces a Staged \
              record naming the participants while they prepare; the transaction is \
              committed once the Staged record and every Prepare are durable, and the \
              client is told then (one fsync's wait); the Decision follows off the \
              client's path. A coordinator that restarts with a Staged record and no \
              outcome asks every participant; one that never prepared refuses the \
              PREPARE for good, which aborts it. Applies to COMMITs from then on.",
        example: "parallel",
    },
];

/// The setting named `name`, in any case.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS
        .iter()
        .find(|setting| setting.name.eq_ignore_ascii_case(name))
}

impl Setting {
    /// How its value is written in a usage line: `<duration>`, `detect|off`, `<n>`.
    pub fn usage(&self) -> String {
        match &self.kind {
            Kind::Duration { .. } => "<duration>".into(),
            Kind::Choice { values, .. } => values.join("|"),
            Kind::Number { .. } => "<n>".into(),
        }
    }

    /// The words a value may be, for completion: a choice's values, else none.
    pub fn values(&self) -> &'static [&'static str] {
        match &self.kind {
            Kind::Choice { values, .. } => values,
            _ => &[],
        }
    }

    /// Its value in `settings`, written the way `SET` reads it.
    pub fn show(&self, settings: &Settings) -> String {
        match &self.kind {
            Kind::Duration { get, .. } => format_duration(get(settings)),
            Kind::Choice { get, .. } => get(settings).to_string(),
            Kind::Number { get, .. } => get(settings).to_string(),
        }
    }

    /// Reads `value` into `settings`; the error says what the setting takes.
    fn set(&self, settings: &mut Settings, value: &str) -> Result<(), String> {
        match &self.kind {
            Kind::Duration { set, .. } => {
                let duration =
                    parse_duration(value).map_err(|error| format!("{error}, not '{value}'"))?;
                set(settings, duration);
            }
            Kind::Choice { values, set, .. } => {
                if !set(settings, &value.to_ascii_lowercase()) {
                    return Err(format!(
                        "{} is {}, not '{value}'",
                        self.name,
                        either(values)
                    ));
                }
            }
            Kind::Number { unit, set, .. } => {
                let number = value.parse().map_err(|_| {
                    format!("{} takes a number of {unit}, not '{value}'", self.name)
                })?;
                set(settings, number);
            }
        }
        Ok(())
    }
}

impl Settings {
    /// `SET name value`: changes the setting `name` (in any case) to `value`, and returns
    /// its name and its value as now stored, written the way `SET` reads it. The error
    /// names the settings, or what this one takes.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(&'static str, String), String> {
        let Some(setting) = setting(name) else {
            let names: Vec<&str> = SETTINGS.iter().map(|setting| setting.name).collect();
            return Err(format!(
                "there is no setting '{name}'; the settings are {}",
                and(&names)
            ));
        };
        setting.set(self, value)?;
        Ok((setting.name, setting.show(self)))
    }
}

/// `a, b and c`.
fn and(words: &[&str]) -> String {
    joined(words, "and")
}

/// `a, b or c`.
fn either(words: &[&str]) -> String {
    joined(words, "or")
}

fn joined(words: &[&str], last: &str) -> String {
    match words {
        [] => String::new(),
        [only] => only.to_string(),
        [init @ .., tail] => format!("{} {last} {tail}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_example_is_read_and_shown_as_written() {
        for setting in SETTINGS {
            let mut settings = Settings::default();
            let (name, shown) = (settings.set(setting.name, setting.example))
                .unwrap_or_else(|e| panic!("{}: {e}", setting.name));
            assert_eq!((name, shown.as_str()), (setting.name, setting.example));
            // What is shown reads back to the same value.
            let again = settings.set(&setting.name.to_uppercase(), &shown);
            assert_eq!(again, Ok((setting.name, shown.clone())));
        }
    }

    #[test]
    fn every_choice_reads_back_as_itself_in_any_case() {
        for setting in SETTINGS {
            for value in setting.values() {
                let mut settings = Settings::default();
                let set = settings.set(setting.name, &value.to_uppercase());
                assert_eq!(set, Ok((setting.name, value.to_string())));
            }
        }
    }

    #[test]
    fn errors_name_what_is_allowed() {
        let mut settings = Settings::default();
        assert_eq!(
            settings.set("nope", "1"),
            Err(
                "there is no setting 'nope'; the settings are vote_timeout, \
                 inquiry_interval, deadlock, lock_timeout, checkpoint_bytes, network, \
                 mistake and commit"
                    .into()
            )
        );
        assert_eq!(
            settings.set("deadlock", "maybe"),
            Err(
                "deadlock is detect, wait-die, wound-wait, no-wait, timeout or off, \
                 not 'maybe'"
                    .into()
            )
        );
        assert_eq!(
            settings.set("checkpoint_bytes", "lots"),
            Err("checkpoint_bytes takes a number of bytes, not 'lots'".into())
        );
        assert_eq!(
            settings.set("vote_timeout", "2"),
            Err("a duration needs a unit: write 2ms, 2s or 2m, not '2'".into())
        );
        assert_eq!(joined(&["a"], "or"), "a");
    }
}
