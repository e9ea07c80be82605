//! A TCP proxy that puts network faults between a client and a server (issue 7): latency, cuts
//! in the middle of a body (either direction, by a hard reset), and partitions — refused
//! connections, or a blackhole that accepts and then never answers until the partition ends
//! (time-compressed: a test partitions for seconds, not minutes).
//!
//! The fault in force is read at every chunk, so a partition also stalls connections that were
//! opened before it (a pooled keep-alive connection gets no free pass). A blackholed connection
//! is reset when the partition ends, as a NAT or firewall dropping its state would. Counters say
//! how many faults were actually injected, so a test can prove its faults landed.

use rand::Rng;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does to traffic now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Passes everything.
    None,
    /// Holds every chunk this long before passing it on.
    Latency(Duration),
    /// Resets each connection after a random number of bytes (up to `max_bytes`) in either
    /// direction: requests cut mid-body, responses lost after the server answered.
    Cut {
        /// Largest byte offset of a cut.
        max_bytes: usize,
    },
    /// Refuses connections: new ones are reset at once, open ones at their next chunk.
    Refuse,
    /// Accepts connections but passes nothing until the fault changes, then resets them.
    Blackhole,
}

/// Faults injected so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections reset mid-stream by [`Fault::Cut`].
    pub cuts: u64,
    /// Connections reset by [`Fault::Refuse`].
    pub refused: u64,
    /// Connections held by [`Fault::Blackhole`].
    pub blackholed: u64,
    /// Chunks delayed by [`Fault::Latency`].
    pub delayed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    cuts: AtomicU64,
    refused: AtomicU64,
    blackholed: AtomicU64,
    delayed: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    counters: Counters,
}

impl Inner {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of `upstream`, passing everything.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let inner = Arc::new(Inner {
            upstream,
            fault: Mutex::new(Fault::None),
            counters: Counters::default(),
        });
        let task = tokio::spawn(accept_loop(listener, inner.clone()));
        Self { addr, inner, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Puts `fault` in force from now on.
    pub fn set(&self, fault: Fault) {
        *self.inner.fault.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = fault;
    }

    /// The faults injected so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.inner.counters;
        ProxyStats {
            connections: c.connections.load(Ordering::Relaxed),
            cuts: c.cuts.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            blackholed: c.blackholed.load(Ordering::Relaxed),
            delayed: c.delayed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    while let Ok((client, _)) = listener.accept().await {
        inner.counters.connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection(client, inner.clone()));
    }
}

/// Resets `stream` (RST instead of FIN), as a dropped route or a refusing peer does.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn connection(client: TcpStream, inner: Arc<Inner>) {
    match inner.fault() {
        Fault::Refuse => {
            inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            return reset(&client);
        }
        Fault::Blackhole => return blackhole(&client, &inner).await,
        _ => {}
    }
    let Ok(server) = TcpStream::connect(inner.upstream).await else { return reset(&client) };
    let (mut client, mut server) = (client, server);
    let (up_cut, down_cut) = {
        let mut rng = rand::rng();
        (rng.random_range(1..=usize::MAX / 2), rng.random_range(1..=usize::MAX / 2))
    };
    let ended = {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        tokio::select! {
            e = pipe(&mut cr, &mut sw, &inner, up_cut) => e,
            e = pipe(&mut sr, &mut cw, &inner, down_cut) => e,
        }
    };
    match ended {
        End::Closed => {}
        End::Cut => {
            inner.counters.cuts.fetch_add(1, Ordering::Relaxed);
            reset(&client);
            reset(&server);
        }
        End::Refused => {
            inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            reset(&client);
            reset(&server);
        }
        End::Blackholed => {
            blackhole(&client, &inner).await;
            reset(&server);
        }
    }
}

/// Holds the connection, passing nothing, until the blackhole ends; then resets it.
async fn blackhole(client: &TcpStream, inner: &Inner) {
    inner.counters.blackholed.fetch_add(1, Ordering::Relaxed);
    while inner.fault() == Fault::Blackhole {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reset(client);
}

enum End {
    Closed,
    Cut,
    Refused,
    Blackholed,
}

/// Copies `from` to `to` under the fault in force at each chunk. `seed` picks the byte offset
/// of a cut (taken modulo the fault's `max_bytes`).
async fn pipe(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    inner: &Inner,
    seed: usize,
) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    let mut passed = 0usize;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return End::Closed,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        match inner.fault() {
            Fault::None => {}
            Fault::Latency(d) => {
                inner.counters.delayed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(d).await;
            }
            Fault::Cut { max_bytes } => {
                let at = 1 + seed % max_bytes.max(1);
                if passed + chunk.len() >= at {
                    let keep = at.saturating_sub(passed).min(chunk.len());
                    let _ = to.write_all(&chunk[..keep]).await;
                    let _ = to.flush().await;
                    return End::Cut;
                }
            }
            Fault::Refuse => return End::Refused,
            Fault::Blackhole => return End::Blackholed,
        }
        passed += chunk.len();
        if to.write_all(chunk).await.is_err() {
            return End::Closed;
        }
    }
}
