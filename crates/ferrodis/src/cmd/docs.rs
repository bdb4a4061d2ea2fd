//! COMMAND DOCS: turns a command's redis.io-style syntax string into the argument tree Redis reports.
//!
//! Grammar of the syntax strings (as on the redis.io command pages):
//! - lower-case words are named arguments (`key`, `seconds`, `ip:port`); UPPER-case words are tokens (`NX`,
//!   `LIB-NAME`);
//! - `[ ... ]` is optional, `< ... >` groups a required choice, `a | b` separates the alternatives of a choice;
//! - `x [x ...]` (or `x ...`) repeats `x`; `TOKEN v [TOKEN v ...]` repeats a token too.
//!
//! A token followed by values becomes that value with a `token` (one value) or a block carrying the token
//! (several values); a bare token is a `pure-token`. Types are guessed from argument names the way Redis names
//! them (`key`, `count`, `pattern`, `unix-time-seconds`, ...); that is what redis-cli's hints need.

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

impl ArgType {
    pub fn name(self) -> &'static str {
        match self {
            ArgType::Key => "key",
            ArgType::String => "string",
            ArgType::Integer => "integer",
            ArgType::Double => "double",
            ArgType::Pattern => "pattern",
            ArgType::UnixTime => "unix-time",
            ArgType::PureToken => "pure-token",
            ArgType::OneOf => "oneof",
            ArgType::Block => "block",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    pub name: String,
    pub typ: ArgType,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    pub multiple_token: bool,
    pub args: Vec<Arg>,
}

impl Arg {
    fn leaf(name: &str, typ: ArgType) -> Arg {
        Arg {
            name: name.to_string(),
            typ,
            token: None,
            optional: false,
            multiple: false,
            multiple_token: false,
            args: Vec::new(),
        }
    }

    fn container(name: String, typ: ArgType, args: Vec<Arg>) -> Arg {
        Arg {
            name,
            typ,
            token: None,
            optional: false,
            multiple: false,
            multiple_token: false,
            args,
        }
    }

    /// Structural equality ignoring flags (to recognise `x [x ...]`).
    fn same_shape(&self, o: &Arg) -> bool {
        self.name == o.name
            && self.typ == o.typ
            && self.token == o.token
            && self.args.len() == o.args.len()
            && self.args.iter().zip(&o.args).all(|(a, b)| a.same_shape(b))
    }
}

// ------------------------------------------------------------------------------------------------------
// Tokenizer and parser
// ------------------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Open(char),
    Close(char),
    Bar,
    Ellipsis,
    Word(String),
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |w: &mut String, out: &mut Vec<Tok>| {
        if !w.is_empty() {
            let t = std::mem::take(w);
            if t == "..." {
                out.push(Tok::Ellipsis);
            } else if let Some(base) = t.strip_suffix("...") {
                out.push(Tok::Word(base.to_string()));
                out.push(Tok::Ellipsis);
            } else {
                out.push(Tok::Word(t));
            }
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
                out.push(Tok::Close(c));
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

/// A parsed syntax element before it is turned into an [`Arg`].
#[derive(Debug)]
enum Node {
    Word(String),
    Ellipsis,
    Group {
        optional: bool,
        alts: Vec<Vec<Node>>,
    },
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn alts(&mut self) -> Vec<Vec<Node>> {
        let mut alts = vec![self.seq()];
        while self.toks.get(self.pos) == Some(&Tok::Bar) {
            self.pos += 1;
            alts.push(self.seq());
        }
        alts
    }

    fn seq(&mut self) -> Vec<Node> {
        let mut v = Vec::new();
        while let Some(t) = self.toks.get(self.pos).cloned() {
            match t {
                Tok::Close(_) | Tok::Bar => break,
                Tok::Ellipsis => {
                    self.pos += 1;
                    v.push(Node::Ellipsis);
                }
                Tok::Word(w) => {
                    self.pos += 1;
                    v.push(Node::Word(w));
                }
                Tok::Open(c) => {
                    self.pos += 1;
                    let alts = self.alts();
                    if matches!(self.toks.get(self.pos), Some(Tok::Close(_))) {
                        self.pos += 1;
                    }
                    v.push(Node::Group {
                        optional: c == '[',
                        alts,
                    });
                }
            }
        }
        v
    }
}

fn is_token(w: &str) -> bool {
    w.chars().any(|c| c.is_ascii_uppercase()) && !w.chars().any(|c| c.is_ascii_lowercase())
}

/// Redis's argument type for a named argument, guessed from its name.
fn type_of(name: &str, cmd: &str) -> ArgType {
    const KEYS: &[&str] = &[
        "key",
        "newkey",
        "source",
        "destination",
        "destkey",
        "sourcekey",
    ];
    const INTS: &[&str] = &[
        "count",
        "seconds",
        "milliseconds",
        "microseconds",
        "numkeys",
        "offset",
        "start",
        "end",
        "stop",
        "index",
        "db",
        "destination-db",
        "index1",
        "index2",
        "client-id",
        "maxage",
        "protover",
        "min-match-len",
        "len",
        "length",
        "cursor",
        "port",
        "numreplicas",
        "decrement",
        "weight",
        "size",
        "number",
        "value-size",
    ];
    const DOUBLES: &[&str] = &[
        "score",
        "timeout",
        "longitude",
        "latitude",
        "radius",
        "width",
        "height",
        "min-score",
        "max-score",
    ];
    if KEYS.contains(&name)
        || (name.starts_with("key") && name[3..].chars().all(|c| c.is_ascii_digit()))
    {
        ArgType::Key
    } else if name == "pattern" || name.ends_with("-pattern") {
        ArgType::Pattern
    } else if name.starts_with("unix-time") {
        ArgType::UnixTime
    } else if name == "increment" {
        if cmd.contains("float") {
            ArgType::Double
        } else {
            ArgType::Integer
        }
    } else if INTS.contains(&name) {
        ArgType::Integer
    } else if DOUBLES.contains(&name) {
        ArgType::Double
    } else {
        ArgType::String
    }
}

struct Builder<'c> {
    cmd: &'c str,
}

impl Builder<'_> {
    /// Turn a sequence of nodes into arguments, folding repetitions and tokens.
    fn seq(&self, nodes: &[Node]) -> Vec<Arg> {
        self.fold_tokens(self.seq_raw(nodes))
    }

    /// Nodes to arguments with repetitions folded; bare tokens stay pure-tokens.
    fn seq_raw(&self, nodes: &[Node]) -> Vec<Arg> {
        // First pass: nodes to args, with bare tokens kept as pure-tokens.
        let mut out: Vec<Arg> = Vec::new();
        for n in nodes {
            match n {
                Node::Word(w) => {
                    if is_token(w) {
                        let mut a = Arg::leaf(&w.to_ascii_lowercase(), ArgType::PureToken);
                        a.token = Some(w.clone());
                        out.push(a);
                    } else {
                        out.push(Arg::leaf(w, type_of(w, self.cmd)));
                    }
                }
                Node::Ellipsis => {
                    if let Some(last) = out.last_mut() {
                        last.multiple = true;
                    }
                }
                Node::Group { optional, alts } => {
                    // `[x ...]` repeating the elements just before it.
                    if *optional
                        && alts.len() == 1
                        && matches!(alts[0].last(), Some(Node::Ellipsis))
                    {
                        let inner = &alts[0][..alts[0].len() - 1];
                        let rep = self.seq_raw(inner);
                        let k = rep.len();
                        if k > 0 && out.len() >= k && {
                            let tail = &out[out.len() - k..];
                            tail.iter().zip(&rep).all(|(a, b)| a.same_shape(b))
                        } {
                            let tail: Vec<Arg> = out.drain(out.len() - k..).collect();
                            let mut merged = self.fold_tokens(tail);
                            let mut a = if merged.len() == 1 {
                                merged
                                    .pop()
                                    .unwrap_or_else(|| Arg::leaf("data", ArgType::Block))
                            } else {
                                Arg::container("data".into(), ArgType::Block, merged)
                            };
                            if a.token.is_some() {
                                a.multiple_token = true;
                            }
                            a.multiple = true;
                            out.push(a);
                            continue;
                        }
                        // `[x ...]` alone: an optional, repeatable x.
                        let mut a = self.group(alts, true);
                        a.multiple = true;
                        out.push(a);
                        continue;
                    }
                    out.push(self.group(alts, *optional));
                }
            }
        }
        out
    }

    /// `TOKEN value` -> value with a token; `TOKEN a b` -> block with a token.
    fn fold_tokens(&self, args: Vec<Arg>) -> Vec<Arg> {
        let mut out: Vec<Arg> = Vec::new();
        let mut it = args.into_iter().peekable();
        while let Some(a) = it.next() {
            if a.typ == ArgType::PureToken && !a.multiple && !a.optional {
                if let Some(next) = it.peek() {
                    if next.token.is_none() && !next.optional && next.typ != ArgType::PureToken {
                        let mut v = it.next().unwrap_or_else(|| Arg::leaf("", ArgType::String));
                        v.token = a.token;
                        out.push(v);
                        continue;
                    }
                }
            }
            out.push(a);
        }
        out
    }

    /// A bracketed group: a choice (several alternatives) or a single element / block.
    fn group(&self, alts: &[Vec<Node>], optional: bool) -> Arg {
        let inner: Vec<&[Node]> = alts
            .iter()
            .map(|a| match a.last() {
                Some(Node::Ellipsis) if alts.len() == 1 => &a[..a.len() - 1],
                _ => &a[..],
            })
            .collect();
        let mut a = if inner.len() > 1 {
            let members: Vec<Arg> = inner.iter().map(|s| self.single(s)).collect();
            let name = members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join("_");
            Arg::container(name, ArgType::OneOf, members)
        } else {
            self.single(inner.first().copied().unwrap_or(&[]))
        };
        a.optional = optional;
        a
    }

    /// One alternative: a single argument, or a block of several.
    fn single(&self, nodes: &[Node]) -> Arg {
        let mut args = self.seq_raw(nodes);
        // A leading token followed by several values names the block and carries it.
        if args.len() > 2 {
            if let Some(first) = args.first() {
                if first.typ == ArgType::PureToken && !first.optional && !first.multiple {
                    let tok = args.remove(0);
                    let mut b =
                        Arg::container(tok.name.clone(), ArgType::Block, self.fold_tokens(args));
                    b.token = tok.token;
                    return b;
                }
            }
        }
        let mut args = self.fold_tokens(args);
        if args.len() == 1 {
            return args.pop().unwrap_or_else(|| Arg::leaf("", ArgType::Block));
        }
        let name = args.first().map(|a| a.name.clone()).unwrap_or_default();
        Arg::container(name, ArgType::Block, args)
    }
}

/// Parse a syntax string into Redis's COMMAND DOCS argument tree. `cmd` is the command's name (used to pick
/// argument types that depend on the command, e.g. INCRBYFLOAT's double increment).
pub fn parse(syntax: &str, cmd: &str) -> Vec<Arg> {
    let mut p = P {
        toks: tokenize(syntax),
        pos: 0,
    };
    let mut nodes = Vec::new();
    while p.pos < p.toks.len() {
        let alts = p.alts();
        if alts.len() > 1 {
            nodes.push(Node::Group {
                optional: false,
                alts,
            });
        } else {
            nodes.extend(alts.into_iter().flatten());
        }
        // Skip a stray closing bracket.
        if matches!(p.toks.get(p.pos), Some(Tok::Close(_))) {
            p.pos += 1;
        }
    }
    Builder { cmd }.seq(&nodes)
}

// ------------------------------------------------------------------------------------------------------
// Reply encoding
// ------------------------------------------------------------------------------------------------------

fn write_args(r: &mut Reply<'_>, args: &[Arg], has_keys: bool) {
    r.array(args.len());
    for a in args {
        let key_idx = a.typ == ArgType::Key && has_keys;
        let nflags = [a.optional, a.multiple, a.multiple_token]
            .iter()
            .filter(|f| **f)
            .count();
        let is_container = matches!(a.typ, ArgType::OneOf | ArgType::Block);
        let n = 2
            + usize::from(key_idx)
            + usize::from(a.token.is_some())
            + usize::from(nflags > 0)
            + usize::from(is_container);
        r.map(n);
        r.bulk(b"name");
        r.bulk(a.name.as_bytes());
        r.bulk(b"type");
        r.bulk(a.typ.name().as_bytes());
        if key_idx {
            r.bulk(b"key_spec_index");
            r.int(0);
        }
        if let Some(t) = &a.token {
            r.bulk(b"token");
            r.bulk(t.as_bytes());
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
            write_args(r, &a.args, has_keys);
        }
    }
}

/// One command's COMMAND DOCS map (the value; the caller writes the name key).
pub fn write_docs(r: &mut Reply<'_>, cmd: &Command, full_name: &str) {
    let args = parse(cmd.syntax, full_name);
    let n = 2
        + usize::from(!cmd.summary.is_empty())
        + usize::from(!cmd.complexity.is_empty())
        + usize::from(!args.is_empty())
        + usize::from(!cmd.subcommands.is_empty());
    r.map(n);
    if !cmd.summary.is_empty() {
        r.bulk(b"summary");
        r.bulk(cmd.summary.as_bytes());
    }
    r.bulk(b"since");
    r.bulk(cmd.since.as_bytes());
    r.bulk(b"group");
    r.bulk(cmd.group.as_bytes());
    if !cmd.complexity.is_empty() {
        r.bulk(b"complexity");
        r.bulk(cmd.complexity.as_bytes());
    }
    if !args.is_empty() {
        r.bulk(b"arguments");
        write_args(r, &args, cmd.keys.first > 0);
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
                let mut s = format!("{}:{}", a.name, a.typ.name());
                if let Some(t) = &a.token {
                    s += &format!("@{t}");
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
            "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]",
            "set",
        );
        assert_eq!(
            show(&a),
            "key:key value:string nx_xx:oneof?(nx:pure-token@NX xx:pure-token@XX) get:pure-token@GET? \
             seconds_milliseconds_unix-time-seconds_unix-time-milliseconds_keepttl:oneof?(seconds:integer@EX \
             milliseconds:integer@PX unix-time-seconds:unix-time@EXAT unix-time-milliseconds:unix-time@PXAT \
             keepttl:pure-token@KEEPTTL)"
        );
    }

    #[test]
    fn repetitions() {
        assert_eq!(show(&parse("key [key ...]", "del")), "key:key*");
        assert_eq!(
            show(&parse("key value [key value ...]", "mset")),
            "data:block*(key:key value:string)"
        );
        assert_eq!(
            show(&parse("[section [section ...]]", "info")),
            "section:string?*"
        );
        assert_eq!(
            show(&parse(
                "numkeys key [key ...] [WEIGHTS weight [weight ...]]",
                "zunion"
            )),
            "numkeys:integer key:key* weight:integer@WEIGHTS?*"
        );
        assert_eq!(
            show(&parse("[GET pattern [GET pattern ...]]", "sort")),
            "pattern:pattern@GET?*T"
        );
        assert_eq!(show(&parse("[arg ...]", "x")), "arg:string?*");
    }

    #[test]
    fn blocks_and_choices() {
        assert_eq!(
            show(&parse("[protover [AUTH username password] [SETNAME clientname]]", "hello")),
            "protover:block?(protover:integer auth:block@AUTH?(username:string password:string) clientname:string@SETNAME?)"
        );
        assert_eq!(
            show(&parse("<ON | OFF | SKIP>", "client|reply")),
            "on_off_skip:oneof(on:pure-token@ON off:pure-token@OFF skip:pure-token@SKIP)"
        );
        assert_eq!(
            show(&parse("[FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]", "command|list")),
            "module-name_category_pattern:oneof@FILTERBY?(module-name:string@MODULE category:string@ACLCAT pattern:pattern@PATTERN)"
        );
        assert_eq!(
            show(&parse("[LIMIT offset count]", "x")),
            "limit:block@LIMIT?(offset:integer count:integer)"
        );
        assert_eq!(
            show(&parse("[username] password", "auth")),
            "username:string? password:string"
        );
        assert_eq!(show(&parse("", "x")), "");
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
        ] {
            let _ = parse(s, "x");
        }
    }

    #[test]
    fn encodes() {
        let mut v = Vec::new();
        let mut r = Reply::new(&mut v, true);
        write_args(&mut r, &parse("key [NX | XX]", "x"), true);
        let s = String::from_utf8(v).unwrap();
        assert!(s.starts_with("*2\r\n%3\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n"), "{s}");
        assert!(s.contains("$5\r\nflags\r\n~1\r\n+optional\r\n"), "{s}");
    }
}
