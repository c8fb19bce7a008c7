//! The explorer (`kv2pc::explore`): the clean protocol breaks no invariant in every run
//! of a two-participant commit with a crash of any node at any step.

use kv2pc::Settings;
use kv2pc::explore::{Bounds, Plan, SessionPlan, explore};
use kv2pc::sim::Command;

fn commit_x_y() -> Plan {
    Plan {
        sessions: vec![SessionPlan {
            name: "main".into(),
            home: 0,
            commands: vec![
                Command::Begin,
                Command::Write("x".into(), "1".into()),
                Command::Write("y".into(), "2".into()),
                Command::Commit,
            ],
        }],
    }
}

#[test]
fn a_two_participant_commit_with_one_crash_is_explored_completely_and_breaks_nothing() {
    let bounds = Bounds::default();
    let report = explore(&commit_x_y(), &bounds, &Settings::default(), &mut |_, _| {}).unwrap();
    eprintln!("{report}");
    assert!(report.violation.is_none(), "{report}");
    assert!(report.complete(), "{report}");
}
