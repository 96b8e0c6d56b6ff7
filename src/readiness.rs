//! Readiness for the service manager: systemd's notification protocol.
//!
//! The unit in `packaging/makiatto.service` is `Type=notify`, so systemd
//! (and `systemctl start`, and whatever waits on it, such as `maki machine`
//! or a NixOS test) counts the node as started only once it says so here:
//! after every listener is bound, never at fork. The protocol is one
//! datagram of `KEY=VALUE` lines to the unix socket named by
//! `$NOTIFY_SOCKET` (a path, or an abstract name when it starts with `@`).
//! Without that variable, as under a shell or a test, nothing is sent.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::net::UnixDatagram;

/// The environment variable systemd sets for a `Type=notify` service.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `$NOTIFY_SOCKET` names neither a path nor an abstract socket.
    #[error("NOTIFY_SOCKET {0:?} is neither an absolute path nor an abstract name (@...)")]
    Address(OsString),
    /// The socket could not be created or the datagram not delivered.
    #[error("cannot notify the service manager at {socket:?}: {source}")]
    Send {
        socket: OsString,
        #[source]
        source: io::Error,
    },
}

/// Tells the service manager the node is serving, with a one-line status.
/// Returns whether a manager was listening (`$NOTIFY_SOCKET` set).
pub fn ready(status: &str) -> Result<bool, NotifyError> {
    send(&format!("READY=1\nSTATUS={}\n", one_line(status)))
}

/// Tells the service manager the node is shutting down.
pub fn stopping() -> Result<bool, NotifyError> {
    send("STOPPING=1\nSTATUS=shutting down\n")
}

/// Sends `state` to the socket `$NOTIFY_SOCKET` names; `Ok(false)` when it
/// is unset (no service manager waits for this process).
pub fn send(state: &str) -> Result<bool, NotifyError> {
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(socket) if !socket.is_empty() => send_to(&socket, state).map(|()| true),
        _ => Ok(false),
    }
}

/// Sends `state` as one datagram to `socket`, in `$NOTIFY_SOCKET`'s syntax.
pub fn send_to(socket: &OsStr, state: &str) -> Result<(), NotifyError> {
    let failed = |source| NotifyError::Send {
        socket: socket.to_owned(),
        source,
    };
    let sender = UnixDatagram::unbound().map_err(failed)?;
    let bytes = socket.as_encoded_bytes();
    match bytes.first() {
        Some(b'/') => sender.send_to(state.as_bytes(), socket).map_err(failed)?,
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            let address =
                std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..]).map_err(failed)?;
            sender
                .send_to_addr(state.as_bytes(), &address)
                .map_err(failed)?
        }
        _ => return Err(NotifyError::Address(socket.to_owned())),
    };
    Ok(())
}

/// A status fits on one line: a newline would start another assignment.
fn one_line(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(socket: &UnixDatagram) -> String {
        let mut buffer = [0u8; 512];
        let n = socket.recv(&mut buffer).expect("a datagram arrives");
        String::from_utf8_lossy(&buffer[..n]).into_owned()
    }

    #[test]
    fn readiness_reaches_a_socket_named_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1\nSTATUS=serving\n").unwrap();
        assert_eq!(received(&manager), "READY=1\nSTATUS=serving\n");
    }

    #[test]
    fn readiness_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("makiatto-notify-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let manager = UnixDatagram::bind_addr(&address).unwrap();
        send_to(OsStr::new(&format!("@{name}")), "STOPPING=1\n").unwrap();
        assert_eq!(received(&manager), "STOPPING=1\n");
    }

    #[test]
    fn a_relative_or_missing_socket_is_an_error_naming_it() {
        let error = send_to(OsStr::new("notify.sock"), "READY=1\n").unwrap_err();
        assert!(matches!(error, NotifyError::Address(_)), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let error = send_to(gone.as_os_str(), "READY=1\n").unwrap_err();
        assert!(error.to_string().contains("gone"), "{error}");
    }

    #[test]
    fn a_status_stays_on_one_line() {
        assert_eq!(
            one_line("http 0.0.0.0:80\ndns :53"),
            "http 0.0.0.0:80 dns :53"
        );
    }
}
