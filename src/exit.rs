//! The program's exit statuses, as a value: the command line returns one rather than
//! calling `process::exit`, so that everything is dropped (the cluster's threads
//! stopped, a `--temp` directory removed) before the process ends. Below both the
//! command line (`cli`) and the prompt (`repl`), which each end with one.

use std::process::ExitCode;

/// The exit statuses, in increasing gravity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything ran and every command succeeded.
    Success = 0,
    /// A command failed (a script goes on after it unless `--bail`), a script ended with
    /// a command still waiting, or a transcript differs from what the shell prints now.
    Failed = 1,
    /// Bad usage: an unknown option, an unreadable script or transcript file.
    Usage = 2,
    /// The data directory cannot be used.
    DataDir = 3,
}

impl Exit {
    /// `Failed` if `failed`, else `Success`.
    pub fn from_failed(failed: bool) -> Exit {
        if failed { Exit::Failed } else { Exit::Success }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
