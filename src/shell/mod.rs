//! The interactive shell's command language: [`command::Command`] is what a line asks
//! for, [`parser`] reads lines into commands (one function per rule of
//! `grammar/kv2pc.ebnf`), and [`help`] serves the per-command help written in
//! `grammar/help.md`. Nothing here executes a command.

pub mod command;
pub mod help;
pub mod parser;

pub use command::Command;
pub use parser::{ParseError, parse_command, parse_line};
