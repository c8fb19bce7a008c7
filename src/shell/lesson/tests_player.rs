//! The player driven by a scripted learner: Enter through every lesson reproduces the
//! recording; a command of the learner's own is noted as a deviation; a recorded output
//! that differs is flagged with a diff; QUIT and the end of input leave.

use super::{LESSONS, Learner, Lesson, Played, play};
use std::collections::VecDeque;

/// A learner who answers from a list, then leaves; the terminal echoes nothing.
struct Scripted(VecDeque<String>);

impl Learner for Scripted {
    fn read(&mut self, _prompt: &str) -> Option<String> {
        self.0.pop_front()
    }

    fn echoes(&self) -> bool {
        false
    }
}

/// Plays `lesson` with `answers`, returning what it printed and how it went.
fn run(lesson: &Lesson, answers: &[&str]) -> (String, Played) {
    let mut learner = Scripted(answers.iter().map(|a| a.to_string()).collect());
    let mut out = Vec::new();
    let played = play(lesson, &mut learner, &mut out, false).unwrap();
    (String::from_utf8(out).unwrap(), played)
}

/// A small lesson on a 2-node cluster whose second step was recorded wrongly.
const SMALL: Lesson = Lesson {
    file: "small.txt",
    text: "#! nodes 2\n# Lesson S: a small lesson.\n# Write, then read.\n\
           > PUT x 1\nok\n> GET x\nx = 1\n",
};

/// The same lesson, with the second step's recorded output wrong.
const WRONG: Lesson = Lesson {
    file: "wrong.txt",
    text: "# Lesson W: a wrong recording.\n> PUT x 1\nok\n> GET x\nx = 2\n",
};

#[test]
fn enter_at_every_step_plays_each_lesson_as_recorded() {
    for lesson in LESSONS {
        let steps = crate::shell::transcript::parse(lesson.text)
            .unwrap()
            .steps()
            .count();
        let (text, played) = run(lesson, &vec![""; steps]);
        let expected = Played {
            steps,
            ran: steps,
            own: 0,
            differences: 0,
            finished: true,
        };
        assert_eq!(played, expected, "{}:\n{text}", lesson.file);
        assert!(text.starts_with(lesson.heading()), "{}", lesson.file);
        assert!(text.ends_with("every output as recorded.\n"), "{text}");
    }
}

#[test]
fn each_step_is_shown_with_its_place_and_comments_without_their_marks() {
    let (text, played) = run(&SMALL, &["", ""]);
    assert!(played.finished);
    let expected = "\
Lesson S: a small lesson.
(2 steps on a fresh 2-node cluster on the manual clock: time moves only by TICK.
 Press Enter to run each step, or type a command of your own instead; QUIT or Ctrl-D leaves.)
Write, then read.
[lesson S, step 1 of 2] press Enter to run: PUT x 1
> PUT x 1
ok

[lesson S, step 2 of 2] press Enter to run: GET x
> GET x
x = 1

Lesson S done: 2 steps; every output as recorded.
";
    assert_eq!(text, expected);
}

#[test]
fn a_command_of_the_learners_own_runs_and_is_noted_as_a_deviation() {
    let (text, played) = run(&SMALL, &["PUT x 7", ""]);
    assert_eq!((played.own, played.differences, played.ran), (1, 1, 2));
    assert!(text.contains(
        "> PUT x 7\nok\n(your own command, instead of the lesson's PUT x 1: from here on, \
         what the lesson prints may differ from its recording)\n"
    ));
    assert!(text.contains(
        "! this differs from the recording (small.txt, line 6), as it may since your \
         own command at step 1:\n"
    ));
    assert!(text.contains("-x = 1\n+x = 7\n"), "{text}");
    assert!(text.ends_with(
        "Lesson S done: 2 steps, 1 of them your own command; 1 output differed from the recording.\n"
    ));
}

#[test]
fn the_lessons_command_typed_differently_is_no_deviation() {
    let (_, played) = run(&SMALL, &["put  x 1", "GET x"]);
    assert_eq!((played.own, played.differences), (0, 0));
}

#[test]
fn an_output_other_than_the_recorded_one_is_flagged_with_a_diff() {
    let (text, played) = run(&WRONG, &["", ""]);
    assert_eq!(played.differences, 1);
    let flag = "> GET x\nx = 1\n! this differs from the recording (wrong.txt, line 4):\n\
                --- expected\n+++ actual\n@@ -1 +1 @@\n-x = 2\n+x = 1\n";
    assert!(text.contains(flag), "{text}");
}

#[test]
fn quit_or_the_end_of_input_leaves_the_lesson() {
    let (text, played) = run(&SMALL, &["", "QUIT"]);
    assert_eq!((played.ran, played.finished), (1, false));
    assert!(
        text.ends_with("You left lesson S after 1 of its 2 steps.\n"),
        "{text}"
    );
    assert!(!text.contains("x = 1"), "GET x did not run");
    let (_, played) = run(&SMALL, &[]);
    assert_eq!((played.ran, played.finished), (0, false));
    let (_, played) = run(&SMALL, &["", "\\q"]);
    assert_eq!(played.ran, 1);
}

#[test]
fn a_look_around_runs_and_the_step_still_waits() {
    let (text, played) = run(&SMALL, &["", "show locks; STATUS", "HELP GET", ""]);
    assert_eq!(
        played,
        Played {
            steps: 2,
            ran: 2,
            own: 0,
            differences: 0,
            finished: true,
        }
    );
    let look = "> show locks; STATUS\n";
    let again = "(a look around, which changes nothing: the step still waits)\n\n\
                 [lesson S, step 2 of 2] press Enter to run: GET x\n";
    assert!(text.contains(look), "{text}");
    assert_eq!(text.matches(again).count(), 2, "{text}");
    assert!(text.contains("> GET x\nx = 1\n"), "{text}");
}
