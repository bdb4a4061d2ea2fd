//! Load generator for the realtime benchmarks (issue 4): pub/sub fan-out and MULTI/EXEC; and for the
//! streams suite (issue 5): consumer-group job queues.
//!
//!   loadgen pubsub --port P --subscribers N [--pattern] --messages M --size S [--latency-messages L]
//!   loadgen multi  --port P --clients C --pipeline K --transactions T
//!   loadgen xqueue --port P --clients C --messages M --batch B
//!     (fills stream bench:jobs with M entries of 5 fields, then C consumers of one group loop
//!      XREADGROUP COUNT B + XACK of the IDs read until the stream is drained)
//!   loadgen randint --port P --clients C --pipeline K --requests N --range R --command "SETBIT bm %d 1"
//!     (the command, split on blanks, with `%d` replaced by a uniform random integer in 0..R written without
//!      leading zeros: redis-benchmark's __rand_int__ is zero-padded, which Redis rejects as a bit offset)
//!
//! Human-readable lines go to stdout, followed by one `RESULT key=value ...` line per measurement that
//! bench/bench.py parses. Server error replies and malformed replies are counted and reported, never fatal
//! unless the measurement cannot proceed (connection refused, subscription rejected).

mod resp;

use resp::{encode, Conn, Val};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Nearest-rank percentile of a sorted slice, in milliseconds.
fn pct_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

struct Args {
    mode: String,
    port: u16,
    subscribers: usize,
    pattern: bool,
    messages: u64,
    latency_messages: Option<u64>,
    size: usize,
    clients: usize,
    pipeline: usize,
    transactions: u64,
    batch: usize,
    requests: u64,
    range: u64,
    command: String,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: loadgen pubsub|multi --port P ...")?;
    let mut a = Args {
        mode,
        port: 6379,
        subscribers: 1,
        pattern: false,
        messages: 100_000,
        latency_messages: None,
        size: 32,
        clients: 50,
        pipeline: 1,
        transactions: 100_000,
        batch: 16,
        requests: 100_000,
        range: 1,
        command: String::new(),
    };
    while let Some(flag) = it.next() {
        if flag == "--pattern" {
            a.pattern = true;
            continue;
        }
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--port" => a.port = num(&val)? as u16,
            "--subscribers" => a.subscribers = num(&val)? as usize,
            "--messages" => a.messages = num(&val)?,
            "--latency-messages" => a.latency_messages = Some(num(&val)?),
            "--size" => a.size = num(&val)? as usize,
            "--clients" => a.clients = num(&val)? as usize,
            "--pipeline" => a.pipeline = num(&val)?.max(1) as usize,
            "--transactions" => a.transactions = num(&val)?,
            "--batch" => a.batch = num(&val)?.max(1) as usize,
            "--requests" => a.requests = num(&val)?,
            "--range" => a.range = num(&val)?.max(1),
            "--command" => a.command = val,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    now_ns();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let res = rt.block_on(async {
        match args.mode.as_str() {
            "pubsub" => pubsub(&args).await,
            "multi" => multi(&args).await,
            "xqueue" => xqueue(&args).await,
            "randint" => randint(&args).await,
            m => Err(format!("unknown mode {m} (pubsub|multi|xqueue|randint)")),
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// pub/sub

const CHANNEL: &[u8] = b"bench:ch";
const PHASES: usize = 2; // 0: pipelined (throughput), 1: unpipelined (latency)

struct Shared {
    delivered: [AtomicU64; PHASES],
    /// Latest receive time (ns) of a subscriber's final message of the phase.
    last_recv: [AtomicU64; PHASES],
    lat: [Mutex<Vec<u64>>; PHASES],
    errors: Mutex<(u64, Vec<String>)>,
}

impl Shared {
    fn error(&self, msg: String) {
        let mut e = self.errors.lock().unwrap();
        e.0 += 1;
        if e.1.len() < 5 {
            e.1.push(msg);
        }
    }
}

/// Payload: phase digit, 16 hex digits of the send time (ns since EPOCH), padding up to `size`.
fn payload(phase: usize, size: usize) -> Vec<u8> {
    let mut p = format!("{phase}{:016x}", now_ns()).into_bytes();
    p.resize(size.max(17), b'x');
    p
}

fn decode_payload(p: &[u8]) -> Option<(usize, u64)> {
    if p.len() < 17 {
        return None;
    }
    let phase = match p[0] {
        b'0' => 0,
        b'1' => 1,
        _ => return None,
    };
    let ts = u64::from_str_radix(std::str::from_utf8(&p[1..17]).ok()?, 16).ok()?;
    Some((phase, ts))
}

/// The payload of a `message` / `pmessage` push, or None for anything else.
fn message_payload<'a>(v: &Val<'a>, pattern: bool) -> Option<&'a [u8]> {
    let Val::Array(Some(items)) = v else {
        return None;
    };
    let (kind, n) = if pattern {
        (&b"pmessage"[..], 4)
    } else {
        (&b"message"[..], 3)
    };
    if items.len() != n {
        return None;
    }
    match (&items[0], &items[n - 1]) {
        (Val::Bulk(Some(k)), Val::Bulk(Some(p))) if *k == kind => Some(p),
        _ => None,
    }
}

async fn subscriber(
    mut conn: Conn,
    sampled: bool,
    pattern: bool,
    expected: [u64; PHASES],
    sh: Arc<Shared>,
) {
    let mut counts = [0u64; PHASES];
    let mut local_lat: [Vec<u64>; PHASES] = [Vec::new(), Vec::new()];
    while counts.iter().zip(expected.iter()).any(|(c, e)| c < e) {
        if let Err(e) = conn.fill().await {
            sh.error(format!("subscriber read: {e}"));
            break;
        }
        let now = now_ns();
        let mut got = [0u64; PHASES];
        let mut bad: Option<String> = None;
        let r = conn.drain(
            |v| match message_payload(v, pattern).and_then(decode_payload) {
                Some((ph, ts)) => {
                    got[ph] += 1;
                    if sampled {
                        local_lat[ph].push(now.saturating_sub(ts));
                    }
                }
                None => {
                    if bad.is_none() {
                        bad = Some(format!("unexpected frame on subscriber: {}", v.describe()));
                    }
                }
            },
        );
        if let Err(e) = r {
            sh.error(format!("subscriber parse: {e}"));
            break;
        }
        if let Some(b) = bad {
            sh.error(b);
        }
        for ph in 0..PHASES {
            if got[ph] == 0 {
                continue;
            }
            let before = counts[ph];
            counts[ph] += got[ph];
            sh.delivered[ph].fetch_add(got[ph], Ordering::Relaxed);
            if before < expected[ph] && counts[ph] >= expected[ph] {
                sh.last_recv[ph].fetch_max(now, Ordering::Relaxed);
            }
            if sampled && !local_lat[ph].is_empty() {
                sh.lat[ph].lock().unwrap().append(&mut local_lat[ph]);
            }
        }
    }
}

async fn pubsub(a: &Args) -> Result<(), String> {
    let n = a.subscribers.max(1);
    let lat_msgs = a.latency_messages.unwrap_or(a.messages.min(10_000));
    let expected = [a.messages, lat_msgs];
    let sh = Arc::new(Shared {
        delivered: [AtomicU64::new(0), AtomicU64::new(0)],
        last_recv: [AtomicU64::new(0), AtomicU64::new(0)],
        lat: [Mutex::new(Vec::new()), Mutex::new(Vec::new())],
        errors: Mutex::new((0, Vec::new())),
    });
    // Latency is measured on about 16 subscribers spread over the set; all of them count deliveries.
    let step = (n / 16).max(1);
    let (sub_cmd, target): (&[u8], Vec<u8>) = if a.pattern {
        (b"PSUBSCRIBE", [CHANNEL, b"*"].concat())
    } else {
        (b"SUBSCRIBE", CHANNEL.to_vec())
    };
    let mut sub_req = Vec::new();
    encode(&mut sub_req, &[sub_cmd, &target]);
    let confirm: &[u8] = if a.pattern {
        b"psubscribe"
    } else {
        b"subscribe"
    };
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = Conn::connect(a.port)
            .await
            .map_err(|e| format!("subscriber {i} connect: {e}"))?;
        c.write_all(&sub_req)
            .await
            .map_err(|e| format!("subscriber {i} write: {e}"))?;
        let ok = c
            .next(|v| match v {
                Val::Array(Some(it))
                    if it.len() == 3 && matches!(it[0], Val::Bulk(Some(k)) if k == confirm) =>
                {
                    Ok(())
                }
                other => Err(other.describe()),
            })
            .await
            .map_err(|e| format!("subscriber {i} confirmation: {e}"))?;
        ok.map_err(|e| {
            format!(
                "subscriber {i}: unexpected {} reply: {e}",
                String::from_utf8_lossy(sub_cmd)
            )
        })?;
        tasks.push(tokio::spawn(subscriber(
            c,
            i % step == 0,
            a.pattern,
            expected,
            sh.clone(),
        )));
    }
    let mut publisher = Conn::connect(a.port)
        .await
        .map_err(|e| format!("publisher connect: {e}"))?;
    println!(
        "pubsub: {n} {} subscribers on port {}, {} pipelined (batch {}) + {} unpipelined PUBLISH of {} bytes",
        if a.pattern { "pattern" } else { "channel" },
        a.port,
        a.messages,
        a.batch,
        lat_msgs,
        a.size.max(17)
    );

    for (phase, &count) in expected.iter().enumerate() {
        let batch = if phase == 0 { a.batch } else { 1 };
        let mut pub_errors = 0u64;
        let mut receivers_mismatch = 0u64;
        let mut first_err: Option<String> = None;
        let mut buf = Vec::with_capacity(batch * (a.size + 64));
        let t0 = now_ns();
        let mut sent = 0u64;
        while sent < count {
            let k = (count - sent).min(batch as u64);
            buf.clear();
            for _ in 0..k {
                encode(&mut buf, &[b"PUBLISH", CHANNEL, &payload(phase, a.size)]);
            }
            publisher
                .write_all(&buf)
                .await
                .map_err(|e| format!("publisher write: {e}"))?;
            for _ in 0..k {
                let r = publisher
                    .next(|v| match v {
                        Val::Int(x) => Ok(*x),
                        other => Err(other.describe()),
                    })
                    .await
                    .map_err(|e| format!("publisher read: {e}"))?;
                match r {
                    Ok(x) if x as usize == n => {}
                    Ok(_) => receivers_mismatch += 1,
                    Err(e) => {
                        pub_errors += 1;
                        first_err.get_or_insert(e);
                    }
                }
            }
            sent += k;
        }
        let t1 = now_ns();
        // Wait for every subscriber to get every message (or for delivery to stall).
        let want = count * n as u64;
        let mut last = u64::MAX;
        let mut stalled_since = Instant::now();
        loop {
            let d = sh.delivered[phase].load(Ordering::Relaxed);
            if d >= want {
                break;
            }
            if d != last {
                last = d;
                stalled_since = Instant::now();
            } else if stalled_since.elapsed() > Duration::from_secs(10) {
                sh.error(format!(
                    "phase {phase}: delivery stalled at {d}/{want} messages"
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let delivered = sh.delivered[phase].load(Ordering::Relaxed);
        let end = sh.last_recv[phase].load(Ordering::Relaxed).max(t1);
        let pub_rate = count as f64 / ((t1 - t0) as f64 / 1e9);
        let del_rate = delivered as f64 / ((end - t0) as f64 / 1e9);
        let mut lat = std::mem::take(&mut *sh.lat[phase].lock().unwrap());
        lat.sort_unstable();
        let (p50, p99) = (pct_ms(&lat, 0.50), pct_ms(&lat, 0.99));
        let label = if phase == 0 {
            "pipelined"
        } else {
            "unpipelined"
        };
        if let Some(e) = &first_err {
            println!("  {label}: {pub_errors} PUBLISH error replies, first: {e}");
        }
        if receivers_mismatch > 0 {
            println!(
                "  {label}: {receivers_mismatch} PUBLISH replies did not report {n} receivers"
            );
        }
        println!(
            "  {label}: publish {pub_rate:.0}/s, delivery {del_rate:.0}/s ({delivered}/{want}), \
             latency p50 {p50:.3} ms p99 {p99:.3} ms ({} samples)",
            lat.len()
        );
        let errors = sh.errors.lock().unwrap().0 + pub_errors + receivers_mismatch;
        println!(
            "RESULT phase={label} publish_rate={pub_rate:.1} delivery_rate={del_rate:.1} p50_ms={p50:.4} \
             p99_ms={p99:.4} delivered={delivered} expected={want} errors={errors}"
        );
    }
    for t in &tasks {
        t.abort();
    }
    let errs = sh.errors.lock().unwrap();
    for e in &errs.1 {
        println!("  error: {e}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// MULTI/EXEC

struct ClientResult {
    lat: Vec<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Waits for every client task and merges their results: all latencies (sorted), totals, the first error.
async fn gather(tasks: Vec<tokio::task::JoinHandle<ClientResult>>) -> ClientResult {
    let mut all = ClientResult {
        lat: Vec::new(),
        ok: 0,
        errors: 0,
        first_error: None,
    };
    for t in tasks {
        match t.await {
            Ok(mut r) => {
                all.lat.append(&mut r.lat);
                all.ok += r.ok;
                all.errors += r.errors;
                if all.first_error.is_none() {
                    all.first_error = r.first_error;
                }
            }
            Err(e) => {
                all.errors += 1;
                all.first_error
                    .get_or_insert(format!("client task failed: {e}"));
            }
        }
    }
    all.lat.sort_unstable();
    all
}

fn check_tx_reply(idx: usize, v: &Val<'_>, expect: i64) -> Result<(), String> {
    match (idx, v) {
        (0, Val::Simple(b"OK")) => Ok(()),
        (1..=5, Val::Simple(b"QUEUED")) => Ok(()),
        (6, Val::Array(Some(items))) => {
            if items.len() != 5 {
                return Err(format!("EXEC returned {} replies, expected 5", items.len()));
            }
            for it in items {
                match it {
                    Val::Int(x) if *x == expect => {}
                    other => {
                        return Err(format!(
                            "EXEC element {} (expected :{expect})",
                            other.describe()
                        ))
                    }
                }
            }
            Ok(())
        }
        (i, other) => {
            let cmd = ["MULTI", "INCR", "INCR", "INCR", "INCR", "INCR", "EXEC"][i];
            Err(format!("{cmd} replied {}", other.describe()))
        }
    }
}

async fn multi_client(mut c: Conn, tx: Vec<u8>, pipeline: usize, n_tx: u64) -> ClientResult {
    let mut r = ClientResult {
        lat: Vec::with_capacity(n_tx as usize),
        ok: 0,
        errors: 0,
        first_error: None,
    };
    let mut buf = Vec::with_capacity(tx.len() * pipeline);
    let mut done = 0u64;
    let mut value = 0i64;
    while done < n_tx {
        let k = (n_tx - done).min(pipeline as u64);
        buf.clear();
        for _ in 0..k {
            buf.extend_from_slice(&tx);
        }
        let t0 = now_ns();
        if let Err(e) = c.write_all(&buf).await {
            r.errors += 1;
            r.first_error.get_or_insert(format!("write: {e}"));
            return r;
        }
        for _ in 0..k {
            value += 1;
            let mut tx_ok = true;
            for idx in 0..7 {
                let seen = |v: &Val<'_>| match v {
                    Val::Array(Some(items)) => match items.first() {
                        Some(Val::Int(x)) => Some(*x),
                        _ => None,
                    },
                    _ => None,
                };
                match c.next(|v| (check_tx_reply(idx, v, value), seen(v))).await {
                    Ok((Ok(()), _)) => {}
                    Ok((Err(e), observed)) => {
                        tx_ok = false;
                        r.first_error.get_or_insert(e);
                        // Re-sync the expected counter with what the server reports.
                        if let (6, Some(x)) = (idx, observed) {
                            value = x;
                        }
                    }
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert(format!("read: {e}"));
                        return r;
                    }
                }
            }
            if tx_ok {
                r.ok += 1;
                r.lat.push(now_ns() - t0);
            } else {
                r.errors += 1;
            }
        }
        done += k;
    }
    r
}

async fn multi(a: &Args) -> Result<(), String> {
    let clients = a.clients.max(1);
    let per = a.transactions / clients as u64;
    let extra = a.transactions % clients as u64;
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut c = Conn::connect(a.port)
            .await
            .map_err(|e| format!("client {i} connect: {e}"))?;
        let keys: Vec<Vec<u8>> = (0..5)
            .map(|j| format!("{{lg{i}}}:k{j}").into_bytes())
            .collect();
        let mut del = Vec::new();
        let mut args: Vec<&[u8]> = vec![b"DEL"];
        args.extend(keys.iter().map(|k| k.as_slice()));
        encode(&mut del, &args);
        c.write_all(&del)
            .await
            .map_err(|e| format!("client {i} write: {e}"))?;
        c.next(|v| match v {
            Val::Int(_) => Ok(()),
            other => Err(format!("DEL replied {}", other.describe())),
        })
        .await
        .map_err(|e| format!("client {i}: {e}"))??;
        let mut tx = Vec::new();
        encode(&mut tx, &[b"MULTI"]);
        for k in &keys {
            encode(&mut tx, &[b"INCR", k]);
        }
        encode(&mut tx, &[b"EXEC"]);
        conns.push((c, tx, per + u64::from((i as u64) < extra)));
    }
    println!(
        "multi: {clients} clients on port {}, pipeline {}, {} transactions of MULTI + 5 INCR + EXEC",
        a.port, a.pipeline, a.transactions
    );
    let t0 = now_ns();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(c, tx, n)| tokio::spawn(multi_client(c, tx, a.pipeline, n)))
        .collect();
    let ClientResult {
        lat,
        ok,
        errors,
        first_error: first,
    } = gather(tasks).await;
    let secs = (now_ns() - t0) as f64 / 1e9;
    let (p50, p99) = (pct_ms(&lat, 0.50), pct_ms(&lat, 0.99));
    let tps = ok as f64 / secs;
    if let Some(e) = &first {
        println!("  {errors} failed transactions, first: {e}");
    }
    println!("  {tps:.0} transactions/s, latency p50 {p50:.3} ms p99 {p99:.3} ms ({ok} ok)");
    println!("RESULT tps={tps:.1} p50_ms={p50:.4} p99_ms={p99:.4} ok={ok} errors={errors}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// streams: consumer-group job queue

const XKEY: &[u8] = b"bench:jobs";
const XGROUP: &[u8] = b"workers";

/// IDs of the entries in an XREADGROUP reply (`[[key, [[id, [f, v, ...]], ...]]]`, RESP2); None for a nil
/// reply (nothing new); Err for anything else.
fn xreadgroup_ids(v: &Val<'_>) -> Result<Option<Vec<Vec<u8>>>, String> {
    let streams = match v {
        Val::Array(None) => return Ok(None),
        Val::Array(Some(s)) => s,
        other => return Err(format!("XREADGROUP replied {}", other.describe())),
    };
    let mut ids = Vec::new();
    for st in streams {
        let Val::Array(Some(kv)) = st else {
            return Err(format!("XREADGROUP stream element {}", st.describe()));
        };
        let Some(Val::Array(Some(entries))) = kv.get(1) else {
            return Err("XREADGROUP stream element without entries".into());
        };
        for e in entries {
            match e {
                Val::Array(Some(pair)) => match pair.first() {
                    Some(Val::Bulk(Some(id))) => ids.push(id.to_vec()),
                    _ => return Err("XREADGROUP entry without an ID".into()),
                },
                other => return Err(format!("XREADGROUP entry {}", other.describe())),
            }
        }
    }
    Ok(if ids.is_empty() { None } else { Some(ids) })
}

async fn xqueue_client(mut c: Conn, name: Vec<u8>, count: usize) -> (ClientResult, u64) {
    let mut r = ClientResult {
        lat: Vec::new(),
        ok: 0,
        errors: 0,
        first_error: None,
    };
    let mut acked = 0u64;
    let count_s = count.to_string();
    let mut read = Vec::new();
    encode(
        &mut read,
        &[
            b"XREADGROUP",
            b"GROUP",
            XGROUP,
            &name,
            b"COUNT",
            count_s.as_bytes(),
            b"STREAMS",
            XKEY,
            b">",
        ],
    );
    let mut ack = Vec::new();
    loop {
        let t0 = now_ns();
        if let Err(e) = c.write_all(&read).await {
            r.errors += 1;
            r.first_error.get_or_insert(format!("write: {e}"));
            return (r, acked);
        }
        let ids = match c.next(xreadgroup_ids).await {
            Ok(Ok(Some(ids))) => ids,
            Ok(Ok(None)) => return (r, acked),
            Ok(Err(e)) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
                return (r, acked);
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(format!("read: {e}"));
                return (r, acked);
            }
        };
        ack.clear();
        let mut args: Vec<&[u8]> = vec![b"XACK", XKEY, XGROUP];
        args.extend(ids.iter().map(|i| i.as_slice()));
        encode(&mut ack, &args);
        if let Err(e) = c.write_all(&ack).await {
            r.errors += 1;
            r.first_error.get_or_insert(format!("write: {e}"));
            return (r, acked);
        }
        match c
            .next(|v| match v {
                Val::Int(n) => Ok(*n),
                other => Err(format!("XACK replied {}", other.describe())),
            })
            .await
        {
            Ok(Ok(n)) => {
                acked += n as u64;
                r.ok += ids.len() as u64;
                r.lat.push(now_ns() - t0);
                if n as usize != ids.len() {
                    r.errors += 1;
                    r.first_error
                        .get_or_insert(format!("XACK acked {n} of {} IDs", ids.len()));
                }
            }
            Ok(Err(e)) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(format!("read: {e}"));
                return (r, acked);
            }
        }
    }
}

async fn xqueue(a: &Args) -> Result<(), String> {
    let clients = a.clients.max(1);
    let mut setup = Conn::connect(a.port)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // Fresh stream and group, then M entries of 5 short fields, pipelined in chunks.
    let mut buf = Vec::new();
    encode(&mut buf, &[b"DEL", XKEY]);
    encode(
        &mut buf,
        &[b"XGROUP", b"CREATE", XKEY, XGROUP, b"0", b"MKSTREAM"],
    );
    setup.write_all(&buf).await.map_err(|e| e.to_string())?;
    for _ in 0..2 {
        setup
            .next(|v| match v {
                Val::Error(e) => Err(format!("setup: {}", String::from_utf8_lossy(e))),
                _ => Ok(()),
            })
            .await
            .map_err(|e| e.to_string())??;
    }
    let mut left = a.messages;
    while left > 0 {
        let k = left.min(1000);
        buf.clear();
        for j in 0..k {
            let n = (a.messages - left + j).to_string();
            encode(
                &mut buf,
                &[
                    b"XADD",
                    XKEY,
                    b"*",
                    b"job",
                    n.as_bytes(),
                    b"f2",
                    b"v2",
                    b"f3",
                    b"v3",
                    b"f4",
                    b"v4",
                    b"f5",
                    b"v5",
                ],
            );
        }
        setup.write_all(&buf).await.map_err(|e| e.to_string())?;
        for _ in 0..k {
            setup
                .next(|v| match v {
                    Val::Bulk(Some(_)) => Ok(()),
                    other => Err(format!("XADD replied {}", other.describe())),
                })
                .await
                .map_err(|e| e.to_string())??;
        }
        left -= k;
    }
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        let c = Conn::connect(a.port)
            .await
            .map_err(|e| format!("client {i} connect: {e}"))?;
        conns.push((c, format!("c{i}").into_bytes()));
    }
    println!(
        "xqueue: {clients} consumers on port {}, {} entries, XREADGROUP COUNT {} + XACK",
        a.port, a.messages, a.batch
    );
    let t0 = now_ns();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(c, name)| tokio::spawn(xqueue_client(c, name, a.batch)))
        .collect();
    let mut lat = Vec::new();
    let (mut ok, mut acked, mut errors, mut first) = (0u64, 0u64, 0u64, None);
    for t in tasks {
        match t.await {
            Ok((mut r, n)) => {
                lat.append(&mut r.lat);
                ok += r.ok;
                acked += n;
                errors += r.errors;
                if first.is_none() {
                    first = r.first_error;
                }
            }
            Err(e) => {
                errors += 1;
                first.get_or_insert(format!("client task failed: {e}"));
            }
        }
    }
    let secs = (now_ns() - t0) as f64 / 1e9;
    if acked != a.messages {
        errors += 1;
        first.get_or_insert(format!("acked {acked} of {} entries", a.messages));
    }
    lat.sort_unstable();
    let (p50, p99) = (pct_ms(&lat, 0.50), pct_ms(&lat, 0.99));
    let rate = acked as f64 / secs;
    let loops = lat.len() as f64 / secs;
    if let Some(e) = &first {
        println!("  {errors} errors, first: {e}");
    }
    println!(
        "  {rate:.0} entries/s read+acked ({loops:.0} XREADGROUP+XACK loops/s), loop latency p50 {p50:.3} ms p99 {p99:.3} ms"
    );
    println!(
        "RESULT eps={rate:.1} loops={loops:.1} p50_ms={p50:.4} p99_ms={p99:.4} ok={ok} acked={acked} errors={errors}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xreadgroup_reply_ids() {
        let (v, _) = resp::parse(
            b"*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$3\r\n1-2\r\n*0\r\n",
            0,
            0,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            xreadgroup_ids(&v).unwrap(),
            Some(vec![b"1-1".to_vec(), b"1-2".to_vec()])
        );
        let (v, _) = resp::parse(b"*-1\r\n", 0, 0).unwrap().unwrap();
        assert_eq!(xreadgroup_ids(&v).unwrap(), None);
        let (v, _) = resp::parse(b"-NOGROUP x\r\n", 0, 0).unwrap().unwrap();
        assert!(xreadgroup_ids(&v).is_err());
    }

    #[test]
    fn payload_roundtrip() {
        let p = payload(1, 32);
        assert_eq!(p.len(), 32);
        let (ph, ts) = decode_payload(&p).unwrap();
        assert_eq!(ph, 1);
        assert!(ts <= now_ns());
        assert!(decode_payload(b"2000").is_none());
    }

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1_000_000).collect();
        assert_eq!(pct_ms(&v, 0.5), 50.0);
        assert_eq!(pct_ms(&v, 0.99), 99.0);
        assert!(pct_ms(&[], 0.5).is_nan());
    }
}

// ---------------------------------------------------------------------------------------------------
// randint: one command line with a random integer, C clients, pipeline K

async fn randint_client(
    mut c: Conn,
    words: Vec<Vec<u8>>,
    range: u64,
    pipeline: usize,
    n: u64,
    seed: u64,
) -> ClientResult {
    let mut r = ClientResult {
        lat: Vec::with_capacity(n as usize),
        ok: 0,
        errors: 0,
        first_error: None,
    };
    let mut x = seed | 1;
    let mut buf = Vec::new();
    let mut done = 0u64;
    while done < n {
        let k = (n - done).min(pipeline as u64);
        buf.clear();
        for _ in 0..k {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % range).to_string();
            let args: Vec<&[u8]> = words
                .iter()
                .map(|w| if w == b"%d" { v.as_bytes() } else { &w[..] })
                .collect();
            encode(&mut buf, &args);
        }
        let t0 = now_ns();
        if let Err(e) = c.write_all(&buf).await {
            r.errors += 1;
            r.first_error.get_or_insert(format!("write: {e}"));
            return r;
        }
        for _ in 0..k {
            match c
                .next(|v| match v {
                    Val::Error(_) => Err(v.describe()),
                    _ => Ok(()),
                })
                .await
            {
                Ok(Ok(())) => {
                    r.ok += 1;
                    r.lat.push(now_ns() - t0);
                }
                Ok(Err(e)) => {
                    r.errors += 1;
                    r.first_error.get_or_insert(e);
                }
                Err(e) => {
                    r.errors += 1;
                    r.first_error.get_or_insert(format!("read: {e}"));
                    return r;
                }
            }
        }
        done += k;
    }
    r
}

async fn randint(a: &Args) -> Result<(), String> {
    let words: Vec<Vec<u8>> = a
        .command
        .split_whitespace()
        .map(|w| w.as_bytes().to_vec())
        .collect();
    if words.is_empty() {
        return Err("randint needs --command".into());
    }
    let clients = a.clients.max(1);
    let per = a.requests / clients as u64;
    let extra = a.requests % clients as u64;
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        let c = Conn::connect(a.port)
            .await
            .map_err(|e| format!("client {i} connect: {e}"))?;
        conns.push((
            c,
            per + u64::from((i as u64) < extra),
            0x9e37_79b9_7f4a_7c15u64 * (i as u64 + 1),
        ));
    }
    println!(
        "randint: {clients} clients on port {}, pipeline {}, {} requests of {:?}, %d in 0..{}",
        a.port, a.pipeline, a.requests, a.command, a.range
    );
    let t0 = now_ns();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(c, n, seed)| {
            tokio::spawn(randint_client(
                c,
                words.clone(),
                a.range,
                a.pipeline,
                n,
                seed,
            ))
        })
        .collect();
    let ClientResult {
        lat,
        ok,
        errors,
        first_error: first,
    } = gather(tasks).await;
    let secs = (now_ns() - t0) as f64 / 1e9;
    let (p50, p99) = (pct_ms(&lat, 0.50), pct_ms(&lat, 0.99));
    let rps = ok as f64 / secs;
    if let Some(e) = &first {
        println!("  {errors} error replies, first: {e}");
    }
    println!("  {rps:.0} requests/s, latency p50 {p50:.3} ms p99 {p99:.3} ms ({ok} ok)");
    println!("RESULT rps={rps:.1} p50_ms={p50:.4} p99_ms={p99:.4} ok={ok} errors={errors}");
    Ok(())
}
