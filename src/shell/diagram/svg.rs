//! A chart as SVG, for slides: the same rows as the text form, styled to be read from
//! the back of a room: large fonts, thick lines, dark on white, forced log writes filled
//! dark and lazy ones outlined and dashed, crashes as red crosses. Written with the
//! `svg` crate (which escapes text); the geometry is fixed per row, so the file is the
//! same every run.

use super::{Chart, Row};
use svg::Document;
use svg::node::element::{Line, Polygon, Rectangle, Text};

/// Pixels between two lifelines.
const GAP: usize = 260;
/// Pixels per row.
const ROW: usize = 64;
/// Where the first row starts.
const TOP: usize = 150;
/// Room right of the last lifeline for notes.
const MARGIN: usize = 620;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";
const INK: &str = "#1b1b1b";
const DARK: &str = "#1f4e79";
const RED: &str = "#c0392b";

fn text(x: usize, y: usize, size: usize, content: &str) -> Text {
    Text::new(content)
        .set("x", x)
        .set("y", y)
        .set("font-family", FONT)
        .set("font-size", size)
        .set("fill", INK)
}

fn line(x1: usize, y1: usize, x2: usize, y2: usize, color: &str, width: usize) -> Line {
    Line::new()
        .set("x1", x1)
        .set("y1", y1)
        .set("x2", x2)
        .set("y2", y2)
        .set("stroke", color)
        .set("stroke-width", width)
}

/// The chart as an SVG document.
pub fn render(chart: &Chart) -> String {
    let count = chart.columns.len().max(1);
    let center = |column: usize| GAP / 2 + column * GAP;
    let width = count * GAP + MARGIN;
    let bottom = TOP + chart.rows.len() * ROW;
    let height = bottom + 110;
    let mut document = Document::new()
        .set("viewBox", (0, 0, width, height))
        .set("width", width)
        .set("height", height)
        .add(
            Rectangle::new()
                .set("width", width)
                .set("height", height)
                .set("fill", "white"),
        )
        .add(
            text(
                30,
                50,
                34,
                &format!("Message-sequence chart of {}", chart.title),
            )
            .set("font-weight", "bold"),
        );
    for (column, name) in chart.columns.iter().enumerate() {
        let x = center(column);
        document = document
            .add(
                text(x, 110, 30, &name.heading())
                    .set("text-anchor", "middle")
                    .set("font-weight", "bold"),
            )
            .add(line(x, 125, x, bottom, INK, 3));
    }
    let note_x = count * GAP + 10;
    for (index, row) in chart.rows.iter().enumerate() {
        let y = TOP + index * ROW + ROW / 2;
        document = match row {
            Row::Arrow {
                from,
                to,
                label,
                lost,
            } => {
                let (a, b) = (center(*from), center(*to));
                let color = if *lost { RED } else { INK };
                let tip = if a < b { b - 4 } else { b + 4 };
                let back = if a < b { tip - 22 } else { tip + 22 };
                let head = format!("{tip},{y} {back},{} {back},{}", y - 10, y + 10);
                let mut arrow = line(a, y, back, y, color, 4);
                if *lost {
                    arrow = arrow.set("stroke-dasharray", "14 8");
                }
                // About 14 pixels a character; a white halo keeps a label that crosses
                // a lifeline readable.
                let label = super::text::fit(label, a.abs_diff(b) / 14);
                let caption = text((a + b) / 2, y - 10, 24, &label)
                    .set("text-anchor", "middle")
                    .set("stroke", "white")
                    .set("stroke-width", 6)
                    .set("paint-order", "stroke");
                let document = document.add(arrow).add(caption);
                if *lost {
                    document
                        .add(text(note_x, y + 8, 24, "lost: the receiver is down").set("fill", RED))
                } else {
                    document.add(Polygon::new().set("points", head).set("fill", color))
                }
            }
            Row::Log {
                column,
                label,
                forced,
            } => {
                let sync = if *forced { "fsync" } else { "lazy" };
                let caption = format!("{label} ({sync})");
                let box_width = (caption.chars().count() * 14 + 30).min(GAP - 10);
                let x = center(*column) - box_width / 2;
                let rect = Rectangle::new()
                    .set("x", x)
                    .set("y", y - 22)
                    .set("width", box_width)
                    .set("height", 44)
                    .set("rx", 6)
                    .set("stroke", DARK)
                    .set("stroke-width", 3);
                let (rect, ink) = match forced {
                    true => (rect.set("fill", DARK), "white"),
                    false => (
                        rect.set("fill", "white").set("stroke-dasharray", "8 5"),
                        DARK,
                    ),
                };
                document.add(rect).add(
                    text(center(*column), y + 8, 22, &caption)
                        .set("text-anchor", "middle")
                        .set("fill", ink),
                )
            }
            Row::Crash { column, note } => {
                let x = center(*column);
                document
                    .add(line(x - 20, y - 20, x + 20, y + 20, RED, 7))
                    .add(line(x - 20, y + 20, x + 20, y - 20, RED, 7))
                    .add(text(note_x, y + 8, 24, note).set("fill", RED))
            }
            Row::Note(note) => {
                document.add(text(note_x, y + 8, 24, note).set("font-style", "italic"))
            }
        };
    }
    if let Some(outcome) = &chart.outcome {
        document = document.add(
            text(30, bottom + 70, 32, &format!("Outcome: {outcome}")).set("font-weight", "bold"),
        );
    }
    document.to_string()
}
