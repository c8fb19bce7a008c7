//! The interactive shell: a command language (`command`, `parser`, `help`, specified in
//! `grammar/`), one `execute(line) -> Output` path (`executor`) over client sessions
//! that each run on a thread of their own (`session`), and the renderings of output
//! (`output`, `format`).

mod charts;
mod check;
pub mod command;
pub mod diagram;
pub mod executor;
mod explore;
pub mod format;
pub mod help;
pub mod history;
mod interactive;
pub mod lesson;
mod listing;
pub mod output;
pub mod parser;
pub mod session;
mod staged;
mod steps;
pub mod transcript;
pub mod waits;

pub use charts::utf8_terminal;
pub use command::{Command, DiagramForm};
pub use executor::Shell;
pub use output::{Origin, Outcome, Output, Style};
pub use parser::{ParseError, parse_command, parse_line};
