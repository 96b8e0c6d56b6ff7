//! The SSH listener: public-key authentication against the store, one
//! `exec` per channel, and nothing else (no shell, pty, env, subsystems,
//! forwarding). Each exec runs the git protocol on a blocking thread
//! (`channel_io.rs`) or an admin command, then reports an exit status.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::keys::ssh_key::PrivateKey;
use russh::server::{
    Auth, ChannelOpenHandle, Config, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelMsg, ChannelWriteHalf, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

use super::channel_io::{ChannelReader, ChannelWriter, INPUT_QUEUE};
use super::exec::{self, Exec};
use super::ssh_limits::{SshGuard, TOO_MANY_CONNECTIONS};
use super::{GitService, keys, receive, upload};
use crate::admin;
use crate::config::SshLimits;
use crate::shutdown::Shutdown;

/// Channels one connection may have open at once.
const MAX_CHANNELS: usize = 4;
/// Largest stdin an admin command reads (a public key).
const MAX_ADMIN_INPUT: usize = 16 * 1024;

/// A bound SSH listener, not yet serving: connections wait in the
/// kernel's queue until [`SshEndpoint::serve`] answers them.
pub struct SshEndpoint {
    /// Where it is bound (the port may have been 0).
    pub addr: SocketAddr,
    listener: TcpListener,
    config: Arc<Config>,
    limits: SshLimits,
}

/// Binds `addr` with `host_key`, under `limits`.
pub async fn bind(
    addr: SocketAddr,
    host_key: PrivateKey,
    limits: SshLimits,
) -> std::io::Result<SshEndpoint> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let config = Config {
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        keys: vec![host_key],
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(limits.idle_timeout_secs)),
        // russh ends a connection past this with "Too many authentication
        // attempts"; `SshGuard` counts it.
        max_auth_attempts: limits.auth_attempts_per_connection as usize,
        nodelay: true,
        window_size: 8 * 1024 * 1024,
        ..Config::default()
    };
    Ok(SshEndpoint {
        addr,
        listener,
        config: Arc::new(config),
        limits,
    })
}

impl SshEndpoint {
    /// Accepts connections for `service` until `shutdown`, then
    /// disconnects them all.
    pub async fn serve(self, service: Arc<GitService>, mut shutdown: Shutdown) {
        let limit = Arc::new(Semaphore::new(self.limits.connections));
        let guard = SshGuard::new(self.limits.clone(), service.services.limited.clone());
        let mut sessions = JoinSet::new();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        warn!(error = %e, "ssh accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
                _ = shutdown.wait() => break,
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                warn!(%peer, "too many ssh connections; refusing one");
                guard.count_full();
                sessions.spawn(refuse_connection(stream, TOO_MANY_CONNECTIONS));
                continue;
            };
            let slot = match guard.admit(peer) {
                Ok(slot) => slot,
                Err(reason) => {
                    info!(%peer, reason = %String::from_utf8_lossy(reason).trim_end(), "ssh connection refused");
                    sessions.spawn(refuse_connection(stream, reason));
                    continue;
                }
            };
            let config = self.config.clone();
            let service = service.clone();
            let guard = guard.clone();
            let session_shutdown = shutdown.clone();
            sessions.spawn(
                async move {
                    let _held = (permit, slot);
                    connection(stream, peer, config, service, guard, session_shutdown).await;
                }
                .instrument(info_span!("ssh", %peer)),
            );
        }
        // Sessions saw the same signal and are disconnecting.
        while sessions.join_next().await.is_some() {}
    }
}

/// Tells a refused client why, before any SSH, and closes.
async fn refuse_connection(mut stream: TcpStream, reason: &'static [u8]) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(reason).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<Config>,
    service: Arc<GitService>,
    guard: Arc<SshGuard>,
    mut shutdown: Shutdown,
) {
    let handler = Connection {
        service,
        peer,
        guard,
        failed_attempts: 0,
        fingerprint: None,
        channels: HashMap::new(),
        tasks: JoinSet::new(),
    };
    let running = match russh::server::run_stream(config, stream, handler).await {
        Ok(running) => running,
        Err(e) => {
            warn!(%peer, error = %e, "ssh handshake failed");
            return;
        }
    };
    let handle = running.handle();
    tokio::select! {
        result = running => if let Err(e) = result {
            info!(%peer, error = %e, "ssh session ended");
        },
        _ = shutdown.wait() => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "node shutting down".into(), String::new())
                .await;
        }
    }
}

/// One SSH connection's state.
struct Connection {
    service: Arc<GitService>,
    peer: SocketAddr,
    /// The endpoint's client limits.
    guard: Arc<SshGuard>,
    /// Authentication attempts this connection had refused.
    failed_attempts: u32,
    /// The authenticated key, once there is one.
    fingerprint: Option<String>,
    /// Session channels opened but not yet running a command.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Running commands; dropped (and so aborted) with the connection.
    tasks: JoinSet<()>,
}

impl Connection {
    /// A refused authentication attempt: rejected while the client is
    /// within its limits, else the connection ends.
    fn refused(&mut self) -> Result<Auth, russh::Error> {
        self.failed_attempts += 1;
        if self.guard.failed(self.peer, self.failed_attempts)
            || self.failed_attempts >= self.guard.settings.auth_attempts_per_connection
        {
            // At the per-connection limit russh itself disconnects with
            // "Too many authentication attempts".
            Ok(Auth::reject())
        } else {
            info!(peer = %self.peer, "too many failed authentication attempts from this address; disconnecting");
            Err(russh::Error::Disconnect)
        }
    }

    fn authorised(&self, key: &russh::keys::ssh_key::PublicKey) -> bool {
        let fingerprint = keys::fingerprint(key);
        match self.service.services.store.key_authorised(&fingerprint) {
            Ok(known) => known,
            Err(e) => {
                warn!(error = %e, "cannot check a key; refusing it");
                false
            }
        }
    }
}

impl Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if keys::signature_algorithm_allowed(offer.algorithm) && self.authorised(offer.public_key) {
            Ok(Auth::Accept)
        } else {
            self.refused()
        }
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if keys::signature_algorithm_allowed(key.algorithm) && self.authorised(key.public_key) {
            let fingerprint = keys::fingerprint(key.public_key);
            info!(key = %fingerprint, "authenticated");
            self.fingerprint = Some(fingerprint);
            Ok(Auth::Accept)
        } else {
            info!(key = %keys::fingerprint(key.public_key), "unknown key refused");
            self.refused()
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() + self.tasks.len() >= MAX_CHANNELS {
            return Ok(()); // dropping `reply` refuses the channel
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(channel) = self.channels.remove(&id) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        session.channel_success(id)?;
        let line = String::from_utf8_lossy(data).into_owned();
        let request = exec::parse(&line);
        let service = self.service.clone();
        let span = info_span!("exec", key = self.fingerprint.as_deref().unwrap_or("?"));
        while self.tasks.try_join_next().is_some() {}
        self.tasks
            .spawn(run_exec(service, channel, request).instrument(span));
        Ok(())
    }

    async fn shell_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(id, session, "a shell")
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(id, session, "a subsystem")
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        id: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(id, session, "a terminal")
    }

    async fn x11_request(
        &mut self,
        id: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        refuse(id, session, "X11 forwarding")
    }

    async fn env_request(
        &mut self,
        id: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // git sends GIT_PROTOCOL here; without it the client speaks v0.
        refuse(id, session, "environment variables")
    }
}

fn refuse(id: ChannelId, session: &mut Session, what: &str) -> Result<(), russh::Error> {
    info!(what, "refused a channel request");
    session.channel_failure(id)
}

/// Runs one exec request to completion and reports its exit status.
async fn run_exec(
    service: Arc<GitService>,
    channel: Channel<Msg>,
    request: Result<Exec, exec::ExecError>,
) {
    let (mut read_half, write_half) = channel.split();
    let write_half = Arc::new(write_half);
    let code = match request {
        Err(e) => {
            info!(error = %e, "exec refused");
            stderr(&write_half, &format!("error: {e}\n")).await;
            128
        }
        Ok(Exec::Admin(line)) => admin_command(&service, &line, &mut read_half, &write_half).await,
        Ok(Exec::ReceivePack(name)) => {
            info!(repo = %name, "receive-pack");
            git_service(&service, name, true, read_half, &write_half).await
        }
        Ok(Exec::UploadPack(name)) => {
            info!(repo = %name, "upload-pack");
            git_service(&service, name, false, read_half, &write_half).await
        }
    };
    let _ = write_half.exit_status(code).await;
    let _ = write_half.eof().await;
    let _ = write_half.close().await;
}

async fn stderr(write_half: &ChannelWriteHalf<Msg>, text: &str) {
    let _ = write_half
        .extended_data_bytes(1, Bytes::copy_from_slice(text.as_bytes()))
        .await;
}

/// Runs receive-pack or upload-pack on a blocking thread, feeding it the
/// channel's input until the client's EOF.
async fn git_service(
    service: &Arc<GitService>,
    name: super::RepoName,
    receive: bool,
    mut read_half: russh::ChannelReadHalf,
    write_half: &Arc<ChannelWriteHalf<Msg>>,
) -> u32 {
    let (tx, rx) = mpsc::channel::<Bytes>(INPUT_QUEUE);
    let runtime = tokio::runtime::Handle::current();
    let writer_half = write_half.clone();
    let svc = service.clone();
    let mut work = tokio::task::spawn_blocking(move || {
        let mut input = ChannelReader::new(rx);
        let mut output = ChannelWriter::new(writer_half, runtime, None);
        if receive {
            receive::serve(&svc, &name, &mut input, &mut output)
        } else {
            upload::serve(&svc, &name, &mut input, &mut output)
        }
    });
    let pump = async move {
        while let Some(msg) = read_half.wait().await {
            let sent = match msg {
                ChannelMsg::Data { data } => tx.send(data).await.is_ok(),
                ChannelMsg::Eof | ChannelMsg::Close => false,
                _ => true,
            };
            if !sent {
                break;
            }
        }
    };
    let finished = tokio::select! {
        result = &mut work => Some(result),
        _ = pump => None,
    };
    let result = match finished {
        Some(result) => result,
        None => work.await,
    };
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            warn!(error = %e, "git session failed");
            stderr(write_half, &format!("error: {e}\n")).await;
            1
        }
        Err(e) => {
            warn!(error = %e, "git session task failed");
            stderr(write_half, "error: internal error\n").await;
            1
        }
    }
}

/// Runs an admin command; one that wants input (`keys add` without an
/// inline key) gets the channel's data up to EOF.
async fn admin_command(
    service: &Arc<GitService>,
    line: &str,
    read_half: &mut russh::ChannelReadHalf,
    write_half: &ChannelWriteHalf<Msg>,
) -> u32 {
    let mut command = match admin::Command::parse(line, admin::Transport::Ssh) {
        Ok(command) => command,
        Err(e) => {
            stderr(write_half, &admin::Outcome::failed(&e).text).await;
            return 1;
        }
    };
    if command.wants_input() {
        let mut input = Vec::new();
        while let Some(msg) = read_half.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    input.extend_from_slice(&data);
                    if input.len() > MAX_ADMIN_INPUT {
                        break;
                    }
                }
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => {}
            }
        }
        command.give_input(String::from_utf8_lossy(&input).into_owned());
    }
    let ctx = admin::Context::new(service.services.clone());
    let outcome = admin::execute(ctx, command).await;
    if outcome.ok {
        let _ = write_half
            .data_bytes(Bytes::from(outcome.text.into_bytes()))
            .await;
        0
    } else {
        stderr(write_half, &outcome.text).await;
        1
    }
}
