//! A lesson at the terminal: the library's player (`kv2pc::shell::lesson`) with the
//! prompt's line editor as the learner, so that a lesson's prompt edits, completes and
//! keeps history like the shell's own.
//!
//! The editor is the prompt loop's (`LESSON 4` typed at the prompt) or one started for
//! `kv2pc lesson 4` on a terminal; the player asks it for one line per step. The lesson
//! runs on the manual clock, where nothing happens in the background, so nothing needs
//! printing above its prompt. Ctrl-C at a lesson's prompt only says how to go on or
//! leave; Ctrl-D leaves, as QUIT does.

use super::reader::{Read, Reader};
use colored::Colorize;
use kv2pc::shell::lesson::{self, Learner, Lesson, Played};
use std::collections::VecDeque;
use std::time::Duration;

/// How long a lesson waits for the learner between two looks (nothing else to do).
const WAIT: Duration = Duration::from_secs(3600);

/// What Ctrl-C at a lesson's prompt answers.
const HOW_TO_GO_ON: &str =
    "(press Enter to run the lesson's command; QUIT or Ctrl-D leaves the lesson)";

/// The learner at the terminal, through the line editor.
struct Terminal<'a> {
    reader: &'a Reader,
    color: bool,
    /// Lines pasted at once, beyond the first: each is the answer to a later step.
    pasted: VecDeque<String>,
}

impl Learner for Terminal<'_> {
    fn read(&mut self, prompt: &str) -> Option<String> {
        if let Some(line) = self.pasted.pop_front() {
            println!("{prompt}{line}");
            return Some(line);
        }
        loop {
            let styled = match self.color {
                true => prompt.cyan().bold().to_string(),
                false => prompt.to_string(),
            };
            self.reader.ask(prompt.to_string(), styled, Vec::new());
            let read = loop {
                if let Some(read) = self.reader.next(WAIT) {
                    break read;
                }
            };
            match read {
                Read::Line(text) => {
                    let mut lines = text.split(['\n', '\r']).map(str::to_string);
                    let first = lines.next().unwrap_or_default();
                    self.pasted.extend(lines);
                    return Some(first);
                }
                Read::Interrupted { .. } => println!("{HOW_TO_GO_ON}"),
                Read::Eof => return None,
                Read::Failed(error) => {
                    eprintln!("kv2pc: cannot read the terminal: {error}");
                    return None;
                }
            }
        }
    }

    fn echoes(&self) -> bool {
        true
    }
}

/// Plays `lesson` with the editor of `reader`; an error is printed, not returned.
pub fn play(reader: &Reader, lesson: &Lesson, color: bool) -> Option<Played> {
    let mut learner = Terminal {
        reader,
        color,
        pasted: VecDeque::new(),
    };
    match lesson::play(lesson, &mut learner, &mut std::io::stdout(), color) {
        Ok(played) => Some(played),
        Err(error) => {
            eprintln!("kv2pc: lesson {}: {error}", lesson.name());
            None
        }
    }
}

/// Plays `lesson` on a terminal of its own (`kv2pc lesson N`): starts the editor.
pub fn play_alone(lesson: &Lesson, color: bool) -> Option<Played> {
    let reader = match Reader::start(kv2pc::shell::transcript::DEFAULT_NODES, color) {
        Ok(reader) => reader,
        Err(error) => {
            eprintln!("kv2pc: cannot open the terminal: {error}");
            return None;
        }
    };
    play(&reader, lesson, color)
}
