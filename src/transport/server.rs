//! The accept loop shared by both listeners: HTTP/1.1 on hyper with keep-alive, a header read
//! timeout, a connection limit, idle eviction, and graceful draining.
//!
//! The connection limit is a semaphore taken *before* `accept`. When it is full, the connection
//! that has been idle longest (no request in progress: a keep-alive connection between requests,
//! or one that has not finished sending its first request's head) is asked to close, and its
//! permit goes to the next client in the kernel's backlog: idle or trickling connections cannot
//! crowd out clients with work to do, however many there are. A connection only counts as idle
//! once [`MIN_IDLE`] has passed since it opened or last answered, so a client that has just
//! connected is not closed before its request has had time to arrive. On shutdown the loop stops
//! accepting, drops the listener, asks every connection to finish its in-flight request and close
//! (idle ones close at once), and waits up to the drain timeout before abandoning stragglers.
//!
//! The header timeout is kept here, not by hyper (whose timer is armed and dropped for every
//! request): each connection stamps its activity when a request starts and ends and whenever it
//! writes, and a sweep every quarter of the timeout (at most every second) closes each
//! connection that has waited longer than the timeout for a request head, whether its head is
//! trickling in or it sits idle between requests. A request whose head is complete is never cut
//! by it (its body has a deadline of its own, below), nor is an answer that a slow reader is
//! still taking.
//! Connections are signalled through two flags and a waker, which cost a few atomic operations
//! each time a connection's task runs.
//!
//! A request's body has its own deadline, kept the same way: the listener starts its
//! connection's [`BodyWatch`] when it hands the request to its handler, and the sweep ends a body
//! that has not arrived whole within the body read timeout, which the handler then reads as
//! [`BodyError::TimedOut`](super::body::BodyError) and answers (408) before the connection
//! closes. A client that sends complete heads and then trickles (or withholds) their bodies holds
//! its connections no longer than that.
//!
//! No one client may hold more than its share of the connections (`max_connections_per_client`,
//! by IPv4 address or IPv6 /64): a client at its share that opens another closes its own
//! longest-idle connection for it (one without a request in progress), and when every one of its
//! connections has a request in progress the newcomer is answered 503 and closed at once,
//! without waiting for a permit. Whatever one client does, the
//! rest of the limit stays open to others.
//!
//! Each request reaches its handler with how long it [`Waited`] to be read: the waker that a
//! connection's reads leave with the runtime's I/O driver stamps when the socket became
//! readable, so a request that sat in its socket while the runtime worked through a queue of
//! others arrives knowing it (what load shedding judges it by, [`crate::transport::overload`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::task::AtomicWaker;
use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::body::{BodyWatch, RequestBody};
use super::framing::Guarded;
use super::response::BoxError;
use super::shutdown::shutdown_requested;

/// Connections the kernel may hold completed but not yet accepted (capped by
/// `net.core.somaxconn`). A small queue turns a burst of new clients into dropped handshakes,
/// each costing its client a one-second retransmission.
pub const ACCEPT_BACKLOG: u32 = 4096;

/// Binds a listening socket with [`ACCEPT_BACKLOG`] (the standard library's `bind` asks for
/// 128).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// What one listener's accept loop counts.
#[derive(Clone)]
pub struct ListenerMetrics {
    /// Open connections.
    pub open: prometheus::IntGauge,
    /// Requests refused for carrying both Content-Length and Transfer-Encoding.
    pub conflicting_framing: prometheus::IntCounter,
    /// Connections refused because their client held its whole share.
    pub client_share: prometheus::IntCounter,
    /// Request bodies that did not arrive within the body read timeout.
    pub body_timeouts: prometheus::IntCounter,
}

/// Per-listener settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// For logs and the open-connections gauge.
    pub name: &'static str,
    pub max_connections: usize,
    /// Connections one client (IPv4 address or IPv6 /64) may hold at once.
    pub max_connections_per_client: usize,
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive whole after its head.
    pub body_read_timeout: Duration,
    pub drain_timeout: Duration,
}

/// How long a request waited to be read: from when its connection's socket was seen to become
/// readable (the I/O driver waking the connection's task) to when its handler was called. Zero
/// when its bytes were already there when the connection read them. In ticks of the coarse
/// monotonic clock (a few milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waited(pub Duration);

/// The waker a connection's reads leave with the I/O driver: woken, it stamps the time (the
/// first wake since the connection last read) and wakes the connection's task.
struct ReadWake {
    /// [`coarse_ms`] of the first wake since the last read; 0: none.
    woken_ms: AtomicU64,
    task: AtomicWaker,
}

impl std::task::Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let _ = self.woken_ms.compare_exchange(
            0,
            coarse_ms().max(1),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        self.task.wake();
    }
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Requests being served now.
    in_flight: AtomicUsize,
    /// When the connection last started or finished a request or wrote (ms since the listener
    /// started). While no request is in flight, it has been waiting for a request head since.
    last_active_ms: AtomicU64,
    /// Set once the connection is asked to close (for a newcomer, or at shutdown); stays set.
    closing: AtomicBool,
    /// Set when the header timeout has passed with no request in flight; the task clears it.
    timed_out: AtomicBool,
    /// The connection's task, woken when either flag is set.
    task: AtomicWaker,
    /// [`coarse_ms`] when the bytes the connection read last were seen to arrive; 0: they were
    /// already there when it read.
    arrived_ms: AtomicU64,
    /// The deadline of the body its request in progress is sending.
    body: Arc<BodyWatch>,
}

impl Conn {
    fn new(now_ms: u64) -> Self {
        Conn {
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(now_ms),
            closing: AtomicBool::new(false),
            timed_out: AtomicBool::new(false),
            task: AtomicWaker::new(),
            arrived_ms: AtomicU64::new(0),
            body: Arc::new(BodyWatch::default()),
        }
    }

    /// Asks the connection to finish its request in progress, if any, and close.
    fn ask_to_close(&self) {
        self.closing.store(true, Ordering::Release);
        self.task.wake();
    }

    /// Tells the connection that its request head is overdue.
    fn time_out(&self) {
        self.timed_out.store(true, Ordering::Release);
        self.task.wake();
    }

    /// How long the request whose handler is called now has waited, at `now` ([`coarse_ms`]).
    fn waited(&self, now: u64) -> Waited {
        match self.arrived_ms.load(Ordering::Relaxed) {
            0 => Waited::default(),
            at => Waited(Duration::from_millis(now.saturating_sub(at))),
        }
    }

    /// Whether the connection has no request in progress (it waits for a request head).
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Whether the connection is waiting for a request head and has been since `before` (ms)
    /// or longer.
    fn idle_since(&self, before: u64) -> bool {
        self.is_idle() && self.last_active_ms.load(Ordering::Relaxed) <= before
    }

    /// Resolves when the connection has timed out, or has been asked to close and `draining`
    /// is still false. Polled with the connection each time its task wakes, so it is a few
    /// atomic operations and no lock (a `Notify` or a `watch` takes a mutex on every poll).
    fn signalled(&self, draining: bool) -> impl Future<Output = ()> + '_ {
        let raised = move || {
            self.timed_out.load(Ordering::Acquire)
                || (!draining && self.closing.load(Ordering::Acquire))
        };
        std::future::poll_fn(move |cx| {
            if raised() {
                return Poll::Ready(());
            }
            self.task.register(cx.waker());
            // Raised between the check and the registration: its wake may have found no waker.
            if raised() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Every open connection of one listener.
#[derive(Default)]
struct Conns {
    open: dashmap::DashMap<u64, Arc<Conn>>,
    /// The same connections by client, for the per-client share.
    by_client: dashmap::DashMap<ClientKey, std::collections::HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
}

/// Whom a connection's share is counted against: its peer's IPv4 address, or the /64 of its
/// IPv6 address (one host usually holds a whole /64). An IPv4-mapped IPv6 peer counts as its
/// IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey(std::net::IpAddr);

impl ClientKey {
    fn of(peer: std::net::IpAddr) -> ClientKey {
        use std::net::{IpAddr, Ipv6Addr};
        ClientKey(match peer {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
            },
        })
    }
}

/// What [`Conns::make_room_for`] decided for a newcomer from a client.
#[derive(Debug, PartialEq, Eq)]
enum Share {
    /// Within the share (perhaps after asking one of the client's own idle connections to
    /// close).
    Room,
    /// Every one of the client's connections has a request in progress.
    Full,
}

/// Connections asked to close at once when the limit is reached: a client arriving at a full
/// gateway usually has others queued behind it in the backlog, and one scan of the open
/// connections per batch (not per client) keeps a flood of idle connections from delaying them.
const EVICT_BATCH: usize = 32;

/// How long a connection must have been without a request before it may be closed for a
/// newcomer.
const MIN_IDLE: Duration = Duration::from_millis(100);

/// Milliseconds on the kernel's coarse monotonic clock (a few ms resolution, read without
/// touching the hardware clock): every request stamps its connection's activity twice, and idle
/// eviction only needs to tell 100 ms apart.
fn coarse_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (t.tv_sec as u64) * 1000 + (t.tv_nsec as u64) / 1_000_000
}

impl Conns {
    /// Asks up to `n` of the longest-idle connections, idle since `idle_before` (ms) or longer,
    /// to close; returns how many it asked (none when every connection is busy or fresh).
    fn evict(&self, n: usize, idle_before: u64) -> usize {
        let mut idle: Vec<(u64, Arc<Conn>)> = self
            .open
            .iter()
            .filter(|c| !c.closing.load(Ordering::Acquire) && c.idle_since(idle_before))
            .map(|c| {
                (
                    c.last_active_ms.load(Ordering::Relaxed),
                    Arc::clone(c.value()),
                )
            })
            .collect();
        if idle.len() > n {
            idle.select_nth_unstable_by_key(n, |(at, _)| *at);
            idle.truncate(n);
        }
        // Marked closing at once, so the next eviction picks others.
        for (_, conn) in &idle {
            conn.ask_to_close();
        }
        idle.len()
    }

    /// Times out every connection that has waited for a request head since `head_before`
    /// (ms), and ends every body awaited since `body_before`; returns how many bodies it ended.
    fn sweep(&self, head_before: Option<u64>, body_before: Option<u64>) -> u64 {
        let mut bodies = 0;
        for c in self.open.iter() {
            if head_before.is_some_and(|before| c.idle_since(before)) {
                c.time_out();
            }
            if body_before.is_some_and(|before| c.body.expire_before(before)) {
                bodies += 1;
            }
        }
        bodies
    }

    /// Makes room for one more connection of `client` within `share`: when it holds its share,
    /// its own connection idle longest is asked to close, however recently it opened (unlike
    /// eviction for other clients, which spares connections younger than [`MIN_IDLE`]: here the
    /// newcomer and the one closed are the same client's, and a flood of fresh connections
    /// from one address must not keep that address's own real requests out).
    fn make_room_for(&self, client: ClientKey, share: usize) -> Share {
        let Some(held) = self.by_client.get(&client) else {
            return Share::Room;
        };
        // Connections already asked to close are on their way out: not counted.
        let mut staying = 0;
        let mut idlest: Option<&Arc<Conn>> = None;
        for c in held.values().filter(|c| !c.closing.load(Ordering::Acquire)) {
            staying += 1;
            let last = c.last_active_ms.load(Ordering::Relaxed);
            if c.is_idle() && idlest.is_none_or(|i| last < i.last_active_ms.load(Ordering::Relaxed))
            {
                idlest = Some(c);
            }
        }
        if staying < share {
            return Share::Room;
        }
        match idlest {
            Some(conn) => {
                conn.ask_to_close();
                Share::Room
            }
            None => Share::Full,
        }
    }

    fn add(&self, id: u64, client: ClientKey, conn: &Arc<Conn>) {
        self.open.insert(id, Arc::clone(conn));
        self.by_client
            .entry(client)
            .or_default()
            .insert(id, Arc::clone(conn));
    }

    fn remove(&self, id: u64, client: ClientKey) {
        self.open.remove(&id);
        self.by_client.remove_if_mut(&client, |_, held| {
            held.remove(&id);
            held.is_empty()
        });
    }
}

/// The answer to a connection refused for its client's share: written, then the connection is
/// closed (after reading what the client sent meanwhile, briefly, so that closing does not
/// reset the connection before the client has read the answer).
async fn refuse_for_share(mut stream: TcpStream, share: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = format!(
        "{{\"errcode\":-1,\"errmsg\":\"too many connections from this client: each client \
         address may hold {share}; reuse idle ones or close some\"}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut read = 0;
        while read < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// How often the header and body timeouts are checked: a quarter of the shorter, between
/// 50 ms and 1 s.
fn sweep_every(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// Serves `listener` until `shutdown` turns true, then drains.
pub async fn serve<F, Fut, B>(
    listener: TcpListener,
    opts: ServerOptions,
    metrics: ListenerMetrics,
    handler: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Request<RequestBody>, Waited) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http::Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let conns = Arc::new(Conns::default());
    let started = coarse_ms();
    let now_ms = move || coarse_ms().saturating_sub(started);
    let mut builder = http1::Builder::new();
    // The header timeout is kept here rather than by hyper, whose timer would be armed, polled
    // and dropped for every request on every connection: a sweep over the connections' activity
    // stamps, which each request updates anyway, finds the overdue ones.
    builder.header_read_timeout(None).keep_alive(true);
    let timeout_ms = opts.header_read_timeout.as_millis() as u64;
    let body_timeout_ms = opts.body_read_timeout.as_millis() as u64;
    let sweeper = tokio::spawn({
        let conns = Arc::clone(&conns);
        let body_timeouts = metrics.body_timeouts.clone();
        let mut every = tokio::time::interval(sweep_every(
            opts.header_read_timeout.min(opts.body_read_timeout),
        ));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        async move {
            loop {
                every.tick().await;
                let now = now_ms();
                let ended = conns.sweep(
                    now.checked_sub(timeout_ms),
                    now.checked_sub(body_timeout_ms),
                );
                if ended > 0 {
                    body_timeouts.inc_by(ended);
                    tracing::debug!(bodies = ended, "request bodies timed out");
                }
            }
        }
    });
    let share = opts.max_connections_per_client.max(1);

    'accept: loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = opts.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A client at its share displaces its own idlest connection, or is refused at once: it
        // never waits for a permit, so it cannot hold up the accept loop for others.
        // A share as large as the limit is no share: the limit alone decides.
        let client = ClientKey::of(peer.ip());
        if share < opts.max_connections && conns.make_room_for(client, share) == Share::Full {
            metrics.client_share.inc();
            tracing::debug!(
                listener = opts.name,
                client = %client.0,
                share,
                "client at its connection share: refused"
            );
            tokio::spawn(refuse_for_share(stream, share));
            continue;
        }
        // At the limit, this client waits (unserved, and holding up the accept loop, so later
        // clients wait in the kernel's backlog) for a connection to close; an idle one is asked
        // to, and while every connection is busy (or fresh) the question is asked again every
        // 10 ms and as each frees up.
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => loop {
                let asked = match now_ms().checked_sub(MIN_IDLE.as_millis() as u64) {
                    Some(idle_before) => conns.evict(EVICT_BATCH, idle_before),
                    None => 0, // the listener is younger than MIN_IDLE
                };
                if asked > 0 {
                    tracing::debug!(
                        listener = opts.name,
                        asked,
                        "at the connection limit: closing the idlest"
                    );
                }
                tokio::select! {
                    biased;
                    () = shutdown_requested(&mut shutdown) => break 'accept,
                    p = Arc::clone(&permits).acquire_owned() => match p {
                        Ok(p) => break p,
                        Err(_) => break 'accept, // never closed
                    },
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn_state = Arc::new(Conn::new(now_ms()));
        let id = conns.next_id.fetch_add(1, Ordering::Relaxed);
        conns.add(id, client, &conn_state);
        let handler = handler.clone();
        let state = Arc::clone(&conn_state);
        let service = service_fn(move |req| {
            state.in_flight.fetch_add(1, Ordering::AcqRel);
            let now = coarse_ms();
            let relative = now.saturating_sub(started);
            state.last_active_ms.store(relative, Ordering::Relaxed);
            let req = req.map(|body: Incoming| {
                if hyper::body::Body::is_end_stream(&body) {
                    RequestBody::unwatched(body)
                } else {
                    state.body.start(relative);
                    RequestBody::watched(body, Arc::clone(&state.body))
                }
            });
            let state = Arc::clone(&state);
            // A combinator, not an `async` block: a block that awaits a future it captured
            // keeps room for it twice (the capture and the await point) and copies it from one
            // to the other when first polled; `map` polls it where it lies.
            handler(req, state.waited(now)).map(move |response| {
                state.last_active_ms.store(now_ms(), Ordering::Relaxed);
                state.in_flight.fetch_sub(1, Ordering::AcqRel);
                Ok::<_, Infallible>(response)
            })
        });
        let stream = Stamped::new(
            Guarded::new(stream, metrics.conflicting_framing.clone()),
            Arc::clone(&conn_state),
            now_ms,
        );
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let gauge = metrics.open.clone();
        gauge.inc();
        let conns = Arc::clone(&conns);
        let name = opts.name;
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let mut draining = false;
            let ended = loop {
                tokio::select! {
                    biased;
                    r = conn.as_mut() => break r,
                    () = conn_state.signalled(draining) => {}
                }
                // Judged again here: a head that was waiting in the socket when the sweep ran
                // (the task not yet polled) has been served since, and the connection is fresh.
                if conn_state.timed_out.swap(false, Ordering::AcqRel)
                    && now_ms()
                        .checked_sub(timeout_ms)
                        .is_some_and(|before| conn_state.idle_since(before))
                {
                    // No request head within the timeout (a trickled head, or a keep-alive
                    // connection left idle): dropping the connection closes it.
                    tracing::debug!(listener = name, "request head timed out; closing");
                    break Ok(());
                }
                if !draining && conn_state.closing.load(Ordering::Acquire) {
                    // Finish the request in progress (if any), then close.
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            conns.remove(id, client);
            gauge.dec();
            drop(permit);
        });
    }

    drop(listener);
    // Every connection is in `open` (the accept loop, which alone adds to it, has stopped) or
    // has already been asked to close by eviction.
    for conn in conns.open.iter() {
        conn.ask_to_close();
    }
    tracing::info!(
        listener = opts.name,
        "stopped accepting; draining connections"
    );
    // Every connection holds a permit until it has closed: all permits back means all closed.
    let all = u32::try_from(opts.max_connections).unwrap_or(u32::MAX);
    // Heads still trickling in time out during the drain as before.
    if tokio::time::timeout(opts.drain_timeout, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            listener = opts.name,
            "drain timeout reached; closing remaining connections"
        );
    }
    sweeper.abort();
}

/// A connection's stream that stamps its activity whenever it writes: an answer still being
/// written to a slow reader (after its handler finished) keeps the connection active, so the
/// header timeout only closes a connection that neither sends a head nor takes its answer. Its
/// reads register a [`ReadWake`], and each read that brings bytes notes when they arrived.
struct Stamped<S, C> {
    inner: S,
    conn: Arc<Conn>,
    now_ms: C,
    reads: Arc<ReadWake>,
    /// `reads` as a waker, made once.
    read_waker: std::task::Waker,
}

impl<S, C> Stamped<S, C> {
    fn new(inner: S, conn: Arc<Conn>, now_ms: C) -> Self {
        let reads = Arc::new(ReadWake {
            woken_ms: AtomicU64::new(0),
            task: AtomicWaker::new(),
        });
        let read_waker = std::task::Waker::from(Arc::clone(&reads));
        Stamped {
            inner,
            conn,
            now_ms,
            reads,
            read_waker,
        }
    }
}

impl<S, C> Stamped<S, C>
where
    C: Fn() -> u64,
{
    fn stamp<T>(&self, polled: &Poll<std::io::Result<T>>) {
        if let Poll::Ready(Ok(_)) = polled {
            self.conn
                .last_active_ms
                .store((self.now_ms)(), Ordering::Relaxed);
        }
    }
}

impl<S: AsyncRead + Unpin, C: Unpin> AsyncRead for Stamped<S, C> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        this.reads.task.register(cx.waker());
        let before = buf.filled().len();
        let mut via = std::task::Context::from_waker(&this.read_waker);
        let polled = std::pin::Pin::new(&mut this.inner).poll_read(&mut via, buf);
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                let woken = this.reads.woken_ms.swap(0, Ordering::AcqRel);
                this.conn.arrived_ms.store(woken, Ordering::Relaxed);
            }
            // A wake that brought nothing to read says nothing about the next bytes' arrival.
            Poll::Pending => this.reads.woken_ms.store(0, Ordering::Release),
            _ => {}
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin, C: Fn() -> u64 + Unpin> AsyncWrite for Stamped<S, C> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.stamp(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.stamp(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn an_answer_written_slowly_keeps_its_connection_active() {
        let conn = Arc::new(Conn::new(0));
        let clock = Arc::new(AtomicU64::new(0));
        let (near, mut far) = tokio::io::duplex(64);
        let mut stream = Stamped::new(near, Arc::clone(&conn), {
            let clock = Arc::clone(&clock);
            move || clock.load(Ordering::Relaxed)
        });
        // A reader taking 64 bytes at a time while the clock moves on: every write that
        // makes progress stamps the connection with the time it made it.
        let answer = vec![b'x'; 64 * 20];
        let writer = tokio::spawn(async move {
            stream.write_all(&answer).await.unwrap();
            stream.flush().await.unwrap();
        });
        let mut got = 0;
        let mut buf = [0u8; 64];
        while got < 64 * 20 {
            got += far.read(&mut buf).await.unwrap();
            clock.fetch_add(1_000, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
        writer.await.unwrap();
        // The last write happened after at least 18 of the reader's 20 steps.
        let stamped = conn.last_active_ms.load(Ordering::Relaxed);
        assert!(stamped >= 18_000, "last stamped at {stamped} ms");
        // And so a sweep at the reader's end finds it active, not waiting for a head.
        assert!(!conn.idle_since(stamped.saturating_sub(1)));
    }

    fn test_metrics() -> ListenerMetrics {
        let counter = |name: &str| prometheus::IntCounter::new(name, name).unwrap();
        ListenerMetrics {
            open: prometheus::IntGauge::new("open", "open").unwrap(),
            conflicting_framing: counter("framing"),
            client_share: counter("share"),
            body_timeouts: counter("bodies"),
        }
    }

    #[test]
    fn clients_are_told_apart_by_ipv4_address_or_ipv6_slash_64() {
        let key = |s: &str| ClientKey::of(s.parse().unwrap()).0.to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    /// Sends `request` on `stream` and reads one answer with a `Content-Length` body; returns
    /// the body.
    fn exchange(stream: &mut std::net::TcpStream, request: &[u8]) -> String {
        use std::io::{Read, Write};
        stream.write_all(request).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if body.len() >= len {
                    return body[..len].to_owned();
                }
            }
        }
    }

    #[tokio::test]
    async fn a_request_that_sat_in_its_socket_reaches_its_handler_knowing_how_long() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let opts = ServerOptions {
            name: "test",
            max_connections: 8,
            max_connections_per_client: 8,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(1),
        };
        let metrics = test_metrics();
        let server = tokio::spawn(serve(
            listener,
            opts,
            metrics,
            |_req, waited: Waited| async move {
                http::Response::new(http_body_util::Full::from(waited.0.as_millis().to_string()))
            },
            stopped,
        ));
        const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        // The client runs on a thread of its own: this test's runtime has one thread, which the
        // queue below keeps busy.
        let client = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            let idle: u64 = exchange(&mut stream, REQUEST).parse().unwrap();
            // Sent while the runtime works through the queue.
            std::thread::sleep(Duration::from_millis(60));
            let busy: u64 = exchange(&mut stream, REQUEST).parse().unwrap();
            (idle, busy)
        });
        // A queue of at least 300 ms of other tasks from 20 ms on. The I/O driver is still
        // polled every few dozen tasks, so the second request's arrival is seen within a few
        // milliseconds, while its connection's task joins the back of the queue.
        tokio::time::sleep(Duration::from_millis(20)).await;
        for _ in 0..3_000 {
            tokio::spawn(async { std::thread::sleep(Duration::from_micros(100)) });
        }
        let (idle, busy) = client.await.unwrap();
        assert!(idle < 100, "an answer on an idle runtime waited {idle} ms");
        assert!(
            busy >= 100,
            "a request behind the queue waited only {busy} ms"
        );
        stop.send(true).unwrap();
        server.await.unwrap();
    }
}
