//! The `kv2pc` program: the command line (`cli`) over the library's shell, and the
//! interactive prompt (`repl`). Everything the commands do is in the library; see
//! `kv2pc --help` for the options and exit statuses.

mod cli;
mod repl;

fn main() -> std::process::ExitCode {
    cli::main()
}
