//! `DIAGRAM`: snapshots of the text charts (ASCII and Unicode) of a two-node commit, an
//! abort and a crash, in `tests/diagram/*.txt` (`UPDATE_SNAPSHOTS=1` rewrites them after
//! a deliberate change; review the diff), and the SVG form rendered with `resvg` to
//! prove that it is valid and draws something.

use kv2pc::shell::Shell;
use kv2pc::{Cluster, Config};
use std::path::Path;

/// A shell over a fresh three-node cluster on the manual clock, in `dir`.
fn shell(dir: &Path) -> Shell {
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.join("data"), config).unwrap());
    shell.set_base_dir(dir);
    shell
}

/// Runs lines that must succeed.
fn run(shell: &mut Shell, lines: &[&str]) {
    for line in lines {
        let output = shell.execute(line);
        assert!(!output.failed(), "{line}: {}", output.render(false));
    }
}

/// Compares `actual` with the snapshot `name`, or rewrites it with `UPDATE_SNAPSHOTS=1`.
fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/diagram/{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{name} differs from its snapshot");
}

/// Both text forms of `DIAGRAM tid` after `lines`, snapshotted as `name`.
fn check(name: &str, lines: &[&str], tid: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut shell = shell(dir.path());
    run(&mut shell, lines);
    for form in ["ASCII", "UNICODE"] {
        let output = shell.execute(&format!("DIAGRAM {tid} {form}"));
        assert!(!output.failed(), "{}", output.render(false));
        let text = output.render(false);
        if form == "ASCII" {
            assert!(text.is_ascii(), "{text}");
        } else {
            assert!(text.contains('│'), "{text}");
        }
        snapshot(&format!("{name}-{}", form.to_lowercase()), &text);
    }
}

const COMMIT: &[&str] = &["BEGIN", "PUT x 1", "PUT y 2", "COMMIT"];

#[test]
fn a_two_node_commit_is_drawn() {
    check("commit", COMMIT, "T1");
}

#[test]
fn an_abort_is_drawn() {
    check("abort", &["BEGIN", "PUT x 1", "PUT y 2", "ABORT"], "T1");
}

#[test]
fn a_crash_is_drawn_as_a_cross_and_the_lost_message_marked() {
    let lines = [
        "SET vote_timeout 1s",
        "CRASH node 2 AT prepare",
        "BEGIN",
        "PUT x 1",
        "PUT y 2",
        "COMMIT",
        "TICK 1s",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut shell = shell(dir.path());
    for line in lines {
        shell.execute(line);
    }
    for form in ["ASCII", "UNICODE"] {
        let text = shell.execute(&format!("DIAGRAM T1 {form}")).render(false);
        let cross = if form == "ASCII" { 'X' } else { '╳' };
        let crossed = (text.lines()).any(|line| {
            line.contains(cross) && line.trim_end().ends_with("node2  CRASHED at prepare")
        });
        assert!(crossed, "{text}");
        assert!(text.contains("(lost: node2 is down)"), "{text}");
        assert!(text.contains("outcome: T1 aborted"), "{text}");
        snapshot(&format!("crash-{}", form.to_lowercase()), &text);
    }
}

#[test]
fn diagram_alone_draws_the_last_command_and_not_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut shell = shell(dir.path());
    let empty = shell.execute("DIAGRAM");
    assert!(empty.failed(), "{}", empty.render(false));
    run(&mut shell, COMMIT);
    let first = shell.execute("DIAGRAM").render(false);
    assert!(first.contains("the last command: COMMIT"), "{first}");
    assert!(first.contains("PREPARE T1"), "{first}");
    assert_eq!(shell.execute("DIAGRAM").render(false), first);
    let unknown = shell.execute("DIAGRAM T99");
    assert!(unknown.failed());
}

/// The SVG parses, has the chart's text, and renders to pixels that are not all white.
#[test]
fn the_svg_renders_and_is_not_blank() {
    let dir = tempfile::tempdir().unwrap();
    let mut shell = shell(dir.path());
    run(&mut shell, &["CRASH node 1 AT commit"]);
    run(&mut shell, COMMIT);
    let output = shell.execute("DIAGRAM T1 TO \"t1 chart.svg\"");
    assert!(!output.failed(), "{}", output.render(false));
    assert!(
        output
            .render(false)
            .starts_with("wrote the chart of T1 to t1 chart.svg")
    );
    let svg = std::fs::read_to_string(dir.path().join("t1 chart.svg")).unwrap();
    for word in [
        "PREPARE",
        "VOTE YES",
        "Prepare (fsync)",
        "CRASHED",
        "Outcome: T1",
    ] {
        assert!(svg.contains(word), "the SVG lacks {word}");
    }
    let mut options = resvg::usvg::Options::default();
    // DIAGRAM_PNG=file.png keeps a picture to look at, with the system's fonts.
    let png = std::env::var_os("DIAGRAM_PNG");
    if png.is_some() {
        options.fontdb_mut().load_system_fonts();
    }
    let tree = resvg::usvg::Tree::from_str(&svg, &options).expect("valid SVG");
    let size = tree.size().to_int_size();
    assert!(size.width() > 600 && size.height() > 600, "{size:?}");
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    if let Some(png) = png {
        pixmap.save_png(png).unwrap();
    }
    let pixels = pixmap.pixels();
    let white = |p: &&resvg::tiny_skia::PremultipliedColorU8| {
        p.red() == 255 && p.green() == 255 && p.blue() == 255
    };
    let drawn = pixels.iter().filter(|p| !white(p)).count();
    assert!(drawn > 5_000, "only {drawn} pixels drawn");
    let red = (pixels.iter())
        .filter(|p| p.red() > 150 && p.green() < 100 && p.blue() < 100)
        .count();
    assert!(red > 100, "no red cross drawn ({red} red pixels)");
    let unwritable = shell.execute("DIAGRAM T1 TO \"no/such/dir/t1.svg\"");
    assert!(unwritable.render(false).contains("cannot write"));
}

/// What `DIAGRAM` reads, and what it says about what it cannot.
#[test]
fn diagram_commands_parse_and_their_mistakes_are_explained() {
    use kv2pc::shell::{Command, DiagramForm, parse_command};
    let parsed = parse_command("diagram t12 to 'my chart.svg'").unwrap();
    let expected = Command::Diagram {
        tid: Some(kv2pc::TxnId(12)),
        form: DiagramForm::Svg("my chart.svg".into()),
    };
    assert_eq!(parsed, expected);
    assert_eq!(parsed.to_string(), r#"DIAGRAM T12 TO "my chart.svg""#);
    for (line, message) in [
        (
            "DIAGRAM foo",
            "expected a transaction such as T4, ASCII, UNICODE",
        ),
        ("DIAGRAM T1 T2", "expected ASCII, UNICODE or TO"),
        ("DIAGRAM T1 ASCII x", "expected the end of the command"),
        ("DIAGRAM T0", "there is no transaction T0"),
        ("DIAGRAM TO", "expected a file path"),
    ] {
        let error = parse_command(line).expect_err(line);
        assert!(error.message.contains(message), "{line}: {}", error.message);
    }
}
