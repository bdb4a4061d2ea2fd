use ferrodis_protocol::{Limits, ProtocolError, RequestParser};

type Req = Vec<Vec<u8>>;

/// Feeds `data` in chunks of the given sizes (cycled), like a connection reading; returns the parsed
/// requests (empty ones included) or the first error.
fn drive(limits: Limits, data: &[u8], chunks: &[usize]) -> Result<Vec<Req>, ProtocolError> {
    let mut p = RequestParser::new(limits);
    let mut buf = Vec::new();
    let mut off = 0;
    let mut out = Vec::new();
    let mut fed = 0;
    let mut ci = 0;
    while fed < data.len() {
        let n = chunks[ci % chunks.len()].max(1).min(data.len() - fed);
        ci += 1;
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        while let Some(used) = p.parse(&buf[off..])? {
            let a = p.args(&buf[off..]);
            out.push(a.iter().map(|x| x.to_vec()).collect());
            off += used;
        }
    }
    Ok(out)
}

fn all(data: &[u8]) -> Result<Vec<Req>, ProtocolError> {
    drive(Limits::default(), data, &[data.len().max(1)])
}

fn one(data: &[u8]) -> Result<Option<(usize, Vec<String>)>, ProtocolError> {
    let mut p = RequestParser::new(Limits::default());
    Ok(p.parse(data)?.map(|n| {
        (
            n,
            p.args(data)
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        )
    }))
}

fn err(data: &[u8]) -> &'static str {
    err_with(Limits::default(), data)
}

fn err_with(limits: Limits, data: &[u8]) -> &'static str {
    let mut p = RequestParser::new(limits);
    match p.parse(data) {
        Err(ProtocolError(e)) => e,
        other => panic!(
            "expected error for {:?}, got {:?}",
            String::from_utf8_lossy(data),
            other
        ),
    }
}

fn needs_more(data: &[u8]) -> bool {
    RequestParser::new(Limits::default()).parse(data) == Ok(None)
}

fn req(v: &[&str]) -> Req {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn multibulk_basic() {
    let d = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    assert_eq!(
        one(d).unwrap(),
        Some((d.len(), strs(&["SET", "key", "value"])))
    );
    let d = b"*1\r\n$0\r\n\r\n";
    assert_eq!(one(d).unwrap(), Some((d.len(), strs(&[""]))));
    // Binary data, CRLF inside a bulk.
    let d = b"*2\r\n$3\r\nGET\r\n$4\r\na\r\n\0\r\n";
    let mut p = RequestParser::new(Limits::default());
    assert_eq!(p.parse(d), Ok(Some(d.len())));
    assert_eq!(p.args(d).try_get(1).unwrap(), b"a\r\n\0");
}

#[test]
fn multibulk_followed_by_more() {
    let d = b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
    assert_eq!(one(d).unwrap(), Some((14, strs(&["PING"]))));
}

#[test]
fn empty_multibulk() {
    assert_eq!(one(b"*0\r\n").unwrap(), Some((4, vec![])));
    assert_eq!(one(b"*-1\r\n").unwrap(), Some((5, vec![])));
    assert_eq!(one(b"*-5\r\n").unwrap(), Some((5, vec![])));
    assert_eq!(
        all(b"*0\r\n*1\r\n$1\r\na\r\n*-1\r\n").unwrap(),
        vec![req(&[]), req(&["a"]), req(&[])]
    );
}

#[test]
fn multibulk_needs_more() {
    for d in [
        &b"*"[..],
        b"*1",
        b"*1\r",
        b"*1\r\n",
        b"*1\r\n$",
        b"*1\r\n$3",
        b"*1\r\n$3\r",
        b"*1\r\n$3\r\n",
        b"*1\r\n$3\r\nabc",
        b"*1\r\n$3\r\nabc\r",
        b"*2\r\n$3\r\nabc\r\n",
        b"*2147483647\r\n",
        b"*1\r\n$536870912\r\n",
    ] {
        assert!(needs_more(d), "{:?}", String::from_utf8_lossy(d));
    }
}

#[test]
fn trailing_crlf_not_checked() {
    // Redis skips the two bytes after a bulk and after a count line's '\r' without checking them.
    assert_eq!(one(b"*1\r\n$1\r\naXY").unwrap(), Some((11, strs(&["a"]))));
    assert_eq!(one(b"*1\rX$1\rYaZZ").unwrap(), Some((11, strs(&["a"]))));
}

#[test]
fn multibulk_count_errors() {
    let e = "Protocol error: invalid multibulk length";
    assert_eq!(err(b"*abc\r\n"), e);
    assert_eq!(err(b"*\r\n"), e);
    assert_eq!(err(b"*+1\r\n"), e);
    assert_eq!(err(b"*01\r\n"), e);
    assert_eq!(err(b"*-0\r\n"), e);
    assert_eq!(err(b"* 1\r\n"), e);
    assert_eq!(err(b"*1 \r\n"), e);
    assert_eq!(err(b"*2147483648\r\n"), e);
    assert_eq!(err(b"*99999999999999999999999\r\n"), e);
    // A '\r' found far away: the count is not a number.
    let mut d = b"*1".to_vec();
    d.extend(std::iter::repeat_n(b'1', 70_000));
    d.extend_from_slice(b"\r\n");
    assert_eq!(err(&d), e);
    let limits = Limits {
        max_multibulk_len: 5,
        ..Limits::default()
    };
    assert_eq!(err_with(limits, b"*6\r\n"), e);
    assert!(RequestParser::new(limits)
        .parse(b"*5\r\n")
        .unwrap()
        .is_none());
}

#[test]
fn too_big_count_strings() {
    let lim = Limits::default().max_inline_len;
    let mut d = b"*".to_vec();
    d.extend(std::iter::repeat_n(b'1', lim - 1));
    assert_eq!(d.len(), lim);
    assert!(needs_more(&d));
    d.push(b'1');
    assert_eq!(err(&d), "Protocol error: too big mbulk count string");

    let mut d = b"*1\r\n$".to_vec();
    d.extend(std::iter::repeat_n(b'1', lim - 1));
    assert!(needs_more(&d));
    d.push(b'1');
    assert_eq!(err(&d), "Protocol error: too big bulk count string");
}

#[test]
fn expected_dollar() {
    assert_eq!(
        err(b"*1\r\n:3\r\n"),
        "Protocol error: expected '$', got ':'"
    );
    assert_eq!(
        err(b"*1\r\nfoo\r\n"),
        "Protocol error: expected '$', got 'f'"
    );
    assert_eq!(
        err(b"*2\r\n$1\r\na\r\n*1\r\n"),
        "Protocol error: expected '$', got '*'"
    );
    // CR is reported as a space (Redis sanitizes error text).
    assert_eq!(err(b"*1\r\n\r\n"), "Protocol error: expected '$', got ' '");
    assert_eq!(
        err(b"*1\r\n\xff\r\n"),
        "Protocol error: expected '$', got '\u{ff}'"
    );
}

#[test]
fn bulk_length_errors() {
    let e = "Protocol error: invalid bulk length";
    assert_eq!(err(b"*1\r\n$-1\r\n"), e);
    assert_eq!(err(b"*1\r\n$abc\r\n"), e);
    assert_eq!(err(b"*1\r\n$\r\n"), e);
    assert_eq!(err(b"*1\r\n$+3\r\n"), e);
    assert_eq!(err(b"*1\r\n$03\r\n"), e);
    assert_eq!(err(b"*1\r\n$3 \r\n"), e);
    assert_eq!(err(b"*1\r\n$536870913\r\n"), e);
    assert_eq!(err(b"*1\r\n$99999999999999999999\r\n"), e);
    let limits = Limits {
        max_bulk_len: 10,
        ..Limits::default()
    };
    assert_eq!(err_with(limits, b"*1\r\n$11\r\n"), e);
    assert_eq!(
        RequestParser::new(limits).parse(b"*1\r\n$10\r\n0123456789\r\n"),
        Ok(Some(21))
    );
}

#[test]
fn unauthenticated_limits() {
    let limits = Limits {
        authenticated: false,
        ..Limits::default()
    };
    assert_eq!(
        err_with(limits, b"*11\r\n"),
        "Protocol error: unauthenticated multibulk length"
    );
    // The invalid-length check comes first.
    assert_eq!(
        err_with(limits, b"*2147483648\r\n"),
        "Protocol error: invalid multibulk length"
    );
    assert_eq!(
        err_with(limits, b"*1\r\n$16385\r\n"),
        "Protocol error: unauthenticated bulk length"
    );
    assert_eq!(
        err_with(limits, b"*1\r\n$-1\r\n"),
        "Protocol error: invalid bulk length"
    );
    let mut p = RequestParser::new(limits);
    assert_eq!(p.parse(b"*10\r\n"), Ok(None));
    let mut p = RequestParser::new(limits);
    assert_eq!(p.parse(b"*1\r\n$16384\r\n"), Ok(None));
    // Inline requests are not limited.
    let mut p = RequestParser::new(limits);
    let line = b"a b c d e f g h i j k l m\n";
    assert_eq!(p.parse(line), Ok(Some(line.len())));
    assert_eq!(p.args(line).len(), 13);
    // After AUTH.
    let mut p = RequestParser::new(limits);
    assert!(p.parse(b"*11\r\n").is_err());
    p.limits_mut().authenticated = true;
    assert_eq!(p.parse(b"*11\r\n"), Ok(None));
}

#[test]
fn nul_in_count_line_waits_like_strchr() {
    // Redis finds line ends with strchr, which stops at a NUL: it keeps waiting.
    assert!(needs_more(b"*1\0\r\n$1\r\na\r\n"));
    assert!(needs_more(b"*1\r\n$1\0\r\na\r\n"));
    assert!(needs_more(b"get a\0b\nping\n"));
    let mut d = b"*1\0\r\n".to_vec();
    d.resize(70_000, b'x');
    assert_eq!(err(&d), "Protocol error: too big mbulk count string");
}

#[test]
fn inline_basic() {
    assert_eq!(one(b"PING\r\n").unwrap(), Some((6, strs(&["PING"]))));
    assert_eq!(one(b"PING\n").unwrap(), Some((5, strs(&["PING"]))));
    assert_eq!(
        one(b"set a b\r\nget a\r\n").unwrap(),
        Some((9, strs(&["set", "a", "b"])))
    );
    assert_eq!(
        one(b"  set \t a   b  \r\n").unwrap(),
        Some((17, strs(&["set", "a", "b"])))
    );
    // Only the CR right before LF is stripped; another CR separates arguments.
    assert_eq!(one(b"a\rb\r\r\n").unwrap(), Some((6, strs(&["a", "b"]))));
    // Vertical tab / form feed: skipped before an argument, part of it after.
    assert_eq!(one(b"\x0ba\x0bb\n").unwrap(), Some((5, strs(&["a\x0bb"]))));
    assert!(needs_more(b"PING"));
    assert!(needs_more(b"PING\r"));
}

#[test]
fn inline_empty_lines() {
    assert_eq!(one(b"\r\n").unwrap(), Some((2, vec![])));
    assert_eq!(one(b"\n").unwrap(), Some((1, vec![])));
    assert_eq!(one(b"   \t \r\n").unwrap(), Some((7, vec![])));
    assert_eq!(
        all(b"\n\r\nping\n\nget x\n").unwrap(),
        vec![
            req(&[]),
            req(&[]),
            req(&["ping"]),
            req(&[]),
            req(&["get", "x"])
        ]
    );
}

#[test]
fn inline_quotes() {
    let ok = |line: &str, want: &[&str]| {
        let d = format!("{line}\r\n");
        assert_eq!(
            one(d.as_bytes()).unwrap(),
            Some((d.len(), strs(want))),
            "{line}"
        );
    };
    ok(r#"set "a b" c"#, &["set", "a b", "c"]);
    ok(r#"set "" ''"#, &["set", "", ""]);
    ok(r#""\x41\x4a\x6b""#, &["AJk"]);
    ok(r#""\n\r\t\b\a\\\"\q""#, &["\n\r\t\u{8}\u{7}\\\"q"]);
    ok(r#""\x4""#, &["x4"]);
    ok(r#""\xZZ""#, &["xZZ"]);
    ok(r#"'it\'s' 'a\nb' '\"'"#, &["it's", "a\\nb", "\\\""]);
    ok(r#"foo"bar baz" x"#, &["foobar baz", "x"]);
    ok(r#"a'b c' d"#, &["ab c", "d"]);
    ok("\"a\"\t'b'", &["a", "b"]);
    ok(r#"'say "hi"'"#, &["say \"hi\""]);
    ok(r#""it's""#, &["it's"]);
    // \xHH can produce any byte.
    let d = b"\"\\xff\\x00\"\n";
    let mut p = RequestParser::new(Limits::default());
    assert_eq!(p.parse(d), Ok(Some(d.len())));
    assert_eq!(p.args(d).try_get(0).unwrap(), b"\xff\x00");

    let bad = |line: &str| {
        let d = format!("{line}\r\n");
        assert_eq!(
            err(d.as_bytes()),
            "Protocol error: unbalanced quotes in request",
            "{line}"
        );
    };
    bad(r#"set "abc"def"#);
    bad(r#"set "abc"#);
    bad(r#"set 'abc"#);
    bad(r#"set 'abc'x"#);
    bad(r#"set "abc\"#);
    bad(r#"""""#);
    bad(r#""a"'b'"#);
    bad(r#"a'b c'd"#);
}

#[test]
fn inline_too_big() {
    let lim = Limits::default().max_inline_len;
    let mut d = vec![b'a'; lim];
    assert!(needs_more(&d));
    d.push(b'a');
    assert_eq!(err(&d), "Protocol error: too big inline request");
    // A long line with its newline present is fine.
    let mut d = vec![b'a'; lim * 2];
    d.push(b'\n');
    assert_eq!(one(&d).unwrap().unwrap().0, lim * 2 + 1);
}

fn pipeline() -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n");
    d.extend_from_slice(b"PING\r\n");
    d.extend_from_slice(b"*0\r\n");
    d.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
    d.extend_from_slice(b"\r\n");
    d.extend_from_slice(b"set \"a b\" 'c'\n");
    d.extend_from_slice(b"*-1\r\n");
    d.extend_from_slice(b"*1\r\n$12\r\n*1\r\n$4\r\nPING\r\n");
    d
}

fn pipeline_expected() -> Vec<Req> {
    vec![
        req(&["SET", "key", "va\r\nl"]),
        req(&["PING"]),
        req(&[]),
        req(&["GET", ""]),
        req(&[]),
        req(&["set", "a b", "c"]),
        req(&[]),
        req(&["*1\r\n$4\r\nPING"]),
    ]
}

#[test]
fn pipeline_every_split_point() {
    let d = pipeline();
    let want = pipeline_expected();
    assert_eq!(all(&d).unwrap(), want);
    for cut in 1..d.len() {
        // Two reads split at `cut`.
        assert_eq!(
            drive(Limits::default(), &d, &[cut, d.len()]).unwrap(),
            want,
            "cut {cut}"
        );
    }
    for i in 1..d.len() {
        for j in i + 1..d.len() {
            assert_eq!(
                drive(Limits::default(), &d, &[i, j - i, d.len()]).unwrap(),
                want,
                "cuts {i} {j}"
            );
        }
    }
    for size in 1..8 {
        assert_eq!(drive(Limits::default(), &d, &[size]).unwrap(), want);
    }
}

#[test]
fn big_bulk_in_small_reads() {
    let n = 3 * 1024 * 1024 + 17;
    let mut d = format!("*2\r\n$3\r\nSET\r\n${n}\r\n").into_bytes();
    let hdr = d.len();
    d.extend((0..n).map(|i| (i % 251) as u8));
    d.extend_from_slice(b"\r\n");
    let mut p = RequestParser::new(Limits::default());
    let mut fed = hdr;
    assert_eq!(p.parse(&d[..fed]), Ok(None));
    assert_eq!(p.bytes_needed(), Some(n + 2));
    while fed < d.len() {
        let step = 1000.min(d.len() - fed);
        fed += step;
        match p.parse(&d[..fed]).unwrap() {
            None => assert_eq!(p.bytes_needed(), Some(d.len() - fed)),
            Some(used) => {
                assert_eq!(fed, d.len());
                assert_eq!(used, d.len());
                let a = p.args(&d);
                assert_eq!(a.len(), 2);
                assert_eq!(a.try_get(1).unwrap().len(), n);
                assert_eq!(a.try_get(1).unwrap(), &d[hdr..hdr + n]);
            }
        }
    }
    assert_eq!(p.bytes_needed(), None);
}

#[test]
fn many_args_in_tiny_reads_is_linear() {
    // 200k arguments fed 3 bytes at a time: quadratic re-parsing would take minutes.
    let count = 200_000;
    let mut d = format!("*{count}\r\n").into_bytes();
    for i in 0..count {
        let s = i.to_string();
        d.extend_from_slice(format!("${}\r\n{}\r\n", s.len(), s).as_bytes());
    }
    let t = std::time::Instant::now();
    let got = drive(Limits::default(), &d, &[3]).unwrap();
    assert!(t.elapsed().as_secs() < 20);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].len(), count);
    assert_eq!(got[0][12345], b"12345");
}

#[test]
fn inline_in_tiny_reads() {
    let mut d = Vec::new();
    for i in 0..2000 {
        d.extend_from_slice(format!("set k{i} \"v {i}\"\r\n").as_bytes());
    }
    let got = drive(Limits::default(), &d, &[1, 2, 3]).unwrap();
    assert_eq!(got.len(), 2000);
    assert_eq!(got[1999], req(&["set", "k1999", "v 1999"]));
}

#[test]
fn reuse_after_success_starts_new_request() {
    let mut p = RequestParser::new(Limits::default());
    let a = b"*2\r\n$1\r\na\r\n$1\r\nb\r\n";
    assert_eq!(p.parse(&a[..10]), Ok(None));
    assert_eq!(p.parse(a), Ok(Some(a.len())));
    assert_eq!(p.args(a).len(), 2);
    let b = b"x y z\n";
    assert_eq!(p.parse(b), Ok(Some(6)));
    assert_eq!(p.args(b).iter().collect::<Vec<_>>(), vec![b"x", b"y", b"z"]);
    assert_eq!(p.parse(a), Ok(Some(a.len())));
    assert_eq!(p.args(a).try_get(1).unwrap(), b"b");
    assert_eq!(p.parse(b""), Ok(None));
    assert_eq!(p.parse(b"*0\r\n"), Ok(Some(4)));
    assert!(p.args(b"*0\r\n").is_empty());
}

#[test]
fn error_display() {
    let e = ProtocolError("Protocol error: invalid bulk length");
    assert_eq!(e.to_string(), "Protocol error: invalid bulk length");
}
