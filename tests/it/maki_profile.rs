//! Cluster profiles: `maki` finds the cluster without flags, through the
//! real `maki` binary and the real `ssh` to running nodes. `--profile`
//! picks another cluster, unreachable nodes are passed over, and `--node`
//! and `MAKI_NODE` still win.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::git::Client;
use crate::support::pebble::free_port;
use crate::support::{CmdOutput, Node, maki_bin, run_command, temp_dir, write_file};

/// A dev node serving `domain`, authorising `client`'s key.
fn node_serving(client: &Client, domain: &str) -> Node {
    let dir = temp_dir();
    let site = dir.path().join("site");
    write_file(&site, "public/index.html", domain);
    write_file(
        &site,
        "makiatto.toml",
        format!("[[domain]]\nname = \"{domain}\"\npath = \"public\"\n"),
    );
    Node::start_dev(
        &site,
        dir,
        &[
            OsStr::new("--authorized-key"),
            client.public_key.as_os_str(),
        ],
    )
}

/// `maki ARGS` as an operator whose config directory is `config`, with
/// neither MAKI_NODE nor MAKI_PROFILE set unless `env` sets them.
fn maki(client: &Client, config: &Path, args: &[&str], env: &[(&str, &str)]) -> CmdOutput {
    let mut command = Command::new(maki_bin());
    command
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env("HOME", config)
        .env_remove("MAKI_NODE")
        .env_remove("MAKI_PROFILE")
        .env("MAKI_SSH_COMMAND", client.ssh_command())
        .envs(env.iter().copied());
    run_command(command, Duration::from_secs(60))
}

fn endpoint(node: &Node) -> String {
    format!("git@127.0.0.1:{}", node.ssh_port())
}

#[test]
fn maki_finds_the_cluster_from_its_profile_and_flags_still_win() {
    let client = Client::new();
    let london = node_serving(&client, "london.example");
    let tokyo = node_serving(&client, "tokyo.example");
    let config = temp_dir();
    let config = config.path();

    // No profile yet: the error says where it belongs and how to go on.
    let none = maki(&client, config, &["status"], &[]);
    assert!(!none.success(), "{}", none.describe());
    assert!(
        none.stderr.contains("no cluster profile")
            && none.stderr.contains("maki/clusters/default.toml")
            && none.stderr.contains("--node"),
        "{}",
        none.describe()
    );

    // The default profile, then a plain `maki status`.
    let added = maki(
        &client,
        config,
        &["profile", "add", "london", &endpoint(&london)],
        &[],
    );
    assert!(added.success(), "{}", added.describe());
    assert!(config.join("maki/clusters/default.toml").is_file());
    let status = maki(&client, config, &["status"], &[]);
    assert!(status.success(), "{}", status.describe());
    assert!(
        status.stdout.contains("london.example"),
        "{}",
        status.describe()
    );

    // A second cluster under its own name.
    let added = maki(
        &client,
        config,
        &[
            "--profile",
            "asia",
            "profile",
            "add",
            "tokyo",
            &endpoint(&tokyo),
        ],
        &[],
    );
    assert!(added.success(), "{}", added.describe());
    let status = maki(&client, config, &["status", "--profile", "asia"], &[]);
    assert!(
        status.stdout.contains("tokyo.example"),
        "{}",
        status.describe()
    );
    let status = maki(&client, config, &["status"], &[("MAKI_PROFILE", "asia")]);
    assert!(
        status.stdout.contains("tokyo.example"),
        "{}",
        status.describe()
    );

    // A node that does not answer is passed over, and the operator told.
    let gone = format!("git@{}", free_port());
    for (name, admin) in [("gone", gone.as_str()), ("tokyo", &endpoint(&tokyo))] {
        let out = maki(
            &client,
            config,
            &["--profile", "fallback", "profile", "add", name, admin],
            &[],
        );
        assert!(out.success(), "{}", out.describe());
    }
    let status = maki(&client, config, &["--profile", "fallback", "status"], &[]);
    assert!(status.success(), "{}", status.describe());
    assert!(
        status.stdout.contains("tokyo.example"),
        "{}",
        status.describe()
    );
    assert!(
        status.stderr.contains(&format!("{gone} did not answer")),
        "{}",
        status.describe()
    );

    // MAKI_NODE beats the profile; --node beats MAKI_NODE.
    let tokyo_env = [("MAKI_NODE", endpoint(&tokyo))];
    let tokyo_env: Vec<(&str, &str)> = tokyo_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let status = maki(&client, config, &["status"], &tokyo_env);
    assert!(
        status.stdout.contains("tokyo.example"),
        "{}",
        status.describe()
    );
    let status = maki(
        &client,
        config,
        &["status", "--node", &endpoint(&london)],
        &tokyo_env,
    );
    assert!(
        status.stdout.contains("london.example"),
        "{}",
        status.describe()
    );

    // The profile reads back, and a node can be taken out of it.
    let show = maki(&client, config, &["profile", "show"], &[]);
    assert!(
        show.stdout
            .contains(&format!("london  {}", endpoint(&london))),
        "{}",
        show.describe()
    );
    let removed = maki(&client, config, &["profile", "remove", "london"], &[]);
    assert!(removed.success(), "{}", removed.describe());
    let empty = maki(&client, config, &["status"], &[]);
    assert!(
        !empty.success() && empty.stderr.contains("lists no nodes"),
        "{}",
        empty.describe()
    );

    // A profile edited into something invalid is named, with the problem.
    write_file(
        config,
        "maki/clusters/broken.toml",
        "[[node]]\nname = \"x\"\nadmn = \"h\"\n",
    );
    let broken = maki(&client, config, &["status", "--profile", "broken"], &[]);
    assert!(
        !broken.success()
            && broken.stderr.contains("broken.toml")
            && broken.stderr.contains("admn"),
        "{}",
        broken.describe()
    );
    let missing = maki(&client, config, &["status", "--profile", "nope"], &[]);
    assert!(
        !missing.success() && missing.stderr.contains("nope.toml"),
        "{}",
        missing.describe()
    );

    // Before profiles, one line in <config>/maki/node named the node; with
    // no profile it still does.
    let legacy = temp_dir();
    write_file(
        legacy.path(),
        "maki/node",
        format!("{}\n", endpoint(&tokyo)),
    );
    let status = maki(&client, legacy.path(), &["status"], &[]);
    assert!(
        status.stdout.contains("tokyo.example"),
        "{}",
        status.describe()
    );
}
