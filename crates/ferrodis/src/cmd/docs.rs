//! COMMAND DOCS: turns a command's redis.io-style syntax string into the argument tree Redis reports.
