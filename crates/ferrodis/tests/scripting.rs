//! Scripting: EVAL family, SCRIPT, FUNCTION and FCALL over TCP — replies and error texts as Redis 7 gives
//! them, RESP2/RESP3 conversions, busy scripts and SCRIPT KILL from another connection, and atomicity of
//! scripts against concurrent writers on other worker threads (declared and undeclared keys).

mod common;

use common::{connect, Server};
use redis::Value;
use std::time::{Duration, Instant};

fn q(con: &mut redis::Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<Value>(con)
        .unwrap_or_else(|e| Value::SimpleString(format!("ERROR:{e}")))
}

fn err(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    match c.query::<Value>(con) {
        Ok(v) => panic!("expected an error for {args:?}, got {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or("").to_string();
            let detail = e.detail().unwrap_or("").to_string();
            format!("{code} {detail}")
        }
    }
}

/// Split a command line into words: blanks separate, `"..."` quotes (with `\n` for a newline).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut have = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_q = !in_q;
                have = true;
            }
            '\\' if in_q => match chars.next() {
                Some('n') => cur.push('\n'),
                Some(o) => cur.push(o),
                None => {}
            },
            ' ' if !in_q => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        out.push(cur);
    }
    out
}

/// Send a quoted command line and assert the exact reply bytes.
#[track_caller]
fn ex(r: &mut common::Raw, line: &str, want: &str) {
    let w = words(line);
    let refs: Vec<&str> = w.iter().map(|s| s.as_str()).collect();
    r.send_strs(&refs);
    r.expect(want);
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn eval_conversions_and_errors() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    ex(
        &mut r,
        "EVAL \"return {1,2,3.7,'x',nil,4}\" 0",
        "*4\r\n:1\r\n:2\r\n:3\r\n$1\r\nx\r\n",
    );
    ex(&mut r, "EVAL \"return -3.99\" 0", ":-3\r\n");
    ex(&mut r, "EVAL \"return true\" 0", ":1\r\n");
    ex(&mut r, "EVAL \"return false\" 0", "$-1\r\n");
    ex(&mut r, "EVAL \"return {ok='fine'}\" 0", "+fine\r\n");
    ex(&mut r, "EVAL \"return {err='bad'}\" 0", "-bad\r\n");
    ex(
        &mut r,
        "EVAL \"return redis.error_reply('MY x')\" 0",
        "-MY x\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return redis.error_reply('x')\" 0",
        "-ERR x\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return math.huge\" 0",
        ":-9223372036854775808\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return {KEYS[1],ARGV[1],#KEYS,#ARGV}\" 1 a b c",
        "*4\r\n$1\r\na\r\n$1\r\nb\r\n:1\r\n:2\r\n",
    );
    ex(
        &mut r,
        "EVAL \"redis.call('set','x',0.1) return redis.call('get','x')\" 0",
        "$3\r\n0.1\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return redis.call('get','nokey')\" 0",
        "$-1\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return type(redis.call('get','nokey'))\" 0",
        "$7\r\nboolean\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return redis.call('type','x')['ok']\" 0",
        "$6\r\nstring\r\n",
    );
    ex(&mut r,
        "EVAL \"return a\" 0",
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'a' script: bbfcd1ececc90deec823f7fb730e4bfb2a4ba625, on @user_script:1.\r\n",
    );
    ex(&mut r,
        "EVAL \"a=1\" 0",
        "-ERR user_script:1: Attempt to modify a readonly table script: 86eda770a6060824b090dd4df091e3bd4121279c, on @user_script:1.\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return {'x' 1}\" 0",
        "-ERR Error compiling script (new function): user_script:1: '}' expected near '1'\r\n",
    );
    ex(&mut r,
        "EVAL \"error('boom')\" 0",
        "-ERR user_script:1: boom script: 82903a0434f1503e152f89c03c9acd881a0e8150, on @user_script:1.\r\n",
    );
    ex(&mut r,
        "EVAL \"return redis.call('nosuch')\" 0",
        "-ERR Unknown Redis command called from script script: 206396248e12c6e742fd7296250433c8d7343b74, on @user_script:1.\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return redis.pcall('nosuch')\" 0",
        "-ERR Unknown Redis command called from script\r\n",
    );
    ex(&mut r,
        "EVAL \"return redis.call('get')\" 0",
        "-ERR Wrong number of args calling Redis command from script script: f187dee77f607f7cff00bbabc9df38507582c78d, on @user_script:1.\r\n",
    );
    ex(&mut r,
        "EVAL \"return redis.call('watch','s')\" 0",
        "-ERR This Redis command is not allowed from script script: c68e80148352dee9856298e26d2b4f2924912737, on @user_script:1.\r\n",
    );
    ex(
        &mut r,
        "EVAL \"local ok,e = pcall(redis.call,'nosuch') return e\" 0",
        "$44\r\nERR Unknown Redis command called from script\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return 1\" 3 a",
        "-ERR Number of keys can't be greater than number of args\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return 1\" -1",
        "-ERR Number of keys can't be negative\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return 1\" x",
        "-ERR value is not an integer or out of range\r\n",
    );
    ex(
        &mut r,
        "EVALSHA abc 0",
        "-NOSCRIPT No matching script. Please use EVAL.\r\n",
    );
    ex(&mut r,
        "EVAL_RO \"return redis.call('set','x',1)\" 0",
        "-ERR Write commands are not allowed from read-only scripts. script: 4cb91861d207e5689edc816618ab68f9d6de3b44, on @user_script:1.\r\n",
    );
    ex(
        &mut r,
        "EVAL \"#!lua flags=no-writes,bogus\\nreturn 1\" 0",
        "-ERR Unexpected flag in script shebang: bogus\r\n",
    );
    ex(&mut r,
        "EVAL \"#!lua\\nreturn x\" 0",
        "-ERR user_script:2: Script attempted to access nonexistent global variable 'x' script: 58b72ca6d006e3bafbb8cc006de4820497ce9cf8, on @user_script:2.\r\n",
    );
    ex(&mut r,"EVAL \"rawset(_G,'x',1) return 1\" 0", "-ERR Attempt to modify a readonly table script: 370407d93b0e11a2c9fdd10662499a6b5ac61d6f, on @user_script:1.\r\n");
    ex(
        &mut r,
        "EVAL \"return loadstring('return 1')()\" 0",
        ":1\r\n",
    );
    ex(
        &mut r,
        "EVAL \"math.randomseed(42) return tostring(math.random())\" 0",
        "$16\r\n0.74452500033403\r\n",
    );
}

#[test]
fn eval_resp3() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    let _ = r.cmd("HELLO 3");
    ex(&mut r, "HSET h a 1", ":1\r\n");
    ex(
        &mut r,
        "EVAL \"redis.setresp(3) return redis.call('hgetall','h')\" 0",
        "%1\r\n$1\r\na\r\n$1\r\n1\r\n",
    );
    ex(
        &mut r,
        "EVAL \"return redis.call('hgetall','h')\" 0",
        "*2\r\n$1\r\na\r\n$1\r\n1\r\n",
    );
    ex(
        &mut r,
        "EVAL \"redis.setresp(3) return redis.call('get','nokey')\" 0",
        "_\r\n",
    );
    ex(&mut r, "EVAL \"return {double=3.5}\" 0", ",3.5\r\n");
    ex(&mut r, "EVAL \"return {big_number='123'}\" 0", "(123\r\n");
    ex(
        &mut r,
        "EVAL \"return {set={a=true}}\" 0",
        "~1\r\n$1\r\na\r\n",
    );
    ex(&mut r, "EVAL \"redis.setresp(3) return true\" 0", "#t\r\n");
    ex(&mut r, "EVAL \"return false\" 0", "_\r\n");
    ex(&mut r, "ZADD z 1.5 a", ":1\r\n");
    ex(
        &mut r,
        "EVAL \"redis.setresp(3) return redis.call('zscore','z','a')\" 0",
        ",1.5\r\n",
    );
    ex(&mut r,
        "EVAL \"redis.setresp(4)\" 0",
        "-ERR RESP version must be 2 or 3. script: 68e72e4d8a428b9f599dce492315f2455a425a82, on @user_script:1.\r\n",
    );
}

#[test]
fn script_cache_commands() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
    assert_eq!(q(&mut con, &["SCRIPT", "LOAD", "return 1"]), bulk(sha));
    assert_eq!(
        q(&mut con, &["SCRIPT", "EXISTS", sha, "abc"]),
        Value::Array(vec![Value::Int(1), Value::Int(0)])
    );
    assert_eq!(q(&mut con, &["EVALSHA", sha, "0"]), Value::Int(1));
    assert_eq!(
        q(&mut con, &["EVALSHA", &sha.to_uppercase(), "0"]),
        Value::Int(1)
    );
    assert_eq!(q(&mut con, &["EVALSHA_RO", sha, "0"]), Value::Int(1));
    assert!(
        err(&mut con, &["SCRIPT", "LOAD", "return {"]).starts_with("ERR Error compiling script")
    );
    assert_eq!(
        err(&mut con, &["SCRIPT", "FLUSH", "bogus"]),
        "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
    );
    assert_eq!(q(&mut con, &["SCRIPT", "FLUSH", "ASYNC"]), Value::Okay);
    assert_eq!(
        q(&mut con, &["SCRIPT", "EXISTS", sha]),
        Value::Array(vec![Value::Int(0)])
    );
    assert_eq!(
        err(&mut con, &["EVALSHA", sha, "0"]),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    assert_eq!(
        err(&mut con, &["SCRIPT", "KILL"]),
        "NOTBUSY No scripts in execution right now."
    );
    assert_eq!(
        err(&mut con, &["FUNCTION", "KILL"]),
        "NOTBUSY No scripts in execution right now."
    );
    // EVAL caches the script too.
    assert_eq!(q(&mut con, &["EVAL", "return 1", "0"]), Value::Int(1));
    assert_eq!(q(&mut con, &["EVALSHA", sha, "0"]), Value::Int(1));
}

#[test]
fn select_inside_script_does_not_leak_and_multi_works() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    q(&mut con, &["SET", "k", "db0"]);
    assert_eq!(
        q(
            &mut con,
            &[
                "EVAL",
                "redis.call('select','1') redis.call('set','k','db1') return redis.call('get','k')",
                "0"
            ]
        ),
        bulk("db1")
    );
    assert_eq!(q(&mut con, &["GET", "k"]), bulk("db0"));
    let r: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("EVAL")
        .arg("return redis.call('incr', KEYS[1])")
        .arg(1)
        .arg("n")
        .cmd("EVAL")
        .arg("return redis.call('incr', 'other')")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(r, vec![Value::Int(1), Value::Int(1)]);
}

#[test]
fn functions() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let lib = "#!lua name=mylib\nredis.register_function('f1', function(keys, args) return {keys[1], args[1]} end)\nredis.register_function{function_name='f2', callback=function(k,a) return redis.call('set',k[1],a[1]) end, flags={'no-writes'}, description='desc'}";
    assert_eq!(q(&mut con, &["FUNCTION", "LOAD", lib]), bulk("mylib"));
    assert_eq!(
        q(&mut con, &["FCALL", "f1", "1", "a", "b"]),
        Value::Array(vec![bulk("a"), bulk("b")])
    );
    assert_eq!(
        err(&mut con, &["FCALL", "f2", "1", "a", "b"]),
        "ERR Write commands are not allowed from read-only scripts. script: f2, on @user_function:3."
    );
    assert_eq!(
        err(&mut con, &["FCALL_RO", "f1", "1", "a", "b"]),
        "ERR Can not execute a script with write flag using *_ro command."
    );
    assert_eq!(
        err(&mut con, &["FCALL", "nope", "0"]),
        "ERR Function not found"
    );
    assert_eq!(
        err(&mut con, &["FCALL", "f1", "x"]),
        "ERR Bad number of keys provided"
    );
    assert_eq!(
        err(&mut con, &["FUNCTION", "LOAD", lib]),
        "ERR Library 'mylib' already exists"
    );
    assert_eq!(
        err(
            &mut con,
            &[
                "FUNCTION",
                "LOAD",
                "#!lua name=other\nredis.register_function('f1', function() end)"
            ]
        ),
        "ERR Function f1 already exists"
    );
    assert_eq!(
        err(&mut con, &["FUNCTION", "LOAD", "#!lua name=e\nredis.call('ping')"]),
        "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'"
    );
    assert_eq!(
        err(&mut con, &["FUNCTION", "LOAD", "return 1"]),
        "ERR Missing library metadata"
    );
    assert_eq!(
        err(&mut con, &["FUNCTION", "LOAD", "#!lua name=b\nreturn 1"]),
        "ERR No functions registered"
    );
    // Helpers defined at load time call redis.call at run time.
    let lib2 = "#!lua name=lib2\nlocal function h(k) return redis.call('incr', k) end\nredis.register_function('g', function(k) return h(k[1]) end)";
    assert_eq!(q(&mut con, &["FUNCTION", "LOAD", lib2]), bulk("lib2"));
    assert_eq!(q(&mut con, &["FCALL", "g", "1", "cnt"]), Value::Int(1));
    // LIST / STATS / DUMP / RESTORE / DELETE / FLUSH.
    let list = q(&mut con, &["FUNCTION", "LIST", "LIBRARYNAME", "my*"]);
    let Value::Array(libs) = list else {
        panic!("{list:?}")
    };
    assert_eq!(libs.len(), 1);
    let stats = q(&mut con, &["FUNCTION", "STATS"]);
    assert!(
        format!("{stats:?}").contains("libraries_count"),
        "{stats:?}"
    );
    let Value::BulkString(payload) = q(&mut con, &["FUNCTION", "DUMP"]) else {
        panic!()
    };
    assert_eq!(q(&mut con, &["FUNCTION", "FLUSH"]), Value::Okay);
    assert_eq!(
        err(&mut con, &["FCALL", "g", "1", "cnt"]),
        "ERR Function not found"
    );
    let restored: Value = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .query(&mut con)
        .unwrap();
    assert_eq!(restored, Value::Okay);
    assert_eq!(q(&mut con, &["FCALL", "g", "1", "cnt"]), Value::Int(2));
    let again = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .query::<Value>(&mut con);
    assert!(again.is_err());
    let replaced: Value = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .arg("REPLACE")
        .query(&mut con)
        .unwrap();
    assert_eq!(replaced, Value::Okay);
    assert_eq!(
        err(&mut con, &["FUNCTION", "RESTORE", "junk"]),
        "ERR DUMP payload version or checksum are wrong"
    );
    assert_eq!(q(&mut con, &["FUNCTION", "DELETE", "lib2"]), Value::Okay);
    assert_eq!(
        err(&mut con, &["FUNCTION", "DELETE", "lib2"]),
        "ERR Library not found"
    );
}

/// A connection whose command gets an answer within `wait` (connections served by the busy script's own
/// worker thread wait for the script: try fresh connections until one lands on another worker).
fn answered(port: u16, args: &[&str], wait: Duration) -> String {
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        use std::io::{Read, Write};
        s.write_all(&common::encode_strs(args)).unwrap();
        let mut buf = [0u8; 4096];
        if let Ok(n) = s.read(&mut buf) {
            if n > 0 {
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
    }
    panic!("no worker answered {args:?}");
}

#[test]
fn busy_script_and_kill() {
    let srv = Server::start(&["--threads", "4", "--busy-reply-threshold", "100"]);
    let port = srv.port;
    // A read-only infinite loop, even one that tries to swallow the kill with pcall.
    for body in [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
    ] {
        let body = body.to_string();
        let t = std::thread::spawn(move || {
            let mut con = connect(port);
            redis::cmd("EVAL").arg(body).arg(0).query::<Value>(&mut con)
        });
        std::thread::sleep(Duration::from_millis(400));
        let busy = answered(port, &["GET", "x"], Duration::from_millis(500));
        assert!(
            busy.starts_with("-BUSY Redis is busy running a script. You can only call SCRIPT KILL"),
            "{busy}"
        );
        let busy = answered(port, &["FUNCTION", "KILL"], Duration::from_millis(500));
        assert!(busy.starts_with("-BUSY"), "{busy}");
        let killed = answered(port, &["SCRIPT", "KILL"], Duration::from_millis(500));
        assert_eq!(killed, "+OK\r\n");
        let r = t.join().unwrap();
        let e = r.unwrap_err();
        assert!(
            e.to_string()
                .contains("Script killed by user with SCRIPT KILL..."),
            "{e}"
        );
    }
    // A script that wrote cannot be killed; it ends by itself.
    let t = std::thread::spawn(move || {
        let mut con = connect(port);
        redis::cmd("EVAL")
            .arg("redis.call('set','w','1') local t = redis.call('time') local s = tonumber(t[1]) while true do local n = redis.call('time') if tonumber(n[1]) > s + 1 then break end end return 7")
            .arg(0)
            .query::<Value>(&mut con)
    });
    std::thread::sleep(Duration::from_millis(400));
    let un = answered(port, &["SCRIPT", "KILL"], Duration::from_millis(300));
    assert!(
        un.starts_with("-UNKILLABLE Sorry the script already executed write commands"),
        "{un}"
    );
    assert_eq!(t.join().unwrap().unwrap(), Value::Int(7));
    let mut con = connect(port);
    assert_eq!(q(&mut con, &["GET", "w"]), bulk("1"));
    let start = Instant::now();
    assert_eq!(q(&mut con, &["PING"]), Value::SimpleString("PONG".into()));
    assert!(start.elapsed() < Duration::from_secs(2));
}

fn counter_race(script: &str, numkeys: usize) {
    let srv = Server::start(&["--threads", "4"]);
    let port = srv.port;
    let (script_threads, incr_threads, per) = (4, 2, 1000);
    let mut hs = Vec::new();
    for _ in 0..script_threads {
        let script = script.to_string();
        hs.push(std::thread::spawn(move || {
            let mut con = connect(port);
            for _ in 0..per {
                let mut c = redis::cmd("EVAL");
                c.arg(&script).arg(numkeys);
                if numkeys == 1 {
                    c.arg("counter");
                }
                c.query::<Value>(&mut con).unwrap();
            }
        }));
    }
    for _ in 0..incr_threads {
        hs.push(std::thread::spawn(move || {
            let mut con = connect(port);
            for _ in 0..per {
                let _: i64 = redis::cmd("INCR").arg("counter").query(&mut con).unwrap();
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    let mut con = connect(port);
    let v: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    assert_eq!(v, ((script_threads + incr_threads) * per) as i64);
}

#[test]
fn scripts_are_atomic_with_declared_keys() {
    counter_race(
        "local v = tonumber(redis.call('get', KEYS[1]) or '0') redis.call('set', KEYS[1], v + 1) return v",
        1,
    );
}

#[test]
fn scripts_are_atomic_with_undeclared_keys() {
    counter_race(
        "local v = tonumber(redis.call('get', 'counter') or '0') redis.call('set', 'counter', v + 1) return v",
        0,
    );
}

/// A script seen to stay inside its declared keys later strays to an undeclared key (its shard is taken on
/// the way): the read-modify-write of the undeclared key stays atomic against INCRs from other threads.
#[test]
fn script_straying_from_declared_keys_stays_atomic() {
    let srv = Server::start(&["--threads", "4"]);
    let port = srv.port;
    let script = "redis.call('incr', KEYS[1]) if ARGV[1] == '1' then local v = tonumber(redis.call('get', 'shared') or '0') redis.call('set', 'shared', v + 1) end return 1";
    let per = 500;
    let mut hs = Vec::new();
    for t in 0..4 {
        hs.push(std::thread::spawn(move || {
            let mut con = connect(port);
            let key = format!("own{t}");
            for i in 0..per {
                let _: Value = redis::cmd("EVAL")
                    .arg(script)
                    .arg(1)
                    .arg(&key)
                    .arg(if i % 2 == 1 { "1" } else { "0" })
                    .query(&mut con)
                    .unwrap();
            }
        }));
    }
    for _ in 0..2 {
        hs.push(std::thread::spawn(move || {
            let mut con = connect(port);
            for _ in 0..per {
                let _: i64 = redis::cmd("INCR").arg("shared").query(&mut con).unwrap();
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    let mut con = connect(port);
    let v: i64 = redis::cmd("GET").arg("shared").query(&mut con).unwrap();
    assert_eq!(v, (4 * per / 2 + 2 * per) as i64);
    for t in 0..4 {
        let own: i64 = redis::cmd("GET")
            .arg(format!("own{t}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(own, per as i64);
    }
}

#[test]
fn busy_function_stats_and_kill() {
    let srv = Server::start(&["--threads", "4", "--busy-reply-threshold", "100"]);
    let port = srv.port;
    let mut con = connect(port);
    let lib = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    assert_eq!(q(&mut con, &["FUNCTION", "LOAD", lib]), bulk("spin"));
    let t = std::thread::spawn(move || {
        let mut con = connect(port);
        redis::cmd("FCALL")
            .arg("spin")
            .arg(0)
            .query::<Value>(&mut con)
    });
    std::thread::sleep(Duration::from_millis(400));
    let stats = answered(port, &["FUNCTION", "STATS"], Duration::from_millis(500));
    assert!(
        stats.contains("running_script") && stats.contains("$4\r\nspin\r\n"),
        "{stats}"
    );
    let busy = answered(port, &["SCRIPT", "KILL"], Duration::from_millis(500));
    assert!(
        busy.starts_with("-BUSY Redis is busy running a script. You can only call FUNCTION KILL"),
        "{busy}"
    );
    assert_eq!(
        answered(port, &["FUNCTION", "KILL"], Duration::from_millis(500)),
        "+OK\r\n"
    );
    let e = t.join().unwrap().unwrap_err();
    assert!(
        e.to_string().contains(
            "Script killed by user with SCRIPT KILL... script: spin, on @user_function:2."
        ),
        "{e}"
    );
}
