//! `kv2pc bench --plot FILE.svg`: the sweep as a picture, drawn with `plotters`' SVG
//! backend (no fonts or system libraries needed: text stays SVG text).
//!
//! Two panels share the client axis (logarithmic, as the sweep doubles and quadruples):
//! on the left throughput, counted in operations per preallocated-fsync time (ops/s times
//! the run's fsync p50, so that the figure moves far less between machines than ops/s
//! does), on the right the p99 latency in microseconds (logarithmic). One line per
//! workload; a workload run at a single client count is drawn as a point.
//!
//! Limits: one report per picture, so two commit modes or two machines are compared by
//! drawing two pictures from the same hour.

use super::Report;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// The colours of the workloads' lines, in the order the report first names them.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Writes the report's runs to `path` as an SVG picture.
pub fn svg(report: &Report, path: &Path) -> Result<()> {
    if report.runs.is_empty() {
        return Err(Error::InvalidInput(
            "nothing to plot: the bench ran no workload (only recovery?)".into(),
        ));
    }
    draw(report, path).map_err(|e| {
        Error::io(
            format!("writing the plot {}", path.display()),
            std::io::Error::other(e.to_string()),
        )
    })
}

/// One point of a workload's line: (clients, operations per fsync time, p99 µs).
type Point = (f64, f64, f64);

/// Each workload's points, in the order the report first names it; a sweep of both
/// commit modes has a line per workload and mode ("cross-2 parallel").
fn series(report: &Report) -> Vec<(String, Vec<Point>)> {
    let modes = (report.runs.iter())
        .map(|run| run.commit)
        .collect::<std::collections::BTreeSet<_>>();
    let mut series: Vec<(String, Vec<Point>)> = Vec::new();
    for run in &report.runs {
        let point = (run.clients as f64, run.per_fsync_time, run.p99_us.max(1.0));
        let name = match modes.len() {
            1 => run.workload.name().to_string(),
            _ => format!("{} {}", run.workload.name(), run.commit),
        };
        match series.iter_mut().find(|(line, _)| *line == name) {
            Some((_, points)) => points.push(point),
            None => series.push((name, vec![point])),
        }
    }
    series
}

fn draw(report: &Report, path: &Path) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let series = series(report);
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let max_clients = points.clone().map(|p| p.0).fold(1.0, f64::max);
    let max_throughput = points.clone().map(|p| p.1).fold(0.1, f64::max);
    let (min_p99, max_p99) =
        points.fold((f64::MAX, 1.0f64), |(lo, hi), p| (lo.min(p.2), hi.max(p.2)));
    let clients = 0.8..max_clients * 1.25;
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "kv2pc bench: fsync p50 {:.0} us (preallocated), round trip {:.1} us, deadlock {}",
        report.limits.fsync_preallocated_p50_us,
        report.limits.round_trip_parked_p50_us,
        report.deadlock
    );
    let root = root.titled(&caption, ("sans-serif", 18))?;
    let (left, right) = root.split_horizontally(600);

    let mut throughput = ChartBuilder::on(&left)
        .caption("throughput (ops per fsync time)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(clients.clone().log_scale(), 0.0..max_throughput * 1.1)?;
    throughput
        .configure_mesh()
        .x_desc("clients")
        .y_desc("ops/s x fsync p50")
        .draw()?;
    let mut latency = ChartBuilder::on(&right)
        .caption("p99 latency (us)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            clients.log_scale(),
            (min_p99 * 0.8..max_p99 * 1.25).log_scale(),
        )?;
    latency
        .configure_mesh()
        .x_desc("clients")
        .y_desc("p99 us")
        .draw()?;

    for (index, (name, points)) in series.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        let style = ShapeStyle::from(colour).stroke_width(2);
        let left: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
        let right: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.2)).collect();
        throughput
            .draw_series(LineSeries::new(left.clone(), style))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
        throughput.draw_series(left.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
        latency.draw_series(LineSeries::new(right.clone(), style))?;
        latency.draw_series(right.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
    }
    throughput
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
