//! A chart as text: one line per row, a lifeline per column, in plain ASCII or in
//! Unicode box drawing. The room between two lifelines is the same everywhere, wide
//! enough for the longest label of a message between nodes or of a log box (within
//! [`MIN_GAP`] and [`MAX_GAP`]); longer labels are cut, and so are a client's answers
//! (the outcome line below the chart gives the last one whole). Notes (a command that moved the
//! cluster, what a cross means, a deadlock) go in the margin right of the last lifeline.

use super::{Chart, Column, Row};

/// The least room between two lifelines.
pub const MIN_GAP: usize = 14;
/// The most room between two lifelines.
pub const MAX_GAP: usize = 32;

/// The characters of a chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// Plain ASCII: `|`, `-`, `>`, `[...]`, `X`.
    Ascii,
    /// Unicode box drawing: `│`, `─`, `▶`, `┫...┣`, `╳`.
    Unicode,
}

struct Glyphs {
    life: char,
    line: char,
    right: char,
    left: char,
    lost: char,
    cross: char,
    forced: (char, char),
    lazy: (char, char),
}

impl Charset {
    fn glyphs(self) -> Glyphs {
        match self {
            Charset::Ascii => Glyphs {
                life: '|',
                line: '-',
                right: '>',
                left: '<',
                lost: 'x',
                cross: 'X',
                forced: ('[', ']'),
                lazy: ('(', ')'),
            },
            Charset::Unicode => Glyphs {
                life: '│',
                line: '─',
                right: '▶',
                left: '◀',
                lost: '✕',
                cross: '╳',
                forced: ('┫', '┣'),
                lazy: ('┤', '├'),
            },
        }
    }
}

/// A log box's text: `Prepare fsync` or `Commit lazy`, in its brackets.
fn log_box(label: &str, forced: bool, glyphs: &Glyphs) -> String {
    let ((open, close), sync) = match forced {
        true => (glyphs.forced, "fsync"),
        false => (glyphs.lazy, "lazy"),
    };
    format!("{open}{label} {sync}{close}")
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// `text` cut to `room` characters, at a blank if it can be, with `...` if it was cut.
pub(super) fn fit(text: &str, room: usize) -> String {
    if width(text) <= room {
        return text.to_string();
    }
    if room <= 3 {
        return text.chars().take(room).collect();
    }
    let cut: String = text.chars().take(room - 3).collect();
    let at_word_end = text
        .chars()
        .nth(room - 3)
        .is_some_and(|c| c == ' ' || c == ',');
    let cut = match cut.rfind(' ') {
        Some(blank) if blank > 0 && !at_word_end => cut[..blank].to_string(),
        _ => cut,
    };
    let cut = cut.trim_end_matches([',', ' ']);
    format!("{cut}...")
}

/// The room between lifelines that the chart's labels ask for.
fn gap(chart: &Chart, glyphs: &Glyphs) -> usize {
    let client = |column: usize| matches!(chart.columns.get(column), Some(Column::Session(_)));
    let mut gap = MIN_GAP;
    for column in &chart.columns {
        gap = gap.max(width(&column.heading()) + 2);
    }
    for row in &chart.rows {
        let wanted = match row {
            Row::Arrow {
                from, to, label, ..
            } if !client(*from) && !client(*to) => {
                (width(label) + 4).div_ceil(from.abs_diff(*to).max(1))
            }
            Row::Arrow { .. } => 0,
            Row::Log { label, forced, .. } => width(&log_box(label, *forced, glyphs)) + 2,
            Row::Crash { .. } | Row::Note(_) => 0,
        };
        gap = gap.max(wanted);
    }
    gap.min(MAX_GAP)
}

/// The chart drawn in `charset`, one string per line, without trailing blanks.
pub fn render(chart: &Chart, charset: Charset) -> Vec<String> {
    let glyphs = charset.glyphs();
    let gap = gap(chart, &glyphs);
    let count = chart.columns.len().max(1);
    let center = |column: usize| gap / 2 + column * gap;
    let grid = center(count - 1) + gap / 2 + 1;
    let lifelines = || {
        let mut cells = vec![' '; grid];
        for column in 0..chart.columns.len() {
            cells[center(column)] = glyphs.life;
        }
        cells
    };
    let put = |cells: &mut Vec<char>, at: usize, text: &str| {
        for (offset, c) in text.chars().enumerate() {
            if let Some(cell) = cells.get_mut(at + offset) {
                *cell = c;
            }
        }
    };
    let centered = |cells: &mut Vec<char>, middle: usize, text: &str| {
        let text = fit(text, gap - 1);
        put(cells, middle.saturating_sub(width(&text) / 2), &text);
    };
    let line = |cells: Vec<char>, note: Option<&str>| {
        let mut text: String = cells.into_iter().collect();
        if let Some(note) = note {
            text.push_str("  ");
            text.push_str(note);
        }
        text.trim_end().to_string()
    };
    let mut lines = vec![format!("message-sequence chart of {}", chart.title)];
    let mut heading = vec![' '; grid];
    for (column, name) in chart.columns.iter().enumerate() {
        centered(&mut heading, center(column), &name.heading());
    }
    lines.push(line(heading, None));
    for row in &chart.rows {
        let mut cells = lifelines();
        let mut note = None;
        match row {
            Row::Arrow {
                from,
                to,
                label,
                lost,
            } => {
                let (a, b) = (center(*from), center(*to));
                let (low, high) = (a.min(b), a.max(b));
                for cell in &mut cells[low + 1..high] {
                    *cell = glyphs.line;
                }
                let head = match (lost, a < b) {
                    (true, _) => glyphs.lost,
                    (false, true) => glyphs.right,
                    (false, false) => glyphs.left,
                };
                cells[if a < b { high - 1 } else { low + 1 }] = head;
                let room = high - low - 3;
                let label = fit(label, room);
                let start = low + 2 + (room - width(&label)) / 2;
                put(&mut cells, start, &label);
                if *lost {
                    note = Some(format!("(lost: {} is down)", chart.columns[*to].heading()));
                }
            }
            Row::Log {
                column,
                label,
                forced,
            } => centered(
                &mut cells,
                center(*column),
                &log_box(label, *forced, &glyphs),
            ),
            Row::Crash { column, note: text } => {
                cells[center(*column)] = glyphs.cross;
                note = Some(text.clone());
            }
            Row::Note(text) => note = Some(text.clone()),
        }
        lines.push(line(cells, note.as_deref()));
    }
    lines.push(line(lifelines(), None));
    if let Some(outcome) = &chart.outcome {
        lines.push(format!("outcome: {outcome}"));
    }
    lines
}
