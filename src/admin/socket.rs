//! The local admin socket, `<data>/admin.sock`: one command line in, the
//! outcome out. Only users who can open the data directory can reach it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::warn;

use super::{Command, Context, Outcome, Transport, execute};
use crate::shutdown::Shutdown;

/// The socket's file name inside the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";
/// Longest accepted command line.
const MAX_LINE: u64 = 4096;
/// Longest input a command reads after its line (a key, a password).
const MAX_INPUT: u64 = 16 * 1024;

/// Binds `<data_dir>/admin.sock` (mode 0600). Binding before the node
/// reports itself ready means an admin command sent right after never
/// finds the socket missing.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    let path = data_dir.join(ADMIN_SOCKET);
    // A stale socket from a crashed node would make bind fail.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves admin commands on a socket from [`bind`] until shutdown, then
/// removes it.
pub async fn serve(
    listener: UnixListener,
    data_dir: &Path,
    ctx: Context,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let path = data_dir.join(ADMIN_SOCKET);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!(error = %e, "admin socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, ctx).await {
                warn!(error = %e, "admin connection failed");
            }
        });
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Reads a command line (and, for a command that wants it, the input
/// after it up to the client's end of writing), runs it, and writes the
/// outcome.
async fn answer(stream: UnixStream, ctx: Context) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    (&mut reader).take(MAX_LINE).read_line(&mut line).await?;
    let outcome = match Command::parse(&line, Transport::Socket) {
        Ok(mut command) => {
            if command.wants_input() {
                let mut input = Vec::new();
                reader.take(MAX_INPUT).read_to_end(&mut input).await?;
                command.give_input(String::from_utf8_lossy(&input).into_owned());
            }
            execute(ctx, command).await
        }
        Err(e) => Outcome::failed(&e),
    };
    let status = if outcome.ok { "ok\n" } else { "error\n" };
    write.write_all(status.as_bytes()).await?;
    write.write_all(outcome.text.as_bytes()).await?;
    write.shutdown().await
}

/// Why the local client could not get an answer from the node.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(
        "cannot reach a running node at {}: {source}; start one (`makiatto dev` or `makiatto run`) with this data directory",
        .path.display()
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot send the command: {0}")]
    Send(#[source] std::io::Error),
    #[error("cannot read the node's answer: {0}")]
    Receive(#[source] std::io::Error),
}

/// Sends `line` to the node whose data directory is `data_dir`.
pub async fn call(data_dir: &Path, line: &str) -> Result<Outcome, CallError> {
    call_with_input(data_dir, line, None).await
}

/// [`call`], sending `input` after the line for a command that reads it
/// (a key, a password: what must not sit on a command line).
pub async fn call_with_input(
    data_dir: &Path,
    line: &str,
    input: Option<&[u8]>,
) -> Result<Outcome, CallError> {
    let path: PathBuf = data_dir.join(ADMIN_SOCKET);
    let mut stream = match UnixStream::connect(&path).await {
        Ok(stream) => stream,
        Err(source) => return Err(CallError::Connect { path, source }),
    };
    stream
        .write_all(format!("{}\n", line.replace('\n', " ")).as_bytes())
        .await
        .map_err(CallError::Send)?;
    if let Some(input) = input {
        stream.write_all(input).await.map_err(CallError::Send)?;
    }
    // The end of writing is the end of the input: a command that wants
    // input and got none fails at once instead of waiting.
    stream.shutdown().await.map_err(CallError::Send)?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .await
        .map_err(CallError::Receive)?;
    let (status, text) = reply.split_once('\n').unwrap_or((reply.as_str(), ""));
    Ok(Outcome {
        ok: status == "ok",
        text: text.to_string(),
    })
}
