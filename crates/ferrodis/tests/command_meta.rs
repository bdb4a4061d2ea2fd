//! COMMAND INFO, COMMAND DOCS and COMMAND GETKEYSANDFLAGS answer as Redis 7.2.4 does, for every command and
//! subcommand both servers have.
//!
//! The reference answers are recorded in `tests/fixtures/command-7.2.4.txt` (by `scripts/record-command-meta`,
//! which also documents the canonical form compared here: RESP3 replies with sets sorted). When
//! `FERRODIS_REFERENCE_REDIS` names a Redis 7.2.x `redis-server`, the test also compares against that server
//! live. `COMMAND_META_SERVER=/path/to/ferrodis` runs the comparison against another Ferrodis build (e.g. an
//! older one, to count its differences).

mod common;

use common::{Raw, Server};
use std::collections::{BTreeMap, BTreeSet};

const FIXTURE: &str = include_str!("fixtures/command-7.2.4.txt");

/// A parsed RESP3 reply.
enum V {
    Str(String),
    Err(String),
    Int(i64),
    Null,
    Arr(Vec<V>),
    Set(Vec<V>),
    Map(Vec<(V, V)>),
}

fn parse(b: &[u8], i: &mut usize) -> V {
    let end = *i + b[*i..].windows(2).position(|w| w == b"\r\n").expect("CRLF");
    let kind = b[*i];
    let line = String::from_utf8_lossy(&b[*i + 1..end]).into_owned();
    *i = end + 2;
    let n = || line.parse::<i64>().expect("length");
    match kind {
        b'+' => V::Str(line),
        b'-' => V::Err(line),
        b':' => V::Int(n()),
        b'_' => V::Null,
        b'$' | b'=' | b'!' => {
            if n() < 0 {
                return V::Null;
            }
            let len = n() as usize;
            let mut s = String::from_utf8_lossy(&b[*i..*i + len]).into_owned();
            *i += len + 2;
            if kind == b'=' {
                s = s[4..].to_string();
            }
            if kind == b'!' {
                V::Err(s)
            } else {
                V::Str(s)
            }
        }
        b'*' | b'~' | b'>' => {
            if n() < 0 {
                return V::Null;
            }
            let items = (0..n()).map(|_| parse(b, i)).collect();
            if kind == b'~' {
                V::Set(items)
            } else {
                V::Arr(items)
            }
        }
        b'%' => V::Map((0..n()).map(|_| (parse(b, i), parse(b, i))).collect()),
        b',' => V::Str(line),
        k => panic!("unexpected RESP type {}", k as char),
    }
}

fn quote(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A container command's COMMAND INFO entry or COMMAND DOCS map with its subcommands left out (they are
/// compared one by one; a server may have only some of them): a non-empty list becomes `*`.
fn without_subcommands(v: &V) -> String {
    match v {
        V::Arr(f) if f.len() == 10 => {
            let mut parts: Vec<String> = f[..9].iter().map(canon).collect();
            parts.push(match &f[9] {
                V::Arr(a) if !a.is_empty() => "[*]".into(),
                V::Set(a) if !a.is_empty() => "(*)".into(),
                other => canon(other),
            });
            format!("[{}]", parts.join(","))
        }
        V::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| {
                    let v = if text(k) == "subcommands" {
                        "{*}".into()
                    } else {
                        canon(v)
                    };
                    format!("{}:{v}", canon(k))
                })
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => canon(other),
    }
}

/// The canonical text of a reply (as scripts/record-command-meta writes it).
fn canon(v: &V) -> String {
    match v {
        V::Str(s) => quote(s),
        V::Err(s) => format!("!{}", quote(s)),
        V::Int(n) => n.to_string(),
        V::Null => "null".into(),
        V::Arr(a) => format!("[{}]", a.iter().map(canon).collect::<Vec<_>>().join(",")),
        V::Set(a) => {
            let mut items: Vec<String> = a.iter().map(canon).collect();
            items.sort();
            format!("({})", items.join(","))
        }
        V::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}:{}", canon(k), canon(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn call(raw: &mut Raw, args: &[&str]) -> V {
    let bytes = raw.args(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>());
    parse(&bytes, &mut 0)
}

fn text(v: &V) -> &str {
    match v {
        V::Str(s) => s,
        _ => "",
    }
}

/// The fixture's GETKEYSANDFLAGS command lines.
fn key_lines() -> Vec<&'static str> {
    FIXTURE
        .lines()
        .filter_map(|l| l.strip_prefix("KEYS "))
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect()
}

/// Every answer of a server in the fixture's form: "INFO name" / "DOCS name" / "KEYS line" -> canonical text.
fn answers(server: &Server) -> BTreeMap<String, String> {
    let mut raw = server.raw();
    call(&mut raw, &["HELLO", "3"]);
    let mut out = BTreeMap::new();
    let V::Arr(info) = call(&mut raw, &["COMMAND", "INFO"]) else {
        panic!("COMMAND INFO is not an array");
    };
    for e in &info {
        let V::Arr(f) = e else { continue };
        out.insert(format!("INFO {}", text(&f[0])), without_subcommands(e));
        if let Some(V::Set(subs) | V::Arr(subs)) = f.get(9) {
            for s in subs {
                if let V::Arr(sf) = s {
                    out.insert(format!("INFO {}", text(&sf[0])), without_subcommands(s));
                }
            }
        }
    }
    let V::Map(docs) = call(&mut raw, &["COMMAND", "DOCS"]) else {
        panic!("COMMAND DOCS is not a map");
    };
    for (k, v) in &docs {
        out.insert(format!("DOCS {}", text(k)), without_subcommands(v));
        if let V::Map(m) = v {
            for (mk, mv) in m {
                if text(mk) == "subcommands" {
                    if let V::Map(subs) = mv {
                        for (sk, sv) in subs {
                            out.insert(format!("DOCS {}", text(sk)), without_subcommands(sv));
                        }
                    }
                }
            }
        }
    }
    for line in key_lines() {
        let words: Vec<&str> = line
            .split(' ')
            .map(|w| if w == "\"\"" { "" } else { w })
            .collect();
        let mut args = vec!["COMMAND", "GETKEYSANDFLAGS"];
        args.extend(words);
        out.insert(format!("KEYS {line}"), canon(&call(&mut raw, &args)));
    }
    out
}

/// The command a fixture key is about ("INFO client|list" -> "client|list"; "KEYS object encoding k" ->
/// "object|encoding" when OBJECT has that subcommand, else "object").
fn command_of(key: &str, names: &BTreeSet<String>) -> String {
    let (kind, rest) = key.split_once(' ').unwrap_or((key, ""));
    if kind != "KEYS" {
        return rest.to_string();
    }
    let mut w = rest.split(' ');
    let first = w.next().unwrap_or("").to_ascii_lowercase();
    if let Some(second) = w.next() {
        let sub = format!("{first}|{}", second.to_ascii_lowercase());
        if names.contains(&sub) {
            return sub;
        }
    }
    first
}

/// Compare `ours` with `reference` for every command both have; returns the differing commands, each with its
/// first difference, and the number of commands compared.
fn compare(
    ours: &BTreeMap<String, String>,
    reference: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, usize) {
    let names_of = |m: &BTreeMap<String, String>| -> BTreeSet<String> {
        m.keys()
            .filter_map(|k| k.strip_prefix("INFO "))
            .map(str::to_string)
            .collect()
    };
    let (ours_names, ref_names) = (names_of(ours), names_of(reference));
    let both: BTreeSet<&String> = ours_names.intersection(&ref_names).collect();
    let mut diffs = BTreeMap::new();
    for (k, want) in reference {
        let cmd = command_of(k, &ref_names);
        if !both.contains(&cmd) {
            continue;
        }
        let got = ours.get(k).map(String::as_str).unwrap_or("<missing>");
        if got != want {
            diffs
                .entry(cmd)
                .or_insert_with(|| format!("{k}\n      got:  {got}\n      want: {want}"));
        }
    }
    (diffs, both.len())
}

fn report(what: &str, diffs: &BTreeMap<String, String>, compared: usize) {
    assert!(
        compared > 200,
        "only {compared} commands compared against {what}: the fixture or COMMAND INFO is broken"
    );
    if !diffs.is_empty() {
        let mut msg = format!(
            "{} of {compared} commands differ from {what}: {}\n",
            diffs.len(),
            diffs.keys().cloned().collect::<Vec<_>>().join(" ")
        );
        for d in diffs.values() {
            let short: String = d.chars().take(1500).collect();
            msg += &format!("  {short}\n");
        }
        panic!("{msg}");
    }
    println!("{compared} commands equal to {what}");
}

fn fixture() -> BTreeMap<String, String> {
    FIXTURE
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('\t').expect("fixture line: KEY\\tVALUE");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn command_metadata_matches_redis_7_2_4_fixture() {
    let expected = fixture();
    assert!(expected.keys().filter(|k| k.starts_with("KEYS ")).count() > 100);
    let ours = answers(&Server::start_overridable("COMMAND_META_SERVER", &[]));
    let (diffs, compared) = compare(&ours, &expected);
    report("the Redis 7.2.4 fixture", &diffs, compared);
}

#[test]
fn command_metadata_matches_live_reference() {
    let Ok(bin) = std::env::var("FERRODIS_REFERENCE_REDIS") else {
        println!("SKIP live comparison: FERRODIS_REFERENCE_REDIS is not set (compared with the fixture only)");
        return;
    };
    let reference = Server::spawn(&bin, &["--save", "", "--appendonly", "no"], &[]);
    let mut raw = reference.raw();
    let version = match call(&mut raw, &["INFO", "server"]) {
        V::Str(s) => s,
        _ => String::new(),
    };
    if !version.contains("redis_version:7.2.") {
        println!("SKIP live comparison: {bin} is not a Redis 7.2.x server");
        return;
    }
    let want = answers(&reference);
    let ours = answers(&Server::start_overridable("COMMAND_META_SERVER", &[]));
    let (diffs, compared) = compare(&ours, &want);
    report(&format!("the live reference {bin}"), &diffs, compared);
}
