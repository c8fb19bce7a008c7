//! How a cluster is opened ([`Config`]) and the settings that can change while it runs
//! ([`Settings`], the shell's `SET`, described once by the table [`SETTINGS`]).

use std::time::Duration;

mod setting;

pub use setting::{Kind, SETTINGS, Setting, setting};

/// How deadlocks between lock waits are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeadlockPolicy {
    /// The default: a cluster-wide wait-for graph is checked whenever a request starts
    /// waiting; a cycle aborts its youngest transaction (the one begun last), whose client
    /// is told the cycle. Prepared transactions never wait, so they are never victims.
    Detect,
    /// Wait-die (prevention by age): a requester older than every transaction it would
    /// wait for waits; a younger one aborts ("dies") at once. Every wait then goes from
    /// older to younger, so no cycle can form.
    WaitDie,
    /// Wound-wait (prevention by age): an older requester aborts ("wounds") the younger
    /// transactions it would wait for, unless they are prepared; a younger requester
    /// waits. Every wait then goes from younger to older (or to a prepared transaction,
    /// which waits for nothing), so no cycle can form.
    WoundWait,
    /// No waiting at all: a request that conflicts aborts its transaction at once.
    NoWait,
    /// A request waits at most `lock_timeout` (checked at ticks), then aborts its
    /// transaction: deadlocks end, and so do long waits that were not deadlocks.
    Timeout,
    /// No handling: deadlocked transactions wait until one is aborted by hand. For
    /// demonstrating why detection is needed.
    Off,
}

impl DeadlockPolicy {
    /// Every policy, in the order `SET deadlock` lists them.
    pub const ALL: [DeadlockPolicy; 6] = [
        DeadlockPolicy::Detect,
        DeadlockPolicy::WaitDie,
        DeadlockPolicy::WoundWait,
        DeadlockPolicy::NoWait,
        DeadlockPolicy::Timeout,
        DeadlockPolicy::Off,
    ];

    /// The policy's name, as `SET deadlock` takes it.
    pub fn name(self) -> &'static str {
        match self {
            DeadlockPolicy::Detect => "detect",
            DeadlockPolicy::WaitDie => "wait-die",
            DeadlockPolicy::WoundWait => "wound-wait",
            DeadlockPolicy::NoWait => "no-wait",
            DeadlockPolicy::Timeout => "timeout",
            DeadlockPolicy::Off => "off",
        }
    }

    /// The policy named `name` (lower case), if there is one.
    pub fn named(name: &str) -> Option<DeadlockPolicy> {
        DeadlockPolicy::ALL
            .into_iter()
            .find(|policy| policy.name() == name)
    }
}

/// A deliberately broken variant of the protocol, switched in by `SET mistake NAME` for
/// teaching only: each one removes one rule the protocol's correctness rests on, so that
/// `EXPLORE` can show the run that breaks an invariant without it. The shell marks the
/// prompt and every trace line while one is on.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Mistake {
    /// A participant sends VOTE YES before its Prepare record is durable.
    VoteBeforeFsync,
    /// A coordinator sends COMMIT before its Decision record is durable.
    CommitBeforeDecisionFsync,
    /// A restarted participant drops a Prepare it finds with no outcome, instead of
    /// asking its coordinator.
    ForgetInDoubt,
    /// A coordinator that finds no record of a transaction answers an inquiry COMMIT
    /// instead of ABORT (presumed abort is the rule).
    PresumeCommitWithoutLog,
    /// A participant releases its shared (read) locks when it prepares.
    ReleaseReadLocksAtPrepare,
    /// A participant keeps no tombstone of an aborted transaction, so a late PREPARE of
    /// it votes YES.
    NoTombstone,
    /// A range read (SCAN) locks only the keys it found, not the range, so an insert
    /// into the range by another transaction does not wait: a phantom.
    NoRangeLocks,
}

impl Mistake {
    /// Every mistake, in the order `HELP` and `SET` list them.
    pub const ALL: [Mistake; 7] = [
        Mistake::VoteBeforeFsync,
        Mistake::CommitBeforeDecisionFsync,
        Mistake::ForgetInDoubt,
        Mistake::PresumeCommitWithoutLog,
        Mistake::ReleaseReadLocksAtPrepare,
        Mistake::NoTombstone,
        Mistake::NoRangeLocks,
    ];

    /// The mistake's name, as `SET mistake` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Mistake::VoteBeforeFsync => "vote-before-fsync",
            Mistake::CommitBeforeDecisionFsync => "commit-before-decision-fsync",
            Mistake::ForgetInDoubt => "forget-in-doubt",
            Mistake::PresumeCommitWithoutLog => "presume-commit-without-log",
            Mistake::ReleaseReadLocksAtPrepare => "release-read-locks-at-prepare",
            Mistake::NoTombstone => "no-tombstone",
            Mistake::NoRangeLocks => "no-range-locks",
        }
    }

    /// The mistake named `name` (lower case), if there is one.
    pub fn named(name: &str) -> Option<Mistake> {
        Mistake::ALL
            .into_iter()
            .find(|mistake| mistake.name() == name)
    }

    /// The rule of the protocol the mistake breaks, and what can go wrong without it,
    /// in one sentence (what `SET mistake` warns).
    pub fn breaks(self) -> &'static str {
        match self {
            Mistake::VoteBeforeFsync => {
                "a participant may vote YES only once its Prepare record is durable; without \
                 it a crash after the vote loses writes the coordinator then commits"
            }
            Mistake::CommitBeforeDecisionFsync => {
                "a coordinator may send COMMIT only once its Decision record is durable; \
                 without it a crash after the send lets it presume abort for a transaction \
                 that committed somewhere"
            }
            Mistake::ForgetInDoubt => {
                "a restarted participant must hold a Prepare with no outcome in doubt and \
                 ask; without it a transaction that committed elsewhere is aborted here"
            }
            Mistake::PresumeCommitWithoutLog => {
                "a coordinator with no record of a transaction must answer ABORT (presumed \
                 abort); without it a transaction aborted and forgotten commits here"
            }
            Mistake::ReleaseReadLocksAtPrepare => {
                "a participant must hold its read locks until the outcome, which carries \
                 the commit timestamp; without it a writer can commit below a reader that \
                 precedes it, and a snapshot sees the two out of order"
            }
            Mistake::NoTombstone => {
                "a participant that aborted a transaction must refuse its late PREPARE; \
                 without the tombstone it votes YES and the transaction commits without \
                 the writes it lost here"
            }
            Mistake::NoRangeLocks => {
                "a range read must lock the range, not only the keys it found; without it \
                 an insert into the range does not wait: a phantom"
            }
        }
    }
}

/// How a coordinator commits a transaction with two or more participants.
///
/// Classic is the default, since it is what the lessons teach; parallel is the faster
/// variant of issue 14 (see `coordinator`'s "Parallel commits").
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum CommitMode {
    /// Two-phase commit: PREPARE, every Prepare forced, then the coordinator's forced
    /// `Decision`, and only then the client hears COMMIT: two forced writes in sequence.
    #[default]
    Classic,
    /// Parallel commits: the coordinator forces a `Staged` record naming the
    /// participants while the PREPAREs go out; the transaction is committed once every
    /// participant's Prepare and the `Staged` record are durable, and the client hears
    /// so then; the `Decision` follows off the client's path.
    Parallel,
}

impl CommitMode {
    /// Both modes, in the order `SET commit` lists them.
    pub const ALL: [CommitMode; 2] = [CommitMode::Classic, CommitMode::Parallel];

    /// The mode's name, as `SET commit` and `--commit` take it.
    pub fn name(self) -> &'static str {
        match self {
            CommitMode::Classic => "classic",
            CommitMode::Parallel => "parallel",
        }
    }

    /// The mode named `name` (lower case), if there is one.
    pub fn named(name: &str) -> Option<CommitMode> {
        CommitMode::ALL.into_iter().find(|mode| mode.name() == name)
    }
}

/// Settings the nodes read while running (each described by [`SETTINGS`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// How long a coordinator waits for votes before it aborts.
    pub vote_timeout: Duration,
    /// How often an in-doubt participant asks its coordinator again.
    pub inquiry_interval: Duration,
    /// How deadlocks are handled.
    pub deadlock: DeadlockPolicy,
    /// How long a lock wait may last under `SET deadlock timeout` before it aborts.
    pub lock_timeout: Duration,
    /// A node checkpoints automatically when its log grows past this many bytes.
    pub checkpoint_bytes: u64,
    /// Whether step mode may drop a queued message (`SET network lossy`): off, the
    /// network is reliable, as the problem statement assumes.
    pub lossy: bool,
    /// The protocol mistake switched in for teaching (`SET mistake`), if any: `None`
    /// is the correct protocol.
    pub mistake: Option<Mistake>,
    /// How a coordinator commits across two or more participants (`SET commit`).
    pub commit: CommitMode,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            vote_timeout: Duration::from_secs(1),
            inquiry_interval: Duration::from_secs(1),
            deadlock: DeadlockPolicy::Detect,
            lock_timeout: Duration::from_secs(1),
            checkpoint_bytes: 64 * 1024 * 1024,
            lossy: false,
            mistake: None,
            commit: CommitMode::Classic,
        }
    }
}

/// How to open a cluster.
#[derive(Clone, Debug)]
pub struct Config {
    /// The number of nodes, 1 to 64. Recorded in the data directory's manifest; reopening
    /// with another count is an error.
    pub nodes: u32,
    /// Whether timeouts run on a manual clock (scripts, tests) or real time.
    pub manual_clock: bool,
    /// The initial settings.
    pub settings: Settings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nodes: 3,
            manual_clock: false,
            settings: Settings::default(),
        }
    }
}
