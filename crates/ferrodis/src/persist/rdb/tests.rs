use super::*;
use crate::types::stream::StreamId;
use proptest::prelude::*;

/// A comparable, encoding-independent form of a value.
#[derive(Debug, PartialEq)]
enum Canon {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>, Option<u64>)>),
    ZSet(Vec<(Vec<u8>, u64)>),
    Stream(String),
}

fn canon(v: &Value) -> Canon {
    match v {
        Value::Str(s) => Canon::Str(s.clone()),
        Value::List(l) => Canon::List(l.iter().map(|e| e.to_vec()).collect()),
        Value::Set(s) => {
            let mut m: Vec<Vec<u8>> = s.iter().map(|e| e.to_vec()).collect();
            m.sort();
            Canon::Set(m)
        }
        Value::Hash(h) => {
            let mut m: Vec<_> = h
                .iter()
                .map(|(f, v)| (f.to_vec(), v.to_vec(), h.field_expire(f).flatten()))
                .collect();
            m.sort();
            Canon::Hash(m)
        }
        Value::ZSet(z) => Canon::ZSet(
            z.to_vec()
                .into_iter()
                .map(|(m, s)| (m, s.to_bits()))
                .collect(),
        ),
        Value::Stream(s) => {
            let entries: Vec<_> = s
                .range(StreamId::MIN, StreamId::MAX, 0)
                .into_iter()
                .map(|e| {
                    (
                        e.id,
                        e.fields
                            .iter()
                            .map(|(f, v)| (f.to_vec(), v.to_vec()))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            let groups: Vec<_> = s
                .groups
                .iter()
                .map(|(n, g)| {
                    (
                        n.clone(),
                        g.last_id,
                        g.entries_read,
                        g.pel.clone(),
                        g.consumers
                            .iter()
                            .map(|(c, x)| (c.clone(), x.seen_time, x.pending.clone()))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            Canon::Stream(format!(
                "{entries:?} {:?} {:?} {} {groups:?}",
                s.last_id, s.max_deleted_id, s.entries_added
            ))
        }
    }
}

fn canon_entry(e: &Entry) -> Canon {
    match e.value() {
        ValueRef::Str(s) => Canon::Str(s.to_vec()),
        ValueRef::Other(v) => canon(v),
    }
}

/// Value generators: element strings mixing integers, short and long strings.
fn elem() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string().into_bytes()),
        (-200i64..200).prop_map(|i| i.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..12),
        "[a-c]{0,80}".prop_map(|s| s.into_bytes()),
        (1usize..3000).prop_map(|n| vec![b'z'; n]),
    ]
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, Clone)]
enum Gen {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    IntSet(Vec<i64>),
    Hash(Vec<(Vec<u8>, Vec<u8>, Option<u64>)>),
    ZSet(Vec<(Vec<u8>, f64)>),
    Stream(Vec<(u8, Fields)>, u8),
}

fn gen_value() -> impl Strategy<Value = Gen> {
    let n = || prop_oneof![1usize..5, 1usize..200];
    prop_oneof![
        elem().prop_map(Gen::Str),
        n().prop_flat_map(|n| proptest::collection::vec(elem(), n..=n))
            .prop_map(Gen::List),
        n().prop_flat_map(|n| proptest::collection::vec(elem(), n..=n))
            .prop_map(Gen::Set),
        n().prop_flat_map(|n| proptest::collection::vec(any::<i64>(), n..=n))
            .prop_map(Gen::IntSet),
        n().prop_flat_map(|n| proptest::collection::vec(
            (
                elem(),
                elem(),
                // Field TTLs fit Redis's 48-bit expiry field (larger ones are corrupt input).
                proptest::option::of(1_000_000u64..=MAX_FIELD_TTL)
            ),
            n..=n
        ))
        .prop_map(Gen::Hash),
        n().prop_flat_map(|n| proptest::collection::vec(
            (
                elem(),
                prop_oneof![
                    any::<f64>().prop_filter("nan", |f| !f.is_nan()),
                    (-1000i64..1000).prop_map(|i| i as f64),
                    Just(f64::INFINITY),
                    Just(f64::NEG_INFINITY),
                    Just(-0.0),
                ]
            ),
            n..=n
        ))
        .prop_map(Gen::ZSet),
        (
            proptest::collection::vec(
                (
                    0u8..4,
                    proptest::collection::vec(("[a-d]{1,3}", elem()), 1..4)
                        .prop_map(|v| v.into_iter().map(|(f, x)| (f.into_bytes(), x)).collect())
                ),
                0..250
            ),
            0u8..4
        )
            .prop_map(|(e, g)| Gen::Stream(e, g)),
    ]
}

fn build(g: &Gen, lim: &EncodingLimits) -> Option<Value> {
    Some(match g {
        Gen::Str(s) => Value::Str(s.clone()),
        Gen::List(v) => {
            let mut l = List::new();
            for e in v {
                l.push_back(e, lim.list_max_listpack_size);
            }
            Value::List(Box::new(l))
        }
        Gen::Set(v) => Value::Set(Box::new(Set::from_members(v.iter().map(|x| &x[..]), lim))),
        Gen::IntSet(v) => {
            let m: Vec<Vec<u8>> = v.iter().map(|i| i.to_string().into_bytes()).collect();
            Value::Set(Box::new(Set::from_members(m.iter().map(|x| &x[..]), lim)))
        }
        Gen::Hash(v) => {
            let mut h = Hash::new();
            for (f, x, t) in v {
                h.try_conversion([&f[..], &x[..]], lim);
                h.set(f, x, lim);
                if let Some(t) = t {
                    h.set_field_expire(f, *t, ExpireCond::Always, 0);
                }
            }
            Value::Hash(Box::new(h))
        }
        Gen::ZSet(v) => {
            let mut z = ZSet::new();
            for (m, s) in v {
                z.insert(m, *s, &zlim(lim));
            }
            Value::ZSet(Box::new(z))
        }
        Gen::Stream(entries, groups) => {
            let mut s = Stream::new();
            let mut id = StreamId { ms: 1, seq: 0 };
            let mut ids = Vec::new();
            for (step, fields) in entries {
                id = if *step == 0 {
                    StreamId {
                        ms: id.ms,
                        seq: id.seq + 1,
                    }
                } else {
                    StreamId {
                        ms: id.ms + *step as u64 * 1000,
                        seq: 0,
                    }
                };
                let refs: Vec<(&[u8], &[u8])> =
                    fields.iter().map(|(f, v)| (&f[..], &v[..])).collect();
                s.append(id, &refs);
                ids.push(id);
            }
            if ids.len() > 3 {
                s.delete(ids[1]);
                s.max_deleted_id = ids[1];
            }
            for gi in 0..*groups {
                let mut g = Group {
                    last_id: ids.last().copied().unwrap_or_default(),
                    entries_read: if gi % 2 == 0 {
                        Some(ids.len() as u64)
                    } else {
                        None
                    },
                    ..Group::default()
                };
                for (k, id) in ids.iter().enumerate().take(5) {
                    let c = format!("c{}", k % 2);
                    g.assign(*id, c.as_bytes(), 1000 + k as u64, k as u64 + 1);
                }
                g.consumer_mut(b"idle", 777);
                s.groups.insert(format!("g{gi}").into_bytes(), g);
            }
            Value::Stream(Box::new(s))
        }
    })
}

fn write_file(entries: &[(usize, Box<Entry>)], compress: bool, checksum: bool) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), checksum);
    let v12 = entries.iter().any(|(_, e)| needs_v12(e.value()));
    w.write_header(&Aux {
        version: if v12 { RDB_VERSION_HFE } else { RDB_VERSION },
        redis_ver: "7.2.4".into(),
        ctime: 1,
        used_mem: 2,
        aof_base: false,
    })
    .unwrap();
    w.write_function(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
        .unwrap();
    let mut cur = usize::MAX;
    for (db, e) in entries {
        if *db != cur {
            w.select_db(*db, 1, 0).unwrap();
            cur = *db;
        }
        w.write_entry(e, compress).unwrap();
    }
    w.finish().unwrap()
}

fn read_file(b: &[u8], lim: EncodingLimits) -> Result<(Vec<KeyItem>, Vec<Vec<u8>>), RdbError> {
    let mut keys = Vec::new();
    let mut funcs = Vec::new();
    Reader::new(b, lim).read_all(|it| {
        match it {
            Item::Key(k) => keys.push(k),
            Item::Function(f) => funcs.push(f),
            _ => {}
        }
        Ok(())
    })?;
    Ok((keys, funcs))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Str(_) | Value::Stream(_) => false,
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::ZSet(z) => z.is_empty(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn roundtrip(vals in proptest::collection::vec((gen_value(), proptest::option::of(1u64..1u64 << 50), 0usize..3), 1..8),
                 compress in any::<bool>(), checksum in any::<bool>()) {
        let lim = EncodingLimits::default();
        let mut entries = Vec::new();
        for (i, (g, ttl, db)) in vals.iter().enumerate() {
            let Some(v) = build(g, &lim) else { continue };
            if is_empty(&v) { continue; }
            let key = format!("key:{i}");
            let mut e = make_entry(key.as_bytes(), v, 0);
            e.set_expire_at(*ttl);
            entries.push((*db, e));
        }
        entries.sort_by_key(|(db, _)| *db);
        let file = write_file(&entries, compress, checksum);
        let (keys, funcs) = read_file(&file, lim).unwrap();
        prop_assert_eq!(funcs.len(), 1);
        prop_assert_eq!(keys.len(), entries.len());
        for (k, (db, e)) in keys.iter().zip(&entries) {
            prop_assert_eq!(k.db, *db);
            prop_assert_eq!(&k.key[..], e.key());
            prop_assert_eq!(k.expire_ms, e.expire_at());
            prop_assert_eq!(canon(&k.value), canon_entry(e));
            // Same encodings as the commands would choose.
            if let (Value::Set(a), ValueRef::Other(Value::Set(b))) = (&k.value, e.value()) {
                prop_assert_eq!(a.encoding(), b.encoding());
            }
            if let (Value::ZSet(a), ValueRef::Other(Value::ZSet(b))) = (&k.value, e.value()) {
                prop_assert_eq!(a.encoding(), b.encoding());
            }
            // DUMP payloads round-trip too.
            let p = dump_payload(e.value(), compress);
            let v = parse_payload(&p, &lim).unwrap();
            prop_assert_eq!(canon(&v), canon_entry(e));
        }
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(&bytes);
        let _ = read_file(&f, EncodingLimits::default());
        let _ = read_file(&bytes, EncodingLimits::default());
        // A payload with a valid footer reaches the decoder.
        for ty in [bytes.first().copied().unwrap_or(0), 18, 19, 16, 17, 11, 21, 24, 25] {
            let mut p = vec![ty];
            p.extend_from_slice(&bytes);
            p.extend_from_slice(&10u16.to_le_bytes());
            let crc = crc64(&p);
            p.extend_from_slice(&crc.to_le_bytes());
            let _ = parse_payload(&p, &EncodingLimits::default());
        }
    }
}

fn sample_file() -> Vec<u8> {
    let lim = EncodingLimits::default();
    let gens = vec![
        Gen::Str(b"12345".to_vec()),
        Gen::Str(vec![b'a'; 100]),
        Gen::List((0..300).map(|i| format!("e{i}").into_bytes()).collect()),
        Gen::Set(vec![b"x".to_vec(), b"y".to_vec()]),
        Gen::IntSet(vec![1, 2, 3]),
        Gen::Hash(vec![(b"f".to_vec(), b"v".to_vec(), Some(1 << 45))]),
        Gen::Hash(
            (0..200)
                .map(|i| (format!("f{i}").into_bytes(), b"v".to_vec(), None))
                .collect(),
        ),
        Gen::ZSet(vec![(b"m".to_vec(), 1.5)]),
        Gen::Stream(
            (0..20)
                .map(|i| (i % 2, vec![(b"a".to_vec(), format!("{i}").into_bytes())]))
                .collect(),
            2,
        ),
    ];
    let entries: Vec<_> = gens
        .iter()
        .enumerate()
        .map(|(i, g)| {
            (
                0,
                make_entry(format!("k{i}").as_bytes(), build(g, &lim).unwrap(), 0),
            )
        })
        .collect();
    write_file(&entries, true, true)
}

#[test]
fn truncated_and_flipped_files_fail_cleanly() {
    let f = sample_file();
    assert!(read_file(&f, EncodingLimits::default()).is_ok());
    for n in 0..f.len() {
        let e = read_file(&f[..n], EncodingLimits::default());
        assert!(e.is_err(), "truncated at {n} accepted");
    }
    let mut rng = 0x9E3779B97F4A7C15u64;
    for i in 0..3000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut g = f.clone();
        let pos = (rng as usize) % g.len();
        if (5..9).contains(&pos) {
            // A flipped version digit can name a version without checksums (< 5), which is then read
            // as such, as Redis does.
            continue;
        }
        g[pos] ^= 1 << (i % 8);
        // With the checksum the flip is caught (or the parse fails before); never a panic.
        assert!(
            read_file(&g, EncodingLimits::default()).is_err(),
            "flip of bit {} at {pos} of {} accepted: {:02x?}",
            i % 8,
            g.len(),
            &g[pos.saturating_sub(8)..(pos + 8).min(g.len())]
        );
        // Without the checksum the decoders see the damage.
        let n = g.len();
        g[n - 8..].fill(0);
        let _ = read_file(&g, EncodingLimits::default());
    }
}

#[test]
fn huge_lengths_do_not_allocate() {
    // A string claiming 2^62 bytes, and a list claiming 2^62 elements.
    let mut f = b"REDIS0010\xfe\x00".to_vec();
    f.push(0);
    put_string(&mut f, b"k", false);
    f.push(0x81);
    f.extend_from_slice(&(1u64 << 62).to_be_bytes());
    assert!(read_file(&f, EncodingLimits::default()).is_err());
    let mut f = b"REDIS0010\xfe\x00".to_vec();
    f.push(types::LIST);
    put_string(&mut f, b"k", false);
    f.push(0x81);
    f.extend_from_slice(&(1u64 << 62).to_be_bytes());
    assert!(read_file(&f, EncodingLimits::default()).is_err());
    // LZF with an absurd uncompressed length.
    let mut f = b"REDIS0010\xfe\x00\x00".to_vec();
    put_string(&mut f, b"k", false);
    f.push(0xC3);
    put_len(&mut f, 4);
    put_len(&mut f, 1 << 40);
    f.extend_from_slice(b"abcd");
    let e = read_file(&f, EncodingLimits::default()).unwrap_err();
    assert!(e.msg.contains("LZF"), "{e}");
}

#[test]
fn string_encodings() {
    let mut b = Vec::new();
    put_string(&mut b, b"-5", false);
    assert_eq!(b, [0xC0, 0xFB]);
    b.clear();
    put_string(&mut b, b"1000", false);
    assert_eq!(b, [0xC1, 0xE8, 0x03]);
    b.clear();
    put_string(&mut b, b"100000", false);
    assert_eq!(b, [0xC2, 0xA0, 0x86, 0x01, 0x00]);
    b.clear();
    put_string(&mut b, b"01", false);
    assert_eq!(b, [2, b'0', b'1']);
    b.clear();
    put_string(&mut b, &[b'a'; 100], true);
    assert_eq!(b[0], 0xC3);
    let mut src = Src::new(&b[..], false);
    assert_eq!(src.string().unwrap(), vec![b'a'; 100]);
    // Redis's CRC64 check value.
    assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
}

#[test]
fn redis_payload_of_a_string() {
    // DUMP of SET k hello in Redis 7.0.
    let p = b"\x00\x05hello\x0a\x00\xe2\x02\xa1\x95\xc5\xc0\x1e\xaf";
    let mut q = p[..p.len() - 8].to_vec();
    let crc = crc64(&q);
    q.extend_from_slice(&crc.to_le_bytes());
    let v = parse_payload(&q, &EncodingLimits::default()).unwrap();
    assert!(matches!(v, Value::Str(s) if s == b"hello"));
    assert_eq!(
        dump_payload(ValueRef::Str(b"hello"), true),
        q,
        "our payload equals Redis's layout"
    );
    // Bad checksum / version.
    let mut bad = q.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(
        parse_payload(&bad, &EncodingLimits::default()).unwrap_err(),
        "ERR DUMP payload version or checksum are wrong"
    );
}

#[test]
fn negative_zero_score_keeps_its_sign() {
    assert_eq!(score_bytes(-0.0), b"-0");
    assert_eq!(score_bytes(3.0), b"3");
    assert_eq!(score_bytes(f64::INFINITY), b"inf");
}

proptest! {
    #[test]
    fn lzf_garbage_never_panics(c in proptest::collection::vec(any::<u8>(), 1..64), ulen in 1u64..2000) {
        let mut b = vec![0xC3];
        put_len(&mut b, c.len() as u64);
        put_len(&mut b, ulen);
        b.extend_from_slice(&c);
        let _ = Src::new(&b[..], false).string();
    }
}

#[test]
fn load_into_server_then_save_shards() {
    let srv = crate::server::Server::new(crate::config::Config::default(), 0);
    let lim = EncodingLimits::default();
    let now = crate::server::unix_ms();
    let mut entries = Vec::new();
    let mut live = make_entry(b"live", Value::Str(b"v".to_vec()), 0);
    live.set_expire_at(Some(now + 100_000));
    entries.push((0, live));
    let mut dead = make_entry(b"dead", Value::Str(b"v".to_vec()), 0);
    dead.set_expire_at(Some(now - 1));
    entries.push((0, dead));
    let h = build(
        &Gen::Hash(vec![(b"f".to_vec(), b"v".to_vec(), Some(now + 50_000))]),
        &lim,
    )
    .unwrap();
    entries.push((0, make_entry(b"hash", h, 0)));
    entries.push((2, make_entry(b"other-db", Value::Str(b"x".to_vec()), 0)));
    let file = write_file(&entries, true, true);
    let (loaded, expired) = load_into(&srv, &file[..], Some(file.len() as u64)).unwrap();
    assert_eq!((loaded, expired), (3, 1));
    {
        let g = srv.keyspace.lock_key(b"live");
        assert_eq!(
            g.db(0).find(b"live").unwrap().expire_at(),
            Some(now + 100_000)
        );
    }
    {
        let g = srv.keyspace.lock_key(b"other-db");
        assert!(g.db(2).find(b"other-db").is_some());
        assert!(g.db(0).find(b"other-db").is_none());
    }
    // Save every shard and read the result back.
    let opts = SaveOptions {
        databases: srv.keyspace.databases(),
        ..SaveOptions::default()
    };
    let mut w = Writer::new(Vec::new(), true);
    w.write_header(&Aux::now(&srv)).unwrap();
    let mut v12 = false;
    for i in 0..crate::keyspace::NUM_SHARDS {
        let g = srv.keyspace.lock_shard(i);
        let mut buf = Vec::new();
        v12 |= encode_shard(&mut buf, &g, &opts, now);
        w.write_all(&buf).unwrap();
    }
    assert!(v12, "the hash with a field TTL needs version 12");
    let out = w.finish().unwrap();
    let (keys, _) = read_file(&out, lim).unwrap();
    let mut names: Vec<_> = keys
        .iter()
        .map(|k| (k.db, String::from_utf8_lossy(&k.key).to_string()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            (0, "hash".to_string()),
            (0, "live".to_string()),
            (2, "other-db".to_string())
        ]
    );
    // Not loadable with fewer databases.
    let small = crate::server::Server::new(
        crate::config::Config {
            databases: 2,
            ..crate::config::Config::default()
        },
        0,
    );
    let e = load_into(&small, &file[..], Some(file.len() as u64)).unwrap_err();
    assert!(e.msg.contains("database 2"), "{e}");
}

/// A ziplist of strings and small integers (test-only encoder for the pre-7.0 encodings).
fn ziplist(items: &[&[u8]]) -> Vec<u8> {
    let mut b = vec![0u8; 10];
    let mut prev = 0usize;
    for it in items {
        let start = b.len();
        if prev < 254 {
            b.push(prev as u8);
        } else {
            b.push(0xFE);
            b.extend_from_slice(&(prev as u32).to_le_bytes());
        }
        match parse_i64(it) {
            Some(v @ 0..=12) => b.push(0xF1 + v as u8),
            Some(v) if i16::try_from(v).is_ok() => {
                b.push(0xC0);
                b.extend_from_slice(&(v as i16).to_le_bytes());
            }
            Some(v) => {
                b.push(0xE0);
                b.extend_from_slice(&v.to_le_bytes());
            }
            None if it.len() < 64 => {
                b.push(it.len() as u8);
                b.extend_from_slice(it);
            }
            None => {
                b.push(0x40 | (it.len() >> 8) as u8);
                b.push(it.len() as u8);
                b.extend_from_slice(it);
            }
        }
        prev = b.len() - start;
    }
    b.push(0xFF);
    let n = b.len() as u32;
    b[..4].copy_from_slice(&n.to_le_bytes());
    b[8..10].copy_from_slice(&(items.len() as u16).to_le_bytes());
    b
}

fn old_file(version: u16, records: &[(u8, &[u8], Vec<u8>)]) -> Vec<u8> {
    let mut f = format!("REDIS{version:04}").into_bytes();
    f.push(op::SELECTDB);
    f.push(0);
    for (ty, key, body) in records {
        f.push(*ty);
        put_string(&mut f, key, false);
        f.extend_from_slice(body);
    }
    f.push(op::EOF);
    if version >= 5 {
        f.extend_from_slice(&[0; 8]); // checksum disabled
    }
    f
}

fn values(f: &[u8]) -> Vec<(String, Canon)> {
    let (keys, _) = read_file(f, EncodingLimits::default()).unwrap();
    keys.iter()
        .map(|k| (String::from_utf8_lossy(&k.key).to_string(), canon(&k.value)))
        .collect()
}

fn strs(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn old_encodings() {
    let long = "x".repeat(300);
    let zl = ziplist(&[b"a", b"7", b"-300", long.as_bytes(), b"123456789012"]);
    let mut list_zl = Vec::new();
    put_string(&mut list_zl, &zl, false);
    let mut quick = Vec::new();
    put_len(&mut quick, 2);
    put_string(&mut quick, &ziplist(&[b"a", b"b"]), false);
    put_string(&mut quick, &ziplist(&[b"1"]), false);
    let mut hash_zl = Vec::new();
    put_string(&mut hash_zl, &ziplist(&[b"f1", b"v1", b"f2", b"2"]), false);
    let mut zset_zl = Vec::new();
    put_string(&mut zset_zl, &ziplist(&[b"m1", b"1", b"m2", b"2.5"]), false);
    let mut zipmap = Vec::new();
    put_string(
        &mut zipmap,
        &[2u8, 1, b'a', 2, 0, b'x', b'y', 1, b'b', 1, 1, b'z', 0, 255],
        false,
    );
    let mut plain_list = Vec::new();
    put_len(&mut plain_list, 2);
    put_string(&mut plain_list, b"p", false);
    put_string(&mut plain_list, b"12", false);
    let mut plain_set = Vec::new();
    put_len(&mut plain_set, 2);
    put_string(&mut plain_set, b"s1", false);
    put_string(&mut plain_set, b"s2", false);
    let mut old_zset = Vec::new();
    put_len(&mut old_zset, 3);
    put_string(&mut old_zset, b"a", false);
    old_zset.extend_from_slice(&[3, b'1', b'.', b'5']);
    put_string(&mut old_zset, b"b", false);
    old_zset.push(254);
    put_string(&mut old_zset, b"c", false);
    old_zset.push(255);
    let mut plain_hash = Vec::new();
    put_len(&mut plain_hash, 1);
    put_string(&mut plain_hash, b"f", false);
    put_string(&mut plain_hash, b"v", false);
    let f = old_file(
        9,
        &[
            (types::LIST_ZIPLIST, b"lz", list_zl),
            (types::LIST_QUICKLIST, b"lq", quick),
            (types::HASH_ZIPLIST, b"hz", hash_zl),
            (types::ZSET_ZIPLIST, b"zz", zset_zl),
            (types::HASH_ZIPMAP, b"hm", zipmap),
            (types::LIST, b"l", plain_list),
            (types::SET, b"s", plain_set),
            (types::ZSET, b"z", old_zset),
            (types::HASH, b"h", plain_hash),
        ],
    );
    let got = values(&f);
    let want = vec![
        (
            "lz".to_string(),
            Canon::List(strs(&["a", "7", "-300", &long, "123456789012"])),
        ),
        ("lq".to_string(), Canon::List(strs(&["a", "b", "1"]))),
        (
            "hz".to_string(),
            Canon::Hash(vec![
                (b"f1".to_vec(), b"v1".to_vec(), None),
                (b"f2".to_vec(), b"2".to_vec(), None),
            ]),
        ),
        (
            "zz".to_string(),
            Canon::ZSet(vec![
                (b"m1".to_vec(), 1f64.to_bits()),
                (b"m2".to_vec(), 2.5f64.to_bits()),
            ]),
        ),
        (
            "hm".to_string(),
            Canon::Hash(vec![
                (b"a".to_vec(), b"xy".to_vec(), None),
                (b"b".to_vec(), b"z".to_vec(), None),
            ]),
        ),
        ("l".to_string(), Canon::List(strs(&["p", "12"]))),
        ("s".to_string(), Canon::Set(strs(&["s1", "s2"]))),
        (
            "z".to_string(),
            Canon::ZSet(vec![
                (b"c".to_vec(), f64::NEG_INFINITY.to_bits()),
                (b"a".to_vec(), 1.5f64.to_bits()),
                (b"b".to_vec(), f64::INFINITY.to_bits()),
            ]),
        ),
        (
            "h".to_string(),
            Canon::Hash(vec![(b"f".to_vec(), b"v".to_vec(), None)]),
        ),
    ];
    assert_eq!(got, want);
    // Version 3: no checksum; EXPIRETIME in seconds.
    let mut f = b"REDIS0003\xfe\x00\xfd".to_vec();
    f.extend_from_slice(&2_000_000_000u32.to_le_bytes());
    f.push(0);
    put_string(&mut f, b"k", false);
    put_string(&mut f, b"v", false);
    f.push(0xFF);
    let (keys, _) = read_file(&f, EncodingLimits::default()).unwrap();
    assert_eq!(keys[0].expire_ms, Some(2_000_000_000_000));
}

#[test]
fn newer_encodings() {
    // SET_LISTPACK (7.2), HASH_LISTPACK_EX_PRE_GA / HASH_METADATA_PRE_GA (7.4 RC), IDLE/FREQ, SLOT_INFO.
    let mut lp = LpWriter::new();
    lp.push(b"a");
    lp.push(b"12");
    let mut set_lp = Vec::new();
    put_string(&mut set_lp, &lp.finish(), false);
    let mut lp = LpWriter::new();
    lp.push(b"f");
    lp.push(b"v");
    lp.push_int(5_000_000_000_000);
    lp.push(b"g");
    lp.push(b"w");
    lp.push_int(0);
    let mut hlx = Vec::new();
    put_string(&mut hlx, &lp.finish(), false);
    let mut hmd = Vec::new();
    put_len(&mut hmd, 1);
    put_len(&mut hmd, 6_000_000_000_000);
    put_string(&mut hmd, b"f", false);
    put_string(&mut hmd, b"v", false);
    let mut f = b"REDIS0012".to_vec();
    f.extend_from_slice(&[op::SELECTDB, 0, op::SLOT_INFO, 1, 2, 3]);
    f.extend_from_slice(&[op::IDLE, 10, op::FREQ, 5]);
    for (ty, key, body) in [
        (types::SET_LISTPACK, &b"sl"[..], set_lp),
        (types::HASH_LISTPACK_EX_PRE_GA, b"hx", hlx),
        (types::HASH_METADATA_PRE_GA, b"hm", hmd),
    ] {
        f.push(ty);
        put_string(&mut f, key, false);
        f.extend_from_slice(&body);
    }
    f.push(op::EOF);
    f.extend_from_slice(&[0; 8]);
    let (keys, _) = read_file(&f, EncodingLimits::default()).unwrap();
    assert_eq!(keys[0].idle_secs, Some(10));
    assert_eq!(keys[0].freq, Some(5));
    assert_eq!(keys[1].idle_secs, None);
    let got: Vec<_> = keys.iter().map(|k| canon(&k.value)).collect();
    assert_eq!(
        got,
        vec![
            Canon::Set(strs(&["12", "a"])),
            Canon::Hash(vec![
                (b"f".to_vec(), b"v".to_vec(), Some(5_000_000_000_000)),
                (b"g".to_vec(), b"w".to_vec(), None),
            ]),
            Canon::Hash(vec![(
                b"f".to_vec(),
                b"v".to_vec(),
                Some(6_000_000_000_000)
            )]),
        ]
    );
    // Modules are refused with a clear message.
    let mut f = b"REDIS0010".to_vec();
    f.push(op::MODULE_AUX);
    let e = read_file(&f, EncodingLimits::default()).unwrap_err();
    assert!(e.msg.contains("module"), "{e}");
    let e = read_file(b"REDIS0013\xff", EncodingLimits::default()).unwrap_err();
    assert!(e.msg.contains("version"), "{e}");
    let e = read_file(b"RUBIS0010\xff", EncodingLimits::default()).unwrap_err();
    assert!(e.msg.contains("signature"), "{e}");
}

#[test]
fn stream_v3_consumer_active_time() {
    let lim = EncodingLimits::default();
    let mut v = build(
        &Gen::Stream(vec![(1, vec![(b"a".to_vec(), b"1".to_vec())])], 1),
        &lim,
    )
    .unwrap();
    let Value::Stream(s) = &mut v else {
        unreachable!()
    };
    let g = s.groups.values_mut().next().unwrap();
    g.consumers.get_mut(&b"c0"[..]).unwrap().active_time = Some(4242);
    let mut body = Vec::new();
    encode_stream(&mut body, s, false, true);
    let mut src = Src::new(&body[..], false);
    let Some(Value::Stream(back)) =
        decode_value(&mut src, types::STREAM_LISTPACKS_3, &lim).unwrap()
    else {
        panic!("not a stream")
    };
    let g = back.groups.values().next().unwrap();
    assert_eq!(g.consumers[&b"c0"[..]].active_time, Some(4242));
    assert_eq!(g.consumers[&b"idle"[..]].active_time, None);
    assert_eq!(canon(&Value::Stream(back.clone())), canon(&v));
    // Read as type 19 (no active times), the same bytes fail cleanly.
    let mut src = Src::new(&body[..], false);
    let r = decode_value(&mut src, types::STREAM_LISTPACKS_2, &lim);
    assert!(r.is_err() || src.offset() < body.len() as u64);
}

/// A small file whose RESIZEDB claims `hint` keys (and expires), with one real key.
fn resizedb_file(hint: u64) -> Vec<u8> {
    let mut b = b"REDIS0011".to_vec();
    b.extend_from_slice(&[0xFE, 0x00, 0xFB]);
    put_len(&mut b, hint);
    put_len(&mut b, hint);
    b.push(types::STRING);
    put_string(&mut b, b"foo", false);
    put_string(&mut b, b"bar", false);
    b.push(0xFF);
    let crc = crc64(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// RESIZEDB is a hint: whatever it claims, what reaches the keyspace is bounded by the bytes left in the
/// input (and by a fixed cap when the length is unknown), and the file loads.
#[test]
fn resizedb_hints_are_bounded() {
    let lim = EncodingLimits::default();
    for hint in [0, 7, 1 << 20, 1 << 34, u64::MAX - 1, u64::MAX] {
        let file = resizedb_file(hint);
        for input_len in [Some(file.len() as u64), None] {
            let mut hints = Vec::new();
            Reader::new(&file[..], lim)
                .with_input_len(input_len)
                .read_all(|it| {
                    if let Item::ResizeDb { size, expires, .. } = it {
                        hints.push((size, expires));
                    }
                    Ok(())
                })
                .unwrap();
            assert_eq!(hints.len(), 1);
            let (size, expires) = hints[0];
            assert_eq!(size, expires);
            match input_len {
                // At most what the rest of the file could hold (one key here: a handful).
                Some(n) => assert!(size <= hint.min(n / MIN_KEY_BYTES), "{size} for {hint}"),
                None => assert_eq!(size, hint.min(MAX_RESIZE_HINT)),
            }
        }
        let srv = crate::server::Server::new(crate::config::Config::default(), 0);
        let start = std::time::Instant::now();
        assert_eq!(
            load_into(&srv, &file[..], Some(file.len() as u64)).unwrap(),
            (1, 0)
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        // A few bytes of file: nothing worth pre-sizing, only the one key's table got buckets.
        let buckets: usize = (0..crate::keyspace::NUM_SHARDS)
            .map(|i| srv.keyspace.lock_shard(i).db(0).buckets())
            .sum();
        assert!(buckets <= 64, "{buckets} buckets for hint {hint}");
    }
}

/// Lengths in a value that claim far more than the input holds fail cleanly (a decode error), without
/// allocating for the claim.
#[test]
fn huge_claimed_lengths_are_errors() {
    let lim = EncodingLimits::default();
    let mut cases: Vec<(u8, Vec<u8>)> = Vec::new();
    let huge = |b: &mut Vec<u8>| put_len(b, 1 << 62);
    // A string, an LZF string with an impossible uncompressed size, and every counted collection.
    let mut s = Vec::new();
    huge(&mut s);
    s.extend_from_slice(b"abc");
    cases.push((types::STRING, s));
    let mut s = vec![0xC3];
    put_len(&mut s, 2);
    put_len(&mut s, 1 << 40);
    s.extend_from_slice(&[0x00, b'a']);
    cases.push((types::STRING, s));
    let mut s = vec![0xC3];
    put_len(&mut s, 200);
    put_len(&mut s, 20_000);
    s.extend_from_slice(&[0x00, b'a']);
    cases.push((types::STRING, s));
    for ty in [
        types::LIST,
        types::SET,
        types::ZSET,
        types::ZSET_2,
        types::HASH,
        types::LIST_QUICKLIST,
        types::LIST_QUICKLIST_2,
        types::STREAM_LISTPACKS_3,
    ] {
        let mut s = Vec::new();
        huge(&mut s);
        put_string(&mut s, b"1", false);
        cases.push((ty, s));
    }
    // HASH_METADATA: the min-TTL comes first.
    let mut s = 0u64.to_le_bytes().to_vec();
    huge(&mut s);
    cases.push((types::HASH_METADATA, s));
    // Blobs whose headers claim more entries than they hold.
    let mut lp = LpWriter::new();
    lp.push(b"a");
    let mut lp = lp.finish();
    lp[4] = 0xFE;
    lp[5] = 0xFF;
    let mut intset = blob::intset_encode(&[1, 2]);
    intset[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    for (ty, b) in [
        (types::SET_LISTPACK, &lp),
        (types::HASH_LISTPACK, &lp),
        (types::ZSET_LISTPACK, &lp),
        (types::SET_INTSET, &intset),
    ] {
        let mut s = Vec::new();
        put_string(&mut s, b, false);
        cases.push((ty, s));
    }
    for (ty, body) in cases {
        let mut src = Src::new(&body[..], false);
        assert!(
            decode_value(&mut src, ty, &lim).is_err(),
            "type {ty}: {body:?}"
        );
        // The same as a DUMP payload with a valid trailer: RESTORE's error.
        let mut p = vec![ty];
        p.extend_from_slice(&body);
        p.extend_from_slice(&11u16.to_le_bytes());
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            parse_payload(&p, &lim).err(),
            Some("ERR Bad data format"),
            "type {ty}"
        );
    }
}

/// Found by the restore fuzz target: a HASH_METADATA payload whose field TTL does not fit Redis's 48-bit
/// expiry field loaded, then DUMP wrote it as a negative listpack integer that RESTORE refused. Such TTLs
/// are corrupt input now, in both hash-with-TTL encodings.
#[test]
fn hash_field_ttls_past_the_48_bit_range_are_refused() {
    let lim = EncodingLimits::default();
    let body = b"\x18\x1dz21\xeb\xff\x94\xfd\x01\x01\x01\x01\x01b";
    let mut p = body.to_vec();
    p.extend_from_slice(&11u16.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(parse_payload(&p, &lim).err(), Some("ERR Bad data format"));
    for (at, ok) in [(MAX_FIELD_TTL, true), (MAX_FIELD_TTL + 1, false)] {
        // HASH_METADATA: min TTL, count, then (ttl - min + 1, field, value).
        let mut b = at.to_le_bytes().to_vec();
        put_len(&mut b, 1);
        put_len(&mut b, 1);
        put_string(&mut b, b"f", false);
        put_string(&mut b, b"v", false);
        let mut src = Src::new(&b[..], false);
        let v = decode_value(&mut src, types::HASH_METADATA, &lim);
        assert_eq!(v.is_ok(), ok, "{at}");
        // HASH_LISTPACK_EX: min TTL, then a listpack of (field, value, ttl).
        let mut w = LpWriter::new();
        w.push(b"f");
        w.push(b"v");
        w.push_int(at as i64);
        let mut b = at.to_le_bytes().to_vec();
        put_string(&mut b, &w.finish(), false);
        let mut src = Src::new(&b[..], false);
        let v = decode_value(&mut src, types::HASH_LISTPACK_EX, &lim);
        assert_eq!(v.is_ok(), ok, "{at}");
        if let Ok(Some(v)) = v {
            // What loads, DUMP writes back loadably.
            let d = dump_payload(ValueRef::Other(&v), false);
            assert!(parse_payload(&d, &lim).is_ok());
        }
    }
}
