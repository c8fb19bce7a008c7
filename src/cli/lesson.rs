//! `kv2pc lesson [NAME]`: lists the lessons compiled into the binary, or plays one (see
//! `kv2pc::shell::lesson`).
//!
//! On a terminal the lesson is played with the prompt's line editor (`repl`). Without
//! one, each line of standard input answers a step as a learner's line would: an empty
//! line runs the lesson's command, another line runs instead of it, the end of the input
//! leaves. So `yes '' | kv2pc lesson 4` plays lesson 4 through, and a test can drive
//! the player without a terminal. The exit status is 0 when the lesson was played
//! (whatever it printed), 2 for a name that is no lesson.

use crate::exit::Exit;
use crate::repl;
use kv2pc::shell::lesson::{self, Learner};
use std::io::{BufRead, IsTerminal};

/// Lists the lessons, or plays the one called `name`.
pub fn run(name: Option<&str>, color: bool) -> Exit {
    let Some(name) = name else {
        for line in lesson::listing() {
            println!("{line}");
        }
        return Exit::Success;
    };
    let chosen = match lesson::find(name) {
        Ok(chosen) => chosen,
        Err(error) => {
            eprintln!("kv2pc: {error}");
            return Exit::Usage;
        }
    };
    let stdin = std::io::stdin();
    let played = if stdin.is_terminal() {
        repl::play_lesson(chosen, color)
    } else {
        let mut learner = Lines(stdin.lock());
        match lesson::play(chosen, &mut learner, &mut std::io::stdout(), false) {
            Ok(played) => Some(played),
            Err(error) => {
                eprintln!("kv2pc: lesson {}: {error}", chosen.name());
                None
            }
        }
    };
    match played {
        Some(_) => Exit::Success,
        None => Exit::Failed,
    }
}

/// A learner who answers from lines of text (standard input when it is no terminal).
struct Lines<R>(R);

impl<R: BufRead> Learner for Lines<R> {
    fn read(&mut self, _prompt: &str) -> Option<String> {
        let mut line = String::new();
        match self.0.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
        }
    }

    fn echoes(&self) -> bool {
        false
    }
}
