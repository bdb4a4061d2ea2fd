//! Integration tests for the connection and server commands: PING, ECHO, QUIT, RESET, SELECT, HELLO, AUTH,
//! CLIENT, COMMAND, DBSIZE, FLUSHDB, FLUSHALL, TIME, CONFIG, INFO, DEBUG, SHUTDOWN, and the security basics
//! (requirepass, maxclients, idle timeout). Each test starts its own server on a free port.

mod common;

use common::Server;

/// Start ferrodis with two worker threads, `pre` before the port arguments and `extra` after.
fn start_with(pre: &[&str], extra: &[&str]) -> Server {
    let mut args = vec!["--threads", "2"];
    args.extend_from_slice(extra);
    Server::start_with(pre, &args)
}

fn start(extra: &[&str]) -> Server {
    start_with(&[], extra)
}

use redis::Value;
use std::time::{Duration, Instant};

fn q(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<Value>(con)
}

fn err_of(r: redis::RedisResult<Value>) -> String {
    let e = r.expect_err("expected an error");
    // "ERR foo" / "WRONGPASS ..." as the server sent it.
    match (e.code(), e.detail()) {
        (Some(c), Some(d)) => format!("{c} {d}"),
        (Some(c), None) => c.to_string(),
        _ => e.to_string(),
    }
}

fn bulk_str(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        Value::SimpleString(s) => s,
        Value::VerbatimString { text, .. } => text,
        other => panic!("not a string: {other:?}"),
    }
}

#[test]
fn ping_echo_select_time_dbsize_flush() {
    let s = start(&[]);
    let mut r = s.raw();
    assert_eq!(r.call(&["PING"]), "+PONG\r\n");
    assert_eq!(r.call(&["ping", "hi"]), "$2\r\nhi\r\n");
    assert_eq!(
        r.call(&["PING", "a", "b"]),
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
    assert_eq!(r.call(&["ECHO", "x y"]), "$3\r\nx y\r\n");
    assert_eq!(
        r.call(&["ECHO"]),
        "-ERR wrong number of arguments for 'echo' command\r\n"
    );
    assert_eq!(
        r.call(&["SELECT", "16"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        r.call(&["SELECT", "-1"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        r.call(&["SELECT", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        r.call(&["SELECT", "4294967296"]),
        "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
    );
    assert_eq!(r.call(&["SET", "a", "1"]), "+OK\r\n");
    assert_eq!(r.call(&["DBSIZE"]), ":1\r\n");
    assert_eq!(r.call(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(r.call(&["DBSIZE"]), ":0\r\n");
    assert_eq!(r.call(&["SET", "b", "1"]), "+OK\r\n");
    assert_eq!(r.call(&["SET", "c", "1"]), "+OK\r\n");
    assert_eq!(r.call(&["DBSIZE"]), ":2\r\n");
    assert!(r.call(&["CLIENT", "INFO"]).contains(" db=3 "));
    assert_eq!(r.call(&["FLUSHDB", "now"]), "-ERR syntax error\r\n");
    assert_eq!(
        r.call(&["FLUSHDB", "ASYNC", "SYNC"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(r.call(&["FLUSHDB", "sync"]), "+OK\r\n");
    assert_eq!(r.call(&["DBSIZE"]), ":0\r\n");
    assert_eq!(r.call(&["SELECT", "0"]), "+OK\r\n");
    assert_eq!(r.call(&["DBSIZE"]), ":1\r\n");
    assert_eq!(r.call(&["SELECT", "5"]), "+OK\r\n");
    assert_eq!(r.call(&["SET", "d", "1"]), "+OK\r\n");
    assert_eq!(r.call(&["FLUSHALL", "ASYNC"]), "+OK\r\n");
    assert_eq!(r.call(&["DBSIZE"]), ":0\r\n");
    assert_eq!(r.call(&["SELECT", "0"]), "+OK\r\n");
    assert_eq!(r.call(&["DBSIZE"]), ":0\r\n");
    assert_eq!(r.call(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(
        r.call(&["DBSIZE", "x"]),
        "-ERR wrong number of arguments for 'dbsize' command\r\n"
    );

    let t = r.call(&["TIME"]);
    let parts: Vec<&str> = t.split("\r\n").collect();
    assert_eq!(parts[0], "*2");
    let secs: u64 = parts[2].parse().unwrap();
    let usecs: u64 = parts[4].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(now) <= 2);
    assert!(usecs < 1_000_000);

    // The redis crate sees the same.
    let mut con = s.client();
    assert_eq!(
        q(&mut con, &["PING"]).unwrap(),
        Value::SimpleString("PONG".into())
    );
    assert_eq!(q(&mut con, &["DBSIZE"]).unwrap(), Value::Int(0));
}

#[test]
fn quit_and_reset() {
    let s = start(&[]);
    let mut r = s.raw();
    assert_eq!(r.call(&["QUIT"]), "+OK\r\n");
    assert!(r.closed(Duration::from_secs(5)));

    let mut r = s.raw();
    r.call(&["HELLO", "3"]);
    assert_eq!(r.call(&["SELECT", "2"]), "+OK\r\n");
    assert_eq!(r.call(&["CLIENT", "SETNAME", "foo"]), "+OK\r\n");
    assert_eq!(r.call(&["CLIENT", "NO-EVICT", "on"]), "+OK\r\n");
    assert_eq!(r.call(&["CLIENT", "NO-TOUCH", "on"]), "+OK\r\n");
    let info = r.call(&["CLIENT", "INFO"]);
    assert!(
        info.contains(" flags=eT ") && info.contains(" resp=3 "),
        "{info}"
    );
    assert_eq!(r.call(&["RESET"]), "+RESET\r\n");
    let info = r.call(&["CLIENT", "INFO"]);
    assert!(info.starts_with("$"), "back to RESP2: {info}");
    assert!(
        info.contains(" db=0 ") && info.contains(" flags=N ") && info.contains(" name= "),
        "{info}"
    );
    assert_eq!(r.call(&["CLIENT", "GETNAME"]), "$-1\r\n");
    assert_eq!(
        r.call(&["RESET", "x"]),
        "-ERR wrong number of arguments for 'reset' command\r\n"
    );
    // QUIT takes (and ignores) arguments.
    assert_eq!(r.call(&["QUIT", "x"]), "+OK\r\n");
    assert!(r.closed(Duration::from_secs(5)));
}

#[test]
fn hello_resp2_resp3() {
    let s = start(&[]);
    let mut r = s.raw();
    let id = r.call(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end();
    let h = r.call(&["HELLO", "3"]);
    let want = format!(
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    );
    assert_eq!(h, want);
    // Nulls are RESP3 now.
    assert_eq!(r.call(&["CLIENT", "GETNAME"]), "_\r\n");
    let h = r.call(&["HELLO"]);
    assert!(
        h.starts_with("%7\r\n") && h.contains("proto\r\n:3\r\n"),
        "{h}"
    );
    let h = r.call(&["HELLO", "2", "SETNAME", "conn1"]);
    assert!(
        h.starts_with("*14\r\n") && h.contains("proto\r\n:2\r\n"),
        "{h}"
    );
    assert_eq!(r.call(&["CLIENT", "GETNAME"]), "$5\r\nconn1\r\n");
    assert_eq!(
        r.call(&["HELLO", "4"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        r.call(&["HELLO", "1"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        r.call(&["HELLO", "x"]),
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
    assert_eq!(
        r.call(&["HELLO", "3", "foo"]),
        "-ERR Syntax error in HELLO option 'foo'\r\n"
    );
    assert_eq!(
        r.call(&["HELLO", "3", "SETNAME"]),
        "-ERR Syntax error in HELLO option 'SETNAME'\r\n"
    );
    assert_eq!(
        r.call(&["HELLO", "3", "AUTH", "default"]),
        "-ERR Syntax error in HELLO option 'AUTH'\r\n"
    );
    // Without requirepass the default user takes any password; other users don't exist.
    assert!(r
        .call(&["HELLO", "2", "AUTH", "default", "x"])
        .starts_with("*14\r\n"));
    assert_eq!(
        r.call(&["HELLO", "2", "AUTH", "bob", "x"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        r.call(&["HELLO", "3", "SETNAME", "a b"]),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    // A failed HELLO did not switch protocols.
    assert_eq!(r.call(&["CLIENT", "GETNAME"]), "$5\r\nconn1\r\n");

    // The redis crate over RESP3.
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", s.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let v = q(&mut con, &["HELLO", "3"]).unwrap();
    match v {
        Value::Map(m) => {
            assert_eq!(m.len(), 7);
            assert_eq!(m[1].1, Value::BulkString(b"7.2.4".to_vec()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn auth_without_password() {
    let s = start(&[]);
    let mut r = s.raw();
    assert_eq!(
        r.call(&["AUTH", "foo"]),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
    );
    assert_eq!(r.call(&["AUTH", "default", "foo"]), "+OK\r\n");
    assert_eq!(
        r.call(&["AUTH", "a", "b"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(r.call(&["AUTH", "a", "b", "c"]), "-ERR syntax error\r\n");
}

#[test]
fn requirepass_auth_noauth() {
    let s = start(&["--requirepass", "s3cret"]);
    let mut r = s.raw();
    assert_eq!(
        r.call(&["GET", "x"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(r.call(&["PING"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(
        r.call(&["HELLO", "3"]),
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"
    );
    assert_eq!(
        r.call(&["AUTH", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        r.call(&["AUTH", "default", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(r.call(&["AUTH", "s3cret"]), "+OK\r\n");
    assert_eq!(r.call(&["PING"]), "+PONG\r\n");
    // RESET logs the connection out again.
    assert_eq!(r.call(&["RESET"]), "+RESET\r\n");
    assert_eq!(r.call(&["PING"]), "-NOAUTH Authentication required.\r\n");
    // HELLO with AUTH authenticates and switches protocol at once.
    let h = r.call(&["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "me"]);
    assert!(h.starts_with("%7\r\n"), "{h}");
    assert_eq!(r.call(&["CLIENT", "GETNAME"]), "$2\r\nme\r\n");
    assert_eq!(r.call(&["AUTH", "default", "s3cret"]), "+OK\r\n");

    // redis crate with a password in the URL.
    let mut con = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/", s.port))
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(
        q(&mut con, &["PING"]).unwrap(),
        Value::SimpleString("PONG".into())
    );
    let mut bad = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port))
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(
        err_of(q(&mut bad, &["GET", "x"])),
        "NOAUTH Authentication required."
    );

    // CONFIG SET requirepass affects new connections only.
    assert_eq!(
        r.call(&["CONFIG", "SET", "requirepass", "other"]),
        "+OK\r\n"
    );
    assert_eq!(r.call(&["PING"]), "+PONG\r\n");
    let mut r2 = s.raw();
    assert_eq!(
        r2.call(&["AUTH", "s3cret"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(r2.call(&["AUTH", "other"]), "+OK\r\n");
}

#[test]
fn client_commands() {
    let s = start(&[]);
    let mut a = s.raw();
    let mut b = s.raw();
    let ida: u64 = a
        .call(&["CLIENT", "ID"])
        .trim_start_matches(':')
        .trim_end()
        .parse()
        .unwrap();
    let idb: u64 = b
        .call(&["CLIENT", "ID"])
        .trim_start_matches(':')
        .trim_end()
        .parse()
        .unwrap();
    // Ids are unique; their order across worker threads follows accept order, not connect order.
    assert_ne!(idb, ida);
    assert_eq!(a.call(&["CLIENT", "GETNAME"]), "$-1\r\n");
    assert_eq!(a.call(&["CLIENT", "SETNAME", "alpha"]), "+OK\r\n");
    assert_eq!(a.call(&["CLIENT", "GETNAME"]), "$5\r\nalpha\r\n");
    assert_eq!(
        a.call(&["CLIENT", "SETNAME", "a b"]),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"]),
        "+OK\r\n"
    );
    assert_eq!(a.call(&["CLIENT", "SETINFO", "lib-ver", "1.2"]), "+OK\r\n");
    assert_eq!(
        a.call(&["CLIENT", "SETINFO", "foo", "1"]),
        "-ERR Unrecognized option 'foo'\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "foo"]),
        "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT"]),
        "-ERR wrong number of arguments for 'client' command\r\n"
    );
    b.call(&["SELECT", "2"]);
    b.call(&["GET", "x"]);

    let list = a.call(&["CLIENT", "LIST"]);
    let body = list.split_once("\r\n").unwrap().1;
    let lines: Vec<&str> = body.trim_end_matches("\r\n").lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    let la = lines
        .iter()
        .find(|l| l.starts_with(&format!("id={ida} ")))
        .unwrap();
    let lb = lines
        .iter()
        .find(|l| l.starts_with(&format!("id={idb} ")))
        .unwrap();
    assert!(
        la.contains(" name=alpha ") && la.contains(" cmd=client|list "),
        "{la}"
    );
    assert!(la.ends_with(" lib-name=mylib lib-ver=1.2"), "{la}");
    assert!(
        lb.contains(" db=2 ") && lb.contains(" cmd=get ") && lb.contains(" user=default "),
        "{lb}"
    );
    assert!(la.contains(" laddr=127.0.0.1:") && la.contains(" addr=127.0.0.1:"));
    let info = a.call(&["CLIENT", "INFO"]);
    assert!(
        info.contains(&format!("id={ida} "))
            && info.contains(" cmd=client|info ")
            && info.ends_with("\n\r\n")
    );

    let only_b = a.call(&["CLIENT", "LIST", "ID", &idb.to_string(), "999999"]);
    assert!(only_b.contains(&format!("id={idb} ")) && !only_b.contains(&format!("id={ida} ")));
    assert_eq!(
        a.call(&["CLIENT", "LIST", "ID", "x"]),
        "-ERR Invalid client ID\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "LIST", "TYPE", "foo"]),
        "-ERR Unknown client type 'foo'\r\n"
    );
    assert_eq!(a.call(&["CLIENT", "LIST", "foo"]), "-ERR syntax error\r\n");
    assert!(a
        .call(&["CLIENT", "LIST", "TYPE", "normal"])
        .contains(&format!("id={idb} ")));
    assert_eq!(a.call(&["CLIENT", "LIST", "TYPE", "master"]), "$0\r\n\r\n");

    // CLIENT KILL errors.
    assert_eq!(
        a.call(&["CLIENT", "KILL", "1.2.3.4:5"]),
        "-ERR No such client\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "KILL", "ID", "x"]),
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "KILL", "ID", "0"]),
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "KILL", "foo", "bar"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "KILL", "ID", "5", "TYPE"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "KILL", "TYPE", "foo"]),
        "-ERR Unknown client type 'foo'\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "KILL", "SKIPME", "maybe"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        a.call(&["CLIENT", "KILL", "USER", "bob"]),
        "-ERR No such user 'bob'\r\n"
    );
    assert_eq!(a.call(&["CLIENT", "KILL", "ID", "999999"]), ":0\r\n");
    // SKIPME yes (the default) spares the caller.
    assert_eq!(
        a.call(&["CLIENT", "KILL", "ID", &ida.to_string()]),
        ":0\r\n"
    );

    // Kill B by id from A.
    assert_eq!(
        a.call(&["CLIENT", "KILL", "ID", &idb.to_string()]),
        ":1\r\n"
    );
    assert!(b.closed(Duration::from_secs(5)));
    let list = a.call(&["CLIENT", "LIST"]);
    assert!(!list.contains(&format!("id={idb} ")));

    // Old form by address.
    let mut c = s.raw();
    let cinfo = c.call(&["CLIENT", "INFO"]);
    let caddr = cinfo
        .split(" addr=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(a.call(&["CLIENT", "KILL", &caddr]), "+OK\r\n");
    assert!(c.closed(Duration::from_secs(5)));

    // New form by ADDR, then TYPE normal with SKIPME no kills everyone including the caller.
    let mut d = s.raw();
    let dinfo = d.call(&["CLIENT", "INFO"]);
    let daddr = dinfo
        .split(" addr=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        a.call(&["CLIENT", "KILL", "ADDR", &daddr, "SKIPME", "yes"]),
        ":1\r\n"
    );
    assert!(d.closed(Duration::from_secs(5)));
    let mut e = s.raw();
    e.call(&["PING"]);
    // d's connection is closed; its registry entry goes a moment later.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while a
        .call(&["CLIENT", "LIST", "TYPE", "normal"])
        .matches("id=")
        .count()
        != 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        a.call(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"]),
        ":2\r\n"
    );
    assert!(a.closed(Duration::from_secs(5)));
    assert!(e.closed(Duration::from_secs(5)));

    // Killing oneself by the old form replies, then closes.
    let mut f = s.raw();
    let finfo = f.call(&["CLIENT", "INFO"]);
    let faddr = finfo
        .split(" addr=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(f.call(&["CLIENT", "KILL", &faddr]), "+OK\r\n");
    assert!(f.closed(Duration::from_secs(5)));

    let mut g = s.raw();
    let help = g.call(&["CLIENT", "HELP"]);
    assert!(help.contains("+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"));
    assert!(help.ends_with("+HELP\r\n+    Print this help.\r\n"));
    assert_eq!(
        g.call(&["CLIENT", "NO-EVICT", "maybe"]),
        "-ERR syntax error\r\n"
    );
}

#[test]
fn client_list_info_resp3_verbatim() {
    let s = start(&[]);
    let mut r = s.raw();
    r.call(&["HELLO", "3"]);
    let info = r.call(&["CLIENT", "INFO"]);
    assert!(
        info.starts_with('=') && info.contains("\r\ntxt:id="),
        "{info}"
    );
    let list = r.call(&["CLIENT", "LIST"]);
    assert!(list.starts_with('=') && list.contains(" resp=3 "), "{list}");
}

#[test]
fn client_reply_off_skip() {
    let s = start(&[]);
    let mut r = s.raw();
    // OFF: nothing comes back until ON.
    r.send_strs(&["CLIENT", "REPLY", "OFF"]);
    r.send_strs(&["SET", "k", "1"]);
    r.send_strs(&["GET", "k"]);
    r.send_strs(&["CLIENT", "REPLY", "ON"]);
    assert_eq!(r.read_string(), "+OK\r\n");
    assert_eq!(r.call(&["GET", "k"]), "$1\r\n1\r\n");
    // SKIP: only the next command's reply is dropped.
    r.send_strs(&["CLIENT", "REPLY", "SKIP"]);
    r.send_strs(&["SET", "k", "2"]);
    r.send_strs(&["GET", "k"]);
    assert_eq!(r.read_string(), "$1\r\n2\r\n");
    // SKIP while OFF stays OFF; errors are suppressed too.
    r.send_strs(&["CLIENT", "REPLY", "OFF"]);
    r.send_strs(&["CLIENT", "REPLY", "SKIP"]);
    r.send_strs(&["NOSUCHCOMMAND"]);
    r.send_strs(&["GET", "k"]);
    r.send_strs(&["CLIENT", "REPLY", "ON"]);
    assert_eq!(r.read_string(), "+OK\r\n");
    assert_eq!(
        r.call(&["CLIENT", "REPLY", "maybe"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(r.call(&["PING"]), "+PONG\r\n");
}

#[test]
fn info_sections() {
    let s = start(&[]);
    let mut con = s.client();
    q(&mut con, &["SET", "a", "1"]).unwrap();
    q(&mut con, &["SET", "b", "2", "EX", "100"]).unwrap();
    q(&mut con, &["GET", "a"]).unwrap();
    q(&mut con, &["GET", "nosuch"]).unwrap();
    let _ = q(&mut con, &["SELECT", "x"]);
    let _ = q(&mut con, &["NOSUCHCMD"]);

    let text = bulk_str(q(&mut con, &["INFO"]).unwrap());
    assert!(
        text.starts_with("# Server\r\nredis_version:7.2.4\r\nferrodis_version:"),
        "{text}"
    );
    for h in [
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Modules",
        "# Errorstats",
        "# Cluster",
        "# Keyspace",
    ] {
        assert!(text.contains(&format!("\r\n\r\n{h}\r\n")), "missing {h}");
    }
    assert!(!text.contains("# Commandstats"));
    let field = |t: &str, name: &str| -> String {
        t.split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {t}"))
            .to_string()
    };
    assert_eq!(field(&text, "redis_mode"), "standalone");
    assert_eq!(field(&text, "tcp_port"), s.port.to_string());
    assert_eq!(field(&text, "role"), "master");
    assert_eq!(field(&text, "connected_clients"), "1");
    assert_eq!(field(&text, "maxclients"), "10000");
    assert_eq!(field(&text, "mem_allocator"), "jemalloc-5.3.0");
    assert_eq!(field(&text, "loading"), "0");
    assert_eq!(field(&text, "aof_enabled"), "0");
    assert_eq!(field(&text, "keyspace_hits"), "1");
    assert_eq!(field(&text, "keyspace_misses"), "1");
    assert_eq!(field(&text, "rdb_changes_since_last_save"), "2");
    assert_eq!(field(&text, "db0"), "keys=2,expires=1,avg_ttl=0");
    assert_eq!(field(&text, "errorstat_ERR"), "count=2");
    assert_eq!(field(&text, "total_error_replies"), "2");
    assert_eq!(field(&text, "master_replid").len(), 40);
    assert!(field(&text, "used_memory").parse::<u64>().unwrap() > 0);
    assert!(field(&text, "used_memory_rss").parse::<u64>().unwrap() > 0);
    assert!(field(&text, "used_memory_peak").parse::<u64>().unwrap() > 0);
    assert!(field(&text, "used_cpu_user").contains('.'));
    assert!(text.ends_with("\r\n") && !text.ends_with("\r\n\r\n"));

    let one = bulk_str(q(&mut con, &["INFO", "keyspace"]).unwrap());
    assert_eq!(one, "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n");
    let two = bulk_str(q(&mut con, &["INFO", "CLUSTER", "keyspace"]).unwrap());
    assert_eq!(
        two,
        "# Cluster\r\ncluster_enabled:0\r\n\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n"
    );
    assert_eq!(bulk_str(q(&mut con, &["INFO", "nosuch"]).unwrap()), "");
    let cs = bulk_str(q(&mut con, &["INFO", "commandstats"]).unwrap());
    assert!(cs.contains("\r\ncmdstat_set:calls=2,usec="), "{cs}");
    assert!(
        cs.contains(",rejected_calls=0,failed_calls=1\r\n")
            || cs.contains("cmdstat_select:calls=1"),
        "{cs}"
    );
    assert!(cs.contains("cmdstat_info:calls="));
    let all = bulk_str(q(&mut con, &["INFO", "all"]).unwrap());
    assert!(all.contains("# Commandstats") && all.contains("# Server"));
    let every = bulk_str(q(&mut con, &["INFO", "everything"]).unwrap());
    assert!(every.contains("# Commandstats") && every.contains("# Keyspace"));

    // CLIENT subcommand names in commandstats.
    q(&mut con, &["CLIENT", "ID"]).unwrap();
    let cs = bulk_str(q(&mut con, &["INFO", "commandstats"]).unwrap());
    assert!(cs.contains("cmdstat_client|id:calls=1,"), "{cs}");

    // CONFIG RESETSTAT clears the counters.
    assert_eq!(q(&mut con, &["CONFIG", "RESETSTAT"]).unwrap(), Value::Okay);
    let st = bulk_str(q(&mut con, &["INFO", "stats", "errorstats"]).unwrap());
    assert_eq!(field(&st, "keyspace_hits"), "0");
    assert_eq!(field(&st, "total_error_replies"), "0");
    assert!(!st.contains("errorstat_ERR"));

    // RESP3: a verbatim string.
    let mut r = s.raw();
    r.call(&["HELLO", "3"]);
    let v = r.call(&["INFO", "keyspace"]);
    assert_eq!(
        v,
        "=48\r\ntxt:# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n\r\n"
    );
}

#[test]
fn config_get_set_rewrite() {
    let dir = std::env::temp_dir().join(format!("ferrodis-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("test.conf");
    std::fs::write(&path, "# my config\nhz 10\nmaxmemory 1mb\n").unwrap();
    let s = start_with(&[path.to_str().unwrap()], &[]);
    let mut r = s.raw();
    assert_eq!(
        r.call(&["CONFIG", "GET", "maxmemory"]),
        "*2\r\n$9\r\nmaxmemory\r\n$7\r\n1048576\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "GET", "HZ"]),
        "*2\r\n$2\r\nHZ\r\n$2\r\n10\r\n"
    );
    assert_eq!(r.call(&["CONFIG", "GET", "nosuch"]), "*0\r\n");
    let g = r.call(&["CONFIG", "GET", "max*", "H?", "maxmemory"]);
    assert!(g.starts_with("*8\r\n"), "{g}");
    for n in ["maxmemory", "maxmemory-policy", "maxclients", "hz"] {
        assert!(g.contains(&format!("\r\n{n}\r\n")), "{n} in {g}");
    }
    assert_eq!(
        r.call(&["CONFIG", "GET"]),
        "-ERR wrong number of arguments for 'config|get' command\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "maxclients"]),
        "-ERR wrong number of arguments for 'config|set' command\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "hz", "5", "maxclients"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "foo", "bar"]),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "hz", "x"]),
        "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "maxmemory", "1mb", "maxmemory", "2mb"]),
        "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "databases", "4"]),
        "-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n"
    );
    // Atomic: a failure in the second pair leaves the first unchanged.
    assert!(r
        .call(&["CONFIG", "SET", "maxmemory", "5mb", "hz", "x"])
        .starts_with("-ERR CONFIG SET failed"));
    assert_eq!(
        r.call(&["CONFIG", "GET", "maxmemory"]),
        "*2\r\n$9\r\nmaxmemory\r\n$7\r\n1048576\r\n"
    );
    assert_eq!(
        r.call(&[
            "CONFIG",
            "SET",
            "maxmemory",
            "2mb",
            "maxmemory-policy",
            "allkeys-lru",
            "loglevel",
            "warning"
        ]),
        "+OK\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "GET", "maxmemory-policy"]),
        "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n"
    );
    let info = r.call(&["INFO", "memory"]);
    assert!(
        info.contains(
            "\r\nmaxmemory:2097152\r\nmaxmemory_human:2.00M\r\nmaxmemory_policy:allkeys-lru\r\n"
        ),
        "{info}"
    );
    assert_eq!(r.call(&["CONFIG", "REWRITE"]), "+OK\r\n");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# my config\n"), "{text}");
    assert!(
        text.contains("maxmemory 2097152\n") || text.contains("maxmemory 2mb\n"),
        "{text}"
    );
    assert!(text.contains("maxmemory-policy allkeys-lru\n"), "{text}");
    assert!(text.contains("loglevel warning\n"), "{text}");
    let help = r.call(&["CONFIG", "HELP"]);
    assert!(help.starts_with("*") && help.contains("+RESETSTAT\r\n"));

    // RESP3: a map.
    r.call(&["HELLO", "3"]);
    assert_eq!(
        r.call(&["CONFIG", "GET", "hz"]),
        "%1\r\n$2\r\nhz\r\n$2\r\n10\r\n"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);

    // Without a config file REWRITE fails.
    let s = start(&[]);
    let mut r = s.raw();
    assert_eq!(
        r.call(&["CONFIG", "REWRITE"]),
        "-ERR The server is running without a config file\r\n"
    );
}

#[test]
fn maxclients_reached() {
    let s = start(&["--maxclients", "2"]);
    let mut a = s.raw();
    let mut b = s.raw();
    assert_eq!(a.call(&["PING"]), "+PONG\r\n");
    assert_eq!(b.call(&["PING"]), "+PONG\r\n");
    let mut c = s.raw();
    assert_eq!(c.read_string(), "-ERR max number of clients reached\r\n");
    assert!(c.closed(Duration::from_secs(5)));
    drop(b);
    // The slot frees up once the server notices the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = s.raw();
        let rep = d.call(&["PING"]);
        if rep == "+PONG\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let info = a.call(&["INFO", "stats"]);
    assert!(!info.contains("\r\nrejected_connections:0\r\n"), "{info}");
}

#[test]
fn idle_timeout_disconnects() {
    let s = start(&["--timeout", "1"]);
    let mut r = s.raw();
    assert_eq!(r.call(&["PING"]), "+PONG\r\n");
    let t = Instant::now();
    assert!(r.closed(Duration::from_secs(5)));
    assert!(t.elapsed() >= Duration::from_millis(900));
    // An active client stays.
    let mut a = s.raw();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(a.call(&["PING"]), "+PONG\r\n");
    }
}

#[test]
fn command_introspection() {
    let s = start(&[]);
    let mut r = s.raw();
    let count: usize = r
        .call(&["COMMAND", "COUNT"])
        .trim_start_matches(':')
        .trim_end()
        .parse()
        .unwrap();
    assert!(count >= 20);
    let all = r.call(&["COMMAND"]);
    assert!(all.starts_with(&format!("*{count}\r\n")));

    assert_eq!(
        r.call(&["COMMAND", "INFO", "get"]),
        "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "INFO", "ping"]),
        "*1\r\n*10\r\n$4\r\nping\r\n:-1\r\n*1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@connection\r\n*2\r\n$25\r\nrequest_policy:all_shards\r\n$29\r\nresponse_policy:all_succeeded\r\n*0\r\n*0\r\n"
    );
    let hello = r.call(&["COMMAND", "INFO", "hello", "auth", "quit", "reset"]);
    assert_eq!(
        hello
            .matches(
                "*6\r\n+noscript\r\n+loading\r\n+stale\r\n+fast\r\n+no_auth\r\n+allow_busy\r\n"
            )
            .count(),
        4,
        "{hello}"
    );
    assert_eq!(r.call(&["COMMAND", "INFO", "nosuch"]), "*1\r\n$-1\r\n");
    let cl = r.call(&["COMMAND", "INFO", "client|list"]);
    assert!(
        cl.contains(
            "$11\r\nclient|list\r\n:-2\r\n*4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n"
        ),
        "{cl}"
    );
    assert!(
        cl.contains("*4\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n+@connection\r\n"),
        "{cl}"
    );
    let cfg = r.call(&["COMMAND", "INFO", "config"]);
    assert!(cfg.contains("$10\r\nconfig|get\r\n:-3\r\n"), "{cfg}");
    let info = r.call(&["COMMAND", "INFO", "info"]);
    assert!(info.contains("*2\r\n+@slow\r\n+@dangerous\r\n"), "{info}");

    // GETKEYS / GETKEYSANDFLAGS.
    assert_eq!(
        r.call(&["COMMAND", "GETKEYS", "get", "a"]),
        "*1\r\n$1\r\na\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "GETKEYS", "set", "k", "v", "EX", "5"]),
        "*1\r\n$1\r\nk\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "GETKEYS", "del", "a", "b", "c"]),
        "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "GETKEYS", "foo", "a"]),
        "-ERR Invalid command specified\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "GETKEYS", "get", "a", "b"]),
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "GETKEYS", "ping", "x"]),
        "-ERR The command has no key arguments\r\n"
    );
    // COMMAND GETKEYS has arity -3 in 7.2: the inner command's arity is checked by GETKEYS itself.
    assert_eq!(
        r.call(&["COMMAND", "GETKEYS", "get"]),
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "GETKEYSANDFLAGS", "get", "a"]),
        "*1\r\n*2\r\n$1\r\na\r\n*2\r\n+RO\r\n+access\r\n"
    );

    // LIST.
    let list = r.call(&["COMMAND", "LIST"]);
    assert!(list.contains("\r\nclient|list\r\n") && list.contains("\r\nget\r\n"));
    let pat = r.call(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "cl*"]);
    assert!(
        pat.contains("\r\nclient\r\n")
            && pat.contains("\r\nclient|kill\r\n")
            && !pat.contains("\r\nget\r\n")
    );
    let cat = r.call(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection"]);
    assert!(
        cat.contains("\r\nhello\r\n")
            && cat.contains("\r\nping\r\n")
            && !cat.contains("\r\nget\r\n")
    );
    assert_eq!(
        r.call(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"]),
        "*0\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "LIST", "FILTERBY", "MODULE", "x"]),
        "*0\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "LIST", "FILTERBY", "foo", "x"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        r.call(&["COMMAND", "LIST", "FILTERBY", "PATTERN"]),
        "-ERR syntax error\r\n"
    );

    // DOCS.
    r.call(&["HELLO", "3"]);
    let d = r.call(&["COMMAND", "DOCS", "get"]);
    assert_eq!(
        d,
        "%1\r\n$3\r\nget\r\n%5\r\n$7\r\nsummary\r\n$34\r\nReturns the string value of a key.\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\narguments\r\n*1\r\n%4\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$12\r\ndisplay_text\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n"
    );
    let d = r.call(&["COMMAND", "DOCS", "set", "nosuch"]);
    assert!(d.starts_with("%1\r\n$3\r\nset\r\n"), "{d}");
    assert!(
        d.contains("$5\r\ntoken\r\n$2\r\nNX\r\n") && d.contains("+optional\r\n"),
        "{d}"
    );
    let d = r.call(&["COMMAND", "DOCS", "client"]);
    assert!(
        d.contains("$11\r\nsubcommands\r\n") && d.contains("$11\r\nclient|list\r\n"),
        "{d}"
    );
    let all = r.call(&["COMMAND", "DOCS"]);
    assert!(all.starts_with(&format!("%{count}\r\n")));
    let help = r.call(&["COMMAND", "HELP"]);
    assert!(help.contains("+GETKEYSANDFLAGS <full-command>\r\n"));

    // The redis crate parses the whole COMMAND reply.
    let mut con = s.client();
    match q(&mut con, &["COMMAND"]).unwrap() {
        Value::Array(v) => assert_eq!(v.len(), count),
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_commands() {
    let s = start(&["--enable-debug-command", "yes"]);
    let mut r = s.raw();
    assert_eq!(r.call(&["DEBUG", "POPULATE", "3"]), "+OK\r\n");
    assert_eq!(r.call(&["DBSIZE"]), ":3\r\n");
    assert_eq!(r.call(&["GET", "key:2"]), "$7\r\nvalue:2\r\n");
    assert_eq!(r.call(&["SET", "pre:0", "keep"]), "+OK\r\n");
    assert_eq!(r.call(&["DEBUG", "POPULATE", "2", "pre", "10"]), "+OK\r\n");
    assert_eq!(r.call(&["GET", "pre:0"]), "$4\r\nkeep\r\n");
    assert_eq!(r.call(&["GET", "pre:1"]), "$10\r\nvalue:1\0\0\0\r\n");
    assert_eq!(r.call(&["DEBUG", "POPULATE", "1", "tr", "3"]), "+OK\r\n");
    assert_eq!(r.call(&["GET", "tr:0"]), "$3\r\nval\r\n");
    assert_eq!(
        r.call(&["DEBUG", "POPULATE", "x"]),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(
        r.call(&["DEBUG", "POPULATE", "-1"]),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(
        r.call(&["DEBUG", "POPULATE", "1", "p", "10", "x"]),
        "-ERR unknown subcommand or wrong number of arguments for 'POPULATE'. Try DEBUG HELP.\r\n"
    );
    assert_eq!(r.call(&["DEBUG", "POPULATE", "0"]), "+OK\r\n");

    assert_eq!(r.call(&["SET", "s", "12345678901"]), "+OK\r\n");
    let o = r.call(&["DEBUG", "OBJECT", "s"]);
    assert!(
        o.starts_with("+Value at:0x")
            && o.contains(" refcount:1 encoding:int serializedlength:12 lru:"),
        "{o}"
    );
    assert!(o.ends_with(" lru_seconds_idle:0\r\n"), "{o}");
    assert_eq!(r.call(&["SET", "s2", "abc"]), "+OK\r\n");
    assert!(r
        .call(&["DEBUG", "OBJECT", "s2"])
        .contains(" encoding:embstr serializedlength:4 "));
    let long = "a".repeat(100);
    assert_eq!(r.call(&["SET", "s3", &long]), "+OK\r\n");
    assert!(r
        .call(&["DEBUG", "OBJECT", "s3"])
        .contains(" encoding:raw "));
    assert_eq!(
        r.call(&["DEBUG", "OBJECT", "nokey"]),
        "-ERR no such key\r\n"
    );
    assert_eq!(
        r.call(&["DEBUG", "OBJECT"]),
        "-ERR unknown subcommand or wrong number of arguments for 'OBJECT'. Try DEBUG HELP.\r\n"
    );
    assert_eq!(
        r.call(&["DEBUG", "foo"]),
        "-ERR unknown subcommand or wrong number of arguments for 'foo'. Try DEBUG HELP.\r\n"
    );
    let t = Instant::now();
    assert_eq!(r.call(&["DEBUG", "SLEEP", "0.2"]), "+OK\r\n");
    assert!(t.elapsed() >= Duration::from_millis(190));
    assert_eq!(r.call(&["DEBUG", "SLEEP", "x"]), "+OK\r\n");

    // SET-ACTIVE-EXPIRE 0 keeps expired keys in memory until touched.
    assert_eq!(r.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "+OK\r\n");
    assert_eq!(r.call(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(r.call(&["SET", "e", "1", "PX", "50"]), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(r.call(&["DBSIZE"]), ":1\r\n");
    assert_eq!(r.call(&["GET", "e"]), "$-1\r\n");
    assert_eq!(r.call(&["DBSIZE"]), ":0\r\n");
    assert_eq!(r.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]), "+OK\r\n");
    let help = r.call(&["DEBUG", "HELP"]);
    assert!(help.contains("+POPULATE <count> [<prefix>] [<size>]\r\n"));
}

const DEBUG_REFUSED: &str = "-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n";

/// Redis's CONFIG SET error about one argument, as raw RESP.
fn set_failed(name: &str, why: &str) -> String {
    format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - {why}\r\n")
}

/// `CONFIG GET name`'s value.
fn config_get(r: &mut common::Raw, name: &str) -> String {
    let reply = r.call(&["CONFIG", "GET", name]);
    let value = reply.rsplit("\r\n").nth(1).unwrap_or_default();
    assert!(reply.starts_with("*2\r\n"), "CONFIG GET {name}: {reply:?}");
    value.to_string()
}

/// The server process's working directory.
fn process_cwd(s: &mut Server) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{}/cwd", s.child().id())).unwrap()
}

#[test]
fn protected_configs_and_debug_are_refused_by_default() {
    let s = start(&[]);
    let mut r = s.raw();
    let dir = std::fs::canonicalize(&s.dir).unwrap();
    assert_eq!(
        r.call(&["CONFIG", "SET", "dir", "/tmp"]),
        set_failed("dir", "can't set protected config")
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "dbfilename", "authorized_keys"]),
        set_failed("dbfilename", "can't set protected config")
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "DIR", "/tmp"]),
        set_failed("DIR", "can't set protected config")
    );
    assert_eq!(config_get(&mut r, "dir"), dir.to_str().unwrap());
    assert_eq!(config_get(&mut r, "dbfilename"), "dump.rdb");
    assert_eq!(r.call(&["DEBUG", "SLEEP", "0"]), DEBUG_REFUSED);
    assert_eq!(r.call(&["DEBUG", "RELOAD"]), DEBUG_REFUSED);
    // Refused while queueing: the transaction is discarded, as in Redis.
    assert_eq!(r.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(r.call(&["DEBUG", "SLEEP", "0"]), DEBUG_REFUSED);
    assert_eq!(
        r.call(&["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    // The three settings are fixed at startup, and all default to "no" as in Redis 7.2.
    for name in [
        "enable-debug-command",
        "enable-protected-configs",
        "enable-module-command",
    ] {
        assert_eq!(config_get(&mut r, name), "no");
        assert_eq!(
            r.call(&["CONFIG", "SET", name, "yes"]),
            set_failed(name, "can't set immutable config")
        );
    }
    // MODULE stays an unknown command.
    assert!(r
        .call(&["MODULE", "LIST"])
        .starts_with("-ERR unknown command 'MODULE'"));
}

#[test]
fn debug_is_refused_before_authentication() {
    let s = start(&["--requirepass", "pw"]);
    let mut r = s.raw();
    assert_eq!(r.call(&["DEBUG", "SLEEP", "0"]), DEBUG_REFUSED);
    assert_eq!(
        r.call(&["GET", "k"]),
        "-NOAUTH Authentication required.\r\n"
    );
}

#[test]
fn protected_configs_when_enabled() {
    let s = start(&["--enable-protected-configs", "yes"]);
    let mut r = s.raw();
    let sub = s.dir.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let sub = std::fs::canonicalize(sub).unwrap();
    let sub = sub.to_str().unwrap();
    assert_eq!(r.call(&["CONFIG", "SET", "dir", sub]), "+OK\r\n");
    assert_eq!(config_get(&mut r, "dir"), sub);
    assert_eq!(
        r.call(&["CONFIG", "SET", "dbfilename", "other.rdb"]),
        "+OK\r\n"
    );
    assert_eq!(r.call(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(r.call(&["SAVE"]), "+OK\r\n");
    assert!(std::path::Path::new(sub).join("other.rdb").exists());
    // Redis's texts for a directory that is not there, or is not a directory.
    assert_eq!(
        r.call(&["CONFIG", "SET", "dir", "/nonexistent/ferrodis"]),
        set_failed("dir", "No such file or directory")
    );
    let file = format!("{sub}/other.rdb");
    assert_eq!(
        r.call(&["CONFIG", "SET", "dir", &file]),
        set_failed("dir", "Not a directory")
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "dbfilename", "a/b"]),
        set_failed("dbfilename", "dbfilename can't be a path, just a filename")
    );
    assert_eq!(config_get(&mut r, "dir"), sub);
    // DEBUG is still refused: it has its own setting.
    assert_eq!(r.call(&["DEBUG", "SLEEP", "0"]), DEBUG_REFUSED);
}

#[test]
fn local_lets_loopback_and_unix_socket_clients_in() {
    let sock = std::env::temp_dir().join(format!("ferrodis-local-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let s = start(&[
        "--enable-protected-configs",
        "local",
        "--enable-debug-command",
        "local",
        "--unixsocket",
        sock.to_str().unwrap(),
    ]);
    let mut r = s.raw();
    let dir = std::fs::canonicalize(&s.dir).unwrap();
    let dir = dir.to_str().unwrap();
    assert_eq!(r.call(&["DEBUG", "SLEEP", "0"]), "+OK\r\n");
    assert_eq!(r.call(&["CONFIG", "SET", "dir", dir]), "+OK\r\n");
    assert_eq!(config_get(&mut r, "enable-debug-command"), "local");
    assert_eq!(config_get(&mut r, "enable-protected-configs"), "local");
    // The unix socket counts as local too.
    let mut u = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut exchange = |args: &[&str], want: &[u8]| {
        use std::io::{Read, Write};
        u.write_all(&common::encode_strs(args)).unwrap();
        let mut got = vec![0; want.len()];
        u.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    };
    exchange(&["DEBUG", "SLEEP", "0"], b"+OK\r\n");
    exchange(&["CONFIG", "SET", "dbfilename", "x.rdb"], b"+OK\r\n");
    let _ = std::fs::remove_file(&sock);
}

/// An address of this machine that is not loopback (the one its default route leaves from), if any. A UDP
/// "connect" sends nothing: it only picks the source address.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let u = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    u.connect("203.0.113.1:9").ok()?;
    let ip = u.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn local_refuses_other_addresses() {
    let ip = non_loopback_ip().map(|ip| ip.to_string());
    let mut extra = vec![
        "--protected-mode",
        "no",
        "--enable-protected-configs",
        "local",
        "--enable-debug-command",
        "local",
    ];
    if let Some(ip) = &ip {
        extra.extend(["--bind", "127.0.0.1", ip.as_str()]);
    }
    let s = start(&extra);
    assert_eq!(s.raw().call(&["DEBUG", "SLEEP", "0"]), "+OK\r\n");
    let Some(ip) = ip else {
        eprintln!("no non-loopback address on this machine: the remote half is skipped");
        return;
    };
    let stream = std::net::TcpStream::connect((ip.as_str(), s.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut rd = std::io::BufReader::new(stream);
    let mut call = |args: &[&str]| {
        use std::io::{BufRead, Write};
        w.write_all(&common::encode_strs(args)).unwrap();
        let mut line = String::new();
        rd.read_line(&mut line).unwrap();
        line
    };
    assert_eq!(call(&["DEBUG", "SLEEP", "0"]), DEBUG_REFUSED);
    assert_eq!(
        call(&["CONFIG", "SET", "dir", "/tmp"]),
        set_failed("dir", "can't set protected config")
    );
    assert_eq!(call(&["CONFIG", "SET", "timeout", "5"]), "+OK\r\n");
}

#[test]
fn config_set_is_all_or_nothing() {
    let mut s = start(&["--enable-protected-configs", "yes"]);
    let mut r = s.raw();
    let home = std::fs::canonicalize(&s.dir).unwrap();
    let sub = home.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let sub = sub.to_str().unwrap();
    let unchanged = |r: &mut common::Raw, s: &mut Server| {
        assert_eq!(config_get(r, "timeout"), "0");
        assert_eq!(config_get(r, "maxmemory"), "0");
        assert_eq!(config_get(r, "dir"), home.to_str().unwrap());
        assert_eq!(process_cwd(s), home);
    };
    // A later value is invalid: the earlier pairs (the working directory included) are not applied.
    assert_eq!(
        r.call(&[
            "CONFIG",
            "SET",
            "timeout",
            "7",
            "dir",
            sub,
            "maxclients",
            "x"
        ]),
        set_failed("maxclients", "argument couldn't be parsed into an integer")
    );
    unchanged(&mut r, &mut s);
    assert_eq!(
        r.call(&[
            "CONFIG",
            "SET",
            "maxmemory",
            "1mb",
            "dir",
            "/nonexistent/ferrodis"
        ]),
        set_failed("dir", "No such file or directory")
    );
    unchanged(&mut r, &mut s);
    // Names are checked before any value, and the first problem is the one reported.
    assert_eq!(
        r.call(&["CONFIG", "SET", "maxmemory", "x", "nosuch", "1"]),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "databases", "5", "nosuch", "1"]),
        set_failed("databases", "can't set immutable config")
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "timeout", "1", "dir", sub, "TIMEOUT", "2", "nosuch", "1"]),
        set_failed("TIMEOUT", "duplicate parameter")
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "maxmemory", "x", "timeout", "y"]),
        set_failed("maxmemory", "argument must be a memory value")
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "timeout", "1", "hz"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        r.call(&["CONFIG", "SET", "timeout"]),
        "-ERR wrong number of arguments for 'config|set' command\r\n"
    );
    unchanged(&mut r, &mut s);
    // An apply step that fails rolls everything back: the AOF can't start when its directory can't be
    // made (a file is in the way).
    std::fs::write(format!("{sub}/appendonlydir"), b"").unwrap();
    assert_eq!(
        r.call(&[
            "CONFIG",
            "SET",
            "timeout",
            "9",
            "dir",
            sub,
            "appendonly",
            "yes"
        ]),
        set_failed("appendonly", "Unable to turn on AOF. Check server logs.")
    );
    unchanged(&mut r, &mut s);
    assert_eq!(config_get(&mut r, "appendonly"), "no");
    // A directive and its alias are different names (the last one wins), as in Redis.
    assert_eq!(
        r.call(&[
            "CONFIG",
            "SET",
            "busy-reply-threshold",
            "100",
            "lua-time-limit",
            "200"
        ]),
        "+OK\r\n"
    );
    assert_eq!(config_get(&mut r, "busy-reply-threshold"), "200");
    // All valid: all applied, the working directory too.
    assert_eq!(
        r.call(&[
            "CONFIG",
            "SET",
            "timeout",
            "7",
            "dir",
            sub,
            "maxmemory",
            "1mb"
        ]),
        "+OK\r\n"
    );
    assert_eq!(config_get(&mut r, "timeout"), "7");
    assert_eq!(config_get(&mut r, "maxmemory"), "1048576");
    assert_eq!(config_get(&mut r, "dir"), sub);
    assert_eq!(process_cwd(&mut s).to_str().unwrap(), sub);
}

#[test]
fn protection_directives_in_the_config_file() {
    let conf = std::env::temp_dir().join(format!("ferrodis-protect-{}.conf", std::process::id()));
    std::fs::write(
        &conf,
        "enable-debug-command yes\nenable-protected-configs local\nenable-module-command no\n",
    )
    .unwrap();
    let s = start_with(&[conf.to_str().unwrap()], &[]);
    let mut r = s.raw();
    assert_eq!(config_get(&mut r, "enable-debug-command"), "yes");
    assert_eq!(config_get(&mut r, "enable-protected-configs"), "local");
    assert_eq!(config_get(&mut r, "enable-module-command"), "no");
    assert_eq!(r.call(&["DEBUG", "SLEEP", "0"]), "+OK\r\n");
    assert_eq!(r.call(&["CONFIG", "SET", "dbfilename", "x.rdb"]), "+OK\r\n");
    let _ = std::fs::remove_file(&conf);
}

#[test]
fn shutdown_command() {
    let mut s = start(&[]);
    let mut r = s.raw();
    assert_eq!(r.call(&["SHUTDOWN", "foo"]), "-ERR syntax error\r\n");
    assert_eq!(
        r.call(&["SHUTDOWN", "SAVE", "NOSAVE"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        r.call(&["SHUTDOWN", "ABORT", "NOW"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        r.call(&["SHUTDOWN", "ABORT"]),
        "-ERR No shutdown in progress.\r\n"
    );
    r.send_strs(&["SHUTDOWN", "NOSAVE"]);
    assert!(r.closed(Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = s.child().try_wait() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}
