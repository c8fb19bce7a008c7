//! `kv2pc --connect` to `kv2pc node` processes that the test starts, and kills, by hand:
//! a node killed from outside is down for the shells until it is started again.

use crate::support::{
    Nodes, all_up, begun, error_at, failed_lines, key_on, one_at_a_time, output_of, read_back,
    said, state_and_in_doubt,
};

/// Three `kv2pc node` processes started by hand; a `--connect` shell commits. One is
/// killed with SIGKILL from outside: the next `--connect` shell shows it down at its
/// address and why, refuses `RESTART` (it has no launcher) saying what to do instead,
/// and serves the other nodes. Started again with the same command line, the node
/// recovers, and a third shell finds the committed data and every node up.
#[test]
fn a_node_killed_by_hand_is_down_for_connect_shells_until_it_is_started_again_by_hand() {
    let _one_at_a_time = one_at_a_time();
    let mut nodes = Nodes::start();
    let (k0, k1, k2) = (key_on(0, "k"), key_on(1, "k"), key_on(2, "k"));
    let first = nodes.connect(&format!(
        "BEGIN\nPUT {k0} zero\nPUT {k1} one\nPUT {k2} two\nCOMMIT\n"
    ));
    let tid = begun(&output_of(&first, "BEGIN", 1));
    said(
        &first,
        "COMMIT",
        1,
        &[format!("{tid} committed on nodes 0, 1, 2")],
    );

    nodes.kill(1);
    let one = nodes.addr(1).to_string();
    let second = nodes.connect(&format!(
        "STATUS\nRESTART node 1\nPUT {k1} again\nGET {k0}\n"
    ));
    let status = output_of(&second, "STATUS", 1);
    assert_eq!(state_and_in_doubt(&status, 1).0, "DOWN", "{status:#?}");
    let why = (status.iter())
        .find_map(|line| line.strip_prefix("node 1 is down: "))
        .unwrap_or_else(|| panic!("no reason in {status:#?}"));
    let unreachable = format!(
        "its process at {one} cannot be reached (dialling node 1 at {one}: Connection refused"
    );
    assert!(
        why.starts_with(&unreachable) && why.ends_with("is it running?"),
        "{why}"
    );
    assert_eq!(
        error_at(&second, 2),
        "node 1 runs in a process this shell did not start: start it again with its `kv2pc \
         node` command (the shell reconnects to it by itself)"
    );
    let refused = error_at(&second, 3);
    assert!(
        refused.starts_with(&format!("node 1 is down: its process at {one} ")),
        "{refused}"
    );
    read_back(&second, &k0, 1, Some("zero"));
    assert_eq!((second.code, failed_lines(&second, 4)), (1, vec![2, 3]));

    nodes.spawn(1);
    nodes.wait_ready(1, 2);
    nodes.wait_for(1, "recovered 2 log records", 1);
    let third = nodes.connect(&format!("STATUS\nGET {k0}\nGET {k1}\nGET {k2}\n"));
    assert_eq!(third.code, 0, "{}\n{}", third.stdout, third.stderr);
    all_up(&output_of(&third, "STATUS", 1));
    for (key, value) in [(&k0, "zero"), (&k1, "one"), (&k2, "two")] {
        read_back(&third, key, 1, Some(value));
    }
    assert!(nodes.panics().is_empty(), "{:#?}", nodes.panics());
}
