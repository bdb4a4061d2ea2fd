//! RESP2/RESP3 request parser and reply encoder for Ferrodis.
//!
//! This crate knows nothing about sockets, locks or data types. It turns the bytes a client sent into
//! argument slices ([`RequestParser`], [`Args`]) with Redis 7's parsing rules and error strings, and
//! encodes replies ([`Reply`]) in RESP2 or RESP3.

mod args;
pub mod num;
mod parser;
mod reply;

pub use args::{Args, ArgsIter};
pub use num::{format_double, parse_f64, parse_i64};
pub use parser::{Limits, ProtocolError, RequestParser};
pub use reply::Reply;
