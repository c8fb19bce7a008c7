//! `kv2pc bench --quick` runs and its JSON report parses, with every workload at every
//! client count of the quick sweep. No timing is asserted: these machines are shared and
//! noisy, and the bench reports ratios for people to read, not for tests to judge.

use std::process::Command;

/// Runs `kv2pc bench` with `args` and returns its standard output; it must succeed.
fn bench(args: &[&str]) -> Vec<u8> {
    let output = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run kv2pc bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn the_quick_bench_runs_and_reports_json() {
    let stdout = bench(&["--quick", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON report");
    for limit in [
        "fsync_p50_us",
        "fsync_preallocated_p50_us",
        "round_trip_p50_us",
        "round_trip_parked_p50_us",
        "tcp_round_trip_p50_us",
    ] {
        let value = report["limits"][limit].as_f64();
        assert!(value.is_some_and(|us| us > 0.0), "{limit}: {value:?}");
    }
    let recovery = &report["recovery"];
    assert_eq!(recovery["records"].as_u64(), Some(100_000), "{recovery}");
    assert!(
        recovery["records_per_second"]
            .as_f64()
            .is_some_and(|rate| rate > 0.0),
        "{recovery}"
    );
    assert_eq!(
        recovery["after_checkpoint_records"].as_u64(),
        Some(0),
        "a checkpoint leaves nothing to replay: {recovery}"
    );
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 8 * 2, "every workload at 1 and 16 clients");
    for run in runs {
        assert!(
            run["operations"].as_u64().is_some_and(|ops| ops > 0),
            "{run}"
        );
        assert!(run["p50_us"].as_f64().is_some(), "{run}");
    }
    let names: Vec<&str> = runs
        .iter()
        .filter_map(|run| run["workload"].as_str())
        .collect();
    for workload in [
        "get",
        "read-only",
        "write-one",
        "cross-2",
        "cross-3",
        "read-mix",
        "hot-key",
        "get-hot",
    ] {
        assert!(
            names.contains(&workload),
            "{workload} missing from {names:?}"
        );
    }
}

/// `--deadlock` sets the policy of every run, and the JSON names it, at the top and in
/// each run; an unknown policy is a usage error that lists them.
#[test]
fn the_deadlock_policy_is_chosen_and_named() {
    let stdout = bench(&[
        "--workload",
        "hot-key",
        "--clients",
        "4",
        "--millis",
        "100",
        "--deadlock",
        "wait-die",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON report");
    assert_eq!(report["deadlock"], "wait-die", "{report}");
    assert_eq!(report["runs"][0]["deadlock"], "wait-die", "{report}");
    assert!(
        report["runs"][0]["operations"].as_u64() > Some(0),
        "{report}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .args(["bench", "--deadlock", "maybe"])
        .output()
        .expect("run kv2pc bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown deadlock policy 'maybe'; the policies are detect, wait-die"),
        "{stderr}"
    );
}

#[test]
fn the_recovery_measurement_runs_alone() {
    let stdout = bench(&["--workload", "recovery", "--recovery-records", "5000"]);
    let table = String::from_utf8_lossy(&stdout);
    assert!(table.contains("recovery: 5000 records"), "{table}");
}

#[test]
fn an_unknown_workload_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .args(["bench", "--workload", "nope"])
        .output()
        .expect("run kv2pc bench");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown workload 'nope'"));
}

/// The table the bench lays out itself: the limits, then a header and one row per run,
/// every row's columns starting where the header's do.
#[test]
fn the_table_has_a_row_per_run_under_its_header() {
    let stdout = bench(&[
        "--workload",
        "get",
        "--workload",
        "cross-2",
        "--clients",
        "1,4",
        "--millis",
        "100",
    ]);
    let text = String::from_utf8_lossy(&stdout);
    assert!(text.starts_with("limits: fsync p50 "), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let header = (lines.iter())
        .position(|line| line.starts_with("workload  commit   clients  ops/s"))
        .unwrap_or_else(|| panic!("no header in {text}"));
    assert!(lines[header].ends_with("aborts  lock waits"), "{text}");
    let rows = &lines[header + 1..];
    let names: Vec<&str> = rows.iter().filter_map(|r| r.split(' ').next()).collect();
    assert_eq!(names, ["get", "get", "cross-2", "cross-2"], "{text}");
    for title in ["clients", "ops/s", "p50 us", "aborts"] {
        let at = lines[header].find(title).expect("a column of the header");
        for row in rows {
            let (before, cell) = row.split_at(at);
            assert!(
                before.ends_with("  ") && cell.starts_with(|c: char| c.is_ascii_digit()),
                "{title} is not aligned in {text}"
            );
        }
    }
}

/// The text report names each run's commit mode in a column of its own, as the JSON
/// does, so that figures of the two modes are never read one for the other.
#[test]
fn the_table_names_the_commit_mode_of_each_run() {
    for mode in ["classic", "parallel"] {
        let stdout = bench(&[
            "--workload",
            "cross-2",
            "--clients",
            "1,4",
            "--millis",
            "100",
            "--commit",
            mode,
        ]);
        let text = String::from_utf8_lossy(&stdout);
        let lines: Vec<&str> = text.lines().collect();
        let header = (lines.iter())
            .position(|line| line.starts_with("workload "))
            .unwrap_or_else(|| panic!("no header in {text}"));
        let columns: Vec<&str> = lines[header].split_whitespace().collect();
        assert_eq!(columns[..3], ["workload", "commit", "clients"], "{text}");
        let rows = &lines[header + 1..];
        assert_eq!(rows.len(), 2, "{text}");
        for row in rows {
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells[..2], ["cross-2", mode], "{text}");
        }
    }
}

/// `--plot` draws the sweep: an SVG that an SVG renderer accepts, with a legend entry per
/// workload, written beside the table; the throughput it draws (per fsync time) is the
/// JSON's, which is ops/s times the run's preallocated fsync p50.
#[test]
fn the_plot_is_an_svg_with_a_line_per_workload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sweep.svg");
    let stdout = bench(&[
        "--workload",
        "get",
        "--workload",
        "cross-2",
        "--clients",
        "1,4",
        "--millis",
        "100",
        "--json",
        "--plot",
        path.to_str().expect("a UTF-8 path"),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON report");
    let fsync_s = report["limits"]["fsync_preallocated_p50_us"]
        .as_f64()
        .expect("fsync limit")
        / 1e6;
    for run in report["runs"].as_array().expect("runs") {
        let per_second = run["per_second"].as_f64().expect("per_second");
        let per_fsync = run["per_fsync_time"].as_f64().expect("per_fsync_time");
        assert!(
            (per_fsync - per_second * fsync_s).abs() <= 1e-9 * per_second.max(1.0),
            "{run}"
        );
    }
    let svg = std::fs::read_to_string(&path).expect("the plot was written");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    // plotters writes each text element's content on a line of its own.
    for text in ["get", "cross-2", "clients", "p99 latency (us)"] {
        assert!(
            svg.contains(&format!("\n{text}\n")),
            "no text '{text}' in the plot"
        );
    }
    let options = resvg::usvg::Options::default();
    resvg::usvg::Tree::from_str(&svg, &options).expect("a well-formed SVG");
}

/// A plot that cannot be written is a clear error, not a panic, and the figures the
/// run measured are printed all the same.
#[test]
fn a_plot_to_an_unwritable_path_is_a_clear_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .args([
            "bench",
            "--workload",
            "get",
            "--clients",
            "1",
            "--millis",
            "50",
            "--plot",
            "/nonexistent-dir/sweep.svg",
        ])
        .output()
        .expect("run kv2pc bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("kv2pc bench: ") && stderr.contains("/nonexistent-dir/sweep.svg"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("limits: fsync p50 ") && stdout.contains("\nget "),
        "the report is lost: {stdout}"
    );
}

/// From 32 clients the read-write workloads run pipelined (a few threads, many
/// transactions in flight each): they commit, in both commit modes, and each run names
/// its mode.
#[test]
fn pipelined_runs_commit_in_both_modes() {
    for mode in ["classic", "parallel"] {
        let stdout = bench(&[
            "--workload",
            "cross-2",
            "--workload",
            "hot-key",
            "--clients",
            "32",
            "--millis",
            "150",
            "--commit",
            mode,
            "--json",
        ]);
        let report: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON report");
        let runs = report["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2, "{report}");
        for run in runs {
            assert_eq!(run["commit"], mode, "{run}");
            assert_eq!(run["clients"].as_u64(), Some(32), "{run}");
            assert!(
                run["operations"].as_u64().is_some_and(|ops| ops > 0),
                "{run}"
            );
        }
    }
}

/// `--repeat 3 --commit classic,parallel` runs every point of the sweep in each mode three
/// times and reports one row per point: the JSON says how many rounds its figures are
/// the medians of, and names each run's mode; the table says so above its header.
#[test]
fn a_repeated_sweep_of_both_modes_reports_one_median_row_per_point() {
    let args = [
        "--workload",
        "write-one",
        "--clients",
        "1,2",
        "--millis",
        "60",
        "--commit",
        "classic,parallel",
        "--repeat",
        "3",
    ];
    let stdout = bench(&[&args[..], &["--json"]].concat());
    let report: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON report");
    assert_eq!(report["repeat"], 3, "{report}");
    let runs = report["runs"].as_array().expect("runs");
    let points: Vec<(String, u64)> = (runs.iter())
        .map(|run| {
            let commit = run["commit"].as_str().unwrap_or_default().to_string();
            (commit, run["clients"].as_u64().unwrap_or_default())
        })
        .collect();
    let expected = [
        ("classic", 1),
        ("classic", 2),
        ("parallel", 1),
        ("parallel", 2),
    ];
    let expected: Vec<(String, u64)> = (expected.iter())
        .map(|(mode, clients)| (mode.to_string(), *clients))
        .collect();
    assert_eq!(points, expected, "{report}");
    for run in runs {
        assert!(run["operations"].as_u64().unwrap_or_default() > 0, "{run}");
    }
    let text = String::from_utf8_lossy(&bench(&args)).to_string();
    assert!(
        text.contains("every figure is the median of 3 rounds of the sweep"),
        "{text}"
    );
}

/// `--repeat` takes a count from 1 up, and says so when given another.
#[test]
fn a_repeat_of_zero_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_kv2pc"))
        .args(["bench", "--repeat", "0"])
        .output()
        .expect("run kv2pc bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("0 is not in 1..=100"), "{stderr}");
}

/// `--transport embedded,processes` runs the sweep twice: on the embedded cluster, and
/// on `kv2pc node` processes it starts on loopback (and stops after), each run named
/// and measured against its own round trip (channels, then TCP); the table grows a
/// transport column.
#[test]
fn the_sweep_runs_over_node_processes_beside_the_embedded_cluster() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let args = [
        "--workload",
        "cross-2",
        "--clients",
        "1",
        "--millis",
        "200",
        "--transport",
        "embedded,processes",
        "--dir",
        dir_arg,
    ];
    let stdout = bench(&[&args[..], &["--json"]].concat());
    let report: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON report");
    let runs = report["runs"].as_array().expect("runs");
    let transports: Vec<&str> = (runs.iter())
        .filter_map(|run| run["transport"].as_str())
        .collect();
    assert_eq!(transports, ["embedded", "processes"], "{report}");
    for run in runs {
        assert!(run["operations"].as_u64() > Some(0), "{run}");
    }
    let tcp = report["limits"]["tcp_round_trip_p50_us"].as_f64();
    let over_tcp = runs[1]["p50_us"]
        .as_f64()
        .zip(tcp)
        .map(|(p50, rtt)| p50 / rtt);
    let ratio = runs[1]["p50_over_round_trip"].as_f64();
    assert!(
        over_tcp
            .zip(ratio)
            .is_some_and(|(want, got)| (want - got).abs() < 0.01 * want.max(1.0)),
        "the processes' p50/rtt is to the TCP round trip: {report}"
    );
    let text = String::from_utf8(bench(&args)).expect("utf-8");
    assert!(
        (text.lines()).any(|line| line.starts_with("workload  commit   clients  transport")),
        "{text}"
    );
    assert!(
        text.lines().any(|line| line.contains("processes")),
        "{text}"
    );
    // Every node process stopped with its cluster: the directories are unlocked and
    // nothing in them is still written.
    let leftover = std::process::Command::new("pgrep")
        .args(["-f", &format!("--data-dir {dir_arg}")])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned());
    if let Ok(pids) = leftover {
        assert!(
            pids.trim().is_empty(),
            "node processes left running: {pids}"
        );
    }
}
