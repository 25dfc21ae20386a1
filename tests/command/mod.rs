//! The `wewerewondering` binary run as an operator would: arguments, optional standard
//! input, and its whole output once it exits.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The binary with `args`, its standard output and error captured.
fn binary(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wewerewondering"));
    command.args(args).env("RUST_LOG", "error").stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

pub fn bin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = binary(args).stdin(Stdio::piped()).spawn().expect("run the binary");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(input) = stdin {
        pipe.write_all(input).expect("write stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("the binary finishes")
}

/// The binary run with nobody reading its standard output (as `… | head -0` would leave it):
/// the read end is closed before it writes anything. Its standard error and status.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn bin_unread(args: &[&str]) -> Output {
    let mut child = binary(args).stdin(Stdio::null()).spawn().expect("run the binary");
    drop(child.stdout.take());
    child.wait_with_output().expect("the binary finishes")
}
