//! `makiatto run`: a production node from its node.toml, and the operator
//! CLI's `maki init`.

use std::process::Command;

use crate::support::{CmdOutput, Node, run_command, temp_dir, write_file, write_tree};

/// Writes a node.toml for a node with its data inside `dir`, HTTP on an
/// ephemeral loopback port.
fn node_toml(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("node.toml");
    write_file(
        dir,
        "node.toml",
        "name = \"edge-1\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
    );
    config
}

#[test]
fn run_serves_deployed_sites_and_explains_unknown_hosts() {
    let dir = temp_dir();
    let config = node_toml(dir.path());
    let data = dir.path().join("data");
    let node = Node::start_run(&config, dir, data);

    // Before any deploy every host is unknown: no fallback outside dev mode.
    let empty = node.get("/");
    assert_eq!(empty.status, 404, "{}", empty.describe());

    let site = temp_dir();
    write_tree(
        site.path(),
        &[
            (
                "makiatto.toml",
                "[[domain]]\nname = \"shop.example\"\naliases = [\"www.shop.example\"]\n",
            ),
            ("index.html", "<h1>shop</h1>"),
        ],
    );
    node.deploy(site.path());

    let served = node.get_with("/", &[("host", "www.shop.example")]);
    assert_eq!(served.status, 200, "{}", served.describe());
    assert_eq!(served.text(), "<h1>shop</h1>");

    let unknown = node.get_with("/", &[("host", "other.example")]);
    assert_eq!(unknown.status, 404, "{}", unknown.describe());
    assert_eq!(unknown.header("server"), Some("makiatto"));
    assert!(
        unknown
            .text()
            .contains("No site is configured for host \"other.example\""),
        "{}",
        unknown.describe()
    );
    assert!(
        !unknown.text().contains("shop"),
        "an unknown host must not see another site: {}",
        unknown.describe()
    );
}

#[test]
fn run_refuses_a_broken_node_toml_and_says_where() {
    let dir = temp_dir();
    write_file(
        dir.path(),
        "node.toml",
        "name = \"edge-1\"\ndata_dir = \"data\"\nkeep_revison = 3\n",
    );
    let mut command = Command::new(crate::support::makiatto_bin());
    command
        .arg("run")
        .arg("--config")
        .arg(dir.path().join("node.toml"));
    let out: CmdOutput = run_command(command, std::time::Duration::from_secs(30));
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains(
            "node.toml:3:1: unknown field \"keep_revison\", did you mean \"keep_revisions\"?"
        ),
        "{}",
        out.describe()
    );
    assert!(
        !dir.path().join("data").exists(),
        "a refused config must not create the data directory"
    );
}

#[test]
fn maki_init_writes_a_starter_site_that_serves() {
    let dir = temp_dir();
    let target = dir.path().join("my-site");
    let mut init = Command::new(crate::support::maki_bin());
    init.arg("init").arg(&target);
    let out = run_command(init, std::time::Duration::from_secs(30));
    assert!(out.success(), "{}", out.describe());
    assert!(target.join("makiatto.toml").is_file());

    let node = Node::start(&target);
    let home = node.get("/");
    assert_eq!(home.status, 200, "{}", home.describe());
    assert!(home.text().contains("<html"), "{}", home.describe());
    let css = node.get("/assets/style.css");
    assert_eq!(
        css.header("cache-control"),
        Some("public, max-age=31536000, immutable"),
        "{}",
        css.describe()
    );
    let missing = node.get("/no-such-page");
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("<html"),
        "the template's 404 page: {}",
        missing.describe()
    );

    let mut again = Command::new(crate::support::maki_bin());
    again.arg("init").arg(&target);
    let refused = run_command(again, std::time::Duration::from_secs(30));
    assert!(!refused.success(), "{}", refused.describe());
    assert!(
        refused.stderr.contains("already exists"),
        "{}",
        refused.describe()
    );
}

#[test]
fn dev_stops_cleanly_on_ctrl_c_and_removes_its_admin_socket() {
    let site = temp_dir();
    write_file(site.path(), "index.html", "hello\n");
    let mut node = Node::start(site.path());
    assert!(node.data.join("admin.sock").exists());
    let status = node
        .signal_and_wait("INT", std::time::Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "makiatto dev still running 10 s after SIGINT:\n{}",
                node.stderr()
            )
        });
    assert!(
        status.success(),
        "exit status {status} after SIGINT:\n{}",
        node.stderr()
    );
    assert!(
        !node.data.join("admin.sock").exists(),
        "the admin socket outlived the node"
    );
    assert!(
        std::net::TcpStream::connect(node.addr).is_err(),
        "the HTTP port still accepts connections after shutdown"
    );
}
