//! Crash points: the named steps of two-phase commit at which `CRASH node N AT <point>`
//! kills a node. The state machines mark each point in their effect lists; the node
//! runtime dies there when the point is armed, after the forced records before it are on
//! disk and the messages before it are sent, and before anything after it happens.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A step of the protocol at which a node can be made to crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CrashPoint {
    /// Participant: PREPARE received, nothing logged. On disk: nothing for the transaction.
    Prepare,
    /// Participant: `Prepare` logged, vote not sent. On disk: Prepare.
    Vote,
    /// Participant: COMMIT received, not logged. On disk: Prepare.
    Commit,
    /// Participant: `Commit` logged, acknowledgement not sent. On disk: Prepare, Commit.
    Ack,
    /// Coordinator: every vote is in, the decision is not logged. On disk: nothing.
    Decide,
    /// Coordinator: `Decision` logged, nothing sent. On disk: Decision.
    Decision,
    /// Coordinator: the decision sent to the first participant only. On disk: Decision.
    Broadcast,
    /// Coordinator, parallel commits: the PREPAREs sent, `Staged` not logged. On disk:
    /// nothing for the transaction.
    Staging,
    /// Coordinator, parallel commits: every participant prepared and the client told
    /// COMMIT, the Decision not logged. On disk: Staged.
    Staged,
}

impl CrashPoint {
    /// Every point, in protocol order (classic first, then the parallel-commit points).
    pub const ALL: [CrashPoint; 9] = [
        CrashPoint::Prepare,
        CrashPoint::Vote,
        CrashPoint::Commit,
        CrashPoint::Ack,
        CrashPoint::Decide,
        CrashPoint::Decision,
        CrashPoint::Broadcast,
        CrashPoint::Staging,
        CrashPoint::Staged,
    ];

    /// The shell's name of the point.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::Prepare => "prepare",
            CrashPoint::Vote => "vote",
            CrashPoint::Commit => "commit",
            CrashPoint::Ack => "ack",
            CrashPoint::Decide => "decide",
            CrashPoint::Decision => "decision",
            CrashPoint::Broadcast => "broadcast",
            CrashPoint::Staging => "staging",
            CrashPoint::Staged => "staged",
        }
    }

    /// Whether only a parallel commit (`SET commit parallel`) passes the point; `decide`
    /// is classic's only, since a staged commit is decided by what is durable.
    pub fn is_parallel_only(self) -> bool {
        matches!(self, CrashPoint::Staging | CrashPoint::Staged)
    }

    /// Whether the point belongs to the participant role (else the coordinator's).
    pub fn is_participant(self) -> bool {
        matches!(
            self,
            CrashPoint::Prepare | CrashPoint::Vote | CrashPoint::Commit | CrashPoint::Ack
        )
    }

    /// One line saying where the node dies and what is on its disk then.
    pub fn describe(self) -> &'static str {
        match self {
            CrashPoint::Prepare => "participant: PREPARE received, nothing logged yet",
            CrashPoint::Vote => "participant: Prepare logged, vote not sent",
            CrashPoint::Commit => "participant: COMMIT received, not logged",
            CrashPoint::Ack => "participant: Commit logged, acknowledgement not sent",
            CrashPoint::Decide => "coordinator: all votes in, decision not logged",
            CrashPoint::Decision => "coordinator: Decision logged, nothing sent",
            CrashPoint::Broadcast => "coordinator: decision sent to the first participant only",
            CrashPoint::Staging => "coordinator (parallel): PREPAREs sent, Staged not logged yet",
            CrashPoint::Staged => {
                "coordinator (parallel): all prepared, client told, Decision not logged"
            }
        }
    }
}

/// The environment variable that makes the whole process abort at a protocol point, for
/// tests of real process deaths: `KV2PC_FAILPOINT=node1:vote`.
pub const FAILPOINT_VAR: &str = "KV2PC_FAILPOINT";

/// Reads a fail point written `node<N>:<point>`.
pub fn parse_failpoint(text: &str) -> crate::Result<(u32, CrashPoint)> {
    let wrong = || {
        crate::Error::InvalidInput(format!(
            "{FAILPOINT_VAR} must look like node1:vote (a node, a colon, a crash point), not '{text}'"
        ))
    };
    let (node, point) = text.trim().split_once(':').ok_or_else(wrong)?;
    let node = node
        .strip_prefix("node")
        .and_then(|n| n.parse().ok())
        .ok_or_else(wrong)?;
    Ok((node, point.parse()?))
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CrashPoint {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<CrashPoint> {
        CrashPoint::ALL
            .into_iter()
            .find(|point| point.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = CrashPoint::ALL.iter().map(|p| p.name()).collect();
                crate::Error::InvalidInput(format!(
                    "unknown crash point '{s}'; the points are {}",
                    names.join(", ")
                ))
            })
    }
}
