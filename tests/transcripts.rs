//! Every recorded session under `tests/transcripts/` (`*.txt`, in any folder) replayed
//! on a fresh cluster and compared with what it says the shell prints.
//!
//! After a deliberate change of the shell's output, `UPDATE_TRANSCRIPTS=1 cargo test
//! --test transcripts` rewrites the files with the actual output (comments, directives
//! and blank lines kept); review the change with `git diff` before committing it.

use kv2pc::shell::transcript;
use std::path::{Path, PathBuf};

/// The folder of the transcripts.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts")
}

/// Every `.txt` file under `dir`, sorted.
fn transcripts(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(transcripts(&path));
        } else if path.extension().is_some_and(|extension| extension == "txt") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Replays one transcript: `None` if it holds, else what is wrong. With `update`, a
/// transcript that differs is rewritten instead.
fn check(path: &Path, update: bool) -> Option<String> {
    let text = std::fs::read_to_string(path).expect("a readable transcript");
    let base = path.parent().expect("a transcript lives in a folder");
    let replayed = match transcript::replay(&text, base) {
        Ok(replayed) => replayed,
        Err(error) => return Some(format!("cannot replay: {error}")),
    };
    let diff = replayed.diff(&text)?;
    if update {
        std::fs::write(path, &replayed.actual).expect("a writable transcript");
        eprintln!("updated {}", path.display());
        return None;
    }
    Some(diff)
}

#[test]
fn every_transcript_replays_as_recorded() {
    let update = std::env::var_os("UPDATE_TRANSCRIPTS").is_some_and(|value| value == "1");
    let files = transcripts(&root());
    assert!(
        !files.is_empty(),
        "no transcripts under {}",
        root().display()
    );
    let mut failures = String::new();
    for path in &files {
        if let Some(problem) = check(path, update) {
            let name = path.strip_prefix(root()).unwrap_or(path);
            failures.push_str(&format!("\n=== {}\n{problem}", name.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "transcripts differ from what the shell prints now \
         (UPDATE_TRANSCRIPTS=1 rewrites them after a deliberate change):{failures}"
    );
}
