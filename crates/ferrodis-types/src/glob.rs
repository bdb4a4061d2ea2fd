//! Glob-style pattern matching with Redis's stringmatch semantics (KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE).
//!
//! Syntax:
//! - `*` any run of bytes, `?` exactly one byte;
//! - `[abc]` one of a set, `[^abc]` none of a set, `[a-z]` a range (ends in either order), `\x` inside a set
//!   is the literal `x`;
//! - `\x` outside a set is the literal `x`; everything else matches itself.
//!
//! Redis's corner cases are kept on purpose, because clients can observe them:
//! - a non-empty pattern never matches the empty string (`*` included);
//! - an unterminated set (`[abc`) takes the rest of the pattern as its members;
//! - `x-y` inside a set is a range whenever a byte follows the `-`, even `]` (`[a-]` is the range `]`..`a`);
//! - bytes compare as C's signed `char` in ranges (`[a-\xff]` is the range -1..97);
//! - `nocase` folds ASCII letters only, and never applies to `\x` escapes inside a set.
//!
//! Abusive patterns cannot blow up: once the text after a `*` fails to match at every position, no earlier `*`
//! can succeed either, so the whole match fails at once (the search is polynomial, not exponential), and
//! recursion through more than [`MAX_NESTING`] stars fails the match, as Redis 7 does.

/// Deepest `*` recursion allowed before a match is declared failed (Redis's limit).
pub const MAX_NESTING: usize = 1000;

/// Whether `string` matches the glob `pattern`. `nocase` folds ASCII letters.
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut give_up = false;
    match_from(pattern, string, nocase, &mut give_up, 0)
}

/// A pattern that matches every key (SCAN and KEYS skip the matching for it, as Redis does; note that the
/// literal pattern `*` would not match the empty key through [`matches`]).
#[inline]
pub fn is_match_all(pattern: &[u8]) -> bool {
    pattern == b"*"
}

#[inline]
fn same(a: u8, b: u8, nocase: bool) -> bool {
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// C's `tolower` on a signed char: only ASCII letters change.
#[inline]
fn lower_signed(c: i8) -> i8 {
    (c as u8).to_ascii_lowercase() as i8
}

/// `give_up` is set once the rest of a pattern after some `*` failed at every remaining position; every caller
/// up the recursion then fails immediately (a longer match for an earlier `*` could only start the rest later
/// in the string, which has already been shown to fail).
fn match_from(
    mut pat: &[u8],
    mut s: &[u8],
    nocase: bool,
    give_up: &mut bool,
    nesting: usize,
) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    while let (Some(&p0), Some(&c)) = (pat.first(), s.first()) {
        match p0 {
            b'*' => {
                let stars = pat.iter().take_while(|&&b| b == b'*').count();
                let rest = &pat[stars..];
                if rest.is_empty() {
                    return true;
                }
                while !s.is_empty() {
                    if match_from(rest, s, nocase, give_up, nesting + 1) {
                        return true;
                    }
                    if *give_up {
                        return false;
                    }
                    s = &s[1..];
                }
                *give_up = true;
                return false;
            }
            b'?' => {
                pat = &pat[1..];
            }
            b'[' => {
                let (hit, used) = match_set(&pat[1..], c, nocase);
                if !hit {
                    return false;
                }
                pat = &pat[1 + used..];
            }
            b'\\' if pat.len() >= 2 => {
                if !same(pat[1], c, nocase) {
                    return false;
                }
                pat = &pat[2..];
            }
            _ => {
                if !same(p0, c, nocase) {
                    return false;
                }
                pat = &pat[1..];
            }
        }
        s = &s[1..];
        if s.is_empty() {
            let stars = pat.iter().take_while(|&&b| b == b'*').count();
            pat = &pat[stars..];
            break;
        }
    }
    pat.is_empty() && s.is_empty()
}

/// Match byte `c` against the set whose text starts at `body` (just after the `[`). Returns whether it
/// matched and how many bytes of `body` the set used (through its `]`, or all of it when unterminated).
fn match_set(body: &[u8], c: u8, nocase: bool) -> (bool, usize) {
    let negate = body.first() == Some(&b'^');
    let mut i = usize::from(negate);
    let mut hit = false;
    let used = loop {
        let Some(&b) = body.get(i) else {
            break body.len();
        };
        let left = body.len() - i;
        if b == b'\\' && left >= 2 {
            i += 1;
            if body[i] == c {
                hit = true;
            }
        } else if b == b']' {
            break i + 1;
        } else if left >= 3 && body[i + 1] == b'-' {
            let (mut lo, mut hi) = (b as i8, body[i + 2] as i8);
            let mut ch = c as i8;
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            if nocase {
                lo = lower_signed(lo);
                hi = lower_signed(hi);
                ch = lower_signed(ch);
            }
            i += 2;
            if lo <= ch && ch <= hi {
                hit = true;
            }
        } else if same(b, c, nocase) {
            hit = true;
        }
        i += 1;
    };
    (hit != negate, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn basics() {
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(m("h?llo", "hallo"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hallo"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("[\\]]", "]"));
        assert!(m("[\\^]", "^"));
        assert!(m("user:*:name", "user:1000:name"));
        assert!(!m("user:*:name", "user:1000:names"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("a", ""));
        assert!(m("a**", "a"));
        assert!(m("a*", "a"));
        assert!(m("*a", "a"));
    }

    #[test]
    fn nocase() {
        assert!(matches(b"HeLLo", b"hello", true));
        assert!(!matches(b"HeLLo", b"hello", false));
        assert!(matches(b"h[A-Z]llo", b"hello", true));
        assert!(matches(b"h[E]llo", b"hello", true));
        assert!(matches(b"\\H*", b"hello", true));
        // Escapes inside a set stay case-sensitive.
        assert!(!matches(b"[\\E]", b"e", true));
        assert!(matches(b"maxmemory-POLIC[xy]", b"maxmemory-policy", true));
    }

    #[test]
    fn redis_corner_cases() {
        // A non-empty pattern never matches the empty string, not even "*".
        assert!(!m("*", ""));
        assert!(!m("**", ""));
        assert!(!m("?*", ""));
        // Unterminated set: the rest of the pattern is the set.
        assert!(m("[abc", "b"));
        assert!(!m("[abc", "bc"));
        assert!(m("[^", "x"));
        // `[a-]` is the range ']'..'a'.
        assert!(m("[a-]", "^"));
        assert!(m("[a-]", "a"));
        assert!(!m("[a-]", "-"));
        // Empty set matches nothing; what follows is literal.
        assert!(!m("[]", "a"));
        assert!(!m("[]-a]", "-a]"));
        // A trailing backslash is a literal backslash.
        assert!(m("a\\", "a\\"));
        // Signed-char ranges.
        assert!(!matches(b"[a-\xff]", b"\xe9", false));
        assert!(matches(b"[\x80-\xff]", b"\xe9", false));
        assert!(matches(b"[a-\xff]", b"\xff", false));
        assert!(matches(b"[a-\xff]", b"5", false));
    }

    #[test]
    fn nesting_limit_like_redis() {
        let s = "a".repeat(1100);
        // 1001 stars: the last one ends the pattern, the deepest recursion is 1000: allowed.
        assert!(m(&"a*".repeat(1001), &s));
        assert!(m(&"a*".repeat(999), &s));
        // One more level fails, as in Redis.
        assert!(!m(&"a*".repeat(1002), &s));
        assert!(!m(&"a*".repeat(1100), &s));
    }

    #[test]
    fn no_exponential_blowup() {
        let s = "a".repeat(5000);
        let t = Instant::now();
        assert!(!m("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", &s));
        assert!(!m(&"*a".repeat(500), &format!("{s}b")));
        let p = format!("{}b", "a*".repeat(40));
        assert!(!m(&p, &s));
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
    }

    // ---- property test against a straightforward reference matcher ----

    #[derive(Clone, Debug)]
    enum Tok {
        Lit(u8),
        Esc(u8),
        Any,
        Star,
        Set(bool, Vec<(u8, u8)>),
    }

    fn render(toks: &[Tok]) -> Vec<u8> {
        let mut out = Vec::new();
        for t in toks {
            match t {
                Tok::Lit(c) => out.push(*c),
                Tok::Esc(c) => out.extend_from_slice(&[b'\\', *c]),
                Tok::Any => out.push(b'?'),
                Tok::Star => out.push(b'*'),
                Tok::Set(neg, items) => {
                    out.push(b'[');
                    if *neg {
                        out.push(b'^');
                    }
                    for &(lo, hi) in items {
                        if lo == hi {
                            out.push(lo);
                        } else {
                            out.extend_from_slice(&[lo, b'-', hi]);
                        }
                    }
                    out.push(b']');
                }
            }
        }
        out
    }

    fn tok_matches(t: &Tok, c: u8, nocase: bool) -> bool {
        let f = |x: u8| if nocase { x.to_ascii_lowercase() } else { x };
        match t {
            Tok::Lit(x) | Tok::Esc(x) => f(*x) == f(c),
            Tok::Any => true,
            Tok::Star => unreachable!(),
            Tok::Set(neg, items) => {
                let hit = items.iter().any(|&(lo, hi)| {
                    let (lo, hi) = (lo.min(hi), lo.max(hi));
                    (f(lo)..=f(hi)).contains(&f(c))
                });
                hit != *neg
            }
        }
    }

    /// Classic dynamic programming over (pattern token, string position).
    fn reference(toks: &[Tok], s: &[u8], nocase: bool) -> bool {
        if s.is_empty() {
            return toks.is_empty();
        }
        let n = s.len();
        let mut cur = vec![false; n + 1];
        cur[0] = true;
        for t in toks {
            let mut next = vec![false; n + 1];
            if let Tok::Star = t {
                let mut any = false;
                for j in 0..=n {
                    any |= cur[j];
                    next[j] = any;
                }
            } else {
                for j in 0..n {
                    if cur[j] && tok_matches(t, s[j], nocase) {
                        next[j + 1] = true;
                    }
                }
            }
            cur = next;
        }
        cur[n]
    }

    fn letter() -> impl Strategy<Value = u8> {
        prop::sample::select(b"abcAB:xZ".to_vec())
    }

    fn tok() -> impl Strategy<Value = Tok> {
        prop_oneof![
            4 => letter().prop_map(Tok::Lit),
            1 => prop::sample::select(b"*?[\\a".to_vec()).prop_map(Tok::Esc),
            2 => Just(Tok::Any),
            3 => Just(Tok::Star),
            2 => (any::<bool>(), prop::collection::vec((letter(), letter()), 1..3)).prop_map(|(neg, items)| {
                Tok::Set(neg, items)
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn agrees_with_reference(
            toks in prop::collection::vec(tok(), 0..8),
            s in prop::collection::vec(prop::sample::select(b"abcAB:xZ*?[".to_vec()), 0..12),
            nocase in any::<bool>(),
        ) {
            let p = render(&toks);
            prop_assert_eq!(matches(&p, &s, nocase), reference(&toks, &s, nocase),
                "pattern {:?} string {:?}", String::from_utf8_lossy(&p), String::from_utf8_lossy(&s));
        }

        #[test]
        fn literal_pattern_matches_itself(s in prop::collection::vec(letter(), 1..20)) {
            prop_assert!(matches(&s, &s, false));
        }

        #[test]
        fn never_panics(p in prop::collection::vec(any::<u8>(), 0..24), s in prop::collection::vec(any::<u8>(), 0..24), nocase in any::<bool>()) {
            let _ = matches(&p, &s, nocase);
        }
    }
}
