//! The UAPI socket, `/var/run/wireguard/<interface>.sock`: the cross-platform
//! WireGuard configuration protocol, so `wg show` and `wg set` from
//! wireguard-tools work against the node like against any WireGuard device.
//!
//! gotatun parses and applies the protocol; this file owns the socket: it
//! refuses to take over a socket another live process serves, bounds the
//! number of connections and how long each may sit idle, stops accepting on
//! shutdown and removes the socket file.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gotatun::device::uapi::UapiClient;
use tokio::net::UnixListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::WireGuardError;

/// Where wireguard-tools look for userspace devices' sockets.
pub const SOCKET_DIR: &str = "/var/run/wireguard";

/// Concurrent UAPI connections; `wg` opens one per command.
const MAX_CONNECTIONS: usize = 16;

/// How long a connection may wait for its next line before it is closed,
/// so a client that never finishes cannot hold a slot for ever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listening socket; dropping it stops accepting and removes the file.
pub struct UapiSocket {
    path: PathBuf,
    accept: JoinHandle<()>,
}

/// The socket path for `interface`.
pub fn socket_path(interface: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{interface}.sock"))
}

/// Binds the socket for `interface` and serves each connection through
/// `client` (requests are applied by the device that owns the matching
/// server half).
pub fn serve(interface: &str, client: UapiClient) -> Result<UapiSocket, WireGuardError> {
    let path = socket_path(interface);
    let fail = |reason: String| WireGuardError::Uapi {
        interface: interface.to_string(),
        path: path.clone(),
        reason,
    };
    std::fs::create_dir_all(SOCKET_DIR)
        .map_err(|e| fail(format!("cannot create {SOCKET_DIR}: {e}")))?;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(fail(
                "another process is serving this interface's socket; stop it or choose another [cluster] interface".into(),
            ));
        }
        // Left behind by a process that was killed: nobody answers on it.
        std::fs::remove_file(&path)
            .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
    }
    let listener = UnixListener::bind(&path).map_err(|e| fail(format!("cannot bind: {e}")))?;
    // The protocol can read and replace the private key: root only.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(format!("cannot restrict its mode to 0600: {e}")))?;
    let interface = interface.to_string();
    let accept = tokio::spawn(accept_loop(interface, listener, client));
    Ok(UapiSocket { path, accept })
}

async fn accept_loop(interface: String, listener: UnixListener, client: UapiClient) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!(interface = %interface, error = %e, "uapi accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            warn!(interface = %interface, limit = MAX_CONNECTIONS, "too many uapi connections; closing one");
            continue;
        };
        let stream = match blocking(stream) {
            Ok(s) => s,
            Err(e) => {
                warn!(interface = %interface, error = %e, "uapi connection set-up failed");
                continue;
            }
        };
        debug!(interface = %interface, "uapi connection");
        // gotatun speaks the protocol on a thread of its own; the permit
        // travels with the stream and is released when the thread ends.
        client.clone().wrap_read_write(Connection {
            stream,
            _slot: permit,
        });
    }
}

fn blocking(stream: tokio::net::UnixStream) -> std::io::Result<std::os::unix::net::UnixStream> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    Ok(stream)
}

/// One client connection and the slot it occupies.
struct Connection {
    stream: std::os::unix::net::UnixStream,
    _slot: OwnedSemaphorePermit,
}

impl Read for &Connection {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&self.stream).read(buf)
    }
}

impl Write for &Connection {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&self.stream).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&self.stream).flush()
    }
}

impl UapiSocket {
    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UapiSocket {
    fn drop(&mut self) {
        self.accept.abort();
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(path = %self.path.display(), error = %e, "cannot remove the uapi socket");
        }
    }
}
