//! INFO: the text report of server state, section by section, in Redis 7.2's format ("# Section" headers,
//! `field:value` lines, CRLF line endings, a blank line between sections).

use crate::mem::total_system_memory;
use crate::server::{unix_ms, unix_us, Server};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub use crate::server::REDIS_VERSION;

/// Every section, in the order Redis prints them.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Sections printed by plain `INFO` / `INFO default`.
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections a list of INFO arguments selects (case-insensitive; unknown names select nothing).
pub fn select_sections(args: &[&[u8]]) -> Vec<&'static str> {
    let mut want = vec![false; SECTIONS.len()];
    let mut mark = |names: &[&str]| {
        for n in names {
            if let Some(i) = SECTIONS.iter().position(|s| s == n) {
                want[i] = true;
            }
        }
    };
    if args.is_empty() {
        mark(DEFAULT);
    }
    for a in args {
        let l = String::from_utf8_lossy(a).to_ascii_lowercase();
        match l.as_str() {
            "default" => mark(DEFAULT),
            "all" | "everything" => mark(SECTIONS),
            "module_list" => mark(&["modules"]),
            s => {
                if let Some(&name) = SECTIONS.iter().find(|n| **n == s) {
                    mark(&[name]);
                }
            }
        }
    }
    SECTIONS
        .iter()
        .zip(want)
        .filter(|(_, w)| *w)
        .map(|(s, _)| *s)
        .collect()
}

/// Redis's bytesToHuman.
pub fn bytes_to_human(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else if d < K * K * K * K * K * K {
        format!("{:.2}P", d / (K * K * K * K * K))
    } else {
        format!("{n}B")
    }
}

/// Memory figures from jemalloc and the kernel.
pub struct MemStats {
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    pub rss: u64,
}

pub fn mem_stats() -> MemStats {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    let allocated = stats::allocated::read().unwrap_or(0) as u64;
    let active = stats::active::read().unwrap_or(0) as u64;
    let resident = stats::resident::read().unwrap_or(0) as u64;
    MemStats {
        allocated,
        active,
        resident,
        rss: process_rss().unwrap_or(resident),
    }
}

/// Resident set size of this process, from /proc/self/statm.
fn process_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * if page > 0 { page as u64 } else { 4096 })
}

// ------------------------------------------------------------------------------------------------------
// Instantaneous rates: a ring of samples, taken by [`sample`] (call it periodically, e.g. every 100 ms from
// a cron) and by every INFO.
// ------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    commands: u64,
    net_in: u64,
    net_out: u64,
}

static SAMPLES: Mutex<VecDeque<Sample>> = Mutex::new(VecDeque::new());
const SAMPLE_WINDOW: Duration = Duration::from_millis(1600);

/// Record a sample of the operation and traffic counters. Cheap; safe to call from any thread.
pub fn sample(srv: &Server) {
    let s = Sample {
        at: Instant::now(),
        commands: srv.sum(|w| w.commands.get()),
        net_in: srv.sum(|w| w.net_in.get()),
        net_out: srv.sum(|w| w.net_out.get()),
    };
    let mut q = SAMPLES.lock();
    if let Some(last) = q.back() {
        if s.at.duration_since(last.at) < Duration::from_millis(100) {
            return;
        }
    }
    q.push_back(s);
    // Keep one sample older than the window as the rate's base.
    while q.len() > 2 && s.at.duration_since(q[1].at) > SAMPLE_WINDOW {
        q.pop_front();
    }
    while q.len() > 64 {
        q.pop_front();
    }
}

/// Start the background sampler (once per process): a thread taking a [`sample`] every 100 ms for as long
/// as the server lives, so `instantaneous_ops_per_sec` and the kbps figures are real rates over the last
/// ~1.6 s, as Redis's. Called by INFO; the server may call it at startup too.
pub fn start_sampler(srv: &Arc<Server>) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let weak = Arc::downgrade(srv);
        let _ = std::thread::Builder::new()
            .name("ferrodis-stats".into())
            .spawn(move || loop {
                match weak.upgrade() {
                    Some(s) => sample(&s),
                    None => return,
                }
                std::thread::sleep(Duration::from_millis(100));
            });
    });
}

/// (ops/sec, input kbps, output kbps) over the sampled window.
fn rates(srv: &Server) -> (u64, f64, f64) {
    sample(srv);
    let q = SAMPLES.lock();
    let (Some(first), Some(last)) = (q.front(), q.back()) else {
        return (0, 0.0, 0.0);
    };
    let dt = last.at.duration_since(first.at).as_secs_f64();
    if dt <= 0.0 {
        return (0, 0.0, 0.0);
    }
    let ops = (last.commands.saturating_sub(first.commands)) as f64 / dt;
    let kin = (last.net_in.saturating_sub(first.net_in)) as f64 / dt / 1024.0;
    let kout = (last.net_out.saturating_sub(first.net_out)) as f64 / dt / 1024.0;
    (ops.round() as u64, kin, kout)
}

fn replid() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        (0..40)
            .map(|_| char::from(b"0123456789abcdef"[rand::random::<usize>() % 16]))
            .collect()
    })
}

fn uname() -> (String, String, String) {
    // SAFETY: utsname is plain old data; uname fills it with NUL-terminated strings.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return ("Linux".into(), String::new(), String::new());
        }
        let f = |p: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(p.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        (f(&u.sysname), f(&u.release), f(&u.machine))
    }
}

fn rusage(who: libc::c_int) -> (String, String) {
    // SAFETY: getrusage fills the zeroed struct.
    let r = unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut r);
        r
    };
    let tv = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (tv(r.ru_stime), tv(r.ru_utime))
}

/// The LRU clock as Redis reports it (seconds, 24 bits).
pub fn lru_clock() -> u64 {
    (unix_ms() / 1000) & ((1 << 24) - 1)
}

/// Build the INFO text for the given sections (see [`select_sections`]). `command_name`: the full name
/// (`parent|sub`) of a command id of the server's command table, for commandstats.
pub fn generate(
    srv: &Server,
    sections: &[&str],
    command_name: &dyn Fn(usize) -> &'static str,
) -> String {
    let mut out = String::new();
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let mut body = String::new();
        let title = match *s {
            "server" => {
                server(srv, &mut body);
                "Server"
            }
            "clients" => {
                clients(srv, &mut body);
                "Clients"
            }
            "memory" => {
                memory(srv, &mut body);
                "Memory"
            }
            "persistence" => {
                persistence(srv, &mut body);
                "Persistence"
            }
            "stats" => {
                stats(srv, &mut body);
                "Stats"
            }
            "replication" => {
                replication(&mut body);
                "Replication"
            }
            "cpu" => {
                cpu(&mut body);
                "CPU"
            }
            "modules" => "Modules",
            "commandstats" => {
                commandstats(srv, &mut body, command_name);
                "Commandstats"
            }
            "errorstats" => {
                errorstats(srv, &mut body);
                "Errorstats"
            }
            "cluster" => {
                body.push_str("cluster_enabled:0\r\n");
                "Cluster"
            }
            "keyspace" => {
                keyspace(srv, &mut body);
                "Keyspace"
            }
            _ => continue,
        };
        out.push_str("# ");
        out.push_str(title);
        out.push_str("\r\n");
        out.push_str(&body);
    }
    out
}

macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
        $out.push_str("\r\n");
    }};
}

fn server(srv: &Server, o: &mut String) {
    let cfg = srv.config.read();
    let (sys, rel, mach) = uname();
    let uptime = srv.start.elapsed().as_secs();
    line!(o, "redis_version:{REDIS_VERSION}");
    line!(o, "ferrodis_version:{}", env!("CARGO_PKG_VERSION"));
    line!(o, "redis_git_sha1:00000000");
    line!(o, "redis_git_dirty:0");
    line!(o, "redis_build_id:0");
    line!(o, "redis_mode:standalone");
    line!(o, "os:{sys} {rel} {mach}");
    line!(o, "arch_bits:{}", usize::BITS);
    line!(o, "monotonic_clock:POSIX clock_gettime");
    line!(o, "multiplexing_api:epoll");
    line!(o, "atomicvar_api:c11-builtin");
    line!(o, "gcc_version:0.0.0");
    line!(o, "process_id:{}", std::process::id());
    line!(o, "process_supervised:no");
    line!(o, "run_id:{}", srv.run_id);
    line!(o, "tcp_port:{}", cfg.port);
    line!(o, "server_time_usec:{}", unix_us());
    line!(o, "uptime_in_seconds:{uptime}");
    line!(o, "uptime_in_days:{}", uptime / 86400);
    line!(o, "hz:{}", cfg.hz);
    line!(o, "configured_hz:{}", cfg.hz);
    line!(o, "lru_clock:{}", lru_clock());
    line!(
        o,
        "executable:{}",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    line!(
        o,
        "config_file:{}",
        cfg.config_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    line!(o, "io_threads_active:0");
    line!(o, "worker_threads:{}", srv.workers.len());
}

fn clients(srv: &Server, o: &mut String) {
    let (maxin, maxout) = {
        let reg = srv.clients.lock();
        reg.values().fold((0, 0), |(i, out), c| {
            (i.max(c.qbuf.load(Relaxed)), out.max(c.omem.load(Relaxed)))
        })
    };
    line!(o, "connected_clients:{}", srv.connected.load(Relaxed));
    line!(o, "cluster_connections:0");
    line!(o, "maxclients:{}", srv.config.read().maxclients);
    line!(o, "client_recent_max_input_buffer:{maxin}");
    line!(o, "client_recent_max_output_buffer:{maxout}");
    line!(o, "blocked_clients:{}", srv.blocked_clients.load(Relaxed));
    line!(o, "total_blocking_keys:{}", srv.keyspace.blocking_keys());
    line!(o, "tracking_clients:{}", crate::tracking::stats(srv).0);
    line!(o, "pubsub_clients:0");
    line!(o, "watching_clients:0");
    line!(o, "clients_in_timeout_table:0");
    line!(o, "total_watched_keys:0");
    line!(o, "total_blocking_keys:0");
    line!(o, "total_blocking_keys_on_nokey:0");
}

fn memory(srv: &Server, o: &mut String) {
    let m = mem_stats();
    let used = m.allocated;
    let peak = srv.peak_memory.fetch_max(used, Relaxed).max(used);
    let (maxmemory, policy) = {
        let c = srv.config.read();
        (c.maxmemory, c.maxmemory_policy.clone())
    };
    let sysmem = total_system_memory();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    line!(o, "used_memory:{used}");
    line!(o, "used_memory_human:{}", bytes_to_human(used));
    line!(o, "used_memory_rss:{}", m.rss);
    line!(o, "used_memory_rss_human:{}", bytes_to_human(m.rss));
    line!(o, "used_memory_peak:{peak}");
    line!(o, "used_memory_peak_human:{}", bytes_to_human(peak));
    line!(o, "used_memory_peak_perc:{:.2}%", ratio(used, peak) * 100.0);
    line!(o, "allocator_allocated:{}", m.allocated);
    line!(o, "allocator_active:{}", m.active);
    line!(o, "allocator_resident:{}", m.resident);
    line!(o, "total_system_memory:{sysmem}");
    line!(o, "total_system_memory_human:{}", bytes_to_human(sysmem));
    let sm = srv.scripting.memory_info();
    line!(o, "used_memory_lua:{}", sm.vm);
    line!(o, "used_memory_vm_eval:{}", sm.vm);
    line!(o, "used_memory_lua_human:{}", bytes_to_human(sm.vm));
    line!(o, "used_memory_scripts_eval:{}", sm.scripts_eval);
    line!(o, "number_of_cached_scripts:{}", sm.cached_scripts);
    line!(o, "number_of_functions:{}", sm.functions);
    line!(o, "number_of_libraries:{}", sm.libraries);
    line!(o, "used_memory_vm_functions:0");
    line!(o, "used_memory_vm_total:{}", sm.vm);
    line!(o, "used_memory_vm_total_human:{}", bytes_to_human(sm.vm));
    line!(o, "used_memory_functions:{}", sm.functions_bytes);
    line!(
        o,
        "used_memory_scripts:{}",
        sm.scripts_eval + sm.functions_bytes
    );
    line!(
        o,
        "used_memory_scripts_human:{}",
        bytes_to_human(sm.scripts_eval + sm.functions_bytes)
    );
    line!(o, "maxmemory:{maxmemory}");
    line!(o, "maxmemory_human:{}", bytes_to_human(maxmemory));
    line!(o, "maxmemory_policy:{policy}");
    line!(
        o,
        "allocator_frag_ratio:{:.2}",
        ratio(m.active, m.allocated)
    );
    line!(
        o,
        "allocator_frag_bytes:{}",
        m.active.saturating_sub(m.allocated)
    );
    line!(o, "allocator_rss_ratio:{:.2}", ratio(m.resident, m.active));
    line!(
        o,
        "allocator_rss_bytes:{}",
        m.resident.saturating_sub(m.active)
    );
    line!(o, "rss_overhead_ratio:{:.2}", ratio(m.rss, m.resident));
    line!(o, "rss_overhead_bytes:{}", m.rss as i64 - m.resident as i64);
    line!(o, "mem_fragmentation_ratio:{:.2}", ratio(m.rss, used));
    line!(o, "mem_fragmentation_bytes:{}", m.rss as i64 - used as i64);
    line!(o, "mem_not_counted_for_evict:0");
    line!(o, "mem_replication_backlog:0");
    line!(o, "mem_total_replication_buffers:0");
    line!(o, "mem_clients_slaves:0");
    line!(o, "mem_aof_buffer:0");
    line!(o, "mem_allocator:jemalloc-5.3.0");
    line!(o, "active_defrag_running:0");
    line!(o, "lazyfree_pending_objects:0");
    line!(o, "lazyfreed_objects:0");
}

fn persistence(srv: &Server, o: &mut String) {
    line!(
        o,
        "loading:{}",
        (srv.persist
            .rdb
            .loading
            .load(std::sync::atomic::Ordering::Relaxed)
            || crate::persist::aof::loading(srv)) as u8
    );
    line!(o, "async_loading:0");
    line!(o, "current_cow_peak:0");
    line!(o, "current_cow_size:0");
    line!(o, "current_cow_size_age:0");
    line!(o, "current_fork_perc:0.00");
    line!(o, "current_save_keys_processed:0");
    line!(o, "current_save_keys_total:0");
    crate::persist::save::info(srv, o);
    crate::persist::aof::info(srv, o);
}

fn stats(srv: &Server, o: &mut String) {
    let (ops, kin, kout) = rates(srv);
    line!(
        o,
        "total_connections_received:{}",
        srv.sum(|w| w.connections.get())
    );
    line!(
        o,
        "total_commands_processed:{}",
        srv.sum(|w| w.commands.get())
    );
    line!(o, "instantaneous_ops_per_sec:{ops}");
    line!(o, "total_net_input_bytes:{}", srv.sum(|w| w.net_in.get()));
    line!(o, "total_net_output_bytes:{}", srv.sum(|w| w.net_out.get()));
    line!(o, "total_net_repl_input_bytes:0");
    line!(o, "total_net_repl_output_bytes:0");
    line!(o, "instantaneous_input_kbps:{kin:.2}");
    line!(o, "instantaneous_output_kbps:{kout:.2}");
    line!(o, "instantaneous_input_repl_kbps:0.00");
    line!(o, "instantaneous_output_repl_kbps:0.00");
    line!(
        o,
        "rejected_connections:{}",
        srv.sum(|w| w.rejected_connections.get())
    );
    line!(o, "sync_full:0");
    line!(o, "sync_partial_ok:0");
    line!(o, "sync_partial_err:0");
    line!(o, "expired_keys:{}", srv.sum(|w| w.expired.get()));
    line!(o, "evicted_keys:0");
    line!(o, "evicted_clients:0");
    line!(o, "total_eviction_exceeded_time:0");
    line!(o, "current_eviction_exceeded_time:0");
    line!(o, "keyspace_hits:{}", srv.sum(|w| w.hits.get()));
    line!(o, "keyspace_misses:{}", srv.sum(|w| w.misses.get()));
    line!(o, "pubsub_channels:0");
    line!(o, "pubsub_patterns:0");
    line!(o, "pubsubshard_channels:0");
    line!(o, "latest_fork_usec:0");
    line!(o, "total_forks:0");
    line!(o, "migrate_cached_sockets:0");
    line!(o, "slave_expires_tracked_keys:0");
    line!(o, "active_defrag_hits:0");
    line!(o, "active_defrag_misses:0");
    line!(o, "active_defrag_key_hits:0");
    line!(o, "active_defrag_key_misses:0");
    line!(o, "total_active_defrag_time:0");
    line!(o, "current_active_defrag_time:0");
    let (_, tkeys, titems, tprefixes) = crate::tracking::stats(srv);
    line!(o, "tracking_total_keys:{tkeys}");
    line!(o, "tracking_total_items:{titems}");
    line!(o, "tracking_total_prefixes:{tprefixes}");
    line!(o, "unexpected_error_replies:0");
    line!(
        o,
        "total_error_replies:{}",
        srv.sum(|w| w.error_replies.get())
    );
    line!(o, "dump_payload_sanitizations:0");
    line!(o, "io_threaded_reads_processed:0");
    line!(o, "io_threaded_writes_processed:0");
}

fn replication(o: &mut String) {
    line!(o, "role:master");
    line!(o, "connected_slaves:0");
    line!(o, "master_failover_state:no-failover");
    line!(o, "master_replid:{}", replid());
    line!(o, "master_replid2:0000000000000000000000000000000000000000");
    line!(o, "master_repl_offset:0");
    line!(o, "second_repl_offset:-1");
    line!(o, "repl_backlog_active:0");
    line!(o, "repl_backlog_size:1048576");
    line!(o, "repl_backlog_first_byte_offset:0");
    line!(o, "repl_backlog_histlen:0");
}

fn cpu(o: &mut String) {
    let (sys, user) = rusage(libc::RUSAGE_SELF);
    let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
    line!(o, "used_cpu_sys:{sys}");
    line!(o, "used_cpu_user:{user}");
    line!(o, "used_cpu_sys_children:{csys}");
    line!(o, "used_cpu_user_children:{cuser}");
}

fn commandstats(srv: &Server, o: &mut String, command_name: &dyn Fn(usize) -> &'static str) {
    let ncmds = srv.workers.first().map_or(0, |w| w.cmds.len());
    for id in 0..ncmds {
        let calls = srv.sum(|w| w.cmds[id].calls.get());
        let rejected = srv.sum(|w| w.cmds[id].rejected.get());
        let failed = srv.sum(|w| w.cmds[id].failed.get());
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let usec = srv.sum(|w| w.cmds[id].usec.get());
        let per = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        line!(
            o,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}",
            command_name(id)
        );
    }
}

fn errorstats(srv: &Server, o: &mut String) {
    let mut v: Vec<(String, u64)> = srv
        .errorstats
        .lock()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    v.sort();
    for (k, n) in v {
        line!(o, "errorstat_{k}:count={n}");
    }
}

fn keyspace(srv: &Server, o: &mut String) {
    for db in 0..srv.keyspace.databases() {
        let (keys, expires) = srv.keyspace.db_counts(db);
        if keys > 0 {
            line!(o, "db{db}:keys={keys},expires={expires},avg_ttl=0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1024), "1.00K");
        assert_eq!(bytes_to_human(1016176), "992.36K");
        assert_eq!(bytes_to_human(7114752), "6.79M");
        assert_eq!(bytes_to_human(3 << 30), "3.00G");
    }

    #[test]
    fn sections() {
        assert_eq!(select_sections(&[]), DEFAULT.to_vec());
        assert_eq!(select_sections(&[b"foo"]), Vec::<&str>::new());
        assert_eq!(
            select_sections(&[b"KEYSPACE", b"server"]),
            vec!["server", "keyspace"]
        );
        assert_eq!(select_sections(&[b"everything"]), SECTIONS.to_vec());
        assert!(select_sections(&[b"all"]).contains(&"commandstats"));
        assert!(!select_sections(&[b"default"]).contains(&"commandstats"));
    }

    #[test]
    fn format() {
        let srv = Server::new(crate::config::Config::default(), 2);
        let name = |id: usize| ["get", "config|get"][id];
        let s = generate(&srv, &["server", "keyspace"], &name);
        assert!(s.starts_with("# Server\r\nredis_version:7.2.4\r\n"), "{s}");
        assert!(s.ends_with("\r\n\r\n# Keyspace\r\n"), "{s}");
        let s = generate(&srv, &select_sections(&[b"everything"]), &name);
        assert!(s.contains("# Commandstats\r\n"));
        assert!(s.contains("\r\nrole:master\r\n"));
        assert!(!s.contains("\n\n"));
    }
}
