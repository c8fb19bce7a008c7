//! `--temp`: a throwaway data directory, removed when the session ends, however it
//! ends short of SIGKILL.
//!
//! A normal end drops the [`tempfile::TempDir`] guard, which removes the directory once
//! the cluster has stopped. A signal that ends the process (SIGINT to a script, SIGTERM,
//! SIGHUP from a closed terminal, SIGQUIT from Ctrl-\) would skip that drop, so a
//! thread of signal-hook's waits for those: when one comes, it removes the directory, says so on standard
//! error, and ends the process with the conventional status, 128 + the signal's number.
//! The cluster's threads are not stopped first: the process ends at once, and the
//! removal is retried while a node thread may still be writing a file into it.
//!
//! The interactive shell never ends on Ctrl-C (see `repl`): at the prompt it is a key,
//! and while a command runs the prompt loop takes SIGINT to cancel it, so there this
//! thread waits for SIGTERM, SIGHUP and SIGQUIT only, and the directory goes when the loop ends.
//!
//! The handlers exist only with `--temp`: any other data directory is durable, and the
//! default action (ending the process) loses nothing that was acknowledged.

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use signal_hook::low_level::signal_name;
use std::path::{Path, PathBuf};

/// How many times removal is tried before giving up on a directory that node threads
/// keep writing into.
const REMOVE_ATTEMPTS: u32 = 20;

/// Creates the temporary data directory and arranges for its removal at exit and on a
/// terminating signal: SIGTERM, SIGHUP, SIGQUIT, and SIGINT unless `interactive`.
pub fn create(interactive: bool) -> std::io::Result<tempfile::TempDir> {
    let temp = tempfile::Builder::new().prefix("kv2pc-").tempdir()?;
    remove_on_signal(temp.path().to_path_buf(), terminating(interactive))?;
    Ok(temp)
}

/// The signals that end the program: SIGTERM, SIGHUP, SIGQUIT, and SIGINT unless
/// `interactive` (the prompt takes it to cancel a command).
pub fn terminating(interactive: bool) -> &'static [i32] {
    if interactive {
        &[SIGTERM, SIGHUP, SIGQUIT]
    } else {
        &[SIGINT, SIGTERM, SIGHUP, SIGQUIT]
    }
}

/// Starts the thread that removes `dir` and ends the process on one of `signals`.
fn remove_on_signal(dir: PathBuf, signals: &[i32]) -> std::io::Result<()> {
    let mut signals = Signals::new(signals)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                end_on(signal, &dir);
            }
        })?;
    Ok(())
}

/// Removes `dir`, says why on standard error, and ends the process with 128 + `signal`.
fn end_on(signal: i32, dir: &Path) -> ! {
    let name = signal_name(signal).unwrap_or("a signal");
    // Node processes first: they write into the directory.
    super::launch::stop_launched();
    match remove(dir) {
        Ok(()) => eprintln!(
            "kv2pc: stopped by {name}; the temporary data directory {} is removed",
            dir.display()
        ),
        Err(error) => eprintln!(
            "kv2pc: stopped by {name}; could not remove the temporary data directory {}: {error}",
            dir.display()
        ),
    }
    std::process::exit(128 + signal)
}

/// Removes `dir` and everything in it; a directory already gone (a normal exit got
/// there first) counts as removed.
fn remove(dir: &Path) -> std::io::Result<()> {
    let mut attempt = 1;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) if attempt >= REMOVE_ATTEMPTS => return Err(error),
            Err(_) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}
