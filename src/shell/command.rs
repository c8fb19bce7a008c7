//! The shell's commands as data: what a line asked for, parsed and checked for form, not
//! yet executed.
//!
//! A `Command` is produced by [`super::parser`] from one statement of a line and printed
//! back by its `Display` in canonical form: keywords upper-case (the word `node` and crash
//! point names lower-case, as the documentation writes them), keys and values quoted only
//! when they need it. Parsing the printed form gives the same command back, so the shell
//! can echo and record what it ran. The parser checks what it can know alone (a node
//! number below `MAX_NODES`, key and value sizes, a duration's unit); what depends on the
//! running cluster (whether node 5 exists, whether a setting's value is valid, whether a
//! session has a transaction open) is the executor's job.

use super::parser::{self, ParseError};
use crate::clock::format_duration;
use crate::cluster::CrashPoint;
use crate::keyrange::KeyRange;
use crate::types::{NodeId, TxnId};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One command of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `BEGIN [READ ONLY]`: start a transaction in the current session, coordinated by the
    /// session's node.
    Begin {
        /// The transaction promises not to write, so its participants can vote READ-ONLY
        /// and skip phase two.
        read_only: bool,
    },
    /// `GET key [FOR UPDATE]`: read a key in the current transaction (a shared lock at
    /// its owner, or an exclusive one for update).
    Get {
        /// The key.
        key: String,
        /// Lock the key exclusively at the read, for a transaction that will write it
        /// next; only a read-write transaction takes locks, so only it may ask.
        for_update: bool,
    },
    /// `SCAN PREFIX p` or `SCAN FROM a TO b` (both ends included): read every key in the
    /// range, on every node, in key order: under a range lock in a read-write
    /// transaction (inserts into the range wait), from the snapshot in a read-only one
    /// or outside any.
    Scan {
        /// The keys to read.
        range: KeyRange,
    },
    /// `PUT key value`: write a key in the current transaction (an exclusive lock at its
    /// owner; the write is buffered until commit).
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// `DEL key`: delete a key in the current transaction (like a `PUT` of nothing).
    Del {
        /// The key.
        key: String,
    },
    /// `COMMIT`: run two-phase commit for the current transaction.
    Commit,
    /// `ABORT` or `ROLLBACK`: abandon the current transaction.
    Abort,
    /// `SESSION name [ON node N]`: switch to a named client session, creating it on first
    /// use; sessions let one shell play several concurrent clients.
    Session {
        /// The session's name: letters, digits, `_` and `-`.
        name: String,
        /// The node that coordinates the session's transactions, when chosen.
        node: Option<NodeId>,
    },
    /// `name: command`: run one command in another session without switching to it.
    /// The parser never nests these: `command` is not itself an `In`.
    In {
        /// The session that runs the command.
        session: String,
        /// The command it runs.
        command: Box<Command>,
    },
    /// `CRASH node N [AT point]`: kill a node now, or arm a crash point where it will die.
    Crash {
        /// The node.
        node: NodeId,
        /// Where to die; `None` means at once.
        at: Option<CrashPoint>,
    },
    /// `RESTART node N`: bring a crashed node back through log recovery.
    Restart {
        /// The node.
        node: NodeId,
    },
    /// `CHECKPOINT node N`: checkpoint a node's log so that recovery replays less.
    Checkpoint {
        /// The node.
        node: NodeId,
    },
    /// `STATUS`: show nodes, sessions and in-doubt transactions.
    Status,
    /// `SHOW LOCKS`: show who holds which lock and who waits for whom.
    ShowLocks,
    /// `SHOW WAITS`: show the wait-for graph, with sessions and keys, and any cycle.
    ShowWaits,
    /// `SHOW LOG node N [LAST n]`: show a node's write-ahead log.
    ShowLog {
        /// The node.
        node: NodeId,
        /// Show only the last this many records.
        last: Option<usize>,
    },
    /// `SHOW SETTINGS` (or `SET` alone): list every setting with its value.
    ShowSettings,
    /// `KEYS [prefix]`: list the committed keys (those starting with `prefix`) with the
    /// node that owns each, as each node has them now; it takes no lock.
    Keys {
        /// Only keys that start with it; `None` lists every key.
        prefix: Option<String>,
    },
    /// `WHERE key`: tell which node owns a key.
    Where {
        /// The key.
        key: String,
    },
    /// `TRACE ON|OFF`: print, or stop printing, every protocol step.
    Trace {
        /// Whether tracing is on.
        on: bool,
    },
    /// `TIMING ON|OFF`: at the interactive prompt, print each command's time after it.
    Timing {
        /// Whether timing is on.
        on: bool,
    },
    /// `TICK duration`: advance the manual clock, firing the timers that fall due.
    Tick {
        /// How far to advance, in whole milliseconds as parsed.
        duration: Duration,
    },
    /// `SET name value`: change a setting. Both stay words here: which names exist and
    /// what values they take is the executor's to check, so that the grammar need not
    /// change when a setting is added.
    Set {
        /// The setting's name, e.g. `vote_timeout`.
        name: String,
        /// Its new value as written, e.g. `2s`.
        value: String,
    },
    /// `SOURCE path`: run the commands of a script file.
    Source {
        /// The file, as written (relative paths are the executor's to resolve).
        path: String,
    },
    /// `HELP [topic]`: the list of commands, or the help of one topic.
    Help {
        /// The topic as written; matched ignoring case.
        topic: Option<String>,
    },
    /// `QUIT` or `EXIT`: leave the shell.
    Quit,
    /// A blank line or a comment: nothing to do.
    Empty,
    /// `DIAGRAM [Tn] [ASCII | UNICODE | TO path]`: draw a message-sequence chart of one
    /// transaction, or of the last command's activity.
    Diagram {
        /// The transaction; `None` draws the last command.
        tid: Option<TxnId>,
        /// How to draw it.
        form: DiagramForm,
    },
    /// `LESSON [name]`: list the lessons, or play one step by step (at the prompt).
    Lesson {
        /// The lesson's name as written (`4`, `5b`); matched ignoring case.
        name: Option<String>,
    },
    /// `RESOLVE T4 COMMIT|ABORT ON node N`: settle a transaction in doubt on a node by
    /// hand (a heuristic decision).
    Resolve {
        /// The transaction.
        tid: TxnId,
        /// Commit (else abort).
        commit: bool,
        /// The node where it is in doubt.
        node: NodeId,
    },
    /// `STEP ON|OFF`: hold every protocol message and fsync in a numbered queue (and make
    /// the clock manual), or let everything held go and run freely again.
    Step {
        /// Whether step mode is on.
        on: bool,
    },
    /// `SHOW QUEUE`: list what step mode holds.
    ShowQueue,
    /// `DELIVER n | DELIVER node N | DELIVER ALL`, and `NEXT`: let held steps go.
    Deliver {
        /// Which.
        which: Delivery,
    },
    /// `DROP n`: lose the held message `n` on the way (`SET network lossy` first).
    Drop {
        /// Its number in the queue.
        number: u64,
    },
    /// `CHECK`: check this shell's own history (every session's transactions, their
    /// reads and writes and outcomes) for serializability, and print the verdict.
    Check,
    /// `EXPLORE [bounds] statements | EXPLORE [bounds] FILE path`: run the transactions on
    /// a fresh simulated cluster under every order of delivery and fsync and every crash,
    /// and check the invariants in every state (`crate::explore`).
    Explore {
        /// The bounds given (the rest are the defaults).
        bounds: Vec<ExploreBound>,
        /// What to explore.
        what: ExploreWhat,
    },
}

/// A bound of `EXPLORE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExploreBound {
    /// `DEPTH n`: the most moves in one run.
    Depth(usize),
    /// `CRASHES n`: the most crashes in one run.
    Crashes(usize),
    /// `TICKS n`: the most vote timeouts the clock moves by in one run.
    Ticks(usize),
    /// `TIME d`: the most time to spend.
    Time(std::time::Duration),
}

/// What `EXPLORE` explores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExploreWhat {
    /// The statements given on the line, `;` between them (`bob: GET x` runs in bob).
    Statements(Vec<Command>),
    /// `FILE path`: a script of such statements, one or more a line.
    File(String),
}

/// Which held steps `DELIVER` lets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// `DELIVER n`: the one numbered n (after what is ahead of it on its link).
    Number(u64),
    /// `DELIVER node N`: everything held for node N.
    Node(NodeId),
    /// `DELIVER ALL`: everything held now.
    All,
    /// `NEXT`: the oldest.
    Next,
}

/// How `DIAGRAM` draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiagramForm {
    /// Unicode box drawing on a UTF-8 terminal, plain ASCII otherwise.
    Auto,
    /// Plain ASCII.
    Ascii,
    /// Unicode box drawing.
    Unicode,
    /// An SVG file, at this path.
    Svg(String),
}

impl Command {
    /// The command's keyword in canonical form (`"SHOW LOG"`, `"ABORT"` for `ROLLBACK`),
    /// which is also its help topic. `In` answers for the command it wraps, since the
    /// prefix only says where that command runs; `Empty` has no keyword and answers `""`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Begin { .. } => "BEGIN",
            Command::Get { .. } => "GET",
            Command::Scan { .. } => "SCAN",
            Command::Put { .. } => "PUT",
            Command::Del { .. } => "DEL",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Session { .. } => "SESSION",
            Command::In { command, .. } => command.name(),
            Command::Crash { .. } => "CRASH",
            Command::Restart { .. } => "RESTART",
            Command::Checkpoint { .. } => "CHECKPOINT",
            Command::Status => "STATUS",
            Command::ShowLocks => "SHOW LOCKS",
            Command::ShowWaits => "SHOW WAITS",
            Command::ShowLog { .. } => "SHOW LOG",
            Command::ShowSettings => "SHOW SETTINGS",
            Command::Keys { .. } => "KEYS",
            Command::Where { .. } => "WHERE",
            Command::Trace { .. } => "TRACE",
            Command::Tick { .. } => "TICK",
            Command::Timing { .. } => "TIMING",
            Command::Set { .. } => "SET",
            Command::Source { .. } => "SOURCE",
            Command::Help { .. } => "HELP",
            Command::Quit => "QUIT",
            Command::Empty => "",
            Command::Diagram { .. } => "DIAGRAM",
            Command::Lesson { .. } => "LESSON",
            Command::Resolve { .. } => "RESOLVE",
            Command::Step { .. } => "STEP",
            Command::ShowQueue => "SHOW QUEUE",
            Command::Deliver {
                which: Delivery::Next,
            } => "NEXT",
            Command::Deliver { .. } => "DELIVER",
            Command::Explore { .. } => "EXPLORE",
            Command::Drop { .. } => "DROP",
            Command::Check => "CHECK",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Begin { read_only: false } => f.write_str("BEGIN"),
            Command::Begin { read_only: true } => f.write_str("BEGIN READ ONLY"),
            Command::Get {
                key,
                for_update: false,
            } => write!(f, "GET {}", Text(key)),
            Command::Get {
                key,
                for_update: true,
            } => write!(f, "GET {} FOR UPDATE", Text(key)),
            Command::Scan {
                range: KeyRange::Prefix(prefix),
            } => write!(f, "SCAN PREFIX {}", Text(prefix)),
            Command::Scan {
                range: KeyRange::Between { from, to },
            } => write!(f, "SCAN FROM {} TO {}", Text(from), Text(to)),
            Command::Put { key, value } => write!(f, "PUT {} {}", Text(key), Text(value)),
            Command::Del { key } => write!(f, "DEL {}", Text(key)),
            Command::Commit => f.write_str("COMMIT"),
            Command::Abort => f.write_str("ABORT"),
            Command::Session { name, node: None } => write!(f, "SESSION {name}"),
            Command::Session {
                name,
                node: Some(node),
            } => {
                write!(f, "SESSION {name} ON node {node}")
            }
            Command::In { session, command } => write!(f, "{session}: {command}"),
            Command::Crash { node, at: None } => write!(f, "CRASH node {node}"),
            Command::Crash {
                node,
                at: Some(point),
            } => write!(f, "CRASH node {node} AT {point}"),
            Command::Restart { node } => write!(f, "RESTART node {node}"),
            Command::Checkpoint { node } => write!(f, "CHECKPOINT node {node}"),
            Command::Status => f.write_str("STATUS"),
            Command::ShowLocks => f.write_str("SHOW LOCKS"),
            Command::ShowWaits => f.write_str("SHOW WAITS"),
            Command::ShowLog { node, last: None } => write!(f, "SHOW LOG node {node}"),
            Command::ShowLog {
                node,
                last: Some(last),
            } => {
                write!(f, "SHOW LOG node {node} LAST {last}")
            }
            Command::ShowSettings => f.write_str("SHOW SETTINGS"),
            Command::Keys { prefix: None } => f.write_str("KEYS"),
            Command::Keys {
                prefix: Some(prefix),
            } => write!(f, "KEYS {}", Text(prefix)),
            Command::Where { key } => write!(f, "WHERE {}", Text(key)),
            Command::Trace { on: true } => f.write_str("TRACE ON"),
            Command::Trace { on: false } => f.write_str("TRACE OFF"),
            Command::Tick { duration } => write!(f, "TICK {}", format_duration(*duration)),
            Command::Timing { on: true } => f.write_str("TIMING ON"),
            Command::Timing { on: false } => f.write_str("TIMING OFF"),
            Command::Set { name, value } => write!(f, "SET {name} {}", Text(value)),
            Command::Source { path } => write!(f, "SOURCE {}", Text(path)),
            Command::Help { topic: None } => f.write_str("HELP"),
            Command::Help { topic: Some(topic) } => write!(f, "HELP {}", Text(topic)),
            Command::Quit => f.write_str("QUIT"),
            Command::Empty => Ok(()),
            Command::Diagram { tid, form } => {
                f.write_str("DIAGRAM")?;
                if let Some(tid) = tid {
                    write!(f, " {tid}")?;
                }
                match form {
                    DiagramForm::Auto => Ok(()),
                    DiagramForm::Ascii => f.write_str(" ASCII"),
                    DiagramForm::Unicode => f.write_str(" UNICODE"),
                    DiagramForm::Svg(path) => write!(f, " TO {}", Text(path)),
                }
            }
            Command::Lesson { name: None } => f.write_str("LESSON"),
            Command::Lesson { name: Some(name) } => write!(f, "LESSON {}", Text(name)),
            Command::Resolve { tid, commit, node } => {
                let how = if *commit { "COMMIT" } else { "ABORT" };
                write!(f, "RESOLVE {tid} {how} ON node {node}")
            }
            Command::Step { on: true } => f.write_str("STEP ON"),
            Command::Step { on: false } => f.write_str("STEP OFF"),
            Command::ShowQueue => f.write_str("SHOW QUEUE"),
            Command::Explore { bounds, what } => {
                f.write_str("EXPLORE")?;
                for bound in bounds {
                    match bound {
                        ExploreBound::Depth(n) => write!(f, " DEPTH {n}")?,
                        ExploreBound::Crashes(n) => write!(f, " CRASHES {n}")?,
                        ExploreBound::Ticks(n) => write!(f, " TICKS {n}")?,
                        ExploreBound::Time(d) => write!(f, " TIME {}", format_duration(*d))?,
                    }
                }
                match what {
                    ExploreWhat::File(path) => write!(f, " FILE {}", Text(path)),
                    ExploreWhat::Statements(statements) => {
                        let statements: Vec<String> =
                            statements.iter().map(ToString::to_string).collect();
                        write!(f, " {}", statements.join("; "))
                    }
                }
            }
            Command::Deliver { which } => match which {
                Delivery::Number(number) => write!(f, "DELIVER {number}"),
                Delivery::Node(node) => write!(f, "DELIVER node {node}"),
                Delivery::All => f.write_str("DELIVER ALL"),
                Delivery::Next => f.write_str("NEXT"),
            },
            Command::Drop { number } => write!(f, "DROP {number}"),
            Command::Check => f.write_str("CHECK"),
        }
    }
}

impl FromStr for Command {
    type Err = ParseError;

    /// Parses one command; see [`parser::parse_command`].
    fn from_str(input: &str) -> Result<Command, ParseError> {
        parser::parse_command(input)
    }
}

/// A key, value or path as the parser reads it back: a bare word when every character
/// may stand in one (and it does not begin with `--`, a comment), else a quoted string with `"`, `\`, newline and tab escaped.
pub(crate) struct Text<'a>(pub(crate) &'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = !self.0.is_empty() && !self.0.starts_with("--");
        if bare && self.0.chars().all(parser::is_word_char) {
            return f.write_str(self.0);
        }
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                other => write!(f, "{other}")?,
            }
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Command {
        Command::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn words_stay_bare_and_the_rest_is_quoted() {
        assert_eq!(put("a/b.c:d-e_f", "42").to_string(), "PUT a/b.c:d-e_f 42");
        assert_eq!(put("", "two words").to_string(), r#"PUT "" "two words""#);
        assert_eq!(
            put("q\"", "a\\b\n\t;").to_string(),
            r#"PUT "q\"" "a\\b\n\t;""#
        );
    }

    #[test]
    fn durations_print_in_the_largest_exact_unit() {
        let tick = |ms| {
            Command::Tick {
                duration: Duration::from_millis(ms),
            }
            .to_string()
        };
        assert_eq!(tick(2000), "TICK 2s");
        assert_eq!(tick(1500), "TICK 1500ms");
        assert_eq!(tick(120_000), "TICK 2m");
        assert_eq!(tick(0), "TICK 0ms");
    }

    #[test]
    fn a_prefixed_command_is_named_after_what_it_runs() {
        let command = Command::In {
            session: "bob".into(),
            command: Box::new(Command::Abort),
        };
        assert_eq!(command.name(), "ABORT");
        assert_eq!(command.to_string(), "bob: ABORT");
    }
}
