//! Where a command's output goes: standard output, rendered for a reader or as JSON
//! lines, and the transcript being recorded. The prompt loop and the script runner both
//! hand every executed line to one [`Printer`], so `--json` and `--record` behave the
//! same in both.

use kv2pc::shell::transcript::{record_entry, record_header};
use kv2pc::shell::{Origin, Output};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How output is shown.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// One JSON object per outcome instead of text.
    pub json: bool,
    /// Colour the text (only ever on for a terminal).
    pub color: bool,
    /// Print each command line before its output, as a transcript writes it.
    pub echo: bool,
}

/// The comment a recording made on the real clock begins with, by which `kv2pc check`
/// explains why it may not replay.
pub const REAL_TIME_NOTE: &str =
    "# recorded on the real clock (--real-time): timeouts fired as time passed";

/// The comment a recording gets after a `SOURCE` that Ctrl-C stopped part way, which a
/// replay runs whole.
pub const STOPPED_SOURCE_NOTE: &str =
    "# Ctrl-C stopped the SOURCE above part way: a replay runs it whole";

/// Prints outputs and records them.
pub struct Printer {
    style: Style,
    recorder: Option<Recorder>,
}

impl Printer {
    /// A printer in `style`, recording to `recorder` if given.
    pub fn new(style: Style, recorder: Option<Recorder>) -> Printer {
        Printer { style, recorder }
    }

    /// Whether it colours the output.
    pub fn color(&self) -> bool {
        self.style.color
    }

    /// Shows the output of `line`. An error means standard output is gone (a closed
    /// pipe): the caller should stop. A failure to record is reported once on standard
    /// error, and recording stops.
    pub fn show(&mut self, line: &str, output: &Output) -> io::Result<()> {
        let mut text = String::new();
        if self.style.echo {
            text.push_str(&record_entry(line, &Output::default()));
        }
        text.push_str(&self.render(output));
        write_out(&text)?;
        self.record(line, output);
        Ok(())
    }

    /// Shows output that no command line produced (what Ctrl-C cancelled), without
    /// recording it: a replay has no line to produce it from.
    pub fn show_unrecorded(&self, output: &Output) -> io::Result<()> {
        write_out(&self.render(output))
    }

    /// `output` as this printer shows it: text (coloured or not) or JSON lines.
    pub fn render(&self, output: &Output) -> String {
        if self.style.json {
            output.to_json_lines()
        } else {
            output.render_located(self.style.color)
        }
    }

    /// Shows the output of a script's `line`: what it printed on standard output, and
    /// each error on standard error as `FILE:LINE: error: ...` from its outcome's origin
    /// (see `cli::script`); with `--echo`, the lines `SOURCE` read are shown before what
    /// they printed. In JSON the errors stay in their objects, as `show` prints them.
    pub fn show_script(&mut self, line: &str, output: &Output) -> io::Result<()> {
        if self.style.json {
            return self.show(line, output);
        }
        let mut stdout = io::stdout().lock();
        if self.style.echo {
            stdout.write_all(record_entry(line, &Output::default()).as_bytes())?;
        }
        let mut sourced = output.sourced.iter().peekable();
        for (index, outcome) in output.outcomes.iter().enumerate() {
            while let Some((_, origin)) = sourced.next_if(|(at, _)| *at <= index) {
                self.echo(&mut stdout, origin)?;
            }
            stdout.write_all(outcome.render_lines(false).as_bytes())?;
            if let Some(error) = &outcome.error {
                stdout.flush()?;
                let at = (outcome.origin.as_ref())
                    .map_or(String::new(), |o| format!("{}:{}: ", o.file, o.line));
                eprintln!("{at}error: {error}");
            }
        }
        for (_, origin) in sourced {
            self.echo(&mut stdout, origin)?;
        }
        stdout.flush()?;
        drop(stdout);
        self.record(line, output);
        Ok(())
    }

    /// With `--echo`, a line that `SOURCE` read, as the script's own lines are echoed.
    fn echo(&self, stdout: &mut impl Write, origin: &Origin) -> io::Result<()> {
        if self.style.echo {
            stdout.write_all(record_entry(&origin.text, &Output::default()).as_bytes())?;
        }
        Ok(())
    }

    /// Whether the session is being recorded (`--record`).
    pub fn recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// Writes `comment`, a `#` line, into the recording, if there is one.
    pub fn comment(&mut self, comment: &str) {
        if let Some(recorder) = &mut self.recorder {
            let _ = recorder.file.write_all(format!("{comment}\n").as_bytes());
        }
    }

    fn record(&mut self, line: &str, output: &Output) {
        let Some(recorder) = &mut self.recorder else {
            return;
        };
        if let Err(error) = recorder.record(line, output) {
            eprintln!(
                "kv2pc: warning: stopped recording to {}: {error}",
                recorder.path.display()
            );
            self.recorder = None;
        }
    }
}

fn write_out(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Writes the session as a transcript (see `kv2pc::shell::transcript`), one entry per
/// command line as it runs, so that what was recorded survives a crash of the process.
pub struct Recorder {
    file: File,
    path: PathBuf,
}

impl Recorder {
    /// Creates (or truncates) `path` and writes the header for a cluster of `nodes`,
    /// with [`REAL_TIME_NOTE`] if the session runs on the real clock.
    pub fn create(path: &Path, nodes: u32, real_time: bool) -> io::Result<Recorder> {
        let mut file = File::create(path)?;
        file.write_all(record_header(nodes).as_bytes())?;
        if real_time {
            file.write_all(format!("{REAL_TIME_NOTE}\n").as_bytes())?;
        }
        Ok(Recorder {
            file,
            path: path.to_path_buf(),
        })
    }

    fn record(&mut self, line: &str, output: &Output) -> io::Result<()> {
        self.file.write_all(record_entry(line, output).as_bytes())
    }
}
