//! `[cluster]` in `node.toml`: the one table for being in a cluster:
//! joining, the WireGuard mesh, and the mesh RPC of nodes without
//! WireGuard.
//!
//! A first node needs only `[cluster]`: its WireGuard key is made in the
//! data directory and it picks its own mesh addresses from the default
//! prefixes. A new node adds what `join-token` printed (`join`,
//! `join_token`) and is given its addresses by the node it joins through.
//!
//! The WireGuard fields used to live in a table of their own, `[mesh]`.
//! A file written that way still starts, with a warning naming the edit
//! that moves it to `[cluster]`; a file mixing both forms is refused with
//! the same edit, since which value wins would be a guess.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;

use super::ConfigError;
use super::address::socket_addr;
use super::diagnostic::Source;
use super::mesh::{MeshSettings, mesh};
use super::raw::{RawCluster, RawMesh};

/// `[cluster]`: joining, and the mesh RPC address outside WireGuard.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterSettings {
    /// Where the mesh RPC listens when this node runs no WireGuard device
    /// (a loopback test cluster); with WireGuard it listens on the mesh
    /// address and this is `None`, except in an old-form file that still
    /// names it.
    pub rpc_listen: Option<SocketAddr>,
    /// An existing node's address to join through (first start).
    pub join: Option<String>,
    /// The one-time token `join-token` printed on that node; read from
    /// `join_token_file` by [`super::NodeConfig::load`] when the token is kept
    /// out of node.toml.
    pub join_token: Option<String>,
    /// A file holding the token (a secret kept apart from node.toml, e.g. a
    /// systemd credential); relative to node.toml's directory once loaded.
    pub join_token_file: Option<PathBuf>,
}

/// What `[cluster]` (and an old `[mesh]`) make of a node.
#[derive(Debug, Default)]
pub(super) struct ClusterTables {
    /// `None`: the node is on its own.
    pub cluster: Option<ClusterSettings>,
    /// The WireGuard mesh; `None` for a node on its own or one with
    /// `rpc_listen`.
    pub mesh: Option<MeshSettings>,
    /// Old forms that still work, each naming the edit to the new one.
    pub deprecations: Vec<ConfigError>,
}

/// The WireGuard fields in the order node.toml.example lists them.
const WIREGUARD_FIELDS: [&str; 8] = [
    "interface",
    "listen_port",
    "endpoint",
    "prefix_v4",
    "prefix_v6",
    "address_v4",
    "address_v6",
    "rpc_port",
];

/// Checks `[cluster]` and the old `[mesh]`; `ipv4`/`ipv6` are the node's
/// public addresses (the default WireGuard endpoint).
pub(super) fn cluster_tables(
    src: Source<'_>,
    cluster: Option<&Spanned<RawCluster>>,
    old_mesh: Option<&Spanned<RawMesh>>,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
) -> Result<ClusterTables, ConfigError> {
    let cluster = cluster.map(Spanned::get_ref);
    if let Some(old) = old_mesh {
        return old_form(src, cluster, old.get_ref(), ipv4, ipv6);
    }
    let Some(raw) = cluster else {
        return Ok(ClusterTables::default());
    };
    let settings = join_settings(src, raw)?;
    let wireguard = raw.wireguard();
    let mesh = match &raw.rpc_listen {
        Some(listen) => {
            if let Some((field, span)) = set_fields(&wireguard).into_iter().next() {
                return Err(src.at(
                    span,
                    format!(
                        "cluster.{field} belongs to the WireGuard mesh, but cluster.rpc_listen (line {}) runs the mesh RPC without WireGuard; remove rpc_listen (a WireGuard node's RPC listens on its mesh address) or remove {field}",
                        src.line_of(&listen.span())
                    ),
                ));
            }
            None
        }
        None => Some(mesh(src, &wireguard, "cluster", ipv4, ipv6)?),
    };
    Ok(ClusterTables {
        cluster: Some(settings),
        mesh,
        deprecations: Vec::new(),
    })
}

/// A file with `[mesh]`, the old home of the WireGuard fields: it keeps
/// working, with a warning naming the edit, unless `[cluster]` also holds
/// WireGuard fields.
fn old_form(
    src: Source<'_>,
    cluster: Option<&RawCluster>,
    old: &RawMesh,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
) -> Result<ClusterTables, ConfigError> {
    let mut moved = set_fields(old);
    // In the order they are written, so the lines read as in the file.
    moved.sort_by_key(|(_, span)| span.start);
    let mesh_line = header_line(src.text, "mesh")
        .or_else(|| moved.first().map(|(_, span)| src.line_of(span)))
        .unwrap_or(0);
    let Some(raw) = cluster else {
        let settings = mesh(src, old, "mesh", ipv4, ipv6)?;
        return Ok(ClusterTables {
            cluster: Some(ClusterSettings::default()),
            mesh: Some(settings),
            deprecations: vec![warning(
                src,
                mesh_line,
                format!(
                    "[mesh] is now part of [cluster]; this file still starts, but rename the table: write [cluster] for [mesh] on line {mesh_line}"
                ),
            )],
        });
    };
    let cluster_line = header_line(src.text, "cluster");
    let at_cluster = cluster_line
        .map(|l| format!(" (line {l})"))
        .unwrap_or_default();
    let lines: Vec<String> = moved
        .iter()
        .map(|(field, span)| format!("\n    {field} = {}", src.slice(span)))
        .collect();
    let edit = if lines.is_empty() {
        format!("delete the [mesh] line ({mesh_line}): [cluster] alone runs the WireGuard mesh")
    } else {
        format!(
            "move these lines from [mesh] (line {mesh_line}) into [cluster]{at_cluster}, then delete the [mesh] line:{}",
            lines.concat()
        )
    };
    let new_fields = set_fields(&raw.wireguard());
    if let Some((field, span)) = new_fields.first() {
        let twice: Vec<String> = new_fields
            .iter()
            .filter_map(|(f, new_span)| {
                let (_, old_span) = moved.iter().find(|(m, _)| m == f)?;
                Some(format!(
                    "; {f} is in both (line {} in [mesh], line {} in [cluster]): keep one",
                    src.line_of(old_span),
                    src.line_of(new_span)
                ))
            })
            .collect();
        return Err(src.at(
            span.clone(),
            format!(
                "cluster.{field} is the new form of a [mesh] field, and this file still has [mesh] (line {mesh_line}): use one table; {edit}{}",
                twice.concat()
            ),
        ));
    }
    let mut settings = join_settings(src, raw)?;
    let mut message =
        format!("[mesh] and [cluster] are one table now; this file still starts, but {edit}");
    if let Some(listen) = &raw.rpc_listen {
        // As before: ignored once the WireGuard device runs.
        settings.rpc_listen = Some(socket_addr(
            src,
            listen,
            "cluster.rpc_listen",
            "127.0.0.1:7070",
        )?);
        message.push_str(&format!(
            "\nand delete cluster.rpc_listen (line {}): a WireGuard node's mesh RPC listens on its mesh address",
            src.line_of(&listen.span())
        ));
    }
    Ok(ClusterTables {
        cluster: Some(settings),
        mesh: Some(mesh(src, old, "mesh", ipv4, ipv6)?),
        deprecations: vec![warning(src, mesh_line, message)],
    })
}

/// The WireGuard fields `raw` sets, with the spans of their values.
fn set_fields(raw: &RawMesh) -> Vec<(&'static str, Range<usize>)> {
    let strings = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
    let numbers = |v: &Option<Spanned<i64>>| v.as_ref().map(Spanned::span);
    let spans = [
        strings(&raw.interface),
        numbers(&raw.listen_port),
        strings(&raw.endpoint),
        strings(&raw.prefix_v4),
        strings(&raw.prefix_v6),
        strings(&raw.address_v4),
        strings(&raw.address_v6),
        numbers(&raw.rpc_port),
    ];
    WIREGUARD_FIELDS
        .into_iter()
        .zip(spans)
        .filter_map(|(field, span)| Some((field, span?)))
        .collect()
}

/// The 1-based line of the `[table]` header, when it is written as one.
fn header_line(text: &str, table: &str) -> Option<usize> {
    let header = format!("[{table}]");
    text.lines()
        .position(|l| l.trim_start().starts_with(&header))
        .map(|i| i + 1)
}

/// A warning at the start of `line` (0: the file as a whole).
fn warning(src: Source<'_>, line: usize, message: String) -> ConfigError {
    ConfigError {
        file: src.file.to_string(),
        line,
        column: usize::from(line > 0),
        message,
    }
}

/// Checks the joining fields of `[cluster]` and `rpc_listen`.
fn join_settings(src: Source<'_>, raw: &RawCluster) -> Result<ClusterSettings, ConfigError> {
    let rpc_listen = match &raw.rpc_listen {
        Some(l) => Some(socket_addr(src, l, "cluster.rpc_listen", "127.0.0.1:7070")?),
        None => None,
    };
    let text = |v: &Option<Spanned<String>>, field: &str, fix: &str| match v {
        Some(t) if t.get_ref().trim().is_empty() => {
            Err(src.at(t.span(), format!("cluster.{field} is empty; {fix}")))
        }
        Some(t) => Ok(Some(t.get_ref().trim().to_string())),
        None => Ok(None),
    };
    let join = text(
        &raw.join,
        "join",
        "write the address `join-token` printed on an existing node, e.g. \"192.0.2.1:7070\", or remove it",
    )?;
    let join_token = text(
        &raw.join_token,
        "join_token",
        "paste what `ssh -p 2222 git@NODE join-token` printed, or remove it",
    )?;
    let join_token_file = text(
        &raw.join_token_file,
        "join_token_file",
        "write the path of a file holding the token, or remove it",
    )?
    .map(PathBuf::from);
    if let (Some(_), Some(file)) = (&join_token, &raw.join_token_file) {
        return Err(src.at(
            file.span(),
            "cluster.join_token and cluster.join_token_file both give the token; keep one",
        ));
    }
    if join.is_some() != (join_token.is_some() || join_token_file.is_some()) {
        let span = raw
            .join
            .as_ref()
            .or(raw.join_token.as_ref())
            .or(raw.join_token_file.as_ref())
            .map(|s| s.span());
        let message = "cluster.join and cluster.join_token (or join_token_file) go together: the address of a node and the token it printed";
        return Err(match span {
            Some(span) => src.at(span, message),
            None => src.whole(message),
        });
    }
    Ok(ClusterSettings {
        rpc_listen,
        join,
        join_token,
        join_token_file,
    })
}

/// Fills `cluster.join_token` from `join_token_file` (resolved against
/// `base`), so the token never has to be written into node.toml.
pub(super) fn read_join_token(
    file: &str,
    base: &Path,
    cluster: &mut ClusterSettings,
) -> Result<(), ConfigError> {
    let Some(path) = cluster.join_token_file.as_mut() else {
        return Ok(());
    };
    if path.is_relative() {
        *path = base.join(&*path);
    }
    let failed = |message: String| ConfigError {
        file: file.to_string(),
        line: 0,
        column: 0,
        message,
    };
    let text = std::fs::read_to_string(&*path).map_err(|e| {
        failed(format!(
            "cannot read cluster.join_token_file {}: {e}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(failed(format!(
            "cluster.join_token_file {} is empty; put the token `join-token` printed in it",
            path.display()
        )));
    }
    cluster.join_token = Some(token.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::NodeConfig;
    use crate::config::mesh::{DEFAULT_PREFIX_V4, DEFAULT_PREFIX_V6};

    fn parse(text: &str) -> NodeConfig {
        NodeConfig::parse("node.toml", text).unwrap_or_else(|e| panic!("expected a config: {e}"))
    }

    fn error(text: &str) -> String {
        match NodeConfig::parse("node.toml", text) {
            Ok(c) => panic!("expected an error, parsed: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn warnings(config: &NodeConfig) -> Vec<String> {
        config.deprecations.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn a_bare_cluster_table_is_a_first_node_with_wireguard() {
        let config = parse("name = \"london\"\nipv4 = \"192.0.2.1\"\n\n[cluster]\n");
        let mesh = config.mesh.as_ref().unwrap_or_else(|| panic!("no mesh"));
        assert_eq!(mesh.interface, "maki0");
        assert_eq!(mesh.endpoint.as_deref(), Some("192.0.2.1:51880"));
        // No addresses: the node picks its own from the prefixes at start.
        assert!(mesh.interface_addresses().is_empty());
        assert_eq!(
            (mesh.prefix_v4, mesh.prefix_v6),
            (DEFAULT_PREFIX_V4, DEFAULT_PREFIX_V6)
        );
        let cluster = config.cluster.unwrap_or_else(|| panic!("no cluster"));
        assert_eq!(cluster.join, None);
        assert_eq!(cluster.rpc_listen, None);
        assert!(config.deprecations.is_empty());
    }

    #[test]
    fn a_joining_node_writes_what_join_token_printed_and_nothing_else() {
        let config = parse(
            "name = \"tokyo\"\nipv4 = \"203.0.113.1\"\n\n[cluster]\njoin = \"192.0.2.1:7070\"\njoin_token = \"mkj_abc\"\n",
        );
        let cluster = config.cluster.unwrap_or_else(|| panic!("no cluster"));
        assert_eq!(cluster.join.as_deref(), Some("192.0.2.1:7070"));
        assert_eq!(cluster.join_token.as_deref(), Some("mkj_abc"));
        assert!(config.mesh.is_some(), "a joining node runs WireGuard");
        assert!(config.deprecations.is_empty());
    }

    #[test]
    fn the_wireguard_fields_live_in_cluster() {
        let config = parse(
            "name = \"a\"\n[cluster]\nprefix_v4 = \"198.51.100.0/24\"\nprefix_v6 = \"2001:db8:1::/64\"\naddress_v4 = \"198.51.100.7\"\nlisten_port = 5000\nrpc_port = 7000\n",
        );
        let mesh = config.mesh.unwrap_or_else(|| panic!("no mesh"));
        assert_eq!(
            mesh.address_v4.map(|a| a.to_string()).as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!((mesh.listen_port, mesh.rpc_port), (5000, 7000));
    }

    #[test]
    fn rpc_listen_runs_the_cluster_without_wireguard() {
        let config = parse("name = \"a\"\n[cluster]\nrpc_listen = \"127.0.0.1:0\"\n");
        assert_eq!(config.mesh, None);
        assert_eq!(
            config
                .cluster
                .and_then(|c| c.rpc_listen)
                .map(|a| a.to_string())
                .as_deref(),
            Some("127.0.0.1:0")
        );
        assert_eq!(
            error(
                "name = \"a\"\n[cluster]\nrpc_listen = \"127.0.0.1:0\"\naddress_v4 = \"10.88.0.1\"\n"
            ),
            "node.toml:4:14: cluster.address_v4 belongs to the WireGuard mesh, but cluster.rpc_listen (line 3) runs the mesh RPC without WireGuard; remove rpc_listen (a WireGuard node's RPC listens on its mesh address) or remove address_v4"
        );
    }

    #[test]
    fn an_old_mesh_table_alone_still_starts_and_says_to_rename_it() {
        let text = "name = \"a\"\nipv4 = \"192.0.2.1\"\n\n[mesh]\naddress_v4 = \"10.88.0.1\"\n";
        let config = parse(text);
        let mesh = config.mesh.as_ref().unwrap_or_else(|| panic!("no mesh"));
        assert_eq!(
            mesh.address_v4.map(|a| a.to_string()).as_deref(),
            Some("10.88.0.1")
        );
        assert!(config.cluster.is_some(), "an old [mesh] is a cluster");
        assert_eq!(
            warnings(&config),
            vec![
                "node.toml:4:1: [mesh] is now part of [cluster]; this file still starts, but rename the table: write [cluster] for [mesh] on line 4"
                    .to_string()
            ]
        );
        // The edit it names gives the same node.
        let renamed = parse(&text.replace("[mesh]", "[cluster]"));
        assert_eq!(renamed.mesh, config.mesh);
        assert_eq!(renamed.cluster, config.cluster);
        assert!(renamed.deprecations.is_empty());
    }

    #[test]
    fn old_mesh_and_cluster_tables_still_start_and_name_the_lines_to_move() {
        let text = "name = \"b\"\nipv4 = \"203.0.113.1\"\n\n[mesh]\nprefix_v4 = \"198.51.100.0/24\"\nlisten_port = 51881\n\n[dns]\n\n[cluster]\njoin = \"192.0.2.1:7070\"\njoin_token = \"mkj_x\"\n";
        let config = parse(text);
        let mesh = config.mesh.as_ref().unwrap_or_else(|| panic!("no mesh"));
        assert_eq!(mesh.listen_port, 51881);
        assert_eq!(
            config.cluster.as_ref().and_then(|c| c.join.as_deref()),
            Some("192.0.2.1:7070")
        );
        assert_eq!(
            warnings(&config),
            vec![
                "node.toml:4:1: [mesh] and [cluster] are one table now; this file still starts, but move these lines from [mesh] (line 4) into [cluster] (line 10), then delete the [mesh] line:\n    prefix_v4 = \"198.51.100.0/24\"\n    listen_port = 51881"
                    .to_string()
            ]
        );
        let edited = parse(
            "name = \"b\"\nipv4 = \"203.0.113.1\"\n\n[dns]\n\n[cluster]\njoin = \"192.0.2.1:7070\"\njoin_token = \"mkj_x\"\nprefix_v4 = \"198.51.100.0/24\"\nlisten_port = 51881\n",
        );
        assert_eq!((edited.mesh, edited.cluster), (config.mesh, config.cluster));
        assert!(edited.deprecations.is_empty());
    }

    #[test]
    fn the_warning_never_repeats_the_join_token() {
        let config = parse(
            "name = \"b\"\n[mesh]\n[cluster]\njoin = \"192.0.2.1:7070\"\njoin_token = \"mkj_secret\"\n",
        );
        let all = warnings(&config).concat();
        assert!(!all.contains("mkj_secret"), "{all}");
        assert!(
            all.contains("delete the [mesh] line (2): [cluster] alone runs the WireGuard mesh"),
            "{all}"
        );
    }

    #[test]
    fn an_old_rpc_listen_beside_mesh_is_named_for_deletion() {
        let config = parse(
            "name = \"a\"\n[mesh]\naddress_v4 = \"10.88.0.1\"\n[cluster]\nrpc_listen = \"192.0.2.1:7070\"\n",
        );
        assert!(config.mesh.is_some());
        let all = warnings(&config).concat();
        assert!(
            all.ends_with("and delete cluster.rpc_listen (line 5): a WireGuard node's mesh RPC listens on its mesh address"),
            "{all}"
        );
    }

    #[test]
    fn mixing_the_old_and_new_forms_is_refused_with_the_edit() {
        assert_eq!(
            error(
                "name = \"a\"\n[mesh]\nprefix_v4 = \"198.51.100.0/24\"\naddress_v4 = \"198.51.100.1\"\n[cluster]\nprefix_v4 = \"203.0.113.0/24\"\n"
            ),
            "node.toml:6:13: cluster.prefix_v4 is the new form of a [mesh] field, and this file still has [mesh] (line 2): use one table; move these lines from [mesh] (line 2) into [cluster] (line 5), then delete the [mesh] line:\n    prefix_v4 = \"198.51.100.0/24\"\n    address_v4 = \"198.51.100.1\"; prefix_v4 is in both (line 3 in [mesh], line 6 in [cluster]): keep one"
        );
        assert!(
            error("name = \"a\"\n[mesh]\n[cluster]\ninterface = \"wg1\"\n")
                .starts_with("node.toml:4:13: cluster.interface is the new form of a [mesh] field")
        );
    }
}
