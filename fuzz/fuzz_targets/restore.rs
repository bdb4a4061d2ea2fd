//! Feeds arbitrary bytes to RESTORE's payload decoder. Most inputs get a valid trailer (RDB version and
//! CRC64) computed here, so the fuzzer spends its time in the value decoder rather than on the checksum.
//! A payload that decodes must survive a round trip: DUMP of the value loads again, with the same content.
#![no_main]

use ferrodis::keyspace::entry::ValueRef;
use ferrodis::persist::rdb;
use ferrodis::types::{EncodingLimits, Value};
use libfuzzer_sys::fuzz_target;

fn value_ref(v: &Value) -> ValueRef<'_> {
    match v {
        Value::Str(s) => ValueRef::Str(s),
        other => ValueRef::Other(other),
    }
}

/// Encoding limits: Redis's defaults, or tiny ones so that small inputs reach the big encodings too.
fn limits(small: bool) -> EncodingLimits {
    let mut lim = EncodingLimits::default();
    if small {
        lim.hash_max_listpack_entries = 2;
        lim.hash_max_listpack_value = 4;
        lim.set_max_intset_entries = 2;
        lim.set_max_listpack_entries = 2;
        lim.set_max_listpack_value = 4;
        lim.zset_max_listpack_entries = 2;
        lim.zset_max_listpack_value = 4;
        lim.list_max_listpack_size = 2;
    }
    lim
}

fuzz_target!(|input: &[u8]| {
    // First byte: bits 0-1 the trailer (0: none, the input is the whole payload; 1: version 11;
    // 2: version 12; 3: version 10), bit 2 tiny encoding limits, bit 3 LZF compression on the re-dump.
    let Some((&mode, body)) = input.split_first() else {
        return;
    };
    let lim = limits(mode & 4 != 0);
    let mut payload = body.to_vec();
    if mode & 3 != 0 {
        let ver: u16 = [0, 11, 12, 10][(mode & 3) as usize];
        payload.extend_from_slice(&ver.to_le_bytes());
        let crc = rdb::crc64(&payload);
        payload.extend_from_slice(&crc.to_le_bytes());
    }
    let Ok(v) = rdb::parse_payload(&payload, &lim) else {
        return;
    };
    let compress = mode & 8 != 0;
    let again = rdb::dump_payload(value_ref(&v), compress);
    let v2 = match rdb::parse_payload(&again, &lim) {
        Ok(v2) => v2,
        Err(e) => panic!("a payload DUMP wrote does not load: {e}"),
    };
    assert_eq!(canonical(&v2, compress), canonical(&v, compress));
});

/// A value's content in a comparable form: its DUMP payload, except for hashes with field TTLs, whose
/// fields with equal TTLs may come out in either order (the content is what must survive).
fn canonical(v: &Value, compress: bool) -> Vec<u8> {
    match v {
        Value::Hash(h) if h.has_field_ttls() => {
            let mut fields: Vec<(Vec<u8>, Vec<u8>, Option<u64>)> = h
                .iter()
                .map(|(f, x)| (f.to_vec(), x.to_vec(), h.field_expire(f).flatten()))
                .collect();
            fields.sort();
            format!("{fields:?}").into_bytes()
        }
        _ => rdb::dump_payload(value_ref(v), compress),
    }
}
