//! Power losses: a log on a simulated disk ([`SimDisk`]) that keeps only what was fsynced
//! and any subset of the sectors written since, and the torn shapes such a loss leaves
//! on a real file. After every power loss the log opens, keeps every record acknowledged
//! durable, holds a prefix of what was appended and no record half; damage to what was
//! fsynced is still refused.

use super::*;
use kv2pc::disk::{Disk, Open, SimDisk};
use std::sync::Arc;

/// A record unique to `id` and `generation` (records lost to a power loss are appended
/// again in a later generation, so a stale copy that came back would not compare equal),
/// `len` bytes of value long.
fn numbered(id: u64, generation: u64, len: usize) -> Record {
    let value = format!("{generation}:{}", "v".repeat(len));
    Record::OnePhaseCommit {
        tid: TxnId(id),
        writes: vec![(format!("k{id}"), Some(value))],
        commit_ts: id,
    }
}

/// The id of a record written by [`numbered`].
fn id_of(record: &Record) -> u64 {
    match record {
        Record::OnePhaseCommit { tid, .. } => tid.0,
        other => panic!("not a numbered record: {other:?}"),
    }
}

/// A checkpoint covering records `0..count`: its lease says how many.
fn covering(count: u64) -> Snapshot {
    Snapshot {
        data: Vec::new(),
        prepared: Vec::new(),
        decisions: Vec::new(),
        tid_lease: count,
        clock: count,
    }
}

/// What a test did to the log.
#[derive(Clone, Debug)]
enum Step {
    /// Append records of these value lengths, in one write, fsynced or not.
    Write(Vec<usize>, bool),
    /// Take a checkpoint.
    Checkpoint,
    /// The process dies (nothing lost) and the log is reopened.
    Crash,
    /// The next fsync fails; the write asks for one, then the process restarts.
    FailingSync(usize),
    /// The machine loses power (the choices made by the seed) and the log is reopened.
    PowerLoss(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (vec(0usize..300, 1..6), any::<bool>()).prop_map(|(lens, sync)| Step::Write(lens, sync)),
        1 => Just(Step::Checkpoint),
        1 => Just(Step::Crash),
        1 => (0usize..40).prop_map(Step::FailingSync),
        2 => any::<u64>().prop_map(Step::PowerLoss),
    ]
}

/// A log on a simulated disk, and what it must hold.
struct Model {
    disk: Arc<SimDisk>,
    wal: Option<Wal>,
    /// Every record appended, by id; ids past a power loss's survivors are forgotten.
    appended: Vec<Record>,
    /// How many of them were acknowledged durable (a flush with fsync, or a checkpoint,
    /// returned after they were appended).
    durable: usize,
    generation: u64,
}

const DIR: &str = "/data/node0";

impl Model {
    fn new(sector: usize) -> Model {
        let disk = Arc::new(SimDisk::with_sector_bytes(sector));
        let mut model = Model {
            disk,
            wal: None,
            appended: Vec::new(),
            durable: 0,
            generation: 0,
        };
        model.reopen().expect("a new log opens");
        model
    }

    fn wal(&mut self) -> &mut Wal {
        self.wal.as_mut().expect("the log is open")
    }

    /// Opens the log and checks what it recovered: a prefix of what was appended, every
    /// durable record included, each whole. Returns how many records it holds.
    fn reopen(&mut self) -> std::result::Result<usize, TestCaseError> {
        self.wal = None;
        let opened = Wal::open_on(self.disk.clone(), Path::new(DIR));
        let (mut wal, recovery) = opened.map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let covered = recovery.snapshot.as_ref().map_or(0, |s| s.tid_lease) as usize;
        let mut ids: Vec<u64> = (0..covered as u64).collect();
        ids.extend(recovery.records.iter().map(id_of));
        let count = ids.len();
        prop_assert_eq!(&ids, &(0..count as u64).collect::<Vec<_>>(), "not a prefix");
        prop_assert!(
            count >= self.durable,
            "lost durable records: {count} < {}",
            self.durable
        );
        prop_assert!(count <= self.appended.len(), "more records than appended");
        prop_assert_eq!(
            &recovery.records[..],
            &self.appended[covered..count],
            "a record differs"
        );
        wal.set_segment_bytes(700);
        self.wal = Some(wal);
        self.appended.truncate(count);
        self.durable = count;
        self.generation += 1;
        Ok(count)
    }

    fn write(&mut self, lens: &[usize], sync: bool) -> Result<()> {
        for len in lens {
            let record = numbered(self.appended.len() as u64, self.generation, *len);
            self.wal().append(&record)?;
            self.appended.push(record);
        }
        self.wal().flush(sync)?;
        if sync {
            self.durable = self.appended.len();
        }
        Ok(())
    }

    fn apply(&mut self, step: &Step) -> std::result::Result<(), TestCaseError> {
        match step {
            Step::Write(lens, sync) => self.write(lens, *sync).expect("write"),
            Step::Checkpoint => {
                let snapshot = covering(self.appended.len() as u64);
                self.wal().checkpoint(&snapshot).expect("checkpoint");
                self.durable = self.appended.len();
            }
            Step::Crash => {
                self.wal = None;
                self.disk.crash();
                let count = self.reopen()?;
                prop_assert_eq!(count, self.appended.len(), "a crash lost a written record");
            }
            Step::FailingSync(len) => {
                self.disk.fail_next_sync();
                prop_assert!(self.write(&[*len], true).is_err(), "the fsync did not fail");
                self.wal = None;
                self.disk.crash();
                self.reopen()?;
            }
            Step::PowerLoss(seed) => {
                self.wal = None;
                self.disk.power_loss(*seed);
                self.reopen()?;
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The whole power-loss model at once: random writes, fsyncs, checkpoints, crashes
    /// and power losses, each power loss keeping a random subset of unsynced sectors.
    #[test]
    fn every_power_loss_leaves_a_log_that_opens_with_every_durable_record(
        sector in prop_oneof![Just(512usize), Just(64), Just(16)],
        steps in vec(step(), 1..40),
        last in any::<u64>(),
    ) {
        let mut model = Model::new(sector);
        for step in &steps {
            model.apply(step)?;
        }
        model.apply(&Step::PowerLoss(last))?;
    }
}

/// A log of two synced records on the real disk, then one more written and not fsynced;
/// returns the directory, the segment's path and bytes, and where the unsynced write
/// starts and ends (its end marker included).
fn unsynced_last_append() -> (TempDir, PathBuf, Vec<u8>, usize, usize) {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    append_all(&mut wal, &every_kind()[..2], true);
    let start = wal.synced_len() as usize;
    append_all(&mut wal, &[numbered(7, 0, 37)], false);
    drop(wal);
    let path = dir.path().join("log.000001");
    let bytes = fs::read(&path).expect("segment");
    let end = bytes.iter().rposition(|b| *b != 0).expect("a marker") + 1;
    (dir, path, bytes, start, end)
}

#[test]
fn an_unsynced_append_that_reached_the_disk_as_its_header_and_end_marker_only_is_cut() {
    let (dir, path, mut bytes, start, end) = unsynced_last_append();
    // What LazyFS left: the frame header and the end marker, zeros between.
    bytes[start + FRAME..end - MARKER].fill(0);
    fs::write(&path, &bytes).expect("write the torn log");
    let (mut wal, recovery) = open(dir.path());
    assert_eq!(recovery.records, every_kind()[..2]);
    assert_eq!(recovery.warnings.len(), 1, "{:?}", recovery.warnings);
    let cut = format!("log.000001: cut a torn record at byte {start} (");
    assert!(
        recovery.warnings[0].contains(&cut),
        "{:?}",
        recovery.warnings
    );
    append_all(&mut wal, &every_kind()[2..3], true);
    drop(wal);
    let (_, again) = open(dir.path());
    assert_eq!(again.records, every_kind()[..3]);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}

#[test]
fn an_unsynced_write_whose_later_records_reached_the_disk_before_an_earlier_one_is_cut() {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    append_all(&mut wal, &every_kind()[..2], true);
    let start = wal.synced_len() as usize;
    append_all(&mut wal, &[numbered(7, 0, 37), numbered(8, 0, 5)], false);
    drop(wal);
    let path = dir.path().join("log.000001");
    let mut bytes = fs::read(&path).expect("segment");
    // The first record of the write never reached the disk; the second and the marker did.
    bytes[start..start + 10].fill(0);
    fs::write(&path, &bytes).expect("write the torn log");
    let (_, recovery) = open(dir.path());
    assert_eq!(recovery.records, every_kind()[..2]);
    let (_, again) = open(dir.path());
    assert_eq!(again.records, every_kind()[..2]);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}

#[test]
fn damage_to_a_synced_record_followed_by_records_written_after_a_later_fsync_is_refused() {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    append_all(&mut wal, &every_kind()[..2], true);
    let damaged = wal.synced_len() as usize;
    append_all(&mut wal, &every_kind()[2..3], true);
    append_all(&mut wal, &every_kind()[3..5], false);
    drop(wal);
    let path = dir.path().join("log.000001");
    let mut bytes = fs::read(&path).expect("segment");
    bytes[damaged + FRAME + 1] ^= 0x04;
    fs::write(&path, &bytes).expect("write the damaged log");
    let (file, offset, detail) = corrupt(Wal::open(dir.path()));
    assert_eq!((file, offset), (path.clone(), damaged as u64));
    assert!(
        detail.contains("yet a record or end marker written later in this segment follows")
            && detail.contains("the log is damaged, not cut short"),
        "{detail}"
    );
    assert_eq!(fs::read(&path).expect("read back"), bytes, "left as it was");
}

#[test]
fn a_rename_or_creation_is_lost_at_a_power_loss_unless_its_directory_is_fsynced() {
    let disk = SimDisk::new();
    let dir = Path::new("/d");
    disk.create_dir_all(dir).expect("mkdir");
    disk.sync_dir(Path::new("/")).expect("fsync the root");
    let (kept, lost, renamed) = (dir.join("kept"), dir.join("lost"), dir.join("renamed"));
    for path in [&kept, &lost] {
        let file = disk.open(path, Open::CreateNew).expect("create");
        file.write_at(b"data", 0).expect("write");
        file.sync_data().expect("fsync the file");
    }
    disk.sync_dir(dir).expect("fsync the directory");
    disk.rename(&lost, &renamed).expect("rename");
    let created = dir.join("created");
    let file = disk.open(&created, Open::CreateNew).expect("create");
    file.sync_data().expect("fsync the file, not the directory");
    assert!(disk.exists(&renamed) && disk.exists(&created));
    disk.power_loss(1);
    assert_eq!(disk.read(&kept).expect("kept"), b"data");
    assert_eq!(disk.read(&lost).expect("the rename was lost"), b"data");
    assert!(!disk.exists(&renamed) && !disk.exists(&created));
    assert!(
        file.write_at(b"x", 0).is_err(),
        "a handle of the dead process"
    );
    disk.rename(&lost, &renamed).expect("rename");
    disk.sync_dir(dir).expect("fsync the directory");
    disk.power_loss(2);
    assert!(disk.exists(&renamed) && !disk.exists(&lost));
}

#[test]
fn unsynced_sectors_are_kept_or_lost_each_on_its_own() {
    let disk = SimDisk::with_sector_bytes(4);
    let dir = Path::new("/d");
    disk.create_dir_all(dir).expect("mkdir");
    disk.sync_dir(Path::new("/")).expect("fsync the root");
    let path = dir.join("f");
    let file = disk.open(&path, Open::CreateNew).expect("create");
    file.write_at(b"aaaabbbb", 0).expect("write");
    file.sync_data().expect("fsync");
    disk.sync_dir(dir).expect("fsync the directory");
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let file = disk.open(&path, Open::Existing).expect("open");
        file.write_at(b"AAAABBBBCCCC", 0)
            .expect("write over and past the end");
        disk.power_loss(seed);
        let bytes = disk.read(&path).expect("the file is durable");
        let sectors: Vec<&[u8]> = bytes.chunks(4).collect();
        assert!(bytes.len() == 8 || bytes.len() == 12, "{bytes:?}");
        assert!([&b"aaaa"[..], b"AAAA"].contains(&sectors[0]), "{bytes:?}");
        assert!([&b"bbbb"[..], b"BBBB"].contains(&sectors[1]), "{bytes:?}");
        assert!(sectors.len() == 2 || [&b"\0\0\0\0"[..], b"CCCC"].contains(&sectors[2]));
        seen.insert(bytes.clone());
        let file = disk.open(&path, Open::Existing).expect("open");
        file.write_at(b"aaaabbbb", 0).expect("write");
        file.set_len(8).expect("cut");
        file.sync_data().expect("fsync");
    }
    assert!(
        seen.contains(b"aaaaBBBB".as_slice()),
        "a later sector alone: {seen:?}"
    );
    assert!(
        seen.contains(b"AAAAbbbb".as_slice()),
        "an earlier sector alone: {seen:?}"
    );
    assert!(seen.len() >= 6, "{seen:?}");
}

#[test]
fn a_log_in_a_new_directory_survives_a_power_loss_with_every_level_of_it() {
    let disk = Arc::new(SimDisk::new());
    let dir = Path::new("/data/cluster/node0");
    let (mut wal, _) = Wal::open_on(disk.clone(), dir).expect("open");
    append_all(&mut wal, &every_kind()[..1], true);
    drop(wal);
    for (seed, directory) in [
        (3, "/data"),
        (4, "/data/cluster"),
        (5, "/data/cluster/node0"),
    ] {
        disk.power_loss(seed);
        assert!(disk.is_durable(Path::new(directory)), "{directory}");
    }
    let (_, recovery) = Wal::open_on(disk.clone(), dir).expect("reopen");
    assert_eq!(recovery.records, every_kind()[..1]);
}

#[test]
fn segments_and_checkpoints_are_durable_once_they_are_used() {
    let disk = Arc::new(SimDisk::with_sector_bytes(16));
    let dir = Path::new("/node0");
    let (mut wal, _) = Wal::open_on(disk.clone(), dir).expect("open");
    wal.set_segment_bytes(1);
    for record in &every_kind()[..3] {
        append_all(&mut wal, std::slice::from_ref(record), true);
    }
    assert_eq!(wal.segment(), 3);
    wal.checkpoint(&snapshot()).expect("checkpoint");
    append_all(&mut wal, &every_kind()[3..5], true);
    drop(wal);
    for seed in 0..20 {
        disk.power_loss(seed);
        let (wal, recovery) = Wal::open_on(disk.clone(), dir).expect("reopen");
        assert_eq!(recovery.snapshot, Some(snapshot()), "seed {seed}");
        assert_eq!(recovery.records, every_kind()[3..5], "seed {seed}");
        drop(wal);
    }
}

#[test]
fn recovery_makes_durable_a_segment_whose_creation_a_crash_cut_short() {
    let disk = Arc::new(SimDisk::new());
    let dir = Path::new("/node0");
    let (mut wal, _) = Wal::open_on(disk.clone(), dir).expect("open");
    wal.set_segment_bytes(1);
    append_all(&mut wal, &every_kind()[..1], true);
    // The next write starts segment 2: its file is created and written, but its fsync
    // fails, so the directory fsync after it never comes; then the process dies.
    disk.fail_next_sync();
    wal.append(&every_kind()[1]).expect("append");
    assert!(wal.flush(true).is_err(), "the fsync did not fail");
    drop(wal);
    disk.crash();
    let (mut wal, recovery) = Wal::open_on(disk.clone(), dir).expect("reopen");
    assert_eq!((wal.segment(), recovery.records.len()), (2, 1));
    append_all(&mut wal, &every_kind()[2..3], true);
    drop(wal);
    disk.power_loss(0);
    let (_, recovery) = Wal::open_on(disk.clone(), dir).expect("reopen");
    let durable = [every_kind()[0].clone(), every_kind()[2].clone()];
    assert_eq!(recovery.records, durable, "an acknowledged record was lost");
}

#[test]
fn records_of_a_torn_write_left_past_the_cut_never_come_back() {
    let dir = tempdir();
    let (mut wal, _) = open(dir.path());
    append_all(&mut wal, &every_kind()[..1], true);
    let start = wal.synced_len() as usize;
    let (torn, stray) = (numbered(7, 0, 37), numbered(8, 0, 5));
    append_all(&mut wal, &[torn, stray], false);
    drop(wal);
    let stray_at = frame_starts(dir.path())[2];
    let path = dir.path().join("log.000001");
    let mut bytes = fs::read(&path).expect("segment");
    // The first record of the unsynced write did not reach the disk; the second did.
    bytes[start + FRAME..stray_at].fill(0);
    fs::write(&path, &bytes).expect("write the torn log");
    let (mut wal, recovery) = open(dir.path());
    assert_eq!(recovery.records, every_kind()[..1]);
    // The same record again, as long as the torn one, unsynced; it reaches the disk but
    // its end marker does not, so what was under the marker is still there.
    let segment = dir.path().join(format!("log.{:06}", wal.segment()));
    let resumed_at = wal.synced_len() as usize;
    let before = fs::read(&segment).expect("segment");
    append_all(&mut wal, &[numbered(7, 1, 37)], false);
    drop(wal);
    let mut after = fs::read(&segment).expect("segment");
    let marker_at = resumed_at + (stray_at - start);
    after[marker_at..marker_at + MARKER].copy_from_slice(&before[marker_at..marker_at + MARKER]);
    fs::write(&segment, &after).expect("write the log");
    let (_, recovery) = open(dir.path());
    let back: Vec<&Record> = recovery
        .records
        .iter()
        .filter(|r| **r == numbered(8, 0, 5))
        .collect();
    assert!(
        back.is_empty(),
        "a never-acknowledged record came back: {:?}",
        recovery.records
    );
}
