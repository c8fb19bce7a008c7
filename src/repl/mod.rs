//! The interactive shell: a line editor around `Shell::execute`.
//!
//! The loop is thin on purpose: read a line, run it, print its output. Everything a
//! command does is in the library's shell, which scripts and tests drive the same way;
//! this module only adds what a person at a terminal needs: history kept across runs,
//! tab completion and usage hints (`helper`, `hint`, `words`), a coloured prompt naming the session and
//! its open transaction, Ctrl-C to clear the line and Ctrl-D to leave. Several lines
//! pasted at once run one after the other, as in a script.
//!
//! # Type-ahead
//!
//! Every line typed or pasted runs, in order, and enters the history, even when it
//! arrives while an earlier one is still being read or run. That needs one thing of
//! rustyline that it does not do by default: on a Unix terminal it reads the terminal
//! through a buffer of its own (1 KiB, one `read` takes whatever the terminal has), and
//! without its `buffer-redux` feature that buffer belongs to one `readline` call and is
//! dropped when the call returns. A paste of `BEGIN`, `PUT a 2`, `COMMIT` arrives in one
//! `read`; the first call returned `BEGIN` and threw the other two away, so they neither
//! ran nor entered the history, while lines typed 50 ms apart (one `read` each) all ran.
//! With `buffer-redux` (Cargo.toml) the editor hands the unread bytes to the next call.
//! Bytes typed while a command runs wait in the terminal (which is out of raw mode
//! then, and echoes them), and the next `readline` reads them as typed.
//!
//! History lives in `kv2pc/history` under the user's state directory (the local data
//! directory where there is none), or in `$KV2PC_HISTFILE`; an empty `KV2PC_HISTFILE`
//! keeps no history. Each line is appended as soon as it is entered, so that the
//! history survives a killed process.

mod helper;
mod hint;
mod words;

use crate::exit::Exit;
use crate::printer::Printer;
use colored::Colorize;
use helper::KvHelper;
use kv2pc::shell::Shell;
use rustyline::config::{ColorMode, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use std::path::{Path, PathBuf};

/// The editor with kv2pc's helper.
type LineEditor = rustyline::Editor<KvHelper, FileHistory>;

/// Where the cluster lives, for the banner.
pub struct Place<'a> {
    /// The data directory.
    pub dir: &'a Path,
    /// Whether it is removed at exit.
    pub temporary: bool,
}

/// Runs the prompt loop until QUIT, EXIT or Ctrl-D.
pub fn run(shell: &mut Shell, printer: &mut Printer, place: Place<'_>, color: bool) -> Exit {
    let mut editor = match editor(shell.cluster().nodes(), color) {
        Ok(editor) => editor,
        Err(error) => {
            eprintln!("kv2pc: cannot open the terminal: {error}");
            return Exit::Failed;
        }
    };
    let mut history = history_path();
    if let Some(path) = &history {
        load_history(&mut editor, path);
    }
    println!("{}", banner(shell, &place));
    loop {
        if let Some(helper) = editor.helper_mut() {
            helper.sessions = shell.session_names();
        }
        let prompt = shell.prompt();
        let styled = if color {
            prompt.green().bold().to_string()
        } else {
            prompt.clone()
        };
        let line = match editor.readline(&(prompt.as_str(), styled.as_str())) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(error) => {
                eprintln!("kv2pc: cannot read the terminal: {error}");
                return Exit::Failed;
            }
        };
        // A bracketed paste arrives as one input holding several lines: run each.
        for line in line.split(['\n', '\r']) {
            remember(&mut editor, &mut history, line);
            let output = shell.execute(line);
            if printer.show(line, &output).is_err() || output.quit {
                return Exit::Success;
            }
        }
    }
    Exit::Success
}

/// A line editor that lists completions like bash and colours only if `color`.
fn editor(nodes: u32, color: bool) -> rustyline::Result<LineEditor> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .completion_show_all_if_ambiguous(true)
        .auto_add_history(false)
        .history_ignore_dups(true)?
        .max_history_size(1000)?
        .color_mode(if color {
            ColorMode::Enabled
        } else {
            ColorMode::Disabled
        })
        .build();
    let mut editor = LineEditor::with_config(config)?;
    editor.set_helper(Some(KvHelper::new(nodes, color)));
    Ok(editor)
}

/// The greeting: where the data is, how many nodes, how to get help.
fn banner(shell: &Shell, place: &Place<'_>) -> String {
    let cluster = shell.cluster();
    let kind = if place.temporary {
        " (temporary, removed at exit)"
    } else {
        ""
    };
    let mut text = format!(
        "kv2pc {}: a {}-node cluster in {}{kind}\n",
        env!("CARGO_PKG_VERSION"),
        cluster.nodes(),
        place.dir.display()
    );
    for report in cluster.recovery_reports() {
        if !report.in_doubt.is_empty() || !report.resent.is_empty() {
            for line in kv2pc::shell::format::recovery(report) {
                text.push_str(&line);
                text.push('\n');
            }
        }
    }
    text.push_str("type HELP for the commands, QUIT to leave");
    text
}

/// The history file: `$KV2PC_HISTFILE`, else `kv2pc/history` in the state directory.
fn history_path() -> Option<PathBuf> {
    match std::env::var_os("KV2PC_HISTFILE") {
        Some(path) if path.is_empty() => None,
        Some(path) => Some(PathBuf::from(path)),
        None => dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .map(|dir| dir.join("kv2pc").join("history")),
    }
}

/// Loads the history; a file not there yet is no error, anything else a warning.
fn load_history(editor: &mut LineEditor, path: &Path) {
    if !path.exists() {
        return;
    }
    if let Err(error) = editor.load_history(path) {
        eprintln!(
            "kv2pc: warning: cannot read the history {}: {error}",
            path.display()
        );
    }
}

/// Adds a line, trimmed, to the history and appends it to the file; after a failure to
/// save, warns once and keeps the history in memory only.
fn remember(editor: &mut LineEditor, history: &mut Option<PathBuf>, line: &str) {
    let line = line.trim();
    if line.is_empty() || !matches!(editor.add_history_entry(line), Ok(true)) {
        return;
    }
    let Some(path) = history.as_deref() else {
        return;
    };
    let saved = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent)
            .map_err(ReadlineError::from)
            .and_then(|()| editor.append_history(path)),
        _ => editor.append_history(path),
    };
    if let Err(error) = saved {
        eprintln!(
            "kv2pc: warning: cannot save the history to {}: {error}; keeping it for this session only",
            path.display()
        );
        *history = None;
    }
}
