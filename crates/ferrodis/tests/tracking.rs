//! Client-side caching: CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO over raw sockets, with the
//! exact bytes of invalidation messages (RESP3 pushes and RESP2 `__redis__:invalidate` messages).

mod common;

use common::Server;

fn start() -> Server {
    Server::start(&["--threads", "4"])
}

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Conn(TcpStream);

impl Conn {
    fn new(s: &Server) -> Conn {
        let t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        t.set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        Conn(t)
    }
    /// Everything that arrives within a short while.
    fn read(&mut self) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    fn cmd(&mut self, args: &[&str]) -> String {
        self.0.write_all(&common::encode_strs(args)).unwrap();
        self.read()
    }
    fn id(&mut self) -> String {
        self.cmd(&["CLIENT", "ID"])
            .trim_start_matches(':')
            .trim()
            .to_string()
    }
    /// Let earlier writes by other clients age out of the reader's race window (see src/tracking.rs: a
    /// key written since the reader's previous batch may get one extra, harmless invalidation).
    fn settle(&mut self) {
        std::thread::sleep(Duration::from_millis(5));
        self.cmd(&["PING"]);
    }
}

fn inv(keys: &[&str]) -> String {
    let mut s = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for k in keys {
        s.push_str(&format!("${}\r\n{}\r\n", k.len(), k));
    }
    s
}

#[test]
fn errors_and_info() {
    let s = start();
    let mut a = Conn::new(&s);
    let e = |a: &mut Conn, args: &[&str]| a.cmd(args);
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "prefix", "a"]),
        "-ERR PREFIX option requires BCAST mode to be enabled\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "bcast", "optin"]),
        "-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "optin", "optout"]),
        "-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "redirect", "999999"]),
        "-ERR The client ID you want redirect to does not exist\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "redirect", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "maybe"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "bogus"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "bcast", "prefix", "a", "prefix", "ab"]),
        "-ERR Prefix 'a' overlaps with another provided prefix 'ab'. Prefixes for a single client must not overlap.\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "CACHING", "yes"]),
        "-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled\r\n"
    );
    assert_eq!(e(&mut a, &["CLIENT", "GETREDIR"]), ":-1\r\n");
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKINGINFO"]),
        "*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "optin", "noloop"]),
        "+OK\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "optout"]),
        "-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "bcast"]),
        "-ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "CACHING", "no"]),
        "-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "CACHING", "maybe"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(e(&mut a, &["CLIENT", "CACHING", "yes"]), "+OK\r\n");
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKINGINFO"]),
        "*6\r\n$5\r\nflags\r\n*4\r\n$2\r\non\r\n$5\r\noptin\r\n$11\r\ncaching-yes\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n"
    );
    assert_eq!(e(&mut a, &["CLIENT", "GETREDIR"]), ":0\r\n");
    assert!(e(&mut a, &["CLIENT", "LIST"]).contains("flags=t "));
    assert_eq!(e(&mut a, &["CLIENT", "TRACKING", "off"]), "+OK\r\n");
    assert_eq!(
        e(
            &mut a,
            &["CLIENT", "TRACKING", "on", "bcast", "prefix", "user:", "prefix", "obj:"]
        ),
        "+OK\r\n"
    );
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKING", "on", "bcast", "prefix", "us"]),
        "-ERR Prefix 'us' overlaps with an existing prefix 'user:'. Prefixes for a single client must not overlap.\r\n"
    );
    e(&mut a, &["HELLO", "3"]);
    assert_eq!(
        e(&mut a, &["CLIENT", "TRACKINGINFO"]),
        "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*2\r\n$4\r\nobj:\r\n$5\r\nuser:\r\n"
    );
    let l = e(&mut a, &["CLIENT", "INFO"]);
    assert!(l.contains("flags=tB ") && l.contains("redir=0 "), "{l}");
    assert_eq!(e(&mut a, &["RESET"]), "+RESET\r\n");
    assert_eq!(e(&mut a, &["CLIENT", "GETREDIR"]), ":-1\r\n");
}

#[test]
fn resp3_self_and_other_invalidation_across_threads() {
    let s = start();
    let mut a = Conn::new(&s);
    let mut b = Conn::new(&s);
    a.cmd(&["HELLO", "3"]);
    b.cmd(&["MSET", "k", "1", "k2", "2"]);
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    a.settle();
    assert_eq!(a.cmd(&["MGET", "k", "k2"]), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(b.cmd(&["MSET", "k", "3", "k2", "4"]), "+OK\r\n");
    assert_eq!(a.read(), format!("{}{}", inv(&["k"]), inv(&["k2"])));
    // Invalidated once per read: another write sends nothing.
    b.cmd(&["SET", "k", "5"]);
    assert_eq!(a.read(), "");
    // Self-invalidation comes after the reply.
    a.settle();
    a.cmd(&["GET", "k"]);
    assert_eq!(a.cmd(&["SET", "k", "6"]), format!("+OK\r\n{}", inv(&["k"])));
    // Many readers and a writer on different threads.
    let mut readers: Vec<Conn> = (0..6).map(|_| Conn::new(&s)).collect();
    for r in readers.iter_mut() {
        r.cmd(&["HELLO", "3"]);
        r.cmd(&["CLIENT", "TRACKING", "on"]);
        r.settle();
        r.cmd(&["GET", "shared"]);
    }
    b.cmd(&["SET", "shared", "x"]);
    for r in readers.iter_mut() {
        assert_eq!(r.read(), inv(&["shared"]));
    }
}

#[test]
fn noloop_optin_optout() {
    let s = start();
    let mut a = Conn::new(&s);
    let mut b = Conn::new(&s);
    a.cmd(&["HELLO", "3"]);
    a.cmd(&["CLIENT", "TRACKING", "on", "noloop"]);
    a.cmd(&["GET", "n"]);
    assert_eq!(a.cmd(&["SET", "n", "1"]), "+OK\r\n");
    a.cmd(&["CLIENT", "TRACKING", "off"]);
    a.cmd(&["CLIENT", "TRACKING", "on", "optin"]);
    a.settle();
    a.cmd(&["GET", "o1"]);
    a.cmd(&["CLIENT", "CACHING", "yes"]);
    a.cmd(&["GET", "o2"]);
    a.cmd(&["CLIENT", "CACHING", "yes"]);
    a.cmd(&["CLIENT", "ID"]);
    a.cmd(&["GET", "o4"]);
    b.cmd(&["MSET", "o1", "1", "o2", "1", "o4", "1"]);
    assert_eq!(a.read(), format!("{}{}", inv(&["o2"]), inv(&["o4"])));
    let mut c = Conn::new(&s);
    c.cmd(&["HELLO", "3"]);
    c.cmd(&["CLIENT", "TRACKING", "on", "optout"]);
    c.cmd(&["CLIENT", "CACHING", "no"]);
    c.cmd(&["GET", "p1"]);
    c.cmd(&["GET", "p2"]);
    b.cmd(&["MSET", "p1", "1", "p2", "1"]);
    assert_eq!(c.read(), inv(&["p2"]));
}

#[test]
fn bcast_prefixes() {
    let s = start();
    let mut a = Conn::new(&s);
    let mut b = Conn::new(&s);
    a.cmd(&["HELLO", "3"]);
    let r = a.cmd(&[
        "CLIENT", "TRACKING", "on", "bcast", "prefix", "user:", "prefix", "obj:", "noloop",
    ]);
    assert_eq!(r, "+OK\r\n");
    b.cmd(&[
        "MSET", "user:2", "1", "user:1", "1", "obj:1", "x", "zz", "1",
    ]);
    assert_eq!(
        a.read(),
        format!("{}{}", inv(&["obj:1"]), inv(&["user:1", "user:2"]))
    );
    assert_eq!(a.cmd(&["SET", "user:9", "1"]), "+OK\r\n");
    // Without PREFIX: every key.
    let mut c = Conn::new(&s);
    c.cmd(&["HELLO", "3"]);
    c.cmd(&["CLIENT", "TRACKING", "on", "bcast"]);
    b.cmd(&["SET", "anything", "1"]);
    assert_eq!(c.read(), inv(&["anything"]));
}

#[test]
fn resp2_redirect_and_flush() {
    let s = start();
    let mut c = Conn::new(&s);
    let cid = c.id();
    let mut d = Conn::new(&s);
    let mut b = Conn::new(&s);
    assert_eq!(
        d.cmd(&["CLIENT", "TRACKING", "on", "redirect", &cid]),
        "+OK\r\n"
    );
    assert_eq!(d.cmd(&["CLIENT", "GETREDIR"]), format!(":{cid}\r\n"));
    d.cmd(&["GET", "k"]);
    b.cmd(&["SET", "k", "1"]);
    // Not subscribed: nothing.
    assert_eq!(c.read(), "");
    c.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    d.settle();
    d.cmd(&["GET", "k"]);
    b.cmd(&["SET", "k", "2"]);
    assert_eq!(
        c.read(),
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"
    );
    assert_eq!(d.cmd(&["FLUSHALL"]), "+OK\r\n");
    assert_eq!(
        c.read(),
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"
    );
    // RESP3 tracking client: null push on FLUSHDB; broken redirect push once the target is gone.
    let mut e = Conn::new(&s);
    e.cmd(&["HELLO", "3"]);
    e.cmd(&["CLIENT", "TRACKING", "on"]);
    assert_eq!(b.cmd(&["FLUSHDB"]), "+OK\r\n");
    assert_eq!(e.read(), ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    e.cmd(&["CLIENT", "TRACKING", "on", "redirect", &cid]);
    e.cmd(&["GET", "r"]);
    drop(c);
    std::thread::sleep(Duration::from_millis(100));
    b.cmd(&["SET", "r", "1"]);
    assert_eq!(
        e.read(),
        format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{cid}\r\n")
    );
    let l = e.cmd(&["CLIENT", "INFO"]);
    assert!(l.contains("flags=tR "), "{l}");
}
