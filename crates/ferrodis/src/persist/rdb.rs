//! The RDB format.
