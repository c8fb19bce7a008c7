//! The shell's step mode: `STEP ON|OFF`, `SHOW QUEUE`, `DELIVER`, `NEXT` and `DROP`,
//! over the cluster's step queue (`cluster::steps`, `net::steps`).
//!
//! While step mode is on, every command's output also shows, after the trace of what
//! it caused (always printed in step mode, as if `TRACE ON`): what a crash lost and
//! what an fsync completed besides itself, each step newly held (`held 5  node2
//! fsync of Prepare T4`), and, loudly, any transaction the nodes' logs show both
//! committed and aborted (`Cluster::check_atomicity`, run after every command in step
//! mode; a violation is printed once).

use super::command::{Command, Delivery};
use super::executor::Shell;
use super::output::{Line, Outcome, Style};
use crate::cluster::{MAX_STEP_ROUNDS, Pending, StepChoice};

/// What the shell remembers of step mode between commands.
#[derive(Debug, Default)]
pub(super) struct StepView {
    /// The highest queue number already shown as held.
    shown: u64,
    /// The broken invariants already printed.
    broken: std::collections::BTreeSet<String>,
}

impl Shell {
    /// Runs a step-mode command.
    pub(super) fn step_command(
        &mut self,
        command: Command,
        outcome: &mut Outcome,
    ) -> Result<(), String> {
        let error = |e: crate::Error| e.to_string();
        match command {
            Command::Step { on: true } if self.cluster.stepping() => {
                outcome.say("step mode is already on: SHOW QUEUE lists what is held");
            }
            Command::Step { on: true } => {
                self.cluster.set_stepping(true);
                self.steps.shown = self.cluster.step_queue().last().map_or(0, |(n, _)| *n);
                outcome.say(
                    "step mode on: every message between nodes and every fsync now waits in a \
                     numbered queue (SHOW QUEUE) until you DELIVER it (or NEXT, the oldest); \
                     the clock is manual, so TICK moves it",
                );
            }
            Command::Step { on: false } if !self.cluster.stepping() => {
                outcome.say("step mode is already off");
            }
            Command::Step { on: false } => {
                // Everything held goes one by one while step mode is still on, each with
                // what it caused, and then the cluster runs freely.
                let mut count = 0;
                for _ in 0..MAX_STEP_ROUNDS {
                    let round = self.cluster.take_steps(StepChoice::All).map_err(error)?;
                    if round.is_empty() {
                        break;
                    }
                    count += round.len();
                    self.let_go(round, None, outcome);
                }
                self.cluster.set_stepping(false);
                outcome.say(match count {
                    0 => "step mode off; nothing was held".to_string(),
                    1 => "step mode off; the one step held went".to_string(),
                    n => format!("step mode off; the {n} steps held went, in order"),
                });
            }
            Command::ShowQueue => self.show_queue(outcome),
            Command::Deliver { which } => {
                let choice = match which {
                    Delivery::Number(number) => StepChoice::Number(number),
                    Delivery::Node(node) => StepChoice::Node(node),
                    Delivery::All => StepChoice::All,
                    Delivery::Next => StepChoice::Next,
                };
                let went = self.cluster.take_steps(choice).map_err(error)?;
                if went.is_empty() {
                    return Err(match which {
                        Delivery::Node(node) => format!("nothing is held for node {node}"),
                        _ => "nothing is held: the queue is empty".to_string(),
                    });
                }
                let asked =
                    matches!(which, Delivery::Number(_)).then(|| went.last().map(|(n, _)| *n));
                self.let_go(went, asked.flatten(), outcome);
            }
            Command::Drop { number } => {
                let pending = self.cluster.drop_step(number).map_err(error)?;
                outcome.say(format!(
                    "dropped {number}  {pending}: lost on the network, and no one is told"
                ));
            }
            other => return Err(format!("{} is not a step command", other.name())),
        }
        Ok(())
    }

    /// Lets `went` go one by one, each followed by what it caused (and the steps it
    /// made the queue hold); `asked` is the number asked for, which the others were
    /// ahead of on its link.
    fn let_go(&mut self, went: Vec<(u64, Pending)>, asked: Option<u64>, outcome: &mut Outcome) {
        for (number, pending) in went {
            let ahead_of = asked.filter(|asked| *asked != number);
            outcome.say(went_line(number, &pending, ahead_of));
            self.cluster.release_step(pending);
            let lines = self.event_lines();
            outcome.lines.extend(lines);
            let lines = self.step_lines();
            outcome.lines.extend(lines);
        }
    }

    fn show_queue(&self, outcome: &mut Outcome) {
        let queue = self.cluster.step_queue();
        if !self.cluster.stepping() {
            outcome
                .say("step mode is off, so nothing is held: STEP ON holds every message and fsync");
            return;
        }
        if queue.is_empty() {
            outcome.say("nothing is held");
            return;
        }
        for (number, pending) in queue {
            outcome.say(format!("{number:>3}  {pending}"));
        }
    }

    /// The lines step mode adds after a command (see the module doc).
    pub(super) fn step_lines(&mut self) -> Vec<Line> {
        let mut lines: Vec<Line> = (self.cluster.step_notes().into_iter())
            .map(|text| Line {
                style: Style::Event,
                text,
            })
            .collect();
        if !self.cluster.stepping() {
            return lines;
        }
        for (number, pending) in self.cluster.step_queue() {
            if number > self.steps.shown {
                self.steps.shown = number;
                lines.push(Line {
                    style: Style::Trace,
                    text: format!("held {number}  {pending}"),
                });
            }
        }
        for broken in self.cluster.check_atomicity() {
            if self.steps.broken.insert(broken.clone()) {
                lines.push(Line {
                    style: Style::Warning,
                    text: format!("!!! INVARIANT BROKEN: {broken}"),
                });
            }
        }
        lines
    }

    /// Whether trace lines are printed now: `TRACE ON`, or step mode.
    pub(super) fn tracing(&self) -> bool {
        self.trace_on.load(std::sync::atomic::Ordering::Relaxed) || self.cluster.stepping()
    }
}

/// `delivered 3  node0 -> node2  PREPARE T4`, `fsynced 4  node1  fsync of Prepare T4`.
fn went_line(number: u64, pending: &Pending, ahead_of: Option<u64>) -> String {
    let verb = match pending {
        Pending::Message { .. } => "delivered",
        Pending::Fsync { .. } => "fsynced",
    };
    match ahead_of {
        Some(later) => format!(
            "{verb} {number}  {pending}  (first: it was ahead of {later} on its link, and links keep their order)"
        ),
        None => format!("{verb} {number}  {pending}"),
    }
}
