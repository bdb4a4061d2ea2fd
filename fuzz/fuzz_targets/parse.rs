//! Feeds arbitrary bytes, cut into arbitrary chunks, to the request parser, and checks that the
//! result does not depend on how the bytes were chunked (except for the "too big" limits, which
//! depend on how much was buffered) and that consumed lengths and argument spans stay in bounds.
#![no_main]

use ferrodis_protocol::{Limits, RequestParser};
use libfuzzer_sys::fuzz_target;

type Outcome = (Vec<Vec<Vec<u8>>>, Option<&'static str>);

fn run(limits: Limits, data: &[u8], cuts: &[usize]) -> Outcome {
    let mut p = RequestParser::new(limits);
    let mut out = Vec::new();
    let mut off = 0;
    for &end in cuts.iter().chain(std::iter::once(&data.len())) {
        let buf = &data[..end];
        loop {
            match p.parse(&buf[off..]) {
                Ok(Some(n)) => {
                    assert!(n > 0 && off + n <= buf.len());
                    let args = p.args(&buf[off..]);
                    out.push(args.iter().map(|a| a.to_vec()).collect());
                    off += n;
                }
                Ok(None) => {
                    if let Some(k) = p.bytes_needed() {
                        assert!(k > 0);
                    }
                    break;
                }
                Err(e) => return (out, Some(e.0)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 2 {
        return;
    }
    // First byte: flags; next bytes up to a 0xff separator: chunk sizes; then the data.
    let flags = input[0];
    let rest = &input[1..];
    let sep = rest.iter().position(|&b| b == 0xff).unwrap_or(0).min(16);
    let (sizes, data) = rest.split_at(sep);
    let data = data.get(1..).unwrap_or(&[]);
    let limits = Limits {
        authenticated: flags & 1 == 0,
        max_inline_len: if flags & 2 == 0 { 64 * 1024 } else { 32 },
        max_bulk_len: if flags & 4 == 0 {
            512 * 1024 * 1024
        } else {
            100
        },
        ..Limits::default()
    };
    let mut cuts = Vec::new();
    let mut at = 0usize;
    for &s in sizes {
        at += s as usize + 1;
        if at >= data.len() {
            break;
        }
        cuts.push(at);
    }
    let whole = run(limits, data, &[]);
    let chunked = run(limits, data, &cuts);
    let too_big = |e: &Option<&str>| e.is_some_and(|e| e.contains("too big"));
    if !too_big(&whole.1) && !too_big(&chunked.1) {
        assert_eq!(whole, chunked);
    }
});
