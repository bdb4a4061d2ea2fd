//! COMMAND DOCS: turns a command's syntax string into the argument tree Redis reports.
//!
//! The syntax strings read like the redis.io command pages, with a few marks so that they carry everything
//! COMMAND DOCS prints:
//! - a lower-case word is a named argument: `name[:type][/display][@since][!deprecated-since][#key-spec]`.
//!   The type defaults to `key` for an argument called `key`, else `string`; the display text to the name;
//!   a `key` argument refers to the next key spec (0, 1, ... in order) unless `#n` (or `#-`: none) says
//!   otherwise;
//! - a word that does not start with a lower-case letter is a token: `NX`, `CH=change` (token `CH`, argument
//!   named `change`), `GET@6.2.0`. A token followed by an argument or a group is that argument's token; alone,
//!   it is a pure-token argument;
//! - `[ ... ]` is optional, `< ... >` a required group; alternatives separated by `|` make a `oneof`, several
//!   arguments in one group a `block`. A group may be named (`condition:[NX | XX]`; a block or oneof with a
//!   token is named after it by default) and annotated after its closing bracket (`]@2.6.12`); a token
//!   before a group makes it the group's token only for a `< ... >` group (`[LIMIT <offset count>]`);
//! - `...` after an argument makes it `multiple`, `...+` also `multiple_token`.
//!
//! Example (SET): `key value condition:[NX | XX]@2.6.12 [GET@6.2.0] expiration:[EX seconds:integer@2.6.12 |
//! KEEPTTL@6.0.0]`.

use super::Command;
use ferrodis_protocol::Reply;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    Key,
    String,
    Integer,
    Double,
    Pattern,
    UnixTime,
    PureToken,
    OneOf,
    Block,
}

const TYPES: &[(ArgType, &str)] = &[
    (ArgType::Key, "key"),
    (ArgType::String, "string"),
    (ArgType::Integer, "integer"),
    (ArgType::Double, "double"),
    (ArgType::Pattern, "pattern"),
    (ArgType::UnixTime, "unix-time"),
    (ArgType::PureToken, "pure-token"),
    (ArgType::OneOf, "oneof"),
    (ArgType::Block, "block"),
];

impl ArgType {
    pub fn name(self) -> &'static str {
        TYPES
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, n)| *n)
            .unwrap_or("string")
    }

    fn from_name(n: &str) -> ArgType {
        TYPES
            .iter()
            .find(|(_, s)| *s == n)
            .map(|(t, _)| *t)
            .unwrap_or(ArgType::String)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Arg {
    pub name: String,
    pub typ: Option<ArgType>,
    pub display: Option<String>,
    pub key_spec_index: Option<i32>,
    pub token: Option<String>,
    pub since: Option<String>,
    pub deprecated_since: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    pub multiple_token: bool,
    pub args: Vec<Arg>,
}

impl Arg {
    fn typ(&self) -> ArgType {
        self.typ.unwrap_or(ArgType::String)
    }

    fn container(name: &str, typ: ArgType, args: Vec<Arg>) -> Arg {
        Arg {
            name: name.to_string(),
            typ: Some(typ),
            args,
            ..Arg::default()
        }
    }

    /// `@since` / `!deprecated-since` marks at the end of `w`; returns what precedes them.
    fn annotate<'w>(&mut self, w: &'w str) -> &'w str {
        let mut w = w;
        if let Some((l, r)) = w.rsplit_once('!') {
            self.deprecated_since = Some(r.to_string());
            w = l;
        }
        if let Some((l, r)) = w.rsplit_once('@') {
            self.since = Some(r.to_string());
            w = l;
        }
        w
    }
}

// ------------------------------------------------------------------------------------------------------
// Tokenizer and parser
// ------------------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Open(char),
    Close,
    Bar,
    /// `...` (false) or `...+` (true).
    Ellipsis(bool),
    Word(String),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |w: &mut String, out: &mut Vec<Tok>| {
        if !w.is_empty() {
            let t = std::mem::take(w);
            out.push(match t.as_str() {
                "..." => Tok::Ellipsis(false),
                "...+" => Tok::Ellipsis(true),
                _ => Tok::Word(t),
            });
        }
    };
    for c in s.chars() {
        match c {
            '[' | '<' => {
                flush(&mut word, &mut out);
                out.push(Tok::Open(c));
            }
            ']' | '>' => {
                flush(&mut word, &mut out);
                out.push(Tok::Close);
            }
            '|' => {
                flush(&mut word, &mut out);
                out.push(Tok::Bar);
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

fn is_mark(w: &str) -> bool {
    w.starts_with('@') || w.starts_with('!')
}

fn is_token(w: &str) -> bool {
    !w.starts_with(|c: char| c.is_ascii_lowercase()) && !is_mark(w)
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
    /// Key arguments seen so far (the default key spec index of the next one).
    keys: i32,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// Arguments up to a `|`, a closing bracket or the end.
    fn seq(&mut self) -> Vec<Arg> {
        let mut out: Vec<Arg> = Vec::new();
        while let Some(t) = self.peek().cloned() {
            match t {
                Tok::Close | Tok::Bar => break,
                Tok::Ellipsis(tok) => {
                    self.pos += 1;
                    if let Some(a) = out.last_mut() {
                        a.multiple = true;
                        a.multiple_token |= tok;
                    }
                }
                Tok::Word(w) if is_mark(&w) => {
                    self.pos += 1;
                    if let Some(a) = out.last_mut() {
                        a.annotate(&w);
                    }
                }
                Tok::Word(w) if is_token(&w) => {
                    self.pos += 1;
                    // A token is the token of a following named argument or `< ... >` group.
                    let binds = match self.peek() {
                        Some(Tok::Open(c)) => *c == '<',
                        Some(Tok::Word(n)) if n.ends_with(':') => {
                            self.toks.get(self.pos + 1) == Some(&Tok::Open('<'))
                        }
                        Some(Tok::Word(n)) => !is_token(n) && !is_mark(n),
                        _ => false,
                    };
                    if binds {
                        let mut a = self.element();
                        if a.name.is_empty() {
                            a.name = w.to_ascii_lowercase();
                        }
                        a.token = Some(w);
                        out.push(a);
                    } else {
                        out.push(pure_token(&w));
                    }
                }
                Tok::Word(_) | Tok::Open(_) => out.push(self.element()),
            }
        }
        out
    }

    /// A named argument or a (possibly labelled) group.
    fn element(&mut self) -> Arg {
        match self.peek().cloned() {
            Some(Tok::Word(w)) => {
                self.pos += 1;
                match w.strip_suffix(':') {
                    Some(label) if matches!(self.peek(), Some(Tok::Open(_))) => self.group(label),
                    _ => self.leaf(&w),
                }
            }
            Some(Tok::Open(_)) => self.group(""),
            _ => Arg::default(),
        }
    }

    fn leaf(&mut self, w: &str) -> Arg {
        let mut a = Arg::default();
        let mut w = w;
        let mut ksi = None;
        if let Some((l, r)) = w.rsplit_once('#') {
            ksi = Some(r.parse::<i32>().ok());
            w = l;
        }
        let mut w = a.annotate(w);
        if let Some((l, r)) = w.split_once('/') {
            a.display = Some(r.to_string());
            w = l;
        }
        let (name, typ) = match w.split_once(':') {
            Some((n, t)) => (n, ArgType::from_name(t)),
            None if w == "key" => (w, ArgType::Key),
            None => (w, ArgType::String),
        };
        a.name = name.to_string();
        a.typ = Some(typ);
        if a.display.is_none() {
            a.display = Some(a.name.clone());
        }
        let next = if typ == ArgType::Key {
            self.keys += 1;
            Some(self.keys - 1)
        } else {
            None
        };
        a.key_spec_index = ksi.unwrap_or(next);
        a
    }

    /// `[ ... ]` or `< ... >`, the opening bracket next.
    fn group(&mut self, label: &str) -> Arg {
        let optional = matches!(self.peek(), Some(Tok::Open('[')));
        self.pos += 1;
        let mut alts = vec![self.seq()];
        while self.peek() == Some(&Tok::Bar) {
            self.pos += 1;
            alts.push(self.seq());
        }
        if self.peek() == Some(&Tok::Close) {
            self.pos += 1;
        }
        let mut a = if alts.len() > 1 {
            let members = alts
                .into_iter()
                .map(|mut s| {
                    if s.len() == 1 {
                        s.pop().unwrap_or_default()
                    } else {
                        Arg::container("", ArgType::Block, s)
                    }
                })
                .collect();
            Arg::container(label, ArgType::OneOf, members)
        } else {
            let mut s = alts.pop().unwrap_or_default();
            if s.len() == 1 && label.is_empty() {
                s.pop().unwrap_or_default()
            } else {
                Arg::container(label, ArgType::Block, s)
            }
        };
        a.optional |= optional;
        a
    }
}

fn pure_token(w: &str) -> Arg {
    let mut a = Arg {
        typ: Some(ArgType::PureToken),
        ..Arg::default()
    };
    let w = a.annotate(w);
    let (tok, name) = match w.rsplit_once('=') {
        Some((t, n)) if !t.is_empty() && n.starts_with(|c: char| c.is_ascii_lowercase()) => {
            (t, n.to_string())
        }
        _ => (w, w.to_ascii_lowercase()),
    };
    a.token = Some(tok.to_string());
    a.display = Some(name.clone());
    a.name = name;
    a
}

/// Parse a syntax string into Redis's COMMAND DOCS argument tree.
pub fn parse(syntax: &str) -> Vec<Arg> {
    let mut p = P {
        toks: tokenize(syntax),
        pos: 0,
        keys: 0,
    };
    let mut out = Vec::new();
    while p.pos < p.toks.len() {
        out.extend(p.seq());
        // A stray `|` or closing bracket.
        if p.pos < p.toks.len() {
            p.pos += 1;
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------------
// Reply encoding
// ------------------------------------------------------------------------------------------------------

fn write_args(r: &mut Reply<'_>, args: &[Arg]) {
    r.array(args.len());
    for a in args {
        let typ = a.typ();
        let nflags = [a.optional, a.multiple, a.multiple_token]
            .iter()
            .filter(|f| **f)
            .count();
        let is_container = matches!(typ, ArgType::OneOf | ArgType::Block);
        let n = 2
            + usize::from(a.display.is_some() && !is_container)
            + usize::from(a.key_spec_index.is_some())
            + usize::from(a.token.is_some())
            + usize::from(a.since.is_some())
            + usize::from(a.deprecated_since.is_some())
            + usize::from(nflags > 0)
            + usize::from(is_container);
        r.map(n);
        r.bulk(b"name");
        r.bulk(a.name.as_bytes());
        r.bulk(b"type");
        r.bulk(typ.name().as_bytes());
        if let Some(d) = a.display.as_ref().filter(|_| !is_container) {
            r.bulk(b"display_text");
            r.bulk(d.as_bytes());
        }
        if let Some(i) = a.key_spec_index {
            r.bulk(b"key_spec_index");
            r.int(i as i64);
        }
        if let Some(t) = &a.token {
            r.bulk(b"token");
            r.bulk(t.as_bytes());
        }
        if let Some(v) = &a.since {
            r.bulk(b"since");
            r.bulk(v.as_bytes());
        }
        if let Some(v) = &a.deprecated_since {
            r.bulk(b"deprecated_since");
            r.bulk(v.as_bytes());
        }
        if nflags > 0 {
            r.bulk(b"flags");
            r.set(nflags);
            if a.optional {
                r.simple("optional");
            }
            if a.multiple {
                r.simple("multiple");
            }
            if a.multiple_token {
                r.simple("multiple_token");
            }
        }
        if is_container {
            r.bulk(b"arguments");
            write_args(r, &a.args);
        }
    }
}

/// One command's COMMAND DOCS map (the value; the caller writes the name key).
pub fn write_docs(r: &mut Reply<'_>, cmd: &Command, full_name: &str) {
    let args = parse(cmd.syntax);
    let deprecated = !cmd.deprecated_since.is_empty();
    let nflags = usize::from(deprecated) + usize::from(cmd.syscmd);
    let n = 3
        + usize::from(!cmd.complexity.is_empty())
        + usize::from(nflags > 0)
        + usize::from(deprecated)
        + usize::from(!cmd.replaced_by.is_empty())
        + usize::from(!cmd.history.is_empty())
        + usize::from(!args.is_empty())
        + usize::from(!cmd.subcommands.is_empty());
    r.map(n);
    r.bulk(b"summary");
    r.bulk(cmd.summary.as_bytes());
    r.bulk(b"since");
    r.bulk(cmd.since.as_bytes());
    r.bulk(b"group");
    r.bulk(cmd.group.as_bytes());
    if !cmd.complexity.is_empty() {
        r.bulk(b"complexity");
        r.bulk(cmd.complexity.as_bytes());
    }
    if nflags > 0 {
        r.bulk(b"doc_flags");
        r.set(nflags);
        if deprecated {
            r.simple("deprecated");
        }
        if cmd.syscmd {
            r.simple("syscmd");
        }
    }
    if deprecated {
        r.bulk(b"deprecated_since");
        r.bulk(cmd.deprecated_since.as_bytes());
    }
    if !cmd.replaced_by.is_empty() {
        r.bulk(b"replaced_by");
        r.bulk(cmd.replaced_by.as_bytes());
    }
    if !cmd.history.is_empty() {
        r.bulk(b"history");
        r.set(cmd.history.len());
        for (v, t) in cmd.history {
            r.array(2);
            r.bulk(v.as_bytes());
            r.bulk(t.as_bytes());
        }
    }
    if !args.is_empty() {
        r.bulk(b"arguments");
        write_args(r, &args);
    }
    if !cmd.subcommands.is_empty() {
        r.bulk(b"subcommands");
        r.map(cmd.subcommands.len());
        for s in cmd.subcommands {
            let full = format!("{}|{}", full_name, s.name);
            r.bulk(full.as_bytes());
            write_docs(r, s, &full);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(a: &[Arg]) -> String {
        a.iter()
            .map(|a| {
                let mut s = format!("{}:{}", a.name, a.typ().name());
                if let Some(t) = &a.token {
                    s += &format!("@{t}");
                }
                if let Some(i) = a.key_spec_index {
                    s += &format!("#{i}");
                }
                if let Some(v) = &a.since {
                    s += &format!("^{v}");
                }
                if a.optional {
                    s += "?";
                }
                if a.multiple {
                    s += "*";
                }
                if a.multiple_token {
                    s += "T";
                }
                if !a.args.is_empty() {
                    s += &format!("({})", show(&a.args));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn set_syntax() {
        let a = parse(
            "key value condition:[NX | XX]@2.6.12 [GET@6.2.0] expiration:[EX seconds:integer@2.6.12 | KEEPTTL@6.0.0]",
        );
        assert_eq!(
            show(&a),
            "key:key#0 value:string condition:oneof^2.6.12?(nx:pure-token@NX xx:pure-token@XX) \
             get:pure-token@GET^6.2.0? expiration:oneof?(seconds:integer@EX^2.6.12 keepttl:pure-token@KEEPTTL^6.0.0)"
        );
    }

    #[test]
    fn repetitions_blocks_tokens() {
        assert_eq!(show(&parse("key ...")), "key:key#0*");
        assert_eq!(
            show(&parse("data:<key value> ...")),
            "data:block*(key:key#0 value:string)"
        );
        assert_eq!(
            show(&parse("[GET get-pattern:pattern/pattern#1 ...+]")),
            "get-pattern:pattern@GET#1?*T"
        );
        assert_eq!(
            show(&parse("[LIMIT <offset:integer count:integer>] [ALPHA=sorting] destination:key#2")),
            "limit:block@LIMIT?(offset:integer count:integer) sorting:pure-token@ALPHA? destination:key#2"
        );
        assert_eq!(
            show(&parse("id:<*=auto-id | id>")),
            "id:oneof(auto-id:pure-token@* id:string)"
        );
        let a = parse("old-format/ip:port!2.8.12");
        assert_eq!(a[0].display.as_deref(), Some("ip:port"));
        assert_eq!(a[0].deprecated_since.as_deref(), Some("2.8.12"));
        assert_eq!(show(&parse("")), "");
    }

    #[test]
    fn malformed_does_not_panic() {
        for s in [
            "[",
            "]",
            "<a | >",
            "| |",
            "[a ... ...]",
            "... x",
            "[[[",
            ">>> <<<",
            "[ | ]",
            "TOKEN",
            "a [TOKEN]",
            "x: [",
            "@1 !2",
            "a#",
            "a:/@!#",
            "label:",
            "A B C",
            "==",
            "=",
            "[x]...+",
        ] {
            let _ = parse(s);
        }
    }

    #[test]
    fn encodes() {
        let mut v = Vec::new();
        let mut r = Reply::new(&mut v, true);
        write_args(&mut r, &parse("key [NX | XX]"));
        let s = String::from_utf8(v).unwrap();
        assert!(s.starts_with("*2\r\n%4\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$12\r\ndisplay_text\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n"), "{s}");
        assert!(s.contains("$5\r\nflags\r\n~1\r\n+optional\r\n"), "{s}");
    }
}
