//! A simulated disk in memory that can lose power: deterministic, and as forgetful as a
//! real disk is allowed to be.
//!
//! # What a power loss keeps
//!
//! - **File data:** what the last fsync of the file ([`DiskFile::sync_data`]) covered, and
//!   of everything written since, *any subset of its sectors*, each sector independently
//!   as it was after any one of the writes to it since that fsync, or as it was before
//!   them (zeros in a part the file grew by). So a later sector of a write may reach the
//!   disk and an earlier one not, and two writes to one sector may leave the first.
//! - **File length:** the length at the last fsync or any length the file had since.
//! - **Names:** a creation, rename or removal only once its directory is fsynced
//!   ([`Disk::sync_dir`]); until then the directory holds what it held at its last fsync,
//!   and a file that no durable name reaches is gone. A directory made by
//!   [`Disk::create_dir_all`] likewise needs its parent fsynced. The disk starts with
//!   only its root `/` (and `""`, but use absolute paths: a directory in `""` is never
//!   fsynced by the log, which cannot name the working directory that way).
//!
//! A seed decides every choice ([`SimDisk::power_loss`]): the same seed after the same
//! operations gives the same disk. [`SimDisk::crash`] is a process death instead: nothing
//! is lost, since the page cache keeps every write, but unsynced writes stay unsynced and
//! a later power loss can still lose them.
//!
//! Both end the process that used the disk: every file handle opened before them fails
//! from then on, so a leftover syncer thread cannot make durable what a dead process
//! wrote. Give each node that crashes on its own its own `SimDisk`; share one among nodes
//! only if they crash and lose power together.
//!
//! Limits: the sector is [`SECTOR_BYTES`] (512 B; [`SimDisk::with_sector_bytes`] takes
//! another size, smaller to tear small records more often) and a sector is written whole
//! or not at all (no torn sector, no bit rot: damage is a test's to inject by hand).
//! Names and data are independent: a rename made durable by a directory fsync does not
//! make the renamed file's data durable, nor the other way round. All in memory: keep
//! files to a few MiB.

use super::{Disk, DiskFile, Open};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default sector size: the unit a power loss keeps or loses whole.
pub const SECTOR_BYTES: usize = 512;

/// A simulated disk, shared by every handle it gives out (`Send + Sync`, one lock).
#[derive(Debug)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

#[derive(Clone, Debug)]
struct State {
    sector: usize,
    /// Bumped by every crash and power loss; a handle from an older epoch is dead.
    epoch: u64,
    next_inode: u64,
    files: BTreeMap<u64, Inode>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    durable_dirs: BTreeSet<PathBuf>,
    fail_next_write: bool,
    fail_next_sync: bool,
}

/// One file's contents, as reads see them and as the disk surely holds them.
#[derive(Clone, Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// For each sector written since the last fsync, its contents after each write.
    versions: BTreeMap<usize, Vec<Vec<u8>>>,
    /// Every length the file had since the last fsync.
    lengths: Vec<u64>,
}

/// A file of a [`SimDisk`], alive until the next crash or power loss.
#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    inode: u64,
    epoch: u64,
}

impl Default for SimDisk {
    fn default() -> SimDisk {
        SimDisk::new()
    }
}

impl SimDisk {
    /// An empty disk with [`SECTOR_BYTES`] sectors.
    pub fn new() -> SimDisk {
        SimDisk::with_sector_bytes(SECTOR_BYTES)
    }

    /// An empty disk whose power losses keep or lose `sector` bytes at a time (at least 1).
    pub fn with_sector_bytes(sector: usize) -> SimDisk {
        let roots: BTreeSet<PathBuf> = ["/", ""].into_iter().map(PathBuf::from).collect();
        let state = State {
            sector: sector.max(1),
            epoch: 0,
            next_inode: 0,
            files: BTreeMap::new(),
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            dirs: roots.clone(),
            durable_dirs: roots,
            fail_next_write: false,
            fail_next_sync: false,
        };
        SimDisk {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// The process using the disk dies: every write survives (the page cache has it), but
    /// every open file handle is dead from now on.
    pub fn crash(&self) {
        self.state.lock().epoch += 1;
    }

    /// The machine loses power: the disk keeps what the module docs say, the choices made
    /// by `seed`, and every open file handle is dead from now on.
    pub fn power_loss(&self, seed: u64) {
        let mut state = self.state.lock();
        state.epoch += 1;
        let dirs: BTreeSet<PathBuf> = (state.dirs.iter())
            .filter(|dir| state.dir_survives(dir))
            .cloned()
            .collect();
        let names: BTreeMap<PathBuf, u64> = (state.durable_names.iter())
            .filter(|(path, _)| path.parent().is_some_and(|dir| dirs.contains(dir)))
            .map(|(path, inode)| (path.clone(), *inode))
            .collect();
        let sector = state.sector;
        let kept: BTreeSet<u64> = names.values().copied().collect();
        state.files.retain(|inode, _| kept.contains(inode));
        for (inode, file) in &mut state.files {
            file.lose_power(sector, |key, n| choose(seed, *inode, key, n));
        }
        state.durable_dirs = dirs.clone();
        state.dirs = dirs;
        state.durable_names = names.clone();
        state.names = names;
    }

    /// Makes the next file write fail as a full disk would, writing nothing.
    pub fn fail_next_write(&self) {
        self.state.lock().fail_next_write = true;
    }

    /// Makes the next fsync (of a file or a directory) fail as a failing disk would; what
    /// it should have made durable stays unsynced.
    pub fn fail_next_sync(&self) {
        self.state.lock().fail_next_sync = true;
    }

    /// A copy of the disk as it is now, sharing nothing with it: handles of this disk
    /// do not reach the copy (open its files again there). For an explorer that forks a
    /// simulated cluster.
    pub fn duplicate(&self) -> SimDisk {
        SimDisk {
            state: Arc::new(Mutex::new(self.state.lock().clone())),
        }
    }

    /// Whether `path` would still be there after a power loss: its name is durable.
    pub fn is_durable(&self, path: &Path) -> bool {
        let state = self.state.lock();
        state.durable_names.contains_key(path)
            || (state.durable_dirs.contains(path) && state.dir_survives(path))
    }
}

/// A choice in `0..n` decided by the seed and what is being chosen.
fn choose(seed: u64, inode: u64, key: u64, n: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    (seed, inode, key).hash(&mut hasher);
    (hasher.finish() % n as u64) as usize
}

impl State {
    /// Whether directory `dir` is reachable through durable entries from the top.
    fn dir_survives(&self, dir: &Path) -> bool {
        match dir.parent() {
            Some(parent) => self.durable_dirs.contains(dir) && self.dir_survives(parent),
            None => true,
        }
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if self.dirs.contains(parent) => Ok(()),
            _ => Err(not_found(path)),
        }
    }

    fn inode(&self, path: &Path) -> io::Result<u64> {
        if self.dirs.contains(path) {
            return Err(io::Error::new(ErrorKind::IsADirectory, "is a directory"));
        }
        self.names.get(path).copied().ok_or_else(|| not_found(path))
    }

    fn create(&mut self, path: &Path) -> u64 {
        let inode = self.next_inode;
        self.next_inode += 1;
        self.files.insert(inode, Inode::default());
        self.names.insert(path.to_path_buf(), inode);
        inode
    }

    fn file(&mut self, inode: u64) -> &mut Inode {
        self.files.entry(inode).or_default()
    }
}

fn not_found(path: &Path) -> io::Error {
    let message = format!("{} does not exist (simulated disk)", path.display());
    io::Error::new(ErrorKind::NotFound, message)
}

impl Inode {
    fn write(&mut self, sector: usize, bytes: &[u8], offset: usize) {
        let end = offset + bytes.len();
        if end > self.data.len() {
            self.data.resize(end, 0);
            self.lengths.push(end as u64);
        }
        self.data[offset..end].copy_from_slice(bytes);
        if !bytes.is_empty() {
            for index in offset / sector..=(end - 1) / sector {
                self.note_sector(sector, index);
            }
        }
    }

    fn set_len(&mut self, sector: usize, len: usize) {
        self.data.resize(len, 0);
        self.lengths.push(len as u64);
        self.note_sector(sector, len / sector);
    }

    /// Records sector `index`'s contents now as one it may be left with.
    fn note_sector(&mut self, sector: usize, index: usize) {
        let contents = padded(&self.data, sector, index);
        let versions = self.versions.entry(index).or_default();
        if versions.last() != Some(&contents) {
            versions.push(contents);
        }
    }

    fn sync(&mut self) {
        self.durable = self.data.clone();
        self.versions.clear();
        self.lengths.clear();
    }

    /// Keeps the durable bytes, a chosen length and, of each sector written since the
    /// last fsync, a chosen one of its versions (or the durable one).
    fn lose_power(&mut self, sector: usize, mut choose: impl FnMut(u64, usize) -> usize) {
        let mut lengths = vec![self.durable.len() as u64];
        lengths.extend(&self.lengths);
        let len = lengths[choose(u64::MAX, lengths.len())] as usize;
        let mut kept = std::mem::take(&mut self.durable);
        kept.resize(len, 0);
        for (index, versions) in &self.versions {
            let pick = choose(*index as u64, versions.len() + 1);
            let Some(contents) = pick.checked_sub(1).map(|i| &versions[i]) else {
                continue;
            };
            let start = index * sector;
            if start < len {
                let end = (start + sector).min(len);
                kept[start..end].copy_from_slice(&contents[..end - start]);
            }
        }
        self.data = kept;
        self.sync();
    }
}

/// Sector `index` of `data`, zero-padded to a whole sector.
fn padded(data: &[u8], sector: usize, index: usize) -> Vec<u8> {
    let start = (index * sector).min(data.len());
    let end = (start + sector).min(data.len());
    let mut contents = data[start..end].to_vec();
    contents.resize(sector, 0);
    contents
}

impl Disk for SimDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let mut missing: Vec<&Path> = dir.ancestors().collect();
        missing.reverse();
        for ancestor in missing {
            if state.names.contains_key(ancestor) {
                return Err(io::Error::new(ErrorKind::AlreadyExists, "a file is there"));
            }
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.state.lock().dirs.contains(path)
    }

    fn exists(&self, path: &Path) -> bool {
        let state = self.state.lock();
        state.dirs.contains(path) || state.names.contains_key(path)
    }

    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn DiskFile>> {
        let mut state = self.state.lock();
        state.check_parent(path)?;
        let existing = state.inode(path);
        let inode = match (how, existing) {
            (_, Err(e)) if e.kind() == ErrorKind::IsADirectory => return Err(e),
            (Open::Existing, result) => result?,
            (Open::CreateNew, Ok(_)) => {
                return Err(io::Error::new(ErrorKind::AlreadyExists, "the file exists"));
            }
            (Open::Truncate, Ok(inode)) => {
                let sector = state.sector;
                state.file(inode).set_len(sector, 0);
                inode
            }
            (_, Err(_)) => state.create(path),
        };
        let file = SimFile {
            state: self.state.clone(),
            inode,
            epoch: state.epoch,
        };
        Ok(Arc::new(file))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.state.lock();
        let inode = state.inode(path)?;
        Ok(state.file(inode).data.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.check_parent(to)?;
        let inode = state.inode(from)?;
        state.names.remove(from);
        state.names.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.inode(path)?;
        state.names.remove(path);
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let files = state.names.keys();
        let children = (files.chain(&state.dirs)).filter(|path| path.parent() == Some(dir));
        let names = children.filter_map(|path| path.file_name());
        Ok(names
            .map(|name| name.to_string_lossy().into_owned())
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        take_sync_fault(&mut state)?;
        let elsewhere = |path: &PathBuf| path.parent() != Some(dir);
        state.durable_names.retain(|path, _| elsewhere(path));
        state.durable_dirs.retain(elsewhere);
        let names: Vec<(PathBuf, u64)> = (state.names.iter())
            .filter(|(path, _)| !elsewhere(path))
            .map(|(path, inode)| (path.clone(), *inode))
            .collect();
        state.durable_names.extend(names);
        let dirs: Vec<PathBuf> = (state.dirs.iter())
            .filter(|d| !elsewhere(d))
            .cloned()
            .collect();
        state.durable_dirs.extend(dirs);
        Ok(())
    }
}

fn take_sync_fault(state: &mut State) -> io::Result<()> {
    if std::mem::take(&mut state.fail_next_sync) {
        return Err(io::Error::other(
            "input/output error (simulated fsync failure)",
        ));
    }
    Ok(())
}

impl SimFile {
    /// The disk's state, if the process that opened this file is still alive.
    fn live(&self) -> io::Result<parking_lot::MutexGuard<'_, State>> {
        let state = self.state.lock();
        if state.epoch != self.epoch {
            return Err(io::Error::other(
                "this file was opened before the simulated disk crashed or lost power: \
                 the process that opened it is gone",
            ));
        }
        Ok(state)
    }
}

impl DiskFile for SimFile {
    fn write_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.live()?;
        if std::mem::take(&mut state.fail_next_write) {
            let full = "no space left on device (simulated)";
            return Err(io::Error::new(ErrorKind::StorageFull, full));
        }
        let sector = state.sector;
        state.file(self.inode).write(sector, bytes, offset as usize);
        Ok(())
    }

    fn file_len(&self) -> io::Result<u64> {
        let mut state = self.live()?;
        Ok(state.file(self.inode).data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.live()?;
        let sector = state.sector;
        state.file(self.inode).set_len(sector, len as usize);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.live()?;
        take_sync_fault(&mut state)?;
        state.file(self.inode).sync();
        Ok(())
    }
}
