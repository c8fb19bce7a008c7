//! The fault-injecting proxy on the links between nodes 0 and 1 ([`Partition`]): it
//! reads every frame it forwards, so a partition starts at an exact message, and it
//! either cuts (connections closed, new ones refused until the heal) or holds (nothing
//! passes, connections stay open).

use kv2pc::NodeId;
use kv2pc::message::Message;
use kv2pc::wire::{FrameReader, HELLO_LEN, encode_frame};
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// When the proxy cuts by itself: at the first protocol message `from` sends that
/// `matches`, which is dropped; or, to `hold`, which waits with everything after it
/// until the heal (a partition short enough for TCP to ride out).
struct Trigger {
    from: NodeId,
    what: String,
    hold: bool,
    matches: Box<dyn Fn(&Message) -> bool + Send>,
}

#[derive(Default)]
pub(crate) struct PartitionState {
    cut: bool,
    /// Nothing is forwarded, but the connections stay open.
    held: bool,
    /// How many times the connections were closed.
    pub(crate) cuts: usize,
    /// Both sockets of every forwarded connection, to close at a cut.
    open: Vec<TcpStream>,
    trigger: Option<Trigger>,
    /// What fired the trigger, once it fired.
    pub(crate) fired: Option<String>,
    /// Connections refused while cut.
    pub(crate) refused: usize,
}

impl PartitionState {
    fn cut(&mut self) {
        self.cuts += usize::from(!self.cut);
        self.cut = true;
        for stream in self.open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A fault-injecting proxy on the links between nodes 0 and 1, one listener per
/// direction: node 0's `--peers` entry for node 1 is [`Partition::toward_one`], node 1's
/// for node 0 [`Partition::toward_zero`]. Each node dials its link to the other through
/// it, and the proxy reads every frame it forwards, so a cut can land on an exact
/// message ([`Partition::arm`]). Cut, it closes every connection and closes each new one
/// at once (the nodes see their peer go down and redial with backoff); healed, it
/// forwards again.
pub(crate) struct Partition {
    pub(crate) state: Arc<Mutex<PartitionState>>,
    stopping: Arc<AtomicBool>,
    pub(crate) toward_one: SocketAddr,
    pub(crate) toward_zero: SocketAddr,
    accepting: Vec<JoinHandle<()>>,
}

impl Partition {
    /// The proxy for nodes at `zero` and `one`.
    pub(crate) fn start(zero: SocketAddr, one: SocketAddr) -> Partition {
        let state: Arc<Mutex<PartitionState>> = Arc::default();
        let stopping = Arc::new(AtomicBool::new(false));
        let mut addrs = Vec::new();
        let mut accepting = Vec::new();
        for (from, target) in [(0, one), (1, zero)] {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a proxy port");
            listener
                .set_nonblocking(true)
                .expect("a non-blocking listener");
            addrs.push(listener.local_addr().expect("its address"));
            let (state, stopping) = (state.clone(), stopping.clone());
            accepting.push(std::thread::spawn(move || {
                accept(&listener, from, target, &state, &stopping)
            }));
        }
        Partition {
            state,
            stopping,
            toward_one: addrs[0],
            toward_zero: addrs[1],
            accepting,
        }
    }

    /// Cuts (or holds) both directions at the first message from `from` that `matches`.
    pub(crate) fn arm(
        &self,
        from: NodeId,
        what: &str,
        hold: bool,
        matches: impl Fn(&Message) -> bool + Send + 'static,
    ) {
        let mut state = self.state.lock();
        state.fired = None;
        state.trigger = Some(Trigger {
            from,
            what: what.to_string(),
            hold,
            matches: Box::new(matches),
        });
    }

    /// What fired the armed cut, if it fired.
    pub(crate) fn fired(&self) -> Option<String> {
        self.state.lock().fired.clone()
    }

    /// Whether the nodes are apart: the links cut or held.
    pub(crate) fn is_cut(&self) -> bool {
        let state = self.state.lock();
        state.cut || state.held
    }

    pub(crate) fn heal(&self) {
        let mut state = self.state.lock();
        state.cut = false;
        state.held = false;
        state.trigger = None;
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let mut state = self.state.lock();
        state.held = false;
        state.cut();
        drop(state);
        for thread in self.accepting.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Accepts node `from`'s connections to its peer at `target`, until the proxy stops.
fn accept(
    listener: &TcpListener,
    from: NodeId,
    target: SocketAddr,
    state: &Arc<Mutex<PartitionState>>,
    stopping: &AtomicBool,
) {
    while !stopping.load(Ordering::SeqCst) {
        let dialler = match listener.accept() {
            Ok((dialler, _)) => dialler,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        {
            let mut state = state.lock();
            if state.cut {
                state.refused += 1;
                continue;
            }
        }
        let Ok(peer) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            continue;
        };
        let streams = (
            dialler.set_nonblocking(false),
            dialler.try_clone(),
            peer.try_clone(),
        );
        let (Ok(()), Ok(dialler_copy), Ok(peer_copy)) = streams else {
            continue;
        };
        {
            let mut state = state.lock();
            if state.cut {
                continue;
            }
            for stream in [&dialler, &peer] {
                if let Ok(copy) = stream.try_clone() {
                    state.open.push(copy);
                }
            }
        }
        // Back: only the peer's hello (a node says nothing else on its inbound side).
        std::thread::spawn(move || {
            let (mut from_peer, mut to_dialler) = (peer_copy, dialler_copy);
            let _ = std::io::copy(&mut from_peer, &mut to_dialler);
            let _ = to_dialler.shutdown(Shutdown::Both);
        });
        let state = state.clone();
        std::thread::spawn(move || forward(dialler, peer, from, target, &state));
    }
}

/// Forwards the dialler's hello and then its frames one by one, cutting at the trigger.
fn forward(
    mut dialler: TcpStream,
    mut peer: TcpStream,
    from: NodeId,
    target: SocketAddr,
    state: &Mutex<PartitionState>,
) {
    let mut hello = [0u8; HELLO_LEN];
    if dialler.read_exact(&mut hello).is_err() || peer.write_all(&hello).is_err() {
        return;
    }
    let mut frames = FrameReader::new(&dialler, target);
    let mut buf = Vec::new();
    while let Ok(Some(frame)) = frames.read_frame() {
        if let kv2pc::wire::Frame::Peer { message, .. } = &frame {
            let mut state = state.lock();
            let fires = (state.trigger.as_ref())
                .is_some_and(|trigger| trigger.from == from && (trigger.matches)(message));
            if fires {
                let trigger = state.trigger.take().expect("the trigger");
                state.fired = Some(format!("{} ({message:?} from node {from})", trigger.what));
                if !trigger.hold {
                    state.cut();
                    break;
                }
                state.held = true;
            }
        }
        while state.lock().held {
            std::thread::sleep(Duration::from_millis(5));
        }
        buf.clear();
        if encode_frame(&frame, &mut buf).is_err() || peer.write_all(&buf).is_err() {
            break;
        }
    }
    let _ = dialler.shutdown(Shutdown::Both);
    let _ = peer.shutdown(Shutdown::Both);
}
