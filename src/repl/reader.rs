//! The line editor on a thread of its own, so that the prompt loop can print what
//! happens on the real clock while the user sits at the prompt.
//!
//! The loop asks for a line ([`Reader::ask`], with the prompt to show) and then waits
//! for it ([`Reader::next`]) a short while at a time, looking for background output in
//! between; that output goes through rustyline's external printer, which draws it above
//! the prompt and redraws the prompt and the half-typed line below it. The thread asks
//! the terminal for one line per request, so the editor is never reading while a
//! command runs (the terminal is then out of raw mode and Ctrl-C is a signal, see
//! `repl`), and enters each line into the history as soon as it is read.
//!
//! History lives in `kv2pc/history` under the user's state directory (the local data
//! directory where there is none), or in `$KV2PC_HISTFILE`; an empty `KV2PC_HISTFILE`
//! keeps no history. Each line is appended as soon as it is entered, so that the
//! history survives a killed process.

use super::helper::KvHelper;
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use rustyline::config::{ColorMode, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{
    Cmd, ConditionalEventHandler, Event, EventContext, EventHandler, ExternalPrinter, KeyEvent,
    RepeatCount,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The editor with kv2pc's helper.
type LineEditor = rustyline::Editor<KvHelper, FileHistory>;

/// What the editor read.
pub enum Read {
    /// A line (a paste of several arrives as several).
    Line(String),
    /// Ctrl-C; `empty` if nothing had been typed on the line.
    Interrupted { empty: bool },
    /// Ctrl-D on an empty line, or the terminal closed.
    Eof,
    /// The terminal cannot be read.
    Failed(String),
}

/// A request for one line.
struct Ask {
    prompt: String,
    styled: String,
    sessions: Vec<String>,
}

/// The prompt loop's handle on the editor thread.
pub struct Reader {
    asks: Sender<Ask>,
    reads: Receiver<Read>,
    printer: Box<dyn ExternalPrinter + Send>,
}

impl Reader {
    /// Starts the editor for a cluster of `nodes`, colouring if `color`.
    pub fn start(nodes: u32, color: bool) -> Result<Reader, String> {
        let (asks, ask_inbox) = unbounded::<Ask>();
        let (read_sender, reads) = unbounded();
        let (started, printer) = bounded(1);
        std::thread::Builder::new()
            .name("line-editor".into())
            .spawn(move || {
                let mut editor = match editor(nodes, color) {
                    Ok(editor) => editor,
                    Err(error) => {
                        let _ = started.send(Err(error.to_string()));
                        return;
                    }
                };
                // A terminal rustyline cannot drive (`TERM=dumb`, an Emacs shell) has no
                // external printer: lines from the background are then printed as they
                // come, below whatever is on the line, and the shell still runs.
                let printer: Box<dyn ExternalPrinter + Send> =
                    match editor.create_external_printer() {
                        Ok(printer) => Box::new(printer),
                        Err(_) => Box::new(PlainPrinter),
                    };
                if started.send(Ok(printer)).is_ok() {
                    read_lines(&mut editor, &ask_inbox, &read_sender);
                }
            })
            .map_err(|error| error.to_string())?;
        let printer = printer
            .recv()
            .map_err(|_| "the line editor did not start")??;
        Ok(Reader {
            asks,
            reads,
            printer,
        })
    }

    /// Asks for the next line, shown after `prompt` (`styled` on a colour terminal);
    /// `sessions` are the names to complete.
    pub fn ask(&self, prompt: String, styled: String, sessions: Vec<String>) {
        let _ = self.asks.send(Ask {
            prompt,
            styled,
            sessions,
        });
    }

    /// What was read, if something was within `wait`. `None` on a timeout; `Eof` once
    /// the editor thread has gone.
    pub fn next(&self, wait: Duration) -> Option<Read> {
        match self.reads.recv_timeout(wait) {
            Ok(read) => Some(read),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Read::Eof),
        }
    }

    /// Prints `text` above the prompt and redraws the prompt and the line below it.
    pub fn print(&mut self, text: String) {
        if self.printer.print(text).is_err() {
            // The editor is gone: the loop learns it from `next`.
        }
    }
}

/// Prints background lines straight to standard output, for a terminal without an
/// external printer.
struct PlainPrinter;

impl ExternalPrinter for PlainPrinter {
    fn print(&mut self, msg: String) -> rustyline::Result<()> {
        let mut stdout = std::io::stdout().lock();
        let end = if msg.ends_with('\n') { "" } else { "\n" };
        write!(stdout, "{msg}{end}")?;
        stdout.flush()?;
        Ok(())
    }
}

/// The editor thread: one line per request, each part of it entered into the history.
fn read_lines(editor: &mut LineEditor, asks: &Receiver<Ask>, reads: &Sender<Read>) {
    let mut history = history_path();
    if let Some(path) = &history {
        load_history(editor, path);
    }
    let empty = Arc::new(AtomicBool::new(true));
    editor.bind_sequence(
        KeyEvent::ctrl('C'),
        EventHandler::Conditional(Box::new(CtrlC(empty.clone()))),
    );
    while let Ok(ask) = asks.recv() {
        if let Some(helper) = editor.helper_mut() {
            helper.sessions = ask.sessions;
        }
        let read = match editor.readline(&(ask.prompt.as_str(), ask.styled.as_str())) {
            Ok(line) => {
                for part in line.split(['\n', '\r']) {
                    remember(editor, &mut history, part);
                }
                Read::Line(line)
            }
            Err(ReadlineError::Interrupted) => Read::Interrupted {
                empty: empty.swap(true, Ordering::SeqCst),
            },
            Err(ReadlineError::Eof) => Read::Eof,
            Err(error) => Read::Failed(error.to_string()),
        };
        if reads.send(read).is_err() {
            return;
        }
    }
}

/// Ctrl-C clears the line as usual, noting first whether there was anything on it.
struct CtrlC(Arc<AtomicBool>);

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        self.0.store(ctx.line().is_empty(), Ordering::SeqCst);
        Some(Cmd::Interrupt)
    }
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
