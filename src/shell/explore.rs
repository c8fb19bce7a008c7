//! `EXPLORE`: the shell's front of the explorer (`crate::explore`). It turns the
//! statements given (or a script's) into the explorer's plan of sessions, runs it with
//! this cluster's node count and settings (a protocol mistake among them), and prints
//! the report: coverage, a table of outcomes, and the shortest run that breaks an
//! invariant, step by step.
//!
//! The explorer runs on its own simulated cluster: this shell's cluster, its data and its
//! sessions are not touched. A bare `PUT`, `DEL` or `GET` is its own transaction, as in
//! the shell (a `GET` then reads a snapshot).

use super::command::{Command, ExploreBound, ExploreWhat};
use super::executor::Shell;
use super::output::Outcome;
use super::parser::parse_line;
use crate::explore::Command as Planned;
use crate::explore::{self, Bounds, Plan, SessionPlan};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

/// How long an exploration may take unless `TIME` says otherwise.
const DEFAULT_TIME: Duration = Duration::from_secs(30);

impl Shell {
    /// Runs `EXPLORE`.
    pub(super) fn explore(
        &mut self,
        given: &[ExploreBound],
        what: &ExploreWhat,
        outcome: &mut Outcome,
    ) -> Result<(), String> {
        let statements = match what {
            ExploreWhat::Statements(statements) => statements.clone(),
            ExploreWhat::File(path) => self.explore_file(path)?,
        };
        let plan = self.plan(&statements)?;
        let bounds = bounds(self.cluster.nodes(), given);
        let settings = self.cluster.settings();
        let terminal = std::io::stderr().is_terminal();
        let mut progress = |states: usize, queued: usize| {
            if terminal {
                let mut err = std::io::stderr();
                let _ = write!(err, "\r\x1b[2Kexploring: {states} states, {queued} queued");
                let _ = err.flush();
            }
        };
        let report = explore::explore(&plan, &bounds, &settings, &mut progress)
            .map_err(|error| format!("the exploration failed: {error}"))?;
        if terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
        outcome.say(describe(&plan, &bounds, settings.mistake));
        for line in report.to_string().lines() {
            outcome.say(line);
        }
        if terminal {
            outcome.say(format!("(in {:.1} s)", report.elapsed.as_secs_f64()));
        }
        Ok(())
    }

    fn explore_file(&self, path: &str) -> Result<Vec<Command>, String> {
        let full = match self.base_dir.as_path() {
            dir if dir == Path::new(".") => std::path::PathBuf::from(path),
            dir => dir.join(path),
        };
        let text = std::fs::read_to_string(&full)
            .map_err(|error| format!("cannot read {path}: {error}"))?;
        let mut statements = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let parsed =
                parse_line(line).map_err(|error| format!("{path} line {}: {error}", number + 1))?;
            statements.extend(parsed.into_iter().filter(|c| *c != Command::Empty));
        }
        Ok(statements)
    }

    /// The explorer's plan: each statement goes to its session (`bob: ...`, else the
    /// current one), in order.
    fn plan(&self, statements: &[Command]) -> Result<Plan, String> {
        let mut plan = Plan::default();
        let mut open: Vec<bool> = Vec::new();
        for statement in statements {
            let (session, command) = match statement {
                Command::In { session, command } => (session.clone(), command.as_ref()),
                other => (self.current.clone(), other),
            };
            let index = match plan.sessions.iter().position(|s| s.name == session) {
                Some(index) => index,
                None => {
                    let home = self.sessions.get(&session).map_or(0, |s| s.node());
                    plan.sessions.push(SessionPlan {
                        name: session.clone(),
                        home,
                        commands: Vec::new(),
                    });
                    open.push(false);
                    plan.sessions.len() - 1
                }
            };
            let commands = &mut plan.sessions[index].commands;
            let in_txn = &mut open[index];
            add(commands, in_txn, command, &session)?;
        }
        for (session, open) in plan.sessions.iter().zip(&open) {
            if *open {
                return Err(format!(
                    "session {}'s last transaction is still open: EXPLORE needs every BEGIN \
                     to end with COMMIT or ABORT",
                    session.name
                ));
            }
        }
        if plan.sessions.is_empty() {
            return Err("EXPLORE needs at least one transaction to explore".into());
        }
        Ok(plan)
    }
}

/// Adds one shell command to a session's plan; a bare PUT, DEL or GET becomes a
/// transaction of its own.
fn add(
    commands: &mut Vec<Planned>,
    open: &mut bool,
    command: &Command,
    session: &str,
) -> Result<(), String> {
    let op = match command {
        Command::Begin { read_only } if *open => {
            return Err(format!(
                "session {session} already has a transaction open at this BEGIN: end it \
                 with COMMIT or ABORT first"
            ));
        }
        Command::Begin { read_only } => {
            *open = true;
            commands.push(match read_only {
                true => Planned::BeginSnapshot,
                false => Planned::Begin,
            });
            return Ok(());
        }
        Command::Commit | Command::Abort if !*open => {
            return Err(format!(
                "session {session} has no transaction open at this {}",
                command.name()
            ));
        }
        Command::Commit | Command::Abort => {
            *open = false;
            commands.push(match command {
                Command::Commit => Planned::Commit,
                _ => Planned::Abort,
            });
            return Ok(());
        }
        Command::Get {
            key,
            for_update: true,
        } => Planned::ReadForUpdate(key.clone()),
        Command::Get { key, .. } => Planned::Read(key.clone()),
        Command::Put { key, value } => Planned::Write(key.clone(), value.clone()),
        Command::Del { key } => Planned::Delete(key.clone()),
        Command::Explore { .. } => return Err("EXPLORE does not nest".into()),
        other => {
            return Err(format!(
                "EXPLORE explores transactions: BEGIN, GET, PUT, DEL, COMMIT and ABORT; {} \
                 is not one of them (EXPLORE crashes and restarts the nodes itself, at every \
                 step)",
                other.name()
            ));
        }
    };
    if *open {
        commands.push(op);
    } else {
        let read = matches!(op, Planned::Read(_));
        commands.push(match read {
            true => Planned::BeginSnapshot,
            false => Planned::Begin,
        });
        commands.push(op);
        commands.push(Planned::Commit);
    }
    Ok(())
}

fn bounds(nodes: u32, given: &[ExploreBound]) -> Bounds {
    let mut bounds = Bounds {
        nodes,
        time: DEFAULT_TIME,
        ..Bounds::default()
    };
    for bound in given {
        match *bound {
            ExploreBound::Depth(depth) => bounds.depth = depth,
            ExploreBound::Crashes(crashes) => bounds.crashes = crashes as u32,
            ExploreBound::Ticks(ticks) => bounds.ticks = ticks as u32,
            ExploreBound::Time(time) => bounds.time = time,
        }
    }
    bounds
}

/// The first line of the report: what was explored, within which bounds.
fn describe(plan: &Plan, bounds: &Bounds, mistake: Option<crate::Mistake>) -> String {
    let sessions: Vec<String> = (plan.sessions.iter())
        .map(|session| format!("{} on node {}", session.name, session.home))
        .collect();
    let mistake = match mistake {
        Some(mistake) => format!(", WITH THE MISTAKE {}", mistake.name()),
        None => String::new(),
    };
    let crashes = match bounds.crashes {
        0 => "no crash".to_string(),
        1 => "a crash of any node at any step (and its restart)".to_string(),
        n => format!("up to {n} crashes of any node at any step (and restarts)"),
    };
    format!(
        "exploring {} (sessions {}) on {} nodes: every order of delivery and fsync, \
         {crashes}, the clock jumping by the vote timeout up to {} times, runs of up to {} \
         moves{mistake}",
        plural(
            plan.sessions.iter().map(|s| count_txns(&s.commands)).sum(),
            "transaction"
        ),
        sessions.join(", "),
        bounds.nodes,
        bounds.ticks,
        bounds.depth,
    )
}

fn count_txns(commands: &[Planned]) -> usize {
    (commands.iter())
        .filter(|c| matches!(c, Planned::Begin | Planned::BeginSnapshot))
        .count()
}

fn plural(count: usize, word: &str) -> String {
    match count {
        1 => format!("1 {word}"),
        n => format!("{n} {word}s"),
    }
}
