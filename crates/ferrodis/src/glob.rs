//! Glob-style pattern matching with Redis's stringmatch semantics (KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE).
