//! The workloads under SIGKILL: bank transfers checked for durability, atomicity and
//! the total (`transfers_survive_sigkills_*`), and a list-append history judged by
//! `kv2pc::history` (`list_appends_under_sigkills_*`), each in classic and in parallel
//! commit mode, over the processes of [`Launched`].

use crate::launched::{Launched, session};
use crate::{DEFAULT_SEED, NODES, RETRY_PAUSE, env_number, keys_on, poll};
use kv2pc::history::{self, History, Op, Outcome, Txn};
use kv2pc::rng::Rng;
use kv2pc::{Client, CommitMode, Error, TxnId};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

// ---- 1. Bank transfers ----------------------------------------------------------------

const OPENING: i64 = 100;

/// A transfer, as its marker records it: `from,to,amount`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Transfer {
    from: String,
    to: String,
    amount: i64,
}

impl Transfer {
    fn marker_value(&self) -> String {
        format!("{},{},{}", self.from, self.to, self.amount)
    }

    fn parse(value: &str) -> Option<Transfer> {
        let mut fields = value.split(',');
        let (from, to, amount) = (fields.next()?, fields.next()?, fields.next()?);
        Some(Transfer {
            from: from.into(),
            to: to.into(),
            amount: amount.parse().ok()?,
        })
    }
}

/// What a client was told of one transfer it attempted.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Told {
    Committed,
    /// Aborted for sure: the commit was refused, or never asked for.
    Aborted(String),
    /// The commit was asked for and its answer lost with a process.
    Unknown(String),
}

/// One attempted transfer: its marker key, what it moves, what its client was told.
#[derive(Debug)]
struct Attempt {
    marker: String,
    tid: Option<TxnId>,
    transfer: Transfer,
    told: Told,
}

/// One transfer in a transaction of its own on `client`'s node; `None` if it could not
/// begin (its coordinator is down).
fn transfer(
    client: &Client,
    accounts: &[String],
    marker: String,
    rng: &mut Rng,
) -> Option<Attempt> {
    let from = rng.below(accounts.len());
    let to = (from + 1 + rng.below(accounts.len() - 1)) % accounts.len();
    let transfer = Transfer {
        from: accounts[from].clone(),
        to: accounts[to].clone(),
        amount: 1 + rng.below(20) as i64,
    };
    let mut txn = client.begin().ok()?;
    let tid = txn.id();
    let mut attempt = Attempt {
        marker,
        tid,
        transfer,
        told: Told::Aborted(String::new()),
    };
    // Both accounts locked for update, in one order: transfers never deadlock.
    let mut balances = BTreeMap::new();
    let mut locked = [attempt.transfer.from.clone(), attempt.transfer.to.clone()];
    locked.sort();
    for account in locked {
        match txn.get_for_update(&account) {
            Ok(Some(value)) => {
                balances.insert(account, value.parse::<i64>().expect("a balance"));
            }
            Ok(None) => panic!("{tid:?}: account {account} is missing"),
            Err(error) => {
                attempt.told = Told::Aborted(format!("reading {account}: {error}"));
                return Some(attempt);
            }
        }
    }
    let Transfer { from, to, amount } = &attempt.transfer;
    let writes = [
        (from.clone(), (balances[from] - amount).to_string()),
        (to.clone(), (balances[to] + amount).to_string()),
        (attempt.marker.clone(), attempt.transfer.marker_value()),
    ];
    for (key, value) in writes {
        if let Err(error) = txn.put(&key, &value) {
            attempt.told = Told::Aborted(format!("writing {key}: {error}"));
            return Some(attempt);
        }
    }
    attempt.told = match txn.commit() {
        Ok(()) => Told::Committed,
        Err(error @ Error::Aborted { .. }) => Told::Aborted(error.to_string()),
        Err(error) => Told::Unknown(error.to_string()),
    };
    Some(attempt)
}

/// Creates the accounts, retrying until a commit is acknowledged.
fn open_accounts(run: &Launched, accounts: &[String]) {
    let client = run.cluster().client(0).expect("a client");
    let created = poll(Duration::from_secs(10), || {
        let mut txn = client.begin().map_err(|e| e.to_string())?;
        for account in accounts {
            txn.put(account, &OPENING.to_string())
                .map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())
    });
    if let Err(why) = created {
        run.fail(&format!("the accounts could not be created: {why}"));
    }
}

/// Checks the data against every attempt; the problems found.
fn check_bank(
    data: &BTreeMap<String, String>,
    accounts: &[String],
    attempts: &[Attempt],
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut markers: BTreeMap<&str, Transfer> = BTreeMap::new();
    let mut balances: BTreeMap<&str, i64> = BTreeMap::new();
    for (key, value) in data {
        if key.starts_with("xfer/") {
            match Transfer::parse(value) {
                Some(transfer) => {
                    markers.insert(key, transfer);
                }
                None => problems.push(format!("{key} holds {value:?}, not from,to,amount")),
            }
        } else if accounts.contains(key) {
            balances.insert(key, value.parse().unwrap_or(i64::MIN));
        } else {
            problems.push(format!("a stray key {key} = {value:?}"));
        }
    }
    let by_marker: BTreeMap<&str, &Attempt> =
        attempts.iter().map(|a| (a.marker.as_str(), a)).collect();
    for attempt in attempts {
        let found = markers.get(attempt.marker.as_str());
        match (&attempt.told, found) {
            (Told::Committed, None) => problems.push(format!(
                "durability: {} ({:?}) was acknowledged, and its marker is lost",
                attempt.marker, attempt.tid
            )),
            (Told::Aborted(why), Some(_)) => problems.push(format!(
                "{} ({:?}) was told aborted ({why}), yet its marker is there",
                attempt.marker, attempt.tid
            )),
            (_, Some(transfer)) if *transfer != attempt.transfer => problems.push(format!(
                "{} holds {transfer:?}, but its transfer was {:?}",
                attempt.marker, attempt.transfer
            )),
            _ => {}
        }
    }
    let mut expected: BTreeMap<&str, i64> =
        accounts.iter().map(|a| (a.as_str(), OPENING)).collect();
    for (marker, transfer) in &markers {
        if !by_marker.contains_key(marker) {
            problems.push(format!("{marker} was written by no attempt"));
        }
        match (
            expected.get(transfer.from.as_str()),
            expected.get(transfer.to.as_str()),
        ) {
            (Some(_), Some(_)) => {
                *expected.get_mut(transfer.from.as_str()).unwrap() -= transfer.amount;
                *expected.get_mut(transfer.to.as_str()).unwrap() += transfer.amount;
            }
            _ => problems.push(format!("{marker} names an unknown account: {transfer:?}")),
        }
    }
    if balances != expected {
        problems.push(format!(
            "atomicity: the balances {balances:?} are not the opening ones plus the {} \
             markers found, {expected:?}",
            markers.len()
        ));
    }
    let total: i64 = balances.values().sum();
    let opening = OPENING * accounts.len() as i64;
    if total != opening {
        problems.push(format!("the total is {total}, not {opening}"));
    }
    (problems, markers.len())
}

/// Transfers between accounts on every node, from three client threads, while node
/// processes are SIGKILLed and restarted: no acknowledged transfer is lost, none is
/// visible in part, the money is all there, and nothing is left in doubt or locked.
#[test]
fn transfers_survive_sigkills_of_node_processes() {
    transfers_under_kills(
        "transfers_survive_sigkills_of_node_processes",
        CommitMode::Classic,
    );
}

/// The same with parallel commits (`SET commit parallel`), whose staged transactions a
/// restarted coordinator resolves by asking its participants.
#[test]
fn transfers_survive_sigkills_with_parallel_commits() {
    transfers_under_kills(
        "transfers_survive_sigkills_with_parallel_commits",
        CommitMode::Parallel,
    );
}

fn transfers_under_kills(test: &'static str, commit: CommitMode) {
    let kills = env_number("KV2PC_PROCESS_KILLS", 10);
    let seed = env_number("KV2PC_PROCESS_SEED", DEFAULT_SEED);
    let started = Instant::now();
    let run = Launched::start(test, seed, kills, commit);
    let accounts: Vec<String> = (0..NODES).flat_map(|n| keys_on(n, "acct/", 2)).collect();
    open_accounts(&run, &accounts);
    let attempts: Vec<Attempt> = run
        .run_with_kills(3, |number, stop| {
            let cluster = run.cluster();
            let clients: Vec<Client> = (0..NODES).map(|n| cluster.client(n).unwrap()).collect();
            let mut rng = Rng::new(seed ^ (0x9e37_79b9 * (number as u64 + 1)));
            let mut attempts = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let Some(client) = session(&clients, cluster, &mut rng) else {
                    continue;
                };
                let marker = format!("xfer/c{number}.{}", attempts.len());
                let attempt = transfer(&client, &accounts, marker, &mut rng);
                if attempt.as_ref().is_none_or(|a| a.told != Told::Committed) {
                    std::thread::sleep(RETRY_PAUSE);
                }
                attempts.extend(attempt);
            }
            attempts
        })
        .into_iter()
        .flatten()
        .collect();
    let data = run.data();
    let (problems, markers) = check_bank(&data, &accounts, &attempts);
    let count = |pick: fn(&Told) -> bool| attempts.iter().filter(|a| pick(&a.told)).count();
    let acknowledged = count(|t| *t == Told::Committed);
    let unknown = count(|t| matches!(t, Told::Unknown(_)));
    if !problems.is_empty() {
        run.fail(&format!(
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        ));
    }
    if acknowledged < kills as usize {
        run.fail(&format!(
            "too few transfers acknowledged ({acknowledged}) for {kills} kills to mean much"
        ));
    }
    println!(
        "{commit:?} commits, {kills} SIGKILLs of node processes; {} transfers attempted, \
         {acknowledged} acknowledged and all present, {unknown} of unknown outcome, \
         {markers} committed in all; seed {seed}; {:.1?}",
        attempts.len(),
        started.elapsed()
    );
}

// ---- 2. A list-append history ---------------------------------------------------------

/// One attempt of a read-and-append transaction over 1 to 3 of `keys` (a fifth of them
/// only read), recorded for the checker; `None` if it could not begin.
fn append_attempt(
    client: &Client,
    keys: &[String],
    thread: usize,
    elems: &mut usize,
    rng: &mut Rng,
) -> Option<Txn> {
    let mut txn = client.begin().ok()?;
    let tid = txn.id().map(|tid| tid.to_string()).unwrap_or_default();
    let mut record = Txn::new(format!("c{thread}/{tid}"), Outcome::Unknown);
    let read_only = rng.chance(20);
    for key in pick_keys(keys, rng) {
        let read = match rng.chance(50) {
            true => txn.get_for_update(&key),
            false => txn.get(&key),
        };
        let value = match read {
            Ok(value) => value,
            Err(_) => {
                record.outcome = Outcome::Aborted;
                return Some(record);
            }
        };
        record.ops.push(Op::Read {
            key: key.clone(),
            list: history::parse_list(value.as_deref()),
        });
        if read_only {
            continue;
        }
        *elems += 1;
        let elem = format!("c{thread}.{elems}");
        if txn
            .put(&key, &history::appended(value.as_deref(), &elem))
            .is_err()
        {
            record.outcome = Outcome::Aborted;
            return Some(record);
        }
        record.ops.push(Op::Append { key, elem });
    }
    record.outcome = match txn.commit() {
        Ok(()) => Outcome::Committed,
        Err(Error::Aborted { .. }) => Outcome::Aborted,
        Err(_) => Outcome::Unknown,
    };
    Some(record)
}

/// A lock-free snapshot reading 1 to 3 of `keys`; it stops at a read that fails (a node
/// down, or a snapshot older than a restarted node keeps).
fn snapshot_attempt(client: &Client, keys: &[String], name: String, rng: &mut Rng) -> Txn {
    let snapshot = client.begin_read_only();
    let mut record = Txn::new(format!("{name}@{}", snapshot.read_ts()), Outcome::Committed);
    for key in pick_keys(keys, rng) {
        match snapshot.get(&key) {
            Ok(value) => record.ops.push(Op::Read {
                key,
                list: history::parse_list(value.as_deref()),
            }),
            Err(_) => break,
        }
    }
    snapshot.commit();
    record
}

fn pick_keys(keys: &[String], rng: &mut Rng) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    let count = 1 + rng.below(3);
    while chosen.len() < count {
        let key = rng.pick(keys);
        if !chosen.contains(key) {
            chosen.push(key.clone());
        }
    }
    chosen
}

/// Read-and-append transactions and snapshots over keys on every node, from three client
/// threads, while node processes are SIGKILLed and restarted: the recorded history is
/// serializable, and the final lists hold what each client was told committed, nothing
/// told aborted, and every unknown outcome whole or not at all.
#[test]
fn list_appends_under_sigkills_are_serializable() {
    list_appends_under_kills(
        "list_appends_under_sigkills_are_serializable",
        CommitMode::Classic,
    );
}

/// The same with parallel commits.
#[test]
fn list_appends_under_sigkills_with_parallel_commits_are_serializable() {
    let test = "list_appends_under_sigkills_with_parallel_commits_are_serializable";
    list_appends_under_kills(test, CommitMode::Parallel);
}

fn list_appends_under_kills(test: &'static str, commit: CommitMode) {
    let kills = env_number("KV2PC_PROCESS_KILLS", 10);
    let seed = env_number("KV2PC_PROCESS_SEED", DEFAULT_SEED);
    let started = Instant::now();
    let run = Launched::start(test, seed, kills, commit);
    let keys: Vec<String> = (0..NODES).flat_map(|n| keys_on(n, "list/", 2)).collect();
    let txns: Vec<Txn> = run
        .run_with_kills(3, |thread, stop| {
            let cluster = run.cluster();
            let clients: Vec<Client> = (0..NODES).map(|n| cluster.client(n).unwrap()).collect();
            let mut rng = Rng::new(seed ^ (0x51_7cc1 * (thread as u64 + 1)));
            let (mut txns, mut elems) = (Vec::new(), 0);
            while !stop.load(Ordering::SeqCst) {
                let Some(client) = session(&clients, cluster, &mut rng) else {
                    continue;
                };
                if rng.chance(15) {
                    let name = format!("c{thread}.{}/snapshot", txns.len());
                    txns.push(snapshot_attempt(&client, &keys, name, &mut rng));
                } else {
                    let txn = append_attempt(&client, &keys, thread, &mut elems, &mut rng);
                    if txn.as_ref().is_none_or(|t| t.outcome != Outcome::Committed) {
                        std::thread::sleep(RETRY_PAUSE);
                    }
                    txns.extend(txn);
                }
            }
            txns
        })
        .into_iter()
        .flatten()
        .collect();
    let lists: BTreeMap<String, Vec<String>> = (run.data().into_iter())
        .map(|(key, value)| (key, history::parse_list(Some(&value))))
        .collect();
    let mut final_read = Txn::new("final", Outcome::Committed);
    for key in &keys {
        final_read.ops.push(Op::Read {
            key: key.clone(),
            list: lists.get(key).cloned().unwrap_or_default(),
        });
    }
    let mut history = History { txns };
    history.txns.push(final_read);
    let mut problems = history::check_final(&history, &lists);
    if let Some(stray) = lists.keys().find(|key| !keys.contains(key)) {
        problems.push(format!("a stray key {stray}"));
    }
    let report = history::check(&history);
    if !report.is_serializable() {
        problems.push(format!("not serializable:\n{}", report.explain(&history)));
    }
    if !problems.is_empty() {
        run.fail(&problems.join("\n"));
    }
    let told = |outcome| history.txns.iter().filter(|t| t.outcome == outcome).count();
    let committed = told(Outcome::Committed);
    if committed < kills as usize {
        run.fail(&format!(
            "too few transactions committed ({committed}) to mean much"
        ));
    }
    println!(
        "{commit:?} commits, {kills} SIGKILLs; {} transactions recorded ({committed} \
         committed, {} aborted, {} unknown), serializable, final lists as told; seed {seed}; \
         {:.1?}",
        history.txns.len(),
        told(Outcome::Aborted),
        told(Outcome::Unknown),
        started.elapsed()
    );
}
