//! What an exploration found: how much it covered, how each transaction ended across
//! the runs, and the shortest run that broke an invariant, if one did.

use super::Plan;
use super::verdict::Fate;
use super::world::Move;
use std::fmt;
use std::time::Duration;

/// The bound that cut an exploration short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Some run had moves left at the depth bound.
    Depth,
    /// The state bound was reached.
    States,
    /// The time bound was reached.
    Time,
}

/// How often one transaction ended each way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// The transaction, as the report names it (session and number).
    pub name: String,
    /// Ends in which its session was told committed.
    pub committed: u64,
    /// Ends in which it was told aborted.
    pub aborted: u64,
    /// Ends in which its session cannot know the outcome.
    pub unknown: u64,
    /// Quiet states, with a node down, in which a participant holds it in doubt until
    /// that node restarts.
    pub in_doubt: u64,
}

/// The shortest run found that breaks an invariant.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// The moves from a fresh cluster (the last ones settle an end), each with what it
    /// did (the simulator's trace of it).
    pub moves: Vec<(Move, Vec<String>)>,
    /// The invariant broken, described.
    pub broken: String,
}

/// What an exploration covered and found.
#[derive(Clone, Debug)]
pub struct Report {
    /// Distinct states visited.
    pub states: usize,
    /// Transitions taken (each replayed from a fresh cluster), duplicates included.
    pub transitions: u64,
    /// Distinct ends checked: states where nothing moves but faults and time, every
    /// node is up, each settled and checked.
    pub ends: u64,
    /// Quiet states with a node down (the runs that block until a restart).
    pub blocked: u64,
    /// The bound that cut the search short, if one did.
    pub cut: Option<Cut>,
    /// Per transaction of the plan.
    pub outcomes: Vec<OutcomeCounts>,
    /// The first violation found, if any.
    pub violation: Option<Counterexample>,
    /// Wall-clock time spent (not shown in scripts: it differs every run).
    pub elapsed: Duration,
    /// The sessions' names, for the counterexample's moves.
    sessions: Vec<String>,
}

impl Report {
    pub(super) fn new(plan: &Plan) -> Report {
        let mut outcomes = Vec::new();
        for session in &plan.sessions {
            let begins = (session.commands.iter())
                .filter(|command| {
                    matches!(
                        command,
                        crate::sim::Command::Begin | crate::sim::Command::BeginSnapshot
                    )
                })
                .count();
            for number in 1..=begins {
                outcomes.push(OutcomeCounts {
                    name: format!("{} #{number}", session.name),
                    ..OutcomeCounts::default()
                });
            }
        }
        Report {
            states: 0,
            transitions: 0,
            ends: 0,
            blocked: 0,
            cut: None,
            outcomes,
            violation: None,
            elapsed: Duration::ZERO,
            sessions: plan.sessions.iter().map(|s| s.name.clone()).collect(),
        }
    }

    pub(super) fn count_end(&mut self, fates: &[Fate]) {
        self.ends += 1;
        for (counts, fate) in self.outcomes.iter_mut().zip(fates) {
            match fate {
                Fate::Committed => counts.committed += 1,
                Fate::Aborted => counts.aborted += 1,
                Fate::Unknown | Fate::InDoubt => counts.unknown += 1,
            }
        }
    }

    pub(super) fn count_blocked(&mut self, blocked: &[usize]) {
        self.blocked += 1;
        for index in blocked {
            if let Some(counts) = self.outcomes.get_mut(*index) {
                counts.in_doubt += 1;
            }
        }
    }

    /// Whether the whole space within the depth was covered.
    pub fn complete(&self) -> bool {
        self.cut.is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let coverage = match (self.cut, &self.violation) {
            (_, Some(_)) => "stopped at the first violation",
            (None, None) => "complete: every run within the bounds was covered",
            (Some(Cut::Depth), None) => "cut short: some runs were longer than the depth bound",
            (Some(Cut::States), None) => "cut short by the bound on states",
            (Some(Cut::Time), None) => "cut short by the time bound",
        };
        writeln!(
            f,
            "explored {} distinct states ({} transitions), {} ends checked, {} runs blocked \
             on a down node; {coverage}",
            self.states, self.transitions, self.ends, self.blocked
        )?;
        if self.violation.is_none() {
            writeln!(
                f,
                "{:<14}{:>11}{:>9}{:>18}{:>26}",
                "transaction",
                "committed",
                "aborted",
                "unknown to client",
                "in doubt until a restart"
            )?;
            for row in &self.outcomes {
                writeln!(
                    f,
                    "{:<14}{:>11}{:>9}{:>18}{:>26}",
                    row.name, row.committed, row.aborted, row.unknown, row.in_doubt
                )?;
            }
        }
        match &self.violation {
            None => write!(
                f,
                "no invariant broken: atomicity, durability of acknowledged commits, \
                 serializability, nothing left locked or in doubt"
            ),
            Some(example) => {
                writeln!(f, "!!! INVARIANT BROKEN: {}", example.broken)?;
                write!(
                    f,
                    "the shortest run that breaks it, {} moves:",
                    example.moves.len()
                )?;
                for (number, (step, notes)) in example.moves.iter().enumerate() {
                    match step {
                        Move::Session { session } => {
                            let name = self.sessions.get(*session).map_or("?", String::as_str);
                            write!(f, "\n  {:>3}. session {name} acts", number + 1)?
                        }
                        _ => write!(f, "\n  {:>3}. {step}", number + 1)?,
                    }
                    for note in notes {
                        write!(f, "\n         {note}")?;
                    }
                }
                Ok(())
            }
        }
    }
}
