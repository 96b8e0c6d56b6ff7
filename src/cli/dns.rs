//! `maki dns setup [<domain>] --config node.toml`: the registrar steps for
//! the cluster's domains. Until the SSH admin channel exists it reads a
//! node's config and state directly on that node.

use std::path::Path;

use crate::config::NodeConfig;
use crate::store::Store;

/// Why the steps could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "no domain given and none is deployed on this node; name one: maki dns setup example.com"
    )]
    NoDomain,
}

/// The registrar steps for `domain`, or for every domain the node serves.
pub fn setup(config_path: &Path, domain: Option<&str>) -> Result<String, SetupError> {
    let config = NodeConfig::load(config_path)?;
    let state = config.data_dir.join("state.sqlite");
    let (nodes, deployed) = if state.is_file() {
        let store = Store::open(&state, &config.place.name)?;
        let mut nodes = store.nodes()?;
        if nodes.is_empty() {
            nodes = crate::node::configured_nodes(&config);
        }
        let domains: Vec<String> = store
            .active_revisions()?
            .into_iter()
            .map(|r| r.domain)
            .collect();
        (nodes, domains)
    } else {
        (crate::node::configured_nodes(&config), Vec::new())
    };
    let domains: Vec<String> = match domain {
        Some(d) => vec![d.to_string()],
        None if deployed.is_empty() => return Err(SetupError::NoDomain),
        None => deployed,
    };
    Ok(domains
        .iter()
        .map(|d| crate::dns::setup::registrar_steps(d, &nodes))
        .collect::<Vec<_>>()
        .join("\n"))
}
