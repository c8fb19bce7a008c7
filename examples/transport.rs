//! Measures the candidates for the TCP transport between node processes, on loopback,
//! as kv2pc's nodes would use them: a synchronous node thread hands a message to the
//! transport, and the peer's transport posts it into the peer's crossbeam inbox, where
//! the peer's node thread answers it the same way.
//!
//! - `std`: kv2pc's own `wire::tcp::Transport` (blocking sockets, a writer thread per
//!   outbound link, a reader thread per inbound connection).
//! - `tokio`: tokio with `tokio-util`'s `LengthDelimitedCodec`, one single-worker
//!   runtime per node; the node thread hands messages to a writer task through a tokio
//!   channel, and a reader task posts into the crossbeam inbox. Same bincode payloads,
//!   no hello and no CRC (which favours it slightly). Built only with the feature:
//!
//! ```text
//! cargo run --release --example transport                            # std only
//! cargo run --release --example transport --features tokio-candidate # both
//! ```
//!
//! It prints, per candidate, the round trip of one small message (a COMMIT answered by
//! an ACK) at p50, p99 and p99.9 over 20,000 trips, and the messages per second with 64
//! in flight (the sender keeps 64 COMMITs outstanding; each ACK lets the next go).

use crossbeam::channel::{Receiver, Sender, unbounded};
use hdrhistogram::Histogram;
use kv2pc::message::Message;
use kv2pc::types::{NodeId, TxnId};
use kv2pc::wire::tcp::{Deliver, Log, Peers, Stamp, Transport};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARMUP: u64 = 2_000;
const TRIPS: u64 = 20_000;
const IN_FLIGHT: u64 = 64;
const PIPELINED: u64 = 200_000;

/// One node's end of a candidate: how its node thread sends to the peer, and its inbox.
struct End {
    send: Box<dyn Fn(Message) + Send>,
    inbox: Receiver<Message>,
}

fn main() {
    report("std", std_pair());
    #[cfg(feature = "tokio-candidate")]
    report("tokio", tokio_candidate::pair());
    #[cfg(not(feature = "tokio-candidate"))]
    println!("(tokio: run with --features tokio-candidate to measure it too)");
}

fn report(name: &str, (a, b, keep): (End, End, Box<dyn std::any::Any>)) {
    let echo = std::thread::spawn(move || {
        // Node B's thread: answer every COMMIT with an ACK, until told to stop.
        while let Ok(message) = b.inbox.recv() {
            match message {
                Message::Commit { tid, .. } => (b.send)(Message::Ack { tid }),
                _ => return,
            }
        }
    });
    let mut trips = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("histogram");
    for n in 0..WARMUP + TRIPS {
        let started = Instant::now();
        (a.send)(commit(n));
        let _ack = a
            .inbox
            .recv_timeout(Duration::from_secs(5))
            .expect("an ack");
        if n >= WARMUP {
            let nanos = started.elapsed().as_nanos() as u64;
            trips.record(nanos.max(1)).expect("in range");
        }
    }
    let started = Instant::now();
    for n in 0..IN_FLIGHT {
        (a.send)(commit(n));
    }
    for n in IN_FLIGHT..PIPELINED + IN_FLIGHT {
        let _ack = a
            .inbox
            .recv_timeout(Duration::from_secs(5))
            .expect("an ack");
        if n < PIPELINED {
            (a.send)(commit(n));
        }
    }
    let rate = PIPELINED as f64 / started.elapsed().as_secs_f64();
    (a.send)(Message::RestartAck);
    let _ = echo.join();
    let micros = |q: f64| trips.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name:<6} round trip p50 {:>6.1} µs  p99 {:>6.1} µs  p99.9 {:>6.1} µs   \
         {IN_FLIGHT} in flight: {:>8.0} messages/s",
        micros(0.50),
        micros(0.99),
        micros(0.999),
        rate
    );
    drop(keep);
}

fn commit(n: u64) -> Message {
    Message::Commit {
        tid: TxnId(n + 1),
        commit_ts: n,
    }
}

/// Posts arrivals into a crossbeam inbox, as `wire::tcp::NodeInbox` does.
struct Inbox(Sender<Message>);

impl Deliver for Inbox {
    fn message(&self, _: NodeId, message: Message, _: Stamp) {
        let _ = self.0.send(message);
    }
    fn lost(&self, _: NodeId, _: Message, _: Stamp) {}
}

fn std_pair() -> (End, End, Box<dyn std::any::Any>) {
    let listeners = [bind(), bind()];
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let quiet: Log = Arc::new(|_| {});
    let mut ends = Vec::new();
    let mut transports = Vec::new();
    for (me, listener) in listeners.into_iter().enumerate() {
        let (sender, inbox) = unbounded();
        let peers = Peers {
            me: me as NodeId,
            addrs: addrs.clone(),
        };
        let transport = Transport::start(
            listener,
            peers,
            Arc::new(Inbox(sender)),
            None,
            quiet.clone(),
        )
        .expect("start");
        transports.push(Arc::new(transport));
        ends.push(inbox);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(transports[0].is_connected(1) && transports[1].is_connected(0)) {
        assert!(Instant::now() < deadline, "links up");
        std::thread::sleep(Duration::from_millis(5));
    }
    let end = |me: usize, inbox| {
        let transport = transports[me].clone();
        let to = 1 - me as NodeId;
        End {
            send: Box::new(move |message| {
                let taken = transport.send(to, message, Stamp::default());
                assert!(taken, "the link is up");
            }),
            inbox,
        }
    };
    let b = end(1, ends.pop().unwrap());
    let a = end(0, ends.pop().unwrap());
    (a, b, Box::new(transports))
}

fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind loopback")
}

#[cfg(feature = "tokio-candidate")]
mod tokio_candidate {
    use super::{End, bind};
    use bytes::Bytes;
    use crossbeam::channel::{Sender, unbounded};
    use futures_util::{SinkExt, StreamExt};
    use kv2pc::message::Message;
    use kv2pc::wal::codec;
    use kv2pc::wire::Frame;
    use std::net::SocketAddr;
    use tokio::runtime::{Builder, Runtime};
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
    use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

    pub fn pair() -> (End, End, Box<dyn std::any::Any>) {
        let listeners = [bind(), bind()];
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let mut ends = Vec::new();
        let mut runtimes = Vec::new();
        for (me, listener) in listeners.into_iter().enumerate() {
            let runtime = Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let (post, inbox) = unbounded();
            listener.set_nonblocking(true).expect("nonblocking");
            runtime.spawn(serve(listener, post));
            let (out, queued) = unbounded_channel();
            runtime.spawn(write(addrs[1 - me], queued));
            ends.push(End {
                send: Box::new(move |message| {
                    let _ = out.send(message);
                }),
                inbox,
            });
            runtimes.push(runtime);
        }
        let b = ends.pop().unwrap();
        let a = ends.pop().unwrap();
        (a, b, Box::new(Keep(runtimes)))
    }

    /// Shuts the runtimes down without waiting for their blocked tasks.
    struct Keep(Vec<Runtime>);

    impl Drop for Keep {
        fn drop(&mut self) {
            for runtime in self.0.drain(..) {
                runtime.shutdown_background();
            }
        }
    }

    async fn serve(listener: std::net::TcpListener, post: Sender<Message>) {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).expect("nodelay");
            let post = post.clone();
            tokio::spawn(async move {
                let mut frames = FramedRead::new(stream, LengthDelimitedCodec::new());
                while let Some(Ok(bytes)) = frames.next().await {
                    match codec::decode_limited::<Frame, { 32 << 20 }>(&bytes) {
                        Ok(Frame::Peer { message, .. }) => {
                            let _ = post.send(message);
                        }
                        _ => return,
                    }
                }
            });
        }
    }

    async fn write(peer: SocketAddr, mut queued: UnboundedReceiver<Message>) {
        let stream = loop {
            match tokio::net::TcpStream::connect(peer).await {
                Ok(stream) => break stream,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        };
        stream.set_nodelay(true).expect("nodelay");
        let mut frames = FramedWrite::new(stream, LengthDelimitedCodec::new());
        let encode = |message| {
            let mut buf = Vec::new();
            let frame = Frame::Peer {
                message,
                clock: 0,
                depth: 0,
            };
            codec::encode_into(&frame, &mut buf).expect("encode");
            Bytes::from(buf)
        };
        while let Some(message) = queued.recv().await {
            if frames.feed(encode(message)).await.is_err() {
                return;
            }
            while let Ok(message) = queued.try_recv() {
                if frames.feed(encode(message)).await.is_err() {
                    return;
                }
            }
            if SinkExt::<Bytes>::flush(&mut frames).await.is_err() {
                return;
            }
        }
    }
}
