//! The machine's limits, measured in the same run as the workloads, so that every figure
//! can be read as a multiple of what the hardware allows right now.
//!
//! - **fsync** of a small append, twice: to a file that grows with every append (the
//!   inode's size must be synced too), and to a file whose blocks were written and
//!   synced beforehand, so the fsync has only data to write. The second is the floor
//!   under a log that preallocates its segments.
//! - **Channel round trip** between two threads over crossbeam channels, twice: back to
//!   back (the echo thread is still spinning when the next request arrives, so no thread
//!   ever sleeps), and with a pause before each trip, so the echo thread has parked and
//!   must be woken, as a node thread waiting for work is. The second is what one
//!   request to an idle node costs at the least.
//! - **TCP round trip on loopback** of a small frame to an echo thread, with a pause
//!   before each as above: what one request to an idle node process costs at the least,
//!   the floor of the runs over node processes (`--transport processes`).

use super::Latencies;
use crate::error::{Error, Result};
use serde::Serialize;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The machine's limits, measured in the same run.
#[derive(Clone, Debug, Serialize)]
pub struct Limits {
    /// fsync of a small append that grows the file, median, microseconds.
    pub fsync_p50_us: f64,
    /// The same, 99th percentile.
    pub fsync_p99_us: f64,
    /// fsync of a small write over bytes already written and synced, median, µs.
    pub fsync_preallocated_p50_us: f64,
    /// A round trip between two threads whose receiver is already awake, median, µs.
    pub round_trip_p50_us: f64,
    /// A round trip to a thread that has parked waiting for work, median, µs.
    pub round_trip_parked_p50_us: f64,
    /// A round trip of a small frame over a loopback TCP connection to a thread that
    /// has parked waiting for it, median, µs.
    pub tcp_round_trip_p50_us: f64,
}

/// fsyncs probed per kind.
const FSYNCS: usize = 200;
/// Bytes per probed append: about a small log record.
const APPEND: [u8; 64] = [7u8; 64];

/// Measures the limits, using `dir` for the probe files.
pub fn measure(dir: &Path) -> Result<Limits> {
    let growing = probe_fsync(&dir.join("fsync-growing"), false)?;
    let preallocated = probe_fsync(&dir.join("fsync-preallocated"), true)?;
    let hot = round_trips(20_000, Duration::ZERO)?;
    let parked = round_trips(400, Duration::from_micros(200))?;
    let tcp = tcp_round_trips(400, Duration::from_micros(200))?;
    Ok(Limits {
        fsync_p50_us: growing.percentile_us(0.5),
        fsync_p99_us: growing.percentile_us(0.99),
        fsync_preallocated_p50_us: preallocated.percentile_us(0.5),
        round_trip_p50_us: hot.percentile_us(0.5),
        round_trip_parked_p50_us: parked.percentile_us(0.5),
        tcp_round_trip_p50_us: tcp.percentile_us(0.5),
    })
}

fn probe_fsync(path: &Path, preallocate: bool) -> Result<Latencies> {
    let failed = |e| Error::io(format!("probing fsync with {}", path.display()), e);
    let mut file = File::create(path).map_err(failed)?;
    if preallocate {
        file.write_all(&vec![0u8; APPEND.len() * FSYNCS])
            .and_then(|()| file.sync_all())
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .map_err(failed)?;
    }
    let mut samples = Latencies::new()?;
    for _ in 0..FSYNCS {
        let start = Instant::now();
        file.write_all(&APPEND)
            .and_then(|()| file.sync_data())
            .map_err(failed)?;
        samples.record(start.elapsed());
    }
    Ok(samples)
}

/// `count` round trips to an echo thread, pausing `pause` before each.
fn round_trips(count: usize, pause: Duration) -> Result<Latencies> {
    let mut trips = Latencies::new()?;
    let (ping, pong) = (
        crossbeam::channel::bounded::<u64>(1),
        crossbeam::channel::bounded::<u64>(1),
    );
    let echo = std::thread::spawn(move || {
        while let Ok(n) = ping.1.recv() {
            if pong.0.send(n).is_err() {
                break;
            }
        }
    });
    for n in 0..count as u64 {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        let start = Instant::now();
        if ping.0.send(n).is_err() || pong.1.recv().is_err() {
            break;
        }
        trips.record(start.elapsed());
    }
    drop(ping.0);
    let _ = echo.join();
    Ok(trips)
}

/// `count` round trips of a 64-byte frame to an echo thread over loopback TCP (no
/// Nagle delay), pausing `pause` before each.
fn tcp_round_trips(count: usize, pause: Duration) -> Result<Latencies> {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    let failed = |e| Error::io("probing a loopback TCP round trip", e);
    let listener = TcpListener::bind("127.0.0.1:0").map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut frame = [0u8; 64];
        loop {
            match stream.read_exact(&mut frame) {
                Ok(()) => stream.write_all(&frame)?,
                Err(_) => return Ok(()),
            }
        }
    });
    let mut stream = TcpStream::connect(addr).map_err(failed)?;
    stream.set_nodelay(true).map_err(failed)?;
    let mut trips = Latencies::new()?;
    let mut frame = [1u8; 64];
    for _ in 0..count {
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        let start = Instant::now();
        stream
            .write_all(&frame)
            .and_then(|()| stream.read_exact(&mut frame))
            .map_err(failed)?;
        trips.record(start.elapsed());
    }
    drop(stream);
    let _ = echo.join();
    Ok(trips)
}
