//! HyperLogLog integration tests: HLLs survive DUMP/RESTORE between Ferrodis and Redis 7.2 in both directions
//! (same bytes, same counts), a SAVE + restart, and PFCOUNT's cache update. The interop test needs the
//! reference server (`FERRODIS_REFERENCE_REDIS`, the path of a Redis 7.2 `redis-server`) and is skipped,
//! saying so, without it.

mod common;

use common::{connect, query, Server};

fn add_range(con: &mut redis::Connection, key: &str, from: usize, to: usize) {
    for chunk in (from..to).collect::<Vec<_>>().chunks(200) {
        let mut c = redis::cmd("PFADD");
        c.arg(key);
        for i in chunk {
            c.arg(format!("el:{i}"));
        }
        let _: i64 = c.query(con).unwrap();
    }
}

fn bytes(con: &mut redis::Connection, key: &str) -> Vec<u8> {
    redis::cmd("GET").arg(key).query(con).unwrap()
}

fn dump(con: &mut redis::Connection, key: &str) -> Vec<u8> {
    redis::cmd("DUMP").arg(key).query(con).unwrap()
}

fn restore(con: &mut redis::Connection, key: &str, payload: &[u8]) {
    let _: () = redis::cmd("RESTORE")
        .arg(key)
        .arg(0)
        .arg(payload)
        .arg("REPLACE")
        .query(con)
        .unwrap();
}

fn reference() -> Option<String> {
    match std::env::var("FERRODIS_REFERENCE_REDIS") {
        Ok(p) if !p.is_empty() && std::path::Path::new(&p).exists() => Some(p),
        _ => None,
    }
}

#[test]
fn dump_restore_interop_with_redis() {
    let Some(bin) = reference() else {
        eprintln!("SKIPPED: set FERRODIS_REFERENCE_REDIS to a Redis 7.2 redis-server to test HLL DUMP/RESTORE interop");
        return;
    };
    let redis = Server::spawn(&bin, &["--save", "", "--appendonly", "no"], &[]);
    let ferro = Server::start(&[]);
    let (mut r, mut f) = (connect(redis.port), connect(ferro.port));
    // Sparse (small), sparse near the limit, dense; with valid and invalid caches.
    let sizes = [
        (1usize, false),
        (50, true),
        (600, false),
        (5000, true),
        (100_000, false),
    ];
    for (n, count_first) in sizes {
        let key = format!("h{n}");
        add_range(&mut f, &key, 0, n);
        add_range(&mut r, &key, 0, n);
        if count_first {
            let a: i64 = query(&mut f, &["PFCOUNT", &key]);
            let b: i64 = query(&mut r, &["PFCOUNT", &key]);
            assert_eq!(a, b, "{key}");
        }
        let fb = bytes(&mut f, &key);
        assert_eq!(fb, bytes(&mut r, &key), "{key}: bytes differ");

        // Ferrodis -> Redis.
        restore(&mut r, "from_ferrodis", &dump(&mut f, &key));
        assert_eq!(bytes(&mut r, "from_ferrodis"), fb);
        // Redis -> Ferrodis.
        restore(&mut f, "from_redis", &dump(&mut r, &key));
        assert_eq!(bytes(&mut f, "from_redis"), fb);

        let counts: Vec<i64> = vec![
            query(&mut f, &["PFCOUNT", &key]),
            query(&mut r, &["PFCOUNT", "from_ferrodis"]),
            query(&mut f, &["PFCOUNT", "from_redis"]),
            query(&mut r, &["PFCOUNT", &key]),
        ];
        assert!(counts.iter().all(|c| *c == counts[0]), "{key}: {counts:?}");
        // Both keep working on the other's value: the same further adds, the same bytes.
        add_range(&mut r, "from_ferrodis", n, n + 300);
        add_range(&mut f, "from_redis", n, n + 300);
        assert_eq!(
            bytes(&mut r, "from_ferrodis"),
            bytes(&mut f, "from_redis"),
            "{key} after more adds"
        );
        let enc_r: String = query(&mut r, &["PFDEBUG", "ENCODING", "from_ferrodis"]);
        let enc_f: String = query(&mut f, &["PFDEBUG", "ENCODING", "from_redis"]);
        assert_eq!(enc_r, enc_f);
    }
}

#[test]
fn hll_survives_save_and_restart() {
    let dir = std::env::temp_dir().join(format!("ferrodis-hll-rdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let before = {
        let s = Server::start(&["--dir", d, "--save", ""]);
        let mut c = connect(s.port);
        add_range(&mut c, "sparse", 0, 100);
        add_range(&mut c, "dense", 0, 20_000);
        let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
        (bytes(&mut c, "sparse"), bytes(&mut c, "dense"))
    };
    let s = Server::start(&["--dir", d, "--save", ""]);
    let mut c = connect(s.port);
    assert_eq!(bytes(&mut c, "sparse"), before.0);
    assert_eq!(bytes(&mut c, "dense"), before.1);
    let enc: String = query(&mut c, &["OBJECT", "ENCODING", "dense"]);
    assert_eq!(enc, "raw");
    let n: i64 = query(&mut c, &["PFCOUNT", "dense"]);
    assert!((19_000..21_000).contains(&n), "{n}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pfcount_updates_the_cached_cardinality() {
    let s = Server::start(&[]);
    let mut c = connect(s.port);
    add_range(&mut c, "h", 0, 10);
    assert_eq!(bytes(&mut c, "h")[15] & 0x80, 0x80);
    let n: i64 = query(&mut c, &["PFCOUNT", "h"]);
    let b = bytes(&mut c, "h");
    assert_eq!(b[15] & 0x80, 0);
    assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), n as u64);
    // A corrupt value is an error, never a crash.
    let _: () = redis::cmd("SETRANGE")
        .arg("h")
        .arg(16)
        .arg(&b"\xff\xff\xff"[..])
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SETRANGE")
        .arg("h")
        .arg(15)
        .arg(&b"\x80"[..])
        .query(&mut c)
        .unwrap();
    let e = redis::cmd("PFCOUNT")
        .arg("h")
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("INVALIDOBJ"), "{e}");
    let pong: String = query(&mut c, &["PING"]);
    assert_eq!(pong, "PONG");
}
