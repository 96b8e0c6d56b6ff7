//! Installing a node on a host that passed the probe: the `makiatto`
//! system user, `/etc/makiatto` (root-owned, readable by the service), the
//! config, the GeoIP database, the systemd unit from the repository
//! (`packaging/makiatto.service`, the one every installation uses), then
//! `systemctl enable` and a start, or a restart when something it runs
//! changed. Each file is written only when its bytes differ, so a second
//! run changes nothing.

use super::login::Login;
use super::{MachineError, Step, paths};

/// The unit, as the repository holds it.
pub const UNIT: &str = include_str!("../../../packaging/makiatto.service");

/// Creates the service user and the config directory.
const USER_AND_DIRS: &str = "set -e
if ! id -u makiatto >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/makiatto --no-create-home --shell /usr/sbin/nologin makiatto
  echo created-user
fi
install -d -m 0750 -o root -g makiatto /etc/makiatto";

/// Turns systemd-resolved's stub listener off, keeping the host's own
/// lookups working through the resolver list resolved keeps.
const FREE_STUB: &str = "set -e
install -d /etc/systemd/resolved.conf.d
printf '[Resolve]\\nDNSStubListener=no\\n' > /etc/systemd/resolved.conf.d/makiatto.conf
ln -sf /run/systemd/resolve/resolv.conf /etc/resolv.conf
systemctl restart systemd-resolved";

/// What an install changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    /// Paths written (or the user created).
    pub changed: Vec<String>,
}

impl Changes {
    pub fn any(&self) -> bool {
        !self.changed.is_empty()
    }
}

fn failed(host: &str, step: Step, what: &str, why: String, fix: &str) -> MachineError {
    MachineError::new(host, step, format!("{what}: {why}"), fix)
}

fn run(
    host: &str,
    login: &Login,
    step: Step,
    what: &str,
    script: &str,
    input: Option<&[u8]>,
) -> Result<String, MachineError> {
    let ran = login.step(host, step, script, input)?;
    if ran.ok {
        Ok(ran.stdout)
    } else {
        Err(failed(
            host,
            step,
            what,
            ran.why(),
            "the login must be root (or passwordless sudo through MAKI_SSH_COMMAND); the message above names the failing command",
        ))
    }
}

/// Writes `bytes` to `path` (mode, group) unless it already holds them;
/// whether it wrote.
pub fn put_file(
    host: &str,
    login: &Login,
    path: &str,
    mode: &str,
    group: &str,
    bytes: &[u8],
) -> Result<bool, MachineError> {
    let script = format!(
        "set -e; f={path}; umask 077; cat > \"$f.new\"; if cmp -s \"$f.new\" \"$f\"; then rm -f \"$f.new\"; echo same; else chown root:{group} \"$f.new\"; chmod {mode} \"$f.new\"; mv -f \"$f.new\" \"$f\"; echo changed; fi"
    );
    let out = run(
        host,
        login,
        Step::Install,
        &format!("writing {path}"),
        &script,
        Some(bytes),
    )?;
    Ok(out.trim() == "changed")
}

/// What goes on the host before the node is configured.
pub struct Prepare<'a> {
    pub geoip: Option<&'a [u8]>,
    /// The binary was uploaded and waits at [`paths::UPLOAD`].
    pub new_binary: bool,
    pub free_stub: bool,
}

/// The user, the config directory, the binary, the GeoIP database (what
/// `makiatto locate` needs before node.toml can be written).
pub fn prepare(host: &str, login: &Login, what: &Prepare<'_>) -> Result<Changes, MachineError> {
    let mut changes = Changes::default();
    if what.free_stub {
        run(
            host,
            login,
            Step::Install,
            "turning systemd-resolved's stub listener off",
            FREE_STUB,
            None,
        )?;
        changes
            .changed
            .push("/etc/systemd/resolved.conf.d/makiatto.conf".into());
    }
    let out = run(
        host,
        login,
        Step::Install,
        "creating the makiatto user and /etc/makiatto",
        USER_AND_DIRS,
        None,
    )?;
    if out.contains("created-user") {
        changes.changed.push("user makiatto".into());
    }
    if what.new_binary {
        run(
            host,
            login,
            Step::Install,
            "moving the checked binary into place",
            super::upload::SWAP_IN,
            None,
        )?;
        changes.changed.push(paths::BINARY.into());
    }
    if let Some(db) = what.geoip
        && put_file(host, login, paths::GEOIP, "0640", "makiatto", db)?
    {
        changes.changed.push(paths::GEOIP.into());
    }
    Ok(changes)
}

/// Writes node.toml and the unit, checks the config, enables the service
/// and starts it, restarting it when anything in `changes` or here
/// changed.
pub fn configure(
    host: &str,
    login: &Login,
    node_toml: &str,
    mut changes: Changes,
) -> Result<Changes, MachineError> {
    if put_file(
        host,
        login,
        paths::CONFIG,
        "0640",
        "makiatto",
        node_toml.as_bytes(),
    )? {
        changes.changed.push(paths::CONFIG.into());
    }
    if put_file(host, login, paths::UNIT, "0644", "root", UNIT.as_bytes())? {
        changes.changed.push(paths::UNIT.into());
    }
    run(
        host,
        login,
        Step::Install,
        "checking node.toml (makiatto check-config)",
        "/usr/bin/makiatto check-config /etc/makiatto/node.toml >/dev/null",
        None,
    )?;
    let start = if changes.any() {
        "set -e; systemctl daemon-reload; systemctl enable --quiet makiatto; systemctl restart --no-block makiatto"
    } else {
        "set -e; systemctl enable --quiet makiatto; systemctl start --no-block makiatto"
    };
    run(
        host,
        login,
        Step::Start,
        "systemctl enable and start makiatto",
        start,
        None,
    )?;
    Ok(changes)
}
