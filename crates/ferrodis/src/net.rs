//! Networking: one worker thread per core, each with its own current-thread tokio runtime and its own
//! SO_REUSEPORT listeners, owning the connections it accepts and executing their commands itself.
//!
//! A connection's loop reads everything available, parses every complete request, executes them in order
//! and writes all the replies with one write (docs/design/execution-model.md).

use crate::client::{Client, ClientInfo};
use crate::cmd;
use crate::server::Server;
use crate::{expire, log};
use bytes::{Buf, BytesMut};
use ferrodis_protocol::{Limits, RequestParser};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const PROTECTED_MODE_MSG: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Resolve the `bind` list to socket addresses. A leading '-' marks an address that may be unavailable.
fn bind_addrs(bind: &[String], port: u16) -> Vec<(SocketAddr, bool)> {
    let mut out = Vec::new();
    for b in bind {
        let (optional, host) = match b.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, b.as_str()),
        };
        let host = match host {
            "*" => "0.0.0.0",
            "::*" => "::",
            h => h,
        };
        match (host, port).to_socket_addrs() {
            Ok(addrs) => out.extend(addrs.map(|a| (a, optional))),
            Err(_) if optional => {}
            Err(_) => out.push((SocketAddr::from(([255, 255, 255, 255], port)), false)),
        }
    }
    out
}

fn tcp_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(reuse_port)?;
    s.bind(&addr.into())?;
    Ok(s)
}

fn listen_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = tcp_socket(addr, true)?;
    s.set_nonblocking(true)?;
    s.listen(511)?;
    Ok(s.into())
}

/// Fail like Redis ("Address already in use") when anything else holds the port: SO_REUSEPORT, which
/// spreads our own connections over the workers, would otherwise let a second server (same user) join the
/// port and silently receive half of the clients. A plain bind is refused by any socket bound there.
fn check_port_free(bind: &[String], port: u16) -> io::Result<()> {
    for (addr, optional) in bind_addrs(bind, port) {
        match tcp_socket(addr, false) {
            Ok(_) => {}
            Err(_) if optional => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("Could not create server TCP listening socket {addr}: {e}"),
                ))
            }
        }
    }
    Ok(())
}

/// Bind one set of listeners (one per bind address) for a worker.
fn bind_set(cfg_bind: &[String], port: u16) -> io::Result<Vec<std::net::TcpListener>> {
    let mut v = Vec::new();
    for (addr, optional) in bind_addrs(cfg_bind, port) {
        match listen_tcp(addr) {
            Ok(l) => v.push(l),
            Err(_) if optional => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("Could not create server TCP listening socket {addr}: {e}"),
                ))
            }
        }
    }
    Ok(v)
}

/// Start the worker threads. Returns once every listener is bound (errors are reported before any thread
/// runs).
pub fn start(srv: Arc<Server>) -> io::Result<Vec<std::thread::JoinHandle<()>>> {
    // A busy script serves its worker's other connections through this hook.
    let _ = crate::scripting::BUSY_HOOK.set(serve_while_busy);
    let (bind, port, unixsocket, perm) = {
        let c = srv.config.read();
        (
            c.bind.clone(),
            c.port,
            c.unixsocket.clone(),
            c.unixsocketperm,
        )
    };
    let n = srv.workers.len();
    if port != 0 {
        check_port_free(&bind, port)?;
    }
    let mut sets = Vec::with_capacity(n);
    for _ in 0..n {
        sets.push(bind_set(&bind, port)?);
    }
    if sets.iter().any(|s| s.is_empty()) && port != 0 {
        return Err(io::Error::other("Failed listening on any address"));
    }
    let mut unix = if unixsocket.is_empty() {
        None
    } else {
        let _ = std::fs::remove_file(&unixsocket);
        let l = std::os::unix::net::UnixListener::bind(&unixsocket)?;
        l.set_nonblocking(true)?;
        if perm != 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&unixsocket, std::fs::Permissions::from_mode(perm))?;
        }
        Some(l)
    };
    let mut handles = Vec::new();
    for (w, set) in sets.into_iter().enumerate() {
        let srv = srv.clone();
        let unix = if w == 0 { unix.take() } else { None };
        let h = std::thread::Builder::new()
            .name(format!("ferrodis-w{w}"))
            .stack_size(crate::scripting::sandbox::WORKER_STACK_BYTES)
            .spawn(move || worker_main(srv, w, set, unix))?;
        handles.push(h);
    }
    Ok(handles)
}

fn worker_main(
    srv: Arc<Server>,
    w: usize,
    tcp: Vec<std::net::TcpListener>,
    unix: Option<std::os::unix::net::UnixListener>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("worker runtime");
    let local = tokio::task::LocalSet::new();
    srv.keyspace.gate.register(w);
    local.block_on(&rt, async move {
        for l in tcp {
            let l = tokio::net::TcpListener::from_std(l).expect("listener");
            let srv = srv.clone();
            tokio::task::spawn_local(async move {
                loop {
                    match l.accept().await {
                        Ok((s, peer)) => {
                            let _ = s.set_nodelay(true);
                            let local = s.local_addr().ok();
                            set_keepalive(&s, srv.config.read().tcp_keepalive);
                            let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
                            let srv = srv.clone();
                            tokio::task::spawn_local(async move {
                                let is_local = peer.ip().is_loopback();
                                let laddr = local.map(|a| a.to_string()).unwrap_or_default();
                                serve(srv, w, s, peer.to_string(), laddr, fd, false, is_local)
                                    .await;
                            });
                        }
                        Err(e) => {
                            log::warning(&format!("Accept error: {e}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            });
        }
        if let Some(u) = unix {
            let l = tokio::net::UnixListener::from_std(u).expect("unix listener");
            let srv = srv.clone();
            tokio::task::spawn_local(async move {
                let path = srv.config.read().unixsocket.clone();
                while let Ok((s, _)) = l.accept().await {
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
                    let srv = srv.clone();
                    let path = path.clone();
                    tokio::task::spawn_local(async move {
                        serve(srv, w, s, format!("{path}:0"), path, fd, true, true).await;
                    });
                }
            });
        }
        expire::run_cycle(srv.clone(), w).await;
    });
}

fn set_keepalive(s: &tokio::net::TcpStream, secs: u64) {
    if secs == 0 {
        return;
    }
    let sock = socket2::SockRef::from(s);
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(secs))
        .with_interval(Duration::from_secs((secs / 3).max(1)));
    let _ = sock.set_tcp_keepalive(&ka);
}

const READ_CHUNK: usize = 16 * 1024;
/// Flush replies mid-batch once this much is pending (a deep pipeline of big replies).
const FLUSH_AT: usize = 256 * 1024;

/// The sockets a connection runs on: waiting for input is separate from reading it, so that the state the
/// read goes into is not held across the wait (see [`Slot`]).
trait Sock: AsyncRead + AsyncWrite + Unpin {
    /// Readiness through the socket's single reader waker slot: unlike `readable()` this registers no
    /// waiter in a list, so waiting for input costs no lock and no unlinking per batch.
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>>;
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
    /// Forgets the socket's read readiness, so that the next wait sleeps until the kernel reports new
    /// input (the reactor's edge-triggered registration reports every arrival after this point).
    fn clear_read_ready(&self);

    /// Reads what is available into `buf`. A read that did not fill the space offered drained the socket,
    /// as Redis assumes after its one read per event: the readiness is cleared then, so that the next
    /// batch does not start with a read that can only fail with EAGAIN (one system call per batch).
    fn read_available(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let space = buf.capacity() - buf.len();
        let n = self.try_read_buf(buf)?;
        if n > 0 && n < space {
            self.clear_read_ready();
        }
        Ok(n)
    }
}

/// The readiness-clearing probe of [`Sock::clear_read_ready`]: an I/O attempt that reports WouldBlock
/// without a system call.
fn would_block() -> io::Result<()> {
    Err(io::ErrorKind::WouldBlock.into())
}

impl Sock for tokio::net::TcpStream {
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        tokio::net::TcpStream::poll_read_ready(self, cx)
    }
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        tokio::net::TcpStream::try_read_buf(self, buf)
    }
    fn clear_read_ready(&self) {
        let _ = self.try_io(tokio::io::Interest::READABLE, would_block);
    }
}

impl Sock for tokio::net::UnixStream {
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        tokio::net::UnixStream::poll_read_ready(self, cx)
    }
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        tokio::net::UnixStream::try_read_buf(self, buf)
    }
    fn clear_read_ready(&self) {
        let _ = self.try_io(tokio::io::Interest::READABLE, would_block);
    }
}

/// A connection's state between batches: what its task works on, and what the busy hook of its worker
/// borrows while the task waits for input.
struct Conn {
    client: Client,
    parser: RequestParser,
    rbuf: BytesMut,
    out: Vec<u8>,
    set: ConnSettings,
    /// The busy hook met end of input (or an error) on the socket: the task closes the connection.
    eof: bool,
}

/// One connection of a worker, shared by its task and the busy hook ([`serve_while_busy`]).
struct Slot {
    fd: i32,
    /// The connection's state while its task waits for input ("parked"); None while the task runs a batch,
    /// waits on a blocking command, flushes or waits for the AOF: the hook then leaves the connection
    /// alone, as Redis leaves a client that is in the middle of something.
    parked: RefCell<Option<Box<Conn>>>,
}

thread_local! {
    /// This worker's connections, by client id: what a busy script's hook on this thread serves.
    static SLOTS: RefCell<HashMap<u64, Rc<Slot>>> = RefCell::new(HashMap::new());
}

/// Keeps a connection in its worker's [`SLOTS`] while it lives.
struct SlotRegistered(u64);

impl SlotRegistered {
    fn new(id: u64, slot: Rc<Slot>) -> Self {
        SLOTS.with(|s| s.borrow_mut().insert(id, slot));
        SlotRegistered(id)
    }
}

impl Drop for SlotRegistered {
    fn drop(&mut self) {
        SLOTS.with(|s| s.borrow_mut().remove(&self.0));
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve<S: Sock>(
    srv: Arc<Server>,
    worker: usize,
    mut stream: S,
    addr: String,
    laddr: String,
    fd: i32,
    unix: bool,
    is_local: bool,
) {
    let stats = &srv.workers[worker];
    stats.connections.add(1);
    let (maxclients, protected, has_pass) = {
        let c = srv.config.read();
        (c.maxclients, c.protected_mode, c.requirepass.is_some())
    };
    if protected && !has_pass && !is_local {
        let _ = stream.write_all(PROTECTED_MODE_MSG.as_bytes()).await;
        stats.rejected_connections.add(1);
        return;
    }
    if srv.connected.fetch_add(1, Relaxed) >= maxclients {
        srv.connected.fetch_sub(1, Relaxed);
        stats.rejected_connections.add(1);
        let _ = stream
            .write_all(format!("-{}\r\n", cmd::err::MAX_CLIENTS).as_bytes())
            .await;
        return;
    }
    let id = srv.next_client_id.fetch_add(1, Relaxed);
    let info = Arc::new(ClientInfo::new(id, addr, laddr, fd, unix));
    srv.clients.lock().insert(id, info.clone());
    // Deregisters the client however the task ends, a panic included (tokio contains a panicking task to
    // itself, so one connection's bug never takes the server down).
    let _registered = Registered { srv: &srv, id };
    let client = Client::new(id, worker, info.clone(), !has_pass);
    let mut parser = RequestParser::new(Limits::default());
    let set = settings(&srv, &mut parser, &client);
    let conn = Box::new(Conn {
        client,
        parser,
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        out: Vec::with_capacity(READ_CHUNK),
        set,
        eof: false,
    });
    let slot = Rc::new(Slot {
        fd,
        parked: RefCell::new(Some(conn)),
    });
    let slot_registered = SlotRegistered::new(id, slot.clone());
    connection_loop(&srv, &slot, &info, &mut stream).await;
    drop(slot_registered);
    if let Some(mut conn) = slot.parked.borrow_mut().take() {
        cmd::transactions::unwatch(&srv, &mut conn.client);
    }
    let _ = stream.shutdown().await;
}

struct Registered<'a> {
    srv: &'a Server,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.srv.pubsub.remove_client(self.id);
        self.srv.clients.lock().remove(&self.id);
        self.srv.connected.fetch_sub(1, Relaxed);
        crate::tracking::client_gone(self.srv, self.id);
    }
}

struct ConnSettings {
    epoch: u64,
    timeout: u64,
    qbuf_limit: usize,
}

fn settings(srv: &Server, parser: &mut RequestParser, client: &Client) -> ConnSettings {
    let epoch = srv.config_epoch.load(Relaxed);
    let c = srv.config.read();
    let l = parser.limits_mut();
    l.max_bulk_len = c.proto_max_bulk_len as usize;
    l.authenticated = client.authenticated;
    ConnSettings {
        epoch,
        timeout: c.timeout,
        qbuf_limit: c.client_query_buffer_limit as usize,
    }
}

/// Why a parked connection's task woke up.
enum Event {
    /// The socket has input.
    Readable,
    /// Messages pushed by other clients, or the busy hook left replies / a close for the task.
    Wake,
    /// No input for `timeout` seconds (or the socket failed).
    Idle,
}

/// The connection's life: wait for input with the state parked in `slot`, then take the state and run a
/// batch. However this returns, the state is back in `slot`.
async fn connection_loop<S: Sock>(
    srv: &Arc<Server>,
    slot: &Slot,
    info: &Arc<ClientInfo>,
    stream: &mut S,
) {
    // However this loop ends (even by a panic), the worker must not stay on the gate's shared side.
    struct LeaveGate<'a>(&'a crate::keyspace::gate::Gate);
    impl Drop for LeaveGate<'_> {
        fn drop(&mut self) {
            self.0.leave();
        }
    }
    let _leave = LeaveGate(&srv.keyspace.gate);
    let mut timeout = slot
        .parked
        .borrow()
        .as_ref()
        .map_or(0, |c| idle_timeout(info, c.set.timeout));
    // One waiter on the outbox, registered once and renewed only after it fires (CLIENT KILL and the output
    // buffer limit notify it too), instead of new `Notified` futures linked and unlinked on every batch.
    let mut wake = std::pin::pin!(info.outbox_notify.notified());
    loop {
        let ev = {
            let mut idle =
                (timeout > 0).then(|| Box::pin(tokio::time::sleep(Duration::from_secs(timeout))));
            std::future::poll_fn(|cx| {
                // Input first: a batch drains the outbox anyway, so the outbox waiter is polled (a lock)
                // only on the way to sleep, where it has to be registered.
                if info.killed.load(Relaxed) {
                    return Poll::Ready(Event::Wake);
                }
                match stream.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => return Poll::Ready(Event::Readable),
                    Poll::Ready(Err(_)) => return Poll::Ready(Event::Idle),
                    Poll::Pending => {}
                }
                if wake.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Wake);
                }
                match idle.as_mut().map(|s| s.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(Event::Idle),
                    _ => Poll::Pending,
                }
            })
            .await
        };
        if info.killed.load(Relaxed) {
            return;
        }
        if matches!(ev, Event::Wake) {
            wake.set(info.outbox_notify.notified());
        }
        let Some(mut conn) = slot.parked.borrow_mut().take() else {
            return;
        };
        let keep = batch(srv, &mut conn, info, stream, ev).await;
        timeout = idle_timeout(info, conn.set.timeout);
        *slot.parked.borrow_mut() = Some(conn);
        if !keep {
            return;
        }
    }
}

/// Lets the worker's other tasks that are ready to run go first, once. Unlike `tokio::task::yield_now`,
/// which waits for the next poll of the I/O driver (a system call), the task is queued again at once: a
/// lone connection carries on without a system call, and connections woken by the same poll run before it.
async fn yield_to_ready_tasks() {
    let mut queued = false;
    std::future::poll_fn(|cx| {
        if queued {
            return Poll::Ready(());
        }
        queued = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// One turn of a connection: read what is available, parse every complete request, execute them in
/// order and write all the replies with one write. False: close the connection.
async fn batch<S: Sock>(
    srv: &Arc<Server>,
    conn: &mut Conn,
    info: &ClientInfo,
    stream: &mut S,
    ev: Event,
) -> bool {
    let Conn {
        client,
        parser,
        rbuf,
        out,
        set,
        eof,
    } = conn;
    let stats = &srv.workers[client.worker];
    if info.killed.load(Relaxed) {
        return false;
    }
    match ev {
        Event::Readable if !*eof && !client.close_after_reply => {}
        Event::Idle if !*eof && !client.close_after_reply => {
            // The busy hook may have served the connection meanwhile.
            let idle_ms = info
                .age_ms()
                .saturating_sub(info.last_active_ms.load(Relaxed));
            return set.timeout > 0 && idle_ms < set.timeout * 1000;
        }
        _ => {
            // Messages pushed by other clients; replies the busy hook could not write (and a close it
            // left: QUIT, a protocol error, end of input).
            info.drain_outbox(out);
            if !out.is_empty() && !flush(stream, out, stats, info).await {
                return false;
            }
            return !*eof && !client.close_after_reply;
        }
    }
    // Read what is available.
    let want = parser.bytes_needed().unwrap_or(0).max(READ_CHUNK);
    if rbuf.capacity() - rbuf.len() < want.min(READ_CHUNK) {
        rbuf.reserve(want.min(64 * 1024 * 1024));
    }
    let n = match stream.read_available(rbuf) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
        Err(_) => return false,
    };
    stats.net_in.add(n as u64);
    if srv.config_epoch.load(Relaxed) != set.epoch {
        *set = settings(srv, parser, client);
    }
    if rbuf.len() > set.qbuf_limit {
        log::warning(&format!(
            "Closing client that reached max query buffer length: id={} addr={} (qbuf initial bytes: {:?})",
            client.id,
            info.addr,
            String::from_utf8_lossy(&rbuf[..rbuf.len().min(64)])
        ));
        return false;
    }
    // Parse and execute every complete request.
    let mut pos = 0;
    let mut clock = cmd::BatchClock::new();
    while !client.close_after_reply {
        match parser.parse(&rbuf[pos..]) {
            Ok(Some(used)) => {
                let args = parser.args(&rbuf[pos..]);
                if !args.is_empty() {
                    let was_auth = client.authenticated;
                    enter_gate(srv);
                    cmd::execute(srv, client, out, args, &mut clock);
                    if client.authenticated != was_auth {
                        parser.limits_mut().authenticated = client.authenticated;
                    }
                    while let Some(b) = client.blocked.take() {
                        srv.keyspace.gate.leave();
                        if let Some(t) = srv.persist.aof.durable_target() {
                            srv.persist.aof.durable(t).await;
                        }
                        if !flush(stream, out, stats, info).await {
                            return false;
                        }
                        let argv = b.argv.clone();
                        match wait_blocked(srv, stream, rbuf, info, b).await {
                            Wake::Reply(bytes) => out.extend_from_slice(&bytes),
                            Wake::Retry => {
                                let spans = spans_of(&argv);
                                let flat = argv.concat();
                                let args = ferrodis_protocol::Args::from_parts(&flat, &spans);
                                enter_gate(srv);
                                cmd::execute(srv, client, out, args, &mut clock);
                            }
                            Wake::Gone => return false,
                        }
                    }
                }
                pos += used;
                if out.len() >= FLUSH_AT {
                    srv.keyspace.gate.leave();
                    if let Some(t) = srv.persist.aof.durable_target() {
                        srv.persist.aof.durable(t).await;
                    }
                    if !flush(stream, out, stats, info).await {
                        return false;
                    }
                }
            }
            Ok(None) => break,
            Err(e) => protocol_error(srv, client, out, e.0),
        }
    }
    srv.keyspace.gate.leave();
    // Replies to writes go out only once the AOF says they are durable (appendfsync always).
    if let Some(t) = srv.persist.aof.durable_target() {
        srv.persist.aof.durable(t).await;
    }
    rbuf.advance(pos);
    info.qbuf.store(rbuf.len() as u64, Relaxed);
    info.last_active_ms.store(
        clock.mono_ns().saturating_sub(info.created_ns) / 1_000_000,
        Relaxed,
    );
    if !out.is_empty() {
        // Let the other connections with input run their batches first, and write after them, as Redis
        // writes every reply of an event-loop turn before it sleeps: replies reach a client in bursts, so
        // a client that is already awake takes them without being woken once per reply (on loopback, the
        // wake-up is paid by the sender). A lone connection pays no system call for this.
        yield_to_ready_tasks().await;
    }
    info.drain_outbox(out);
    if !out.is_empty() && !flush(stream, out, stats, info).await {
        return false;
    }
    if client.close_after_reply || srv.shutting_down.load(Relaxed) {
        return false;
    }
    if out.capacity() > 4 * 1024 * 1024 {
        *out = Vec::with_capacity(READ_CHUNK);
    }
    true
}

/// Answer a malformed request: an error reply, then the connection closes.
fn protocol_error(srv: &Server, client: &mut Client, out: &mut Vec<u8>, msg: &str) {
    log::verbose(&format!(
        "Protocol error ({msg}) from client: id={} addr={}",
        client.id, client.info.addr
    ));
    out.extend_from_slice(b"-ERR ");
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(b"\r\n");
    srv.count_error_reply(client.worker, "ERR");
    client.close_after_reply = true;
}

/// Called by a busy script's hook (every millisecond or so while it runs past the busy threshold): serve
/// the other connections of this worker thread, as Redis's processEventsWhileBlocked does. Those parked
/// waiting for input get their input read, their complete requests executed by `cmd::execute` (which
/// refuses all but allow-busy commands with BUSY, SCRIPT KILL among those allowed) and their replies
/// written without blocking; what cannot be written, and closes, are left to the connection's task, which
/// is woken. Connections in the middle of something (the script's own, blocked ones) are skipped.
pub fn serve_while_busy(srv: &Arc<Server>) {
    let slots: Vec<Rc<Slot>> = SLOTS.with(|s| {
        s.borrow()
            .values()
            .filter(|sl| matches!(sl.parked.try_borrow().as_deref(), Ok(Some(_))))
            .cloned()
            .collect()
    });
    if slots.is_empty() {
        return;
    }
    let mut fds: Vec<libc::pollfd> = slots
        .iter()
        .map(|s| libc::pollfd {
            fd: s.fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd entries; timeout 0 never blocks.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    if r < 0 {
        return;
    }
    for (slot, p) in slots.iter().zip(&fds) {
        let Ok(mut parked) = slot.parked.try_borrow_mut() else {
            continue;
        };
        let Some(conn) = parked.as_mut() else {
            continue;
        };
        let readable = p.revents != 0;
        if readable || !conn.out.is_empty() {
            serve_parked(srv, slot.fd, conn, readable);
        }
    }
}

/// Serve one parked connection from the busy hook (see [`serve_while_busy`]).
fn serve_parked(srv: &Arc<Server>, fd: i32, conn: &mut Conn, readable: bool) {
    let info = conn.client.info.clone();
    if info.killed.load(Relaxed) || conn.eof || conn.client.close_after_reply {
        return;
    }
    let stats = &srv.workers[conn.client.worker];
    let mut wake = false;
    if readable {
        loop {
            if conn.rbuf.capacity() - conn.rbuf.len() < READ_CHUNK / 4 {
                conn.rbuf.reserve(READ_CHUNK);
            }
            let spare = conn.rbuf.spare_capacity_mut();
            // SAFETY: reads at most `spare.len()` bytes into the buffer's spare capacity; the socket is
            // non-blocking (tokio's).
            let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
            if n > 0 {
                // SAFETY: the kernel initialized these `n` bytes.
                unsafe { conn.rbuf.set_len(conn.rbuf.len() + n as usize) };
                stats.net_in.add(n as u64);
                if conn.rbuf.len() > conn.set.qbuf_limit {
                    conn.eof = true;
                    break;
                }
                continue;
            }
            let e = io::Error::last_os_error();
            if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if n == 0 || e.kind() != io::ErrorKind::WouldBlock {
                conn.eof = true;
            }
            break;
        }
        if conn.eof {
            info.outbox_notify.notify_one();
            return;
        }
        let Conn {
            client,
            parser,
            rbuf,
            out,
            set,
            ..
        } = conn;
        if srv.config_epoch.load(Relaxed) != set.epoch {
            *set = settings(srv, parser, client);
        }
        let mut pos = 0;
        let mut clock = cmd::BatchClock::new();
        // No command allowed while busy blocks; were one to, the connection's task takes it from there.
        while !client.close_after_reply && client.blocked.is_none() {
            match parser.parse(&rbuf[pos..]) {
                Ok(Some(used)) => {
                    let args = parser.args(&rbuf[pos..]);
                    if !args.is_empty() {
                        let was_auth = client.authenticated;
                        cmd::execute(srv, client, out, args, &mut clock);
                        if client.authenticated != was_auth {
                            parser.limits_mut().authenticated = client.authenticated;
                        }
                    }
                    pos += used;
                }
                Ok(None) => break,
                Err(e) => protocol_error(srv, client, out, e.0),
            }
        }
        rbuf.advance(pos);
        info.qbuf.store(rbuf.len() as u64, Relaxed);
        info.last_active_ms.store(info.age_ms(), Relaxed);
    }
    info.drain_outbox(&mut conn.out);
    let out = &mut conn.out;
    let mut done = 0;
    while done < out.len() {
        // SAFETY: sends from a live buffer; MSG_DONTWAIT never blocks, MSG_NOSIGNAL never raises SIGPIPE.
        let n = unsafe {
            libc::send(
                fd,
                out[done..].as_ptr().cast(),
                out.len() - done,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            done += n as usize;
        } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            break;
        }
    }
    stats.net_out.add(done as u64);
    out.drain(..done);
    if conn.client.close_after_reply && out.is_empty() {
        // QUIT, a protocol error: the peer sees the close now; the task releases the rest after the script.
        // SAFETY: a plain syscall on the connection's own socket (which stays open until its task ends).
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
    if !out.is_empty() || conn.client.close_after_reply || conn.client.blocked.is_some() {
        wake = true;
    }
    if wake {
        info.outbox_notify.notify_one();
    }
}

/// Before running a command: be on the shared side of the keyspace gate (a no-op when already there, which
/// is the case for every command of a batch after the first). While a busy script holds the exclusive side
/// this gives up, and the command runs outside: `cmd::execute` then refuses all but allow-busy commands.
#[inline]
fn enter_gate(srv: &Server) {
    let gate = &srv.keyspace.gate;
    if !gate.is_in() {
        gate.enter(|| srv.scripting.busy.load(Relaxed) != 0);
    }
}

enum Wake {
    Reply(Vec<u8>),
    Retry,
    Gone,
}

fn spans_of(argv: &[Vec<u8>]) -> Vec<(usize, usize)> {
    let mut at = 0;
    argv.iter()
        .map(|a| {
            at += a.len();
            (at - a.len(), at)
        })
        .collect()
}

/// Wait for a blocked command's keys: served by a writer, timed out, unblocked, killed or disconnected.
/// Input that arrives meanwhile is buffered (not executed), as Redis does; EOF cancels the wait.
async fn wait_blocked<S: AsyncRead + Unpin>(
    srv: &Server,
    stream: &mut S,
    rbuf: &mut BytesMut,
    info: &ClientInfo,
    b: crate::client::Blocked,
) -> Wake {
    use crate::keyspace::blocking::Outcome;
    let w = b.waiter;
    *info.waiter.lock() = Some(w.clone());
    srv.blocked_clients.fetch_add(1, Relaxed);
    let sleep = async {
        match b.deadline {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    let mut eof = false;
    let mut timed_out = false;
    let outcome = loop {
        if let Some(o) = w.take_outcome() {
            break Some(o);
        }
        // Cancelled from outside (CLIENT UNBLOCK ... TIMEOUT) answers as a timeout.
        if w.is_cancelled() || ((timed_out || eof || info.killed.load(Relaxed)) && w.cancel()) {
            break None;
        }
        tokio::select! {
            _ = w.notify.notified() => {}
            _ = &mut sleep, if !timed_out => timed_out = true,
            _ = info.kill.notified() => {}
            r = stream.read_buf(rbuf), if !eof => {
                if !matches!(r, Ok(n) if n > 0) {
                    eof = true;
                }
            }
        }
    };
    *info.waiter.lock() = None;
    srv.blocked_clients.fetch_sub(1, Relaxed);
    // Leave every queue this waiter was in.
    for k in &w.keys {
        srv.keyspace.lock_key(k).remove_waiter(w.db, k, &w);
    }
    match outcome {
        Some(Outcome::Served(bytes)) => Wake::Reply(bytes),
        Some(Outcome::Retry) => Wake::Retry,
        Some(Outcome::Unblocked) => {
            Wake::Reply(b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec())
        }
        None if eof || info.killed.load(Relaxed) => Wake::Gone,
        None => Wake::Reply(b.timeout_reply),
    }
}

/// The idle timeout applies to normal clients only (Redis never times out subscribers).
fn idle_timeout(info: &ClientInfo, timeout: u64) -> u64 {
    if info.subs.iter().any(|s| s.load(Relaxed) > 0) {
        0
    } else {
        timeout
    }
}

/// Write out the pending replies. Gives up (false) on a write error, or when the client is killed while the
/// peer is not reading (CLIENT KILL, output buffer limit): a stuck socket must not keep the client alive.
async fn flush<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &mut Vec<u8>,
    stats: &crate::server::WorkerStats,
    info: &ClientInfo,
) -> bool {
    // Usually the socket takes the replies at once: only a write that has to wait also watches for a kill
    // (a `Notified` costs a lock to link and another to unlink).
    let mut w = std::pin::pin!(stream.write_all(out));
    let ok = match std::future::poll_fn(|cx| Poll::Ready(w.as_mut().poll(cx))).await {
        Poll::Ready(r) => r.is_ok(),
        Poll::Pending => tokio::select! {
            r = &mut w => r.is_ok(),
            _ = info.kill.notified() => false,
        },
    };
    stats.net_out.add(out.len() as u64);
    out.clear();
    ok
}
