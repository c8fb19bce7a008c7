//! The teaching mistakes (`SET mistake`, `kv2pc::config::Mistake`), each proved on the
//! deterministic simulator: one concrete run, step by step, that breaks an invariant
//! with the mistake on, and the same steps with it off, which keep every invariant.
//!
//! A run is a setup that flows freely (a session's transaction up to its COMMIT), then
//! a list of steps written as `Sim::pending` prints them (`deliver n0->n1`, `fsync n1`,
//! `crash n1`, `tick`...). A listed step that is not pending is skipped: with the
//! mistake off, a message that waits for an fsync is not there to deliver yet. Then the
//! run settles (every node up, everything delivered and fsynced, time moved on until
//! nothing is in doubt) and is checked: what the session was told, what the data holds.
//!
//! The step lists are the shortest found by hand, for the explorer (`EXPLORE`) to know
//! how deep it must search: each test asserts how many of its steps the mistake's run
//! took (`taken`).

use kv2pc::config::{Mistake, Settings};
use kv2pc::error::Error;
use kv2pc::sim::{ClientId, Command, Response, Sim, SimConfig, Step};
use kv2pc::types::owner_of;
use std::time::Duration;

const NODES: u32 = 3;

/// The first key `k0`, `k1`... that node `node` owns.
fn key_on(node: u32) -> String {
    (0..)
        .map(|n| format!("k{n}"))
        .find(|key| owner_of(key, NODES) == node)
        .expect("some key lives on every node")
}

fn config(mistake: Option<Mistake>) -> SimConfig {
    SimConfig {
        nodes: NODES,
        settings: Settings {
            mistake,
            ..Settings::default()
        },
        ..SimConfig::default()
    }
}

/// Whether a step is one of the fault-free ones that let a run flow: deliveries,
/// clients, fsyncs and restarts.
fn flows(step: &Step) -> bool {
    matches!(
        step,
        Step::Deliver { .. } | Step::Client { .. } | Step::Fsync { .. } | Step::Restart { .. }
    )
}

/// Lets the run flow, without faults or time, until `done` or nothing flows.
fn flow_until(sim: &mut Sim, done: impl Fn(&Sim) -> bool) {
    for _ in 0..1000 {
        if done(sim) {
            return;
        }
        let Some(step) = sim.pending().into_iter().find(flows) else {
            return;
        };
        sim.apply(step).expect("a step of the real code");
    }
    panic!("the run never settled:\n{}", sim.trace().join("\n"));
}

/// Gives the session a command and flows until it is answered.
fn run(sim: &mut Sim, session: ClientId, command: Command) -> Result<Response, Error> {
    sim.command(session, command).expect("an idle session");
    flow_until(sim, |sim| !sim.busy(session));
    sim.told(session).expect("an answer")
}

/// Takes each listed step that is pending (by its printed name); returns how many.
fn play(sim: &mut Sim, steps: &[&str]) -> usize {
    let mut taken = 0;
    for name in steps {
        let step = sim.pending().into_iter().find(|s| s.to_string() == *name);
        if let Some(step) = step {
            sim.apply(step).expect("a step of the real code");
            taken += 1;
        }
    }
    taken
}

/// Ends the run: every node up, everything flowed, and time moved on (ticks) until
/// nothing is left over, or a bound.
fn settle(sim: &mut Sim) {
    for _ in 0..40 {
        flow_until(sim, |_| false);
        if sim.leftovers().is_empty() {
            return;
        }
        sim.apply(Step::Tick).expect("a tick");
    }
    panic!(
        "left over: {:?}\n{}",
        sim.leftovers(),
        sim.trace().join("\n")
    );
}

/// What a session was told of its commit.
#[derive(Debug, PartialEq, Eq)]
enum Told {
    Committed,
    Aborted,
    Unknown,
}

fn told(result: &Result<Response, Error>) -> Told {
    match result {
        Ok(_) => Told::Committed,
        Err(Error::Aborted { .. }) => Told::Aborted,
        Err(_) => Told::Unknown,
    }
}

/// A fresh cluster and a session at n0 with one transaction writing `v` to a key on n1
/// and one on n2, its COMMIT given and not yet sent. Returns the session and the keys.
fn two_node_write(sim: &mut Sim) -> (ClientId, [String; 2]) {
    let session = sim.add_session(0);
    let keys = [key_on(1), key_on(2)];
    run(sim, session, Command::Begin).expect("begun");
    for key in &keys {
        run(sim, session, Command::Write(key.clone(), "v".into())).expect("written");
    }
    sim.command(session, Command::Commit)
        .expect("an idle session");
    (session, keys)
}

/// Atomicity and durability of the two-key transaction: its writes are all there or
/// none, all if the session was told it committed, none if told it aborted. The
/// problems found, empty if none.
fn atomicity(sim: &Sim, told: &Told, keys: &[String]) -> Vec<String> {
    let data = sim.data();
    let present: Vec<bool> = keys.iter().map(|key| data.contains_key(key)).collect();
    let mut problems = Vec::new();
    if present.iter().any(|p| *p) && !present.iter().all(|p| *p) {
        problems.push(format!(
            "only part of the writes survived: {keys:?} {present:?}"
        ));
    }
    match told {
        Told::Committed if !present.iter().all(|p| *p) => {
            problems.push(format!("told committed, but a write is lost: {present:?}"))
        }
        Told::Aborted if present.iter().any(|p| *p) => {
            problems.push(format!("told aborted, but a write is there: {present:?}"))
        }
        _ => {}
    }
    problems
}

/// Runs `steps` after the two-key setup, with and without `mistake`; returns, for each,
/// the steps taken, what the session was told and the atomicity problems found.
fn two_node_run(
    mistake: Mistake,
    base: SimConfig,
    steps: &[&str],
) -> [(usize, Told, Vec<String>); 2] {
    [Some(mistake), None].map(|on| {
        let mut config = base.clone();
        config.settings.mistake = on;
        let mut sim = Sim::new(config, Vec::new()).expect("a simulated cluster");
        let (session, keys) = two_node_write(&mut sim);
        let taken = play(&mut sim, steps);
        settle(&mut sim);
        let result = sim.told(session).expect("the commit was answered");
        let told = told(&result);
        let problems = atomicity(&sim, &told, &keys);
        if on.is_some() && problems.is_empty() || on.is_none() && !problems.is_empty() {
            println!("{}", sim.trace().join("\n"));
        }
        (taken, told, problems)
    })
}

/// The phase-one steps every two-key run starts with: COMMIT reaches n0, which sends
/// PREPARE to n1 and n2.
const COMMIT_SENT: [&str; 2] = ["client c0", "deliver c0->n0"];

#[test]
fn vote_before_fsync_loses_a_committed_write() {
    let steps = [
        COMMIT_SENT.as_slice(),
        &[
            // n1 logs its Prepare and, with the mistake, votes before the fsync.
            "deliver n0->n1",
            "deliver n1->n0",
            // The Prepare was never durable: the crash loses it.
            "crash n1",
            "deliver n0->n2",
            "fsync n2",
            // Both YES: n0 decides COMMIT, durably, and tells the client.
            "deliver n2->n0",
            "fsync n0",
        ],
    ]
    .concat();
    let [on, off] = two_node_run(Mistake::VoteBeforeFsync, config(None), &steps);
    assert_eq!(
        on.0,
        steps.len(),
        "every step was taken with the mistake on"
    );
    assert_eq!(on.1, Told::Committed);
    assert!(
        on.2.iter().any(|p| p.contains("a write is lost")),
        "{:?}",
        on.2
    );
    assert!(off.2.is_empty(), "{:?}", off.2);
    assert_eq!(off.1, Told::Aborted, "the vote timed out with n1 down");
}

#[test]
fn commit_before_decision_fsync_breaks_atomicity() {
    let steps = [
        COMMIT_SENT.as_slice(),
        &[
            "deliver n0->n1",
            "fsync n1",
            "deliver n0->n2",
            "fsync n2",
            "deliver n1->n0",
            // The last vote: n0 logs its Decision and, with the mistake, sends COMMIT
            // before the fsync.
            "deliver n2->n0",
            "deliver n0->n1",
            // n2 dies before its COMMIT arrives, then n0, whose Decision was never
            // durable: restarted, n0 presumes abort, and n2, asking, is told ABORT,
            // where n1 committed.
            "crash n2",
            "crash n0",
        ],
    ]
    .concat();
    let [on, off] = two_node_run(Mistake::CommitBeforeDecisionFsync, config(None), &steps);
    assert_eq!(on.0, steps.len());
    assert_eq!(on.1, Told::Unknown, "n0 died before answering");
    assert!(on.2.iter().any(|p| p.contains("only part")), "{:?}", on.2);
    assert!(off.2.is_empty(), "{:?}", off.2);
}

#[test]
fn forget_in_doubt_loses_a_committed_write() {
    let steps = [
        COMMIT_SENT.as_slice(),
        &[
            "deliver n0->n1",
            "fsync n1",
            "deliver n0->n2",
            "fsync n2",
            "deliver n1->n0",
            "deliver n2->n0",
            // The Decision is durable: COMMIT leaves, and the client hears it.
            "fsync n0",
            // n2 dies in doubt, before its COMMIT arrives; restarted, it forgets.
            "crash n2",
        ],
    ]
    .concat();
    let [on, off] = two_node_run(Mistake::ForgetInDoubt, config(None), &steps);
    assert_eq!(on.0, steps.len());
    assert_eq!(on.1, Told::Committed);
    assert!(
        on.2.iter().any(|p| p.contains("a write is lost")),
        "{:?}",
        on.2
    );
    assert!(off.2.is_empty(), "{:?}", off.2);
    assert_eq!(off.1, Told::Committed);
}

#[test]
fn presume_commit_without_log_commits_an_aborted_transaction() {
    let steps = [
        COMMIT_SENT.as_slice(),
        &[
            "deliver n0->n1",
            "fsync n1",
            "deliver n1->n0",
            // n1 dies prepared; n2's vote never comes, and n0 times out: ABORT, which
            // n1 misses, and n0 forgets the transaction (presumed abort).
            "crash n1",
            "tick",
            "tick",
        ],
    ]
    .concat();
    let [on, off] = two_node_run(Mistake::PresumeCommitWithoutLog, config(None), &steps);
    assert_eq!(on.0, steps.len());
    assert_eq!(on.1, Told::Aborted);
    assert!(
        on.2.iter().any(|p| p.contains("told aborted")),
        "{:?}",
        on.2
    );
    assert!(off.2.is_empty(), "{:?}", off.2);
    assert_eq!(off.1, Told::Aborted);
}

#[test]
fn no_tombstone_commits_a_transaction_a_participant_aborted() {
    // Inquiries come before the vote timeout, so that an in-doubt participant asks its
    // peer while the coordinator still waits.
    let mut base = config(None);
    base.settings.vote_timeout = Duration::from_secs(10);
    let steps = [
        COMMIT_SENT.as_slice(),
        &[
            "deliver n0->n1",
            "fsync n1",
            "deliver n1->n0",
            // n1 is in doubt and asks n0 (still collecting: no answer) and its peer n2,
            // which has not seen PREPARE: n2 aborts and tells n1, which aborts.
            "tick",
            "tick",
            "deliver n1->n2",
            "deliver n2->n1",
            // The late PREPARE: with a tombstone n2 votes NO; without one, YES.
            "deliver n0->n2",
            "deliver n2->n0",
        ],
    ]
    .concat();
    let [on, off] = two_node_run(Mistake::NoTombstone, base, &steps);
    assert_eq!(on.0, steps.len());
    assert_eq!(on.1, Told::Committed);
    assert!(
        on.2.iter().any(|p| p.contains("a write is lost")),
        "{:?}",
        on.2
    );
    assert!(off.2.is_empty(), "{:?}", off.2);
    assert_eq!(off.1, Told::Aborted);
}

/// Gives the session a command and flows until it is answered, releasing the held
/// links if it cannot be answered without them.
fn run_releasing(sim: &mut Sim, session: ClientId, command: Command) -> Result<Response, Error> {
    sim.command(session, command).expect("an idle session");
    flow_until(sim, |sim| !sim.busy(session));
    if sim.busy(session) {
        for (from, to, _) in sim.held_links() {
            sim.release_link(from, to);
        }
        flow_until(sim, |sim| !sim.busy(session));
    }
    sim.told(session).expect("an answer")
}

/// What the write-skew run saw: T1's read of `a`, the snapshot's reads of `a` and `b`,
/// and whether T1 and T2 committed.
#[derive(Debug)]
struct Skew {
    t1_read_a: Option<String>,
    snapshot: (Option<String>, Option<String>),
    committed: (bool, bool),
    taken: usize,
}

impl Skew {
    /// T1 read `a` before T2 wrote it, so T1 precedes T2; T2's `a` in the snapshot then
    /// needs T1's `b` there too. The problems found, empty if none.
    fn problems(&self) -> Vec<String> {
        let (a, b) = &self.snapshot;
        let t1_first = self.t1_read_a.is_none();
        if self.committed == (true, true) && t1_first && a.is_some() && b.is_none() {
            return vec![format!(
                "not serializable: T1 read a before T2 wrote it (T1 -> T2), but a snapshot \
                 saw T2's a and not T1's b: {:?}",
                self
            )];
        }
        Vec::new()
    }
}

fn read_value(result: Result<Response, Error>) -> Option<String> {
    match result {
        Ok(Response::Read(value)) => value,
        other => panic!("a read answered {other:?}"),
    }
}

/// T1 (session at n0) reads `a` on n1 and writes `b` on n2; while its commit is in
/// flight (n2's YES held back), T2 (session at n1) writes `a` and commits, then reads
/// `a` and `b` in a snapshot.
fn write_skew(mistake: Option<Mistake>) -> (Skew, Sim) {
    let mut sim = Sim::new(config(mistake), Vec::new()).expect("a simulated cluster");
    let (t1, t2) = (sim.add_session(0), sim.add_session(1));
    let (a, b) = (key_on(1), key_on(2));
    run(&mut sim, t1, Command::Begin).expect("begun");
    let t1_read_a = read_value(run(&mut sim, t1, Command::Read(a.clone())));
    run(&mut sim, t1, Command::Write(b.clone(), "t1".into())).expect("written");
    sim.command(t1, Command::Commit).expect("an idle session");
    sim.hold_link(2, 0, "VOTE");
    let taken = play(
        &mut sim,
        &[
            "client c0",
            "deliver c0->n0",
            // n1 votes READ-ONLY; with the mistake it releases T1's read lock on a.
            "deliver n0->n1",
            "deliver n0->n2",
            "fsync n2",
        ],
    );
    run(&mut sim, t2, Command::Begin).expect("begun");
    run_releasing(&mut sim, t2, Command::Write(a.clone(), "t2".into())).expect("written");
    let t2_result = run_releasing(&mut sim, t2, Command::Commit);
    run(&mut sim, t2, Command::BeginSnapshot).expect("a snapshot");
    let snapshot_a = read_value(run_releasing(&mut sim, t2, Command::Read(a)));
    let snapshot_b = read_value(run_releasing(&mut sim, t2, Command::Read(b)));
    run(&mut sim, t2, Command::Commit).expect("the snapshot ends");
    for (from, to, _) in sim.held_links() {
        sim.release_link(from, to);
    }
    settle(&mut sim);
    let t1_result = sim.told(t1).expect("T1's commit was answered");
    let skew = Skew {
        t1_read_a,
        snapshot: (snapshot_a, snapshot_b),
        committed: (t1_result.is_ok(), t2_result.is_ok()),
        taken,
    };
    (skew, sim)
}

#[test]
fn release_read_locks_at_prepare_breaks_serializability() {
    let (on, sim) = write_skew(Some(Mistake::ReleaseReadLocksAtPrepare));
    let problems = on.problems();
    if problems.is_empty() {
        println!("{}", sim.trace().join("\n"));
    }
    assert_eq!(on.taken, 5);
    assert!(!problems.is_empty(), "{on:?}");
    let (off, sim) = write_skew(None);
    if !off.problems().is_empty() {
        println!("{}", sim.trace().join("\n"));
    }
    assert!(off.problems().is_empty(), "{off:?}");
    assert_eq!(off.committed, (true, true), "{off:?}");
    assert_eq!(off.snapshot.1.as_deref(), Some("t1"), "{off:?}");
}

/// The shell: `SET mistake` warns what rule it breaks, and while it is on the prompt
/// and every trace line say so; `SET mistake off` ends both.
#[test]
fn the_shell_marks_a_mistake_in_the_prompt_and_every_trace_line() {
    use kv2pc::shell::Shell;
    use kv2pc::{Cluster, Config};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Config {
        manual_clock: true,
        ..Config::default()
    };
    let mut shell = Shell::new(Cluster::open(dir.path(), config).expect("a cluster"));
    assert_eq!(shell.prompt(), "kv2pc[main]> ");
    let set = shell.execute("SET mistake vote-before-fsync").render(false);
    assert!(
        set.starts_with(
            "mistake = vote-before-fsync\nwarning: a deliberately broken protocol, \
             for teaching only: a participant may vote YES only once its Prepare record is \
             durable"
        ),
        "{set}"
    );
    assert_eq!(shell.prompt(), "kv2pc[main !mistake vote-before-fsync]> ");
    assert!(!shell.execute("TRACE ON; BEGIN").failed());
    assert_eq!(
        shell.prompt(),
        "kv2pc[main T1 !mistake vote-before-fsync]> "
    );
    let traced = shell.execute("PUT x 1; PUT y 2; COMMIT").render(false);
    let lines: Vec<&str> = (traced.lines())
        .filter(|line| !matches!(*line, "ok" | "committed"))
        .collect();
    assert!(lines.len() > 5, "{traced}");
    for line in &lines {
        assert!(
            line.starts_with("[!mistake vote-before-fsync] ") || line.starts_with("T1 committed"),
            "an unmarked trace line: {line}\n{traced}"
        );
    }
    let off = shell.execute("SET mistake off").render(false);
    assert_eq!(off, "mistake = off\n");
    assert_eq!(shell.prompt(), "kv2pc[main]> ");
    let traced = shell.execute("PUT c 3").render(false);
    assert!(!traced.contains("!mistake"), "{traced}");
    assert!(traced.lines().count() > 1, "{traced}");
}
