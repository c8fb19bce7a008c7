//! What only a person at the prompt asks of the shell, beside [`Shell::execute`]: what
//! happened while nobody typed, Ctrl-C, and the interactive-only settings.
//!
//! A script or a transcript runs on the manual clock and prints each thing under the
//! command that caused it, in a fixed order (see `executor`): nothing happens between
//! two commands. On the real clock things do: a vote times out, a participant asks
//! about an outcome, a waiting command completes because another session's
//! transaction was aborted by a timeout. [`Shell::background`] collects them the same
//! way a command's output is collected, so the prompt loop can print them when they
//! happen instead of under whatever command is typed next.
//!
//! Ctrl-C never ends the program. While a command runs it sets the flag of
//! [`Shell::interrupt_flag`], and a `SOURCE` stops before its next line; at the prompt
//! it cancels the current session's lock wait ([`Shell::cancel_wait`]), as an `ABORT`
//! typed then does (see `session`).

use super::executor::Shell;
use super::output::{Outcome, Output};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

impl Shell {
    /// What happened since the last command: the trace and events that arrived, and
    /// the completions of waiting commands. Empty if nothing did (always so on the
    /// manual clock, where only a command moves anything).
    pub fn background(&mut self) -> Output {
        let mut output = Output::default();
        output.outcomes.extend(self.event_lines_outcome());
        self.collect_completions(None, &mut output);
        output
    }

    /// Ctrl-C at the prompt: if the current session's command waits, cancels the wait:
    /// the command fails, its transaction is aborted, and the session stays in it,
    /// aborted, until it is ended. Returns what that printed; `None` if the session
    /// is not waiting (then Ctrl-C only cleared the line).
    pub fn cancel_wait(&mut self) -> Option<Output> {
        let session = self.sessions.get(&self.current)?;
        let busy = session.busy()?;
        let mut output = Output::default();
        let mut outcome = Outcome::new(busy, Some(self.current.clone()));
        if let Err(error) = session.cancel_wait("Ctrl-C", false) {
            outcome.fail(error);
            output.outcomes.push(outcome);
            return Some(output);
        }
        self.cluster.settle();
        output.outcomes.extend(self.event_lines_outcome());
        self.collect_completions(None, &mut output);
        Some(output)
    }

    /// Whether the current session's command waits (for a lock, or for its commit).
    pub fn current_waits(&self) -> bool {
        (self.sessions.get(&self.current)).is_some_and(|session| session.busy().is_some())
    }

    /// The flag Ctrl-C sets while a command runs: a `SOURCE` stops before its next
    /// line. The prompt loop clears it before each line it runs.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    /// Makes a `SHOW LOG` without `LAST` show only the last `limit` records, with a line
    /// saying how to see them all (the prompt's default: a long log would scroll the
    /// screen away). Scripts and transcripts show the whole log.
    pub fn set_log_limit(&mut self, limit: Option<usize>) {
        self.log_limit = limit;
    }

    /// Lets `LESSON name` hand a lesson to the caller (`Output::lesson`), which plays
    /// it: the prompt loop does. Elsewhere (scripts, transcripts) `LESSON` only lists.
    pub fn host_lessons(&mut self, host: bool) {
        self.lesson_host = host;
    }

    /// Whether `TIMING ON` asked the prompt to print each command's time.
    pub fn timing(&self) -> bool {
        self.timing
    }

    /// The names of the sessions whose command is still waiting, sorted.
    pub fn waiting_sessions(&self) -> Vec<String> {
        (self.sessions.values())
            .filter(|session| session.busy().is_some())
            .map(|session| session.name().to_string())
            .collect()
    }

    fn event_lines_outcome(&mut self) -> Option<Outcome> {
        let lines = self.event_lines();
        if lines.is_empty() {
            return None;
        }
        let mut outcome = Outcome::new("", None);
        outcome.lines = lines;
        Some(outcome)
    }
}
