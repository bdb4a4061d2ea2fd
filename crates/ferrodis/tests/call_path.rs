//! The one command path (`cmd::call`) as clients see it: Redis's ready-keys rule (clients blocked on a
//! key are served after the whole transaction or script, not inside the command that wrote the key), and
//! error/command statistics that count every error reply once, whoever ran the command (a client, EXEC, a
//! script's `redis.call`/`redis.pcall`). The expected figures are those Redis 7.2.4 reports for the same
//! sequences.

mod common;

use common::{Raw, Server};
use std::time::{Duration, Instant};

fn info_field(c: &mut Raw, section: &str, field: &str) -> Option<String> {
    let info = c.call(&["INFO", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

fn wait_blocked(c: &mut Raw, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(c, "clients", "blocked_clients").as_deref() != Some(&n.to_string()) {
        assert!(Instant::now() < deadline, "expected {n} blocked clients");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A client blocked on `key` with `blocking` (e.g. "BLPOP l 0"), checked to be waiting.
fn blocked(srv: &Server, admin: &mut Raw, blocking: &str) -> Raw {
    let mut b = srv.raw();
    b.send_line(blocking);
    wait_blocked(admin, 1);
    b
}

#[test]
fn transaction_that_pushes_then_deletes_wakes_nobody() {
    let srv = Server::start(&["--threads", "2"]);
    let mut a = srv.raw();
    for (push, pop) in [
        ("LPUSH l x", "BLPOP l 0"),
        ("LPUSH l x", "BLMPOP 0 1 l LEFT"),
        ("ZADD l 1 x", "BZPOPMIN l 0"),
    ] {
        let mut b = blocked(&srv, &mut a, pop);
        a.check("MULTI", "+OK\r\n");
        a.check(push, "+QUEUED\r\n");
        a.check("DEL l", "+QUEUED\r\n");
        a.check("SET l str", "+QUEUED\r\n");
        a.check("DEL l", "+QUEUED\r\n");
        a.cmd("EXEC");
        // Still blocked: the key was gone when the transaction ended.
        assert_eq!(
            info_field(&mut a, "clients", "blocked_clients").unwrap(),
            "1"
        );
        a.cmd(push);
        let got = b.read_string();
        assert!(got.contains("x"), "{pop}: {got}");
        wait_blocked(&mut a, 0);
    }
}

#[test]
fn script_that_pushes_then_deletes_wakes_nobody() {
    let srv = Server::start(&["--threads", "2"]);
    let mut a = srv.raw();
    let mut b = blocked(&srv, &mut a, "BLPOP l 0");
    a.check(
        "EVAL redis.call('lpush',KEYS[1],'x');redis.call('del',KEYS[1]) 1 l",
        "$-1\r\n",
    );
    assert_eq!(
        info_field(&mut a, "clients", "blocked_clients").unwrap(),
        "1"
    );
    // What a script leaves behind is served once it ends, in one piece.
    a.check(
        "EVAL redis.call('rpush',KEYS[1],'a');redis.call('rpush',KEYS[1],'b') 1 l",
        "$-1\r\n",
    );
    assert_eq!(b.read_string(), "*2\r\n$1\r\nl\r\n$1\r\na\r\n");
    a.check("LRANGE l 0 -1", "*1\r\n$1\r\nb\r\n");
}

#[test]
fn transaction_is_isolated_from_blocked_clients() {
    let srv = Server::start(&["--threads", "2"]);
    let mut a = srv.raw();
    let mut b = blocked(&srv, &mut a, "BLPOP l 0");
    a.check("MULTI", "+OK\r\n");
    a.check("LPUSH l a", "+QUEUED\r\n");
    a.check("LPUSH l b", "+QUEUED\r\n");
    a.check("LPUSH l c", "+QUEUED\r\n");
    a.check("LRANGE l 0 -1", "+QUEUED\r\n");
    // The transaction saw all three elements: nothing was popped in between.
    assert_eq!(
        a.cmd("EXEC"),
        "*4\r\n:1\r\n:2\r\n:3\r\n*3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n"
    );
    assert_eq!(b.read_string(), "*2\r\n$1\r\nl\r\n$1\r\nc\r\n");
}

#[test]
fn stream_reader_gets_every_entry_of_a_transaction() {
    let srv = Server::start(&["--threads", "2"]);
    let mut a = srv.raw();
    a.cmd("XADD s 1-0 f v");
    let mut b = blocked(&srv, &mut a, "XREAD BLOCK 0 STREAMS s $");
    a.check("MULTI", "+OK\r\n");
    a.check("XADD s 2-0 f v", "+QUEUED\r\n");
    a.check("XADD s 3-0 f v", "+QUEUED\r\n");
    a.cmd("EXEC");
    let got = b.read_string();
    assert!(got.contains("2-0") && got.contains("3-0"), "{got}");
}

/// Reset statistics, run `setup`, then return errorstats, the stats counters and the commandstats
/// lines of `cmds`, as text.
fn stats_after(c: &mut Raw, setup: &[&[&str]], cmds: &[&str]) -> String {
    c.cmd("CONFIG RESETSTAT");
    for args in setup {
        c.call(args);
    }
    let mut s = String::new();
    let errs = c.call(&["INFO", "errorstats"]);
    let mut lines: Vec<&str> = errs
        .lines()
        .filter(|l| l.starts_with("errorstat_"))
        .collect();
    lines.sort();
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str(&format!(
        "total_error_replies:{}\n",
        info_field(c, "stats", "total_error_replies").unwrap()
    ));
    let cs = c.call(&["INFO", "commandstats"]);
    for name in cmds {
        let line = cs
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .unwrap_or("");
        // calls, rejected_calls and failed_calls (usec varies).
        let keep: Vec<&str> = line
            .split([':', ','])
            .filter(|f| {
                f.starts_with("calls=") || f.starts_with("rejected_") || f.starts_with("failed_")
            })
            .collect();
        s.push_str(&format!("{name}:{}\n", keep.join(",")));
    }
    s
}

#[test]
fn script_errors_are_counted_once() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    c.cmd("SET str x");
    let scripts: &[&str] = &[
        "return {err='My Error'}",
        "return redis.pcall('nosuchcmd')",
        "return redis.call('lpush','str','a')",
        "return redis.pcall('lpush','str','a')",
        "local t = redis.pcall('lpush','str','a'); return 1",
        "return redis.error_reply('MY err')",
        "return redis.call('incr')",
        "error('boom')",
        "return redis.call('set','k')",
        "return {err='ERR x'}",
    ];
    let setup: Vec<Vec<&str>> = scripts.iter().map(|s| vec!["EVAL", s, "0"]).collect();
    let setup: Vec<&[&str]> = setup.iter().map(|v| &v[..]).collect();
    // Redis 7.2.4's figures for the same ten scripts.
    assert_eq!(
        stats_after(&mut c, &setup, &["eval", "lpush", "set", "incr"]),
        "errorstat_ERR:count=5\nerrorstat_MY:count=1\nerrorstat_My:count=1\n\
         errorstat_WRONGTYPE:count=3\ntotal_error_replies:10\n\
         eval:calls=10,rejected_calls=0,failed_calls=9\n\
         lpush:calls=3,rejected_calls=0,failed_calls=3\n\
         set:calls=0,rejected_calls=1,failed_calls=0\n\
         incr:calls=0,rejected_calls=1,failed_calls=0\n"
    );
    // Error tables nested in a reply count too; one a command already counted makes EVAL fail without
    // counting it again.
    assert_eq!(
        stats_after(
            &mut c,
            &[&[
                "EVAL",
                "return {1,{err='XERR x'}, redis.pcall('lpush','str','a')}",
                "0"
            ]],
            &["eval", "lpush"]
        ),
        "errorstat_WRONGTYPE:count=1\nerrorstat_XERR:count=1\ntotal_error_replies:2\n\
         eval:calls=1,rejected_calls=0,failed_calls=2\n\
         lpush:calls=1,rejected_calls=0,failed_calls=1\n"
    );
    // The table redis.pcall returns says its error was counted, as in Redis.
    assert_eq!(
        c.cmd("EVAL return(redis.pcall('nosuchcmd')['ignore_error_stats_update']) 0"),
        ":1\r\n"
    );
}

#[test]
fn transaction_errors_belong_to_their_commands() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    // From Redis's "errorstats: failed call within MULTI/EXEC".
    let got = stats_after(
        &mut c,
        &[&["MULTI"], &["SET", "a", "b"], &["AUTH", "a"], &["EXEC"]],
        &["set", "auth", "exec"],
    );
    assert_eq!(
        got,
        "errorstat_ERR:count=1\ntotal_error_replies:1\n\
         set:calls=1,rejected_calls=0,failed_calls=0\n\
         auth:calls=1,rejected_calls=0,failed_calls=1\n\
         exec:calls=1,rejected_calls=0,failed_calls=0\n"
    );
    // "errorstats: rejected call within MULTI/EXEC".
    let got = stats_after(
        &mut c,
        &[&["MULTI"], &["SET"], &["EXEC"]],
        &["set", "multi", "exec"],
    );
    assert_eq!(
        got,
        "errorstat_ERR:count=1\nerrorstat_EXECABORT:count=1\ntotal_error_replies:2\n\
         set:calls=0,rejected_calls=1,failed_calls=0\n\
         multi:calls=1,rejected_calls=0,failed_calls=0\n\
         exec:calls=1,rejected_calls=0,failed_calls=1\n"
    );
    // "errorstats: failed call within LUA" and an EVAL rejected for its arity.
    let got = stats_after(
        &mut c,
        &[
            &[
                "EVAL",
                "redis.pcall('XGROUP', 'CREATECONSUMER', 's1', 'mygroup', 'consumer') return",
                "0",
            ],
            &["EVAL", "a"],
        ],
        &["xgroup|createconsumer", "eval"],
    );
    assert_eq!(
        got,
        "errorstat_ERR:count=2\ntotal_error_replies:2\n\
         xgroup|createconsumer:calls=1,rejected_calls=0,failed_calls=1\n\
         eval:calls=1,rejected_calls=1,failed_calls=0\n"
    );
}
