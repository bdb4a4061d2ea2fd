//! The server as a process: config file and flags, fatal config errors, unix socket, signals, threads.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ask<S: Read + Write>(s: &mut S, req: &[u8], expect: usize) -> Vec<u8> {
    s.write_all(req).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < expect {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ferrodis-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn bad_config_file_names_file_and_line() {
    let dir = tmpdir("badconf");
    let conf = dir.join("bad.conf");
    std::fs::write(&conf, "# comment\nport 7000\nnot-a-directive 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FATAL CONFIG FILE ERROR"), "{err}");
    assert!(err.contains("at line 3"), "{err}");
    assert!(err.contains("'not-a-directive 1'"), "{err}");
    assert!(err.contains("bad.conf"), "{err}");
    // Flags are checked the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args(["--port", "notanumber"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn config_file_plus_flags_unix_socket_and_sigterm() {
    let dir = tmpdir("unix");
    let sock = dir.join("ferrodis.sock");
    let port = free_port();
    let conf = dir.join("ferrodis.conf");
    std::fs::write(
        &conf,
        format!(
            "port 1\nbind 127.0.0.1\nunixsocket {}\nunixsocketperm 700\nthreads 2\n",
            sock.display()
        ),
    )
    .unwrap();
    // A flag after the file overrides the file's port.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .arg(&conf)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_port(port);
    // The listeners start one after the other: the TCP port being up does not mean the socket file is there.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut u = loop {
        match UnixStream::connect(&sock) {
            Ok(u) => break u,
            Err(e) if Instant::now() > deadline => panic!("unix socket {}: {e}", sock.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ask(&mut u, b"SET viaunix 1\r\n", 5), b"+OK\r\n");
    let mut t = TcpStream::connect(("127.0.0.1", port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ask(&mut t, b"GET viaunix\r\n", 7), b"$1\r\n1\r\n");
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    let mut log = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("Received SIGTERM"), "{log}");
    assert!(!sock.exists(), "unix socket file left behind");
}

#[test]
fn port_in_use_fails_cleanly() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("Could not create server TCP listening socket"),
        "{log}"
    );
}

#[test]
fn second_server_on_the_same_port_is_refused() {
    let port = free_port();
    let mut first = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--threads",
            "2",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    // SO_REUSEPORT must not let a second server share the port.
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Address already in use"));
}
