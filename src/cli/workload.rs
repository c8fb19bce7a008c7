//! `kv2pc workload`: a test tool, hidden from `--help`, that runs a concurrent bank
//! transfer workload on a data directory so that a test can kill the process at any
//! moment and then check what survived (`tests/process_kill.rs`).
//!
//! # What it does
//!
//! It opens the cluster in `--data-dir` on the real clock. If the directory has no
//! accounts yet it creates them, in one transaction: `acct/0` .. `acct/<A-1>` with a
//! balance of [`OPENING_BALANCE`] each, and `workload/accounts` = A, which records that
//! they exist (reopening with another `--accounts` is an error). Then `--clients` threads,
//! client `i` coordinated by node `i mod nodes`, each with its own PRNG seeded from
//! `--seed`, repeat a transfer: read `acct/<from>` and `acct/<to>`, write both, and write
//! the marker `xfer/<tid>` = `<from>,<to>,<amount>`, all in one transaction; a transfer
//! aborted (a deadlock victim, a NO vote) is retried as a new transaction. The amount is
//! 1 to 10, never more than the payer has, so balances stay non-negative.
//!
//! # What it prints
//!
//! For every commit acknowledged to a client, one line on standard output, flushed at
//! once: `committed <tid> <from> <to> <amount>` (the tid as `T<n>`). Whoever kills the
//! process knows exactly which commits were acknowledged before it died; a transfer in
//! flight at the kill may or may not have committed. The marker makes every transfer
//! verifiable afterwards: each acknowledged tid must have its marker, and the balances
//! must equal the opening balances plus the sum of all markers found (so no transfer is
//! half visible). Standard error gets one summary line at the end, and any error.
//!
//! It runs until `--transfers` transfers have committed, or without that option until
//! it is killed. `--checkpoint-bytes` lowers the log size that triggers a checkpoint, so
//! that kills also land in checkpoints. Exit status: 0 when done, 3 if the data directory cannot be used, 1 on
//! any other error (no error is expected while the process lives).

use crate::exit::Exit;
use kv2pc::rng::Rng;
use kv2pc::types::MAX_NODES;
use kv2pc::{Client, Cluster, CommitMode, Config, Error, Result};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every account's balance when the accounts are created.
pub const OPENING_BALANCE: i64 = 100;

/// The key recording that the accounts exist, and how many.
const ACCOUNTS_KEY: &str = "workload/accounts";

/// The largest amount of one transfer.
const MAX_AMOUNT: i64 = 10;

/// The workload's options.
#[derive(clap::Args, Debug)]
pub struct WorkloadArgs {
    /// The data directory (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Seeds the clients' choices of accounts and amounts.
    #[arg(long, value_name = "S")]
    seed: u64,
    /// Concurrent client threads.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    clients: u32,
    /// Accounts; a directory keeps the count it was created with.
    #[arg(long, value_name = "A", value_parser = clap::value_parser!(u32).range(2..=1000))]
    accounts: u32,
    /// Stop after this many committed transfers [default: run until killed].
    #[arg(long, value_name = "T")]
    transfers: Option<u64>,
    /// The number of nodes; a data directory keeps the count it was created with.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_NODES)))]
    nodes: u32,
    /// Checkpoint a node when its log passes this many bytes (small values make kills
    /// land in checkpoints) [default: the library's].
    #[arg(long, value_name = "BYTES")]
    checkpoint_bytes: Option<u64>,
    /// How coordinators commit: classic (the default) or parallel, as `SET commit`.
    #[arg(long, value_name = "MODE", value_parser = ["classic", "parallel"])]
    commit: Option<String>,
}

/// What the clients share: how many transfers were claimed and committed, and how
/// many attempts were aborted and retried.
#[derive(Default)]
struct Counts {
    claimed: AtomicU64,
    committed: AtomicU64,
    retries: AtomicU64,
}

/// One committed transfer.
struct Transfer {
    from: u32,
    to: u32,
    amount: i64,
}

/// Runs the workload as `args` ask.
pub fn run(args: &WorkloadArgs) -> Exit {
    let mut config = Config {
        nodes: args.nodes,
        manual_clock: false,
        ..Config::default()
    };
    if let Some(bytes) = args.checkpoint_bytes {
        config.settings.checkpoint_bytes = bytes;
    }
    if let Some(mode) = args.commit.as_deref().and_then(CommitMode::named) {
        config.settings.commit = mode;
    }
    let cluster = match Cluster::open(&args.data_dir, config) {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("kv2pc workload: {error}");
            return Exit::DataDir;
        }
    };
    if let Err(error) = open_accounts(&cluster, args.accounts) {
        eprintln!("kv2pc workload: creating the accounts: {error}");
        return Exit::Failed;
    }
    let counts = Counts::default();
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..args.clients)
            .map(|index| {
                let client = cluster.client(index % args.nodes);
                let counts = &counts;
                scope.spawn(move || {
                    let mut rng = client_rng(args.seed, index);
                    run_client(&client?, args, &mut rng, counts)
                })
            })
            .collect();
        (threads.into_iter())
            .map(|thread| thread.join().expect("a client thread panicked"))
            .collect()
    });
    let failed = results.iter().filter_map(|result| result.as_ref().err());
    let mut exit = Exit::Success;
    for error in failed {
        eprintln!("kv2pc workload: a client stopped: {error}");
        exit = Exit::Failed;
    }
    eprintln!(
        "kv2pc workload: {} transfers committed, {} retried after an abort",
        counts.committed.load(Ordering::SeqCst),
        counts.retries.load(Ordering::SeqCst)
    );
    exit
}

/// One client: claims a transfer, commits it (retrying aborts) and prints it, until the
/// limit is reached.
fn run_client(client: &Client, args: &WorkloadArgs, rng: &mut Rng, counts: &Counts) -> Result<()> {
    loop {
        let slot = counts.claimed.fetch_add(1, Ordering::SeqCst);
        if args.transfers.is_some_and(|limit| slot >= limit) {
            return Ok(());
        }
        let (tid, transfer) = commit_one(client, args.accounts, rng, &counts.retries)?;
        print_committed(&tid, &transfer)?;
        counts.committed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Creates the accounts in one transaction unless they exist; checks their count if so.
fn open_accounts(cluster: &Cluster, accounts: u32) -> Result<()> {
    let client = cluster.client(0)?;
    loop {
        let mut txn = client.begin()?;
        let result = match txn.get(ACCOUNTS_KEY) {
            Ok(Some(recorded)) if recorded == accounts.to_string() => return Ok(()),
            Ok(Some(recorded)) => {
                return Err(Error::InvalidInput(format!(
                    "the directory holds {recorded} accounts, not {accounts}; \
                     pass --accounts {recorded}"
                )));
            }
            Ok(None) => create_accounts(txn, accounts),
            Err(error) => Err(error),
        };
        match result {
            Err(Error::Aborted { .. }) => continue,
            other => return other,
        }
    }
}

fn create_accounts(mut txn: kv2pc::Transaction, accounts: u32) -> Result<()> {
    for account in 0..accounts {
        txn.put(&account_key(account), &OPENING_BALANCE.to_string())?;
    }
    txn.put(ACCOUNTS_KEY, &accounts.to_string())?;
    txn.commit()
}

/// Commits one random transfer, retrying it after aborts; returns its tid (`T<n>`).
fn commit_one(
    client: &Client,
    accounts: u32,
    rng: &mut Rng,
    retries: &AtomicU64,
) -> Result<(String, Transfer)> {
    loop {
        let from = rng.below(accounts as usize) as u32;
        let to = (from + 1 + rng.below(accounts as usize - 1) as u32) % accounts;
        let wanted = 1 + rng.below(MAX_AMOUNT as usize) as i64;
        loop {
            match try_transfer(client, from, to, wanted) {
                Ok(Some(committed)) => return Ok(committed),
                // The payer is empty: choose another pair.
                Ok(None) => break,
                Err(Error::Aborted { .. }) => {
                    retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// One attempt at a transfer: `None` if the payer has nothing to give.
fn try_transfer(
    client: &Client,
    from: u32,
    to: u32,
    wanted: i64,
) -> Result<Option<(String, Transfer)>> {
    let mut txn = client.begin_lazily();
    let from_balance = read_balance(&mut txn, from)?;
    let to_balance = read_balance(&mut txn, to)?;
    let amount = wanted.min(from_balance);
    if amount <= 0 {
        txn.abort()?;
        return Ok(None);
    }
    let tid = (txn.id())
        .ok_or_else(|| Error::InvalidInput("a transaction that read has no id".into()))?
        .to_string();
    txn.put(&account_key(from), &(from_balance - amount).to_string())?;
    txn.put(&account_key(to), &(to_balance + amount).to_string())?;
    txn.put(&format!("xfer/{tid}"), &format!("{from},{to},{amount}"))?;
    txn.commit()?;
    Ok(Some((tid, Transfer { from, to, amount })))
}

fn read_balance(txn: &mut kv2pc::Transaction, account: u32) -> Result<i64> {
    let key = account_key(account);
    let value = txn.get(&key)?;
    let value = value.ok_or_else(|| Error::InvalidInput(format!("{key} is missing")))?;
    value
        .parse()
        .map_err(|_| Error::InvalidInput(format!("{key} holds '{value}', not a balance")))
}

fn account_key(account: u32) -> String {
    format!("acct/{account}")
}

/// Prints an acknowledged commit and flushes it, so a killer sees it at once.
fn print_committed(tid: &str, transfer: &Transfer) -> Result<()> {
    let Transfer { from, to, amount } = transfer;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "committed {tid} {from} {to} {amount}")
        .and_then(|()| stdout.flush())
        .map_err(|error| Error::io("writing to standard output", error))
}

/// The generator of client `index` for `seed`: each client its own stream, the same for
/// the same seed on every run.
fn client_rng(seed: u64, index: u32) -> Rng {
    Rng::new(seed ^ u64::from(index).wrapping_mul(0xA076_1D64_78BD_642F))
}
