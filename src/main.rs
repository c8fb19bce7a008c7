//! The `kv2pc` program: the command line (`cli`) over the library's shell, and the
//! interactive prompt (`repl`), both over where output goes (`printer`) and the exit
//! statuses (`exit`), so that neither of the two imports the other. Everything the
//! commands do is in the library; see `kv2pc --help` for the options and exit statuses.

mod cli;
mod exit;
mod printer;
mod repl;

fn main() -> std::process::ExitCode {
    cli::main()
}
