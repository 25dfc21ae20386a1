//! The `serve` binary as a child process of a test: started on a free port, stopped by a
//! signal or killed when the test ends (also when it fails).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:port`
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already exited: both fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary under test.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wewerewondering"))
}

/// `--no-rate-limits` when the binary has it: these tests drive the service from one address,
/// and the per-address write limits would refuse most of what they mean to store. (Checked,
/// not assumed, while the rate limits are new.)
fn without_rate_limits() -> &'static [&'static str] {
    static ARGS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    ARGS.get_or_init(|| {
        let help = binary().args(["serve", "--help"]).output().expect("run serve --help");
        if String::from_utf8_lossy(&help.stdout).contains("--no-rate-limits") {
            &["--no-rate-limits"]
        } else {
            &[]
        }
    })
}

/// Starts `serve --no-demo` on `db` through `command` (the binary itself, or a tracer
/// wrapping it) on a free port; the server's log goes to `log` when given.
pub fn start(command: Command, db: &Path, log: Option<&Path>) -> Server {
    start_with(command, db, log, &[])
}

/// [`start`] with more `serve` arguments.
pub fn start_with(mut command: Command, db: &Path, log: Option<&Path>, args: &[&str]) -> Server {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("create the server's log file")),
        None => Stdio::null(),
    };
    let mut child = command
        .args(["serve", "--no-demo", "--listen", "127.0.0.1:0", "--static", "/nonexistent", "--db"])
        .arg(db)
        .args(without_rate_limits())
        .args(args)
        .env("RUST_LOG", if log.is_some() { "info" } else { "error" })
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start the server binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let log = log.map(tail).unwrap_or_default();
                panic!("the server stopped before printing its address:\n{log}");
            }
        };
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.trim().to_owned();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

pub fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill").args([signal, &pid.to_string()]).status().expect("run kill");
    assert!(sent.success(), "kill {signal} {pid} failed");
}

/// Waits for the server to exit, for at most `limit` (then kills it and answers `None`).
pub async fn wait_exit(mut server: Server, limit: Duration) -> Option<ExitStatus> {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = server.child.try_wait().expect("poll the child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("wait for the server")
}

/// The pid of the process `parent` started (the server under a tracer).
pub fn child_of(parent: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for entry in std::fs::read_dir("/proc").expect("list processes").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // "pid (comm) state ppid ...": the command name may hold spaces, so split after it.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(parent) {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "process {parent} has no child");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last 60 lines of a log, to quote in a failure.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}
