//! Feeds arbitrary bytes to the RDB file reader (every opcode, type and encoding it knows), usually behind
//! a valid `REDIS00NN` header so the fuzzer starts past the signature. Checks that size hints reach the
//! loader already bounded, and that every key read can be written back out and read again.
#![no_main]

use ferrodis::keyspace::entry::ValueRef;
use ferrodis::persist::rdb::{self, Item, Reader, MAX_RESIZE_HINT};
use ferrodis::types::{EncodingLimits, Value};
use libfuzzer_sys::fuzz_target;

fn value_ref(v: &Value) -> ValueRef<'_> {
    match v {
        Value::Str(s) => ValueRef::Str(s),
        other => ValueRef::Other(other),
    }
}

fuzz_target!(|input: &[u8]| {
    // First byte: bits 0-1 the header (0: none, the input is the whole file; 1: version 11; 2: version 9,
    // with ziplists and zipmaps; 3: version 12), bit 2 whether the reader knows the input's length.
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut file = Vec::with_capacity(rest.len() + 9);
    match mode & 3 {
        1 => file.extend_from_slice(b"REDIS0011"),
        2 => file.extend_from_slice(b"REDIS0009"),
        3 => file.extend_from_slice(b"REDIS0012"),
        _ => {}
    }
    file.extend_from_slice(rest);
    let len = file.len() as u64;
    let known = mode & 4 != 0;
    let lim = EncodingLimits::default();
    let _ = Reader::new(&file[..], lim)
        .with_input_len(known.then_some(len))
        .read_all(|item| {
            match item {
                Item::ResizeDb { size, expires, .. } => {
                    let bound = if known { len / 3 } else { MAX_RESIZE_HINT };
                    assert!(size <= bound && size <= MAX_RESIZE_HINT, "hint {size}");
                    assert!(
                        expires <= bound && expires <= MAX_RESIZE_HINT,
                        "hint {expires}"
                    );
                }
                Item::Key(k) => {
                    let p = rdb::dump_payload(value_ref(&k.value), true);
                    if let Err(e) = rdb::parse_payload(&p, &lim) {
                        panic!("a value read from a file does not survive DUMP/RESTORE: {e}");
                    }
                }
                _ => {}
            }
            Ok(())
        });
});
