//! Runs the sandbox and watches it: its stdout and stderr, merged in the
//! order they were written, go line by line to the caller as they come
//! (the pusher sees them live) and into the log, up to the log's cap; a
//! build past its deadline is killed, and with it its whole PID namespace.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest line passed on; longer ones are cut (a minified file printed by
/// mistake must not become one giant message).
const MAX_LINE: usize = 4096;

/// How a sandboxed command ended.
#[derive(Debug)]
pub enum Ending {
    /// It exited (or was killed by a signal other than ours).
    Exited(ExitStatus),
    /// It ran past its deadline and was killed.
    TimedOut,
}

/// What the run left: how it ended and its kept log lines.
#[derive(Debug)]
pub struct Run {
    pub ending: Ending,
    pub log: Vec<String>,
    /// Whether lines were dropped past the log's cap.
    pub truncated: bool,
}

/// Spawns `command` and streams its output to `on_line` until it ends or
/// `timeout` passes; keeps at most `max_log_bytes` of log.
pub fn run(
    mut command: Command,
    timeout: Duration,
    max_log_bytes: usize,
    on_line: &mut dyn FnMut(&str),
) -> std::io::Result<Run> {
    let (reader, writer) = std::io::pipe()?;
    command.stdin(std::process::Stdio::null());
    command.stdout(writer.try_clone()?);
    command.stderr(writer);
    let mut child = command.spawn()?;
    // The command holds the pipe's write ends: drop it, or the reader
    // never sees the end of the output.
    drop(command);

    let (tx, lines) = mpsc::sync_channel::<String>(256);
    let reading = std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        buf.pop();
                    }
                    buf.truncate(MAX_LINE);
                    if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let deadline = Instant::now() + timeout;
    let mut log = Vec::new();
    let mut log_bytes = 0usize;
    let mut truncated = false;
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if log_bytes + line.len() + 1 > max_log_bytes {
                    truncated = true;
                    continue;
                }
                log_bytes += line.len() + 1;
                on_line(&line);
                log.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                // bwrap's --die-with-parent takes the sandbox's first
                // process, and so its whole PID namespace, down with it.
                let _ = child.kill();
                break;
            }
        }
    }
    // A build may close its output and go on running: the deadline still
    // holds until it exits.
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if timed_out {
        // The pipe closes once the namespace is gone; what was still
        // buffered is not wanted.
        drop(lines);
    }
    let _ = reading.join();
    Ok(Run {
        ending: if timed_out {
            Ending::TimedOut
        } else {
            Ending::Exited(status)
        },
        log,
        truncated,
    })
}
