use kv2pc::shell::Shell;
use kv2pc::{Cluster, Config};
use std::io::BufRead;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let cluster = Cluster::open(dir.path(), config).expect("open");
    let mut shell = Shell::new(cluster);
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("line");
        println!("> {line}");
        let output = shell.execute(&line);
        print!("{}", output.render(false));
        if output.quit {
            break;
        }
    }
}
