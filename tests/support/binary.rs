//! What the tests that run the real binary share: a run's output and exit status, and
//! the entries of a directory (where `--temp` directories appear and must go). Included
//! with `#[path]` by those tests alone, so they do not compile the rest of `support`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

/// What a run printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().expect("an exit code, not a signal"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 output"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 errors"),
        }
    }
}

/// The entries of `dir` (a `TMPDIR` given to the binary), by name, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the test's TMPDIR")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}
