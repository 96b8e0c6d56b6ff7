//! The Nix packaging, checked offline with Debian's `nix-instantiate`:
//! every `.nix` file parses, and the NixOS module evaluated by the real
//! Nixpkgs module system (`nix/tests/eval.nix`, cases in
//! `nix/tests/cases.nix`) installs the repository's systemd unit unchanged,
//! opens exactly the ports its settings use, refuses impossible
//! configurations with a message naming the fix, and hands the TOML
//! generator settings the real `makiatto check-config` accepts.
//!
//! Not run here: building the package and the NixOS VM test
//! (`nix/tests/cluster.nix`); they need Nix with a Nixpkgs checkout and KVM.
//!
//! The Nixpkgs lib comes from `$NIXPKGS_LIB`, else `../shared/nixpkgs-lib/lib`
//! beside the repository, else `<nixpkgs/lib>`. Self-contained: no shared
//! test harness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const MAKIATTO: &str = env!("CARGO_BIN_EXE_makiatto");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A Nix expression for the Nixpkgs lib to evaluate the module with.
fn nixpkgs_lib() -> String {
    if let Some(dir) = std::env::var_os("NIXPKGS_LIB").filter(|d| !d.is_empty()) {
        return format!("import {}", PathBuf::from(dir).display());
    }
    let beside = repo().join("../shared/nixpkgs-lib/lib");
    match beside.canonicalize() {
        Ok(dir) => format!("import {}", dir.display()),
        Err(_) => "import <nixpkgs/lib>".to_string(),
    }
}

/// Runs `nix-instantiate` with no store (evaluation only, no daemon, as any
/// user): nothing evaluated here writes to a store.
fn nix_instantiate(args: &[&str]) -> Output {
    Command::new("nix-instantiate")
        .args(["--store", "dummy://"])
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run nix-instantiate ({e}); install Debian's nix-bin (scripts/test does)")
        })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The result of evaluating the module for one case of nix/tests/cases.nix.
fn evaluate(case: &str) -> Value {
    let lib = nixpkgs_lib();
    let out = nix_instantiate(&[
        "--eval",
        "--strict",
        "--json",
        "nix/tests/eval.nix",
        "--arg",
        "lib",
        &lib,
        "--argstr",
        "case",
        case,
    ]);
    assert!(
        out.status.success(),
        "evaluating case {case} with {lib}: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("case {case}: not JSON ({e}): {}", text(&out.stdout)))
}

/// One section of packaging/makiatto.service: key to values (a key may
/// repeat), as systemd reads it.
fn unit_section(section: &str) -> BTreeMap<String, Vec<String>> {
    let unit = std::fs::read_to_string(repo().join("packaging/makiatto.service"))
        .unwrap_or_else(|e| panic!("read the unit: {e}"));
    let mut current = String::new();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
        } else if current == section {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("unit line without '=': {line}"));
            keys.entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
    }
    keys
}

/// A unit setting as the module's JSON shows it: one string, or a list for
/// a repeated key.
fn as_values(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(as_values).collect(),
        other => vec![other.to_string()],
    }
}

/// Checks the module's `systemd.services.makiatto` against the unit file:
/// every [Service] setting equal (ExecStart differing only in the binary's
/// store path), nothing else added but `extra`, and the [Unit]/[Install]
/// ordering.
fn assert_same_unit(evaluated: &Value, extra: &[&str]) {
    let service = &evaluated["service"];
    let config = service["serviceConfig"]
        .as_object()
        .unwrap_or_else(|| panic!("no serviceConfig in {service}"));
    let unit = unit_section("Service");
    for (key, values) in &unit {
        let made = config.get(key).map(as_values).unwrap_or_else(|| {
            panic!("the module's unit lacks {key}= of packaging/makiatto.service")
        });
        if key == "ExecStart" {
            let expected = values[0].replace(
                "/usr/bin/",
                "/nix/store/00000000000000000000000000000000-makiatto/bin/",
            );
            assert_eq!(made, vec![expected], "ExecStart");
        } else {
            assert_eq!(
                &made, values,
                "{key}= differs from packaging/makiatto.service"
            );
        }
    }
    for key in config.keys() {
        assert!(
            unit.contains_key(key) || extra.contains(&key.as_str()),
            "the module sets {key}= which packaging/makiatto.service does not"
        );
    }
    let unit_part = unit_section("Unit");
    assert_eq!(service["description"], unit_part["Description"][0].as_str());
    assert_eq!(as_values(&service["after"]), unit_part["After"]);
    assert_eq!(as_values(&service["wants"]), unit_part["Wants"]);
    assert_eq!(
        as_values(&service["wantedBy"]),
        unit_section("Install")["WantedBy"]
    );
    // The hardening that matters most, named so a reader sees it checked.
    for (key, value) in [
        ("Type", "notify"),
        ("User", "makiatto"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE CAP_NET_ADMIN"),
        (
            "CapabilityBoundingSet",
            "CAP_NET_BIND_SERVICE CAP_NET_ADMIN",
        ),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("StateDirectory", "makiatto"),
        ("DeviceAllow", "/dev/net/tun rw"),
    ] {
        assert_eq!(config[key], value, "{key}");
    }
}

fn ports(firewall: &Value, key: &str) -> Vec<u64> {
    let mut ports: Vec<u64> = firewall[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {firewall}"))
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    ports.sort_unstable();
    ports
}

/// Writes the settings the module gave its TOML generator as node.toml and
/// runs the real `makiatto check-config` on it.
fn check_rendered(settings: &Value, dir: &Path) -> String {
    check_rendered_with_warnings(settings, dir).0
}

/// Like [`check_rendered`], with what check-config said on stderr (its
/// warnings).
fn check_rendered_with_warnings(settings: &Value, dir: &Path) -> (String, String) {
    let toml =
        toml::to_string(settings).unwrap_or_else(|e| panic!("settings {settings} as TOML: {e}"));
    let file = dir.join("node.toml");
    std::fs::write(&file, &toml).unwrap_or_else(|e| panic!("write node.toml: {e}"));
    let out = Command::new(MAKIATTO)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("run makiatto check-config: {e}"));
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("OK "),
        "makiatto check-config refused the rendered node.toml:\n{toml}\n{}",
        text(&out.stderr)
    );
    (stdout, text(&out.stderr))
}

#[test]
fn every_nix_file_parses() {
    let mut files = Vec::new();
    let mut dirs = vec![repo().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("read_dir: {e}")).path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() && !name.starts_with('.') && name != "target" {
                dirs.push(path);
            } else if name.ends_with(".nix") {
                files.push(path);
            }
        }
    }
    files.sort();
    for expected in [
        "flake.nix",
        "nix/package.nix",
        "nix/module.nix",
        "nix/unit.nix",
        "nix/tests/cluster.nix",
        "nix/tests/eval.nix",
        "nix/tests/cases.nix",
    ] {
        assert!(
            files.contains(&repo().join(expected)),
            "{expected} is missing"
        );
    }
    for file in &files {
        let out = nix_instantiate(&["--parse", &file.display().to_string()]);
        assert!(
            out.status.success(),
            "{} does not parse: {}",
            file.display(),
            text(&out.stderr)
        );
    }
}

#[test]
fn a_minimal_node_runs_the_repository_unit_and_opens_http_and_ssh() {
    let minimal = evaluate("minimal");
    assert_eq!(minimal["failed"], Value::Array(vec![]), "{minimal}");
    assert_same_unit(&minimal, &[]);
    assert_eq!(ports(&minimal["firewall"], "allowedTCPPorts"), [80, 2222]);
    assert_eq!(
        ports(&minimal["firewall"], "allowedUDPPorts"),
        [] as [u64; 0]
    );
    assert_eq!(minimal["users"]["users"]["makiatto"]["isSystemUser"], true);
    assert_eq!(minimal["users"]["users"]["makiatto"]["group"], "makiatto");

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let summary = check_rendered(&minimal["nodeToml"], dir.path());
    assert!(summary.contains("  node solo\n"), "{summary}");
    assert!(summary.contains("  data /var/lib/makiatto\n"), "{summary}");
    assert!(summary.contains("  ssh 0.0.0.0:2222"), "{summary}");
}

#[test]
fn a_full_node_gets_its_token_as_a_credential_and_opens_every_port_it_uses() {
    let full = evaluate("full");
    assert_eq!(full["failed"], Value::Array(vec![]), "{full}");
    assert_same_unit(&full, &["LoadCredential"]);
    let config = &full["service"]["serviceConfig"];
    assert_eq!(
        config["LoadCredential"],
        "join_token:/run/keys/makiatto-join-token"
    );
    assert_eq!(
        full["service"]["path"],
        serde_json::json!(["/nix/store/00000000000000000000000000000000-zola"]),
        "buildPackages are on the service's PATH"
    );
    // HTTP, HTTPS, DNS, DoT, SSH, and the mesh's join listener; DNS and
    // WireGuard over UDP; the mesh RPC on the WireGuard interface.
    assert_eq!(
        ports(&full["firewall"], "allowedTCPPorts"),
        [53, 80, 443, 853, 2222, 7070]
    );
    assert_eq!(ports(&full["firewall"], "allowedUDPPorts"), [53, 51880]);
    assert_eq!(
        ports(&full["firewall"]["interfaces"]["maki0"], "allowedTCPPorts"),
        [7070]
    );
    assert_eq!(
        full["resolved"]["settings"]["Resolve"]["DNSStubListener"], false,
        "the resolved stub listener is turned off"
    );
    assert_eq!(
        full["resolvConf"]["source"],
        "/run/systemd/resolve/resolv.conf"
    );

    let mut settings = full["nodeToml"].clone();
    let node = &settings;
    assert_eq!(
        node["cluster"]["join_token_file"],
        "/run/credentials/makiatto.service/join_token"
    );
    assert!(
        node["cluster"].get("join_token").is_none(),
        "no token in node.toml"
    );
    assert_eq!(
        node["ssh"]["authorized_keys"].as_array().map(Vec::len),
        Some(1)
    );

    // The credential exists only inside the running unit: check-config reads
    // the token file, so point it at one made here.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let token = dir.path().join("join_token");
    std::fs::write(&token, "mkj_test\n").unwrap_or_else(|e| panic!("write token: {e}"));
    settings["cluster"]["join_token_file"] = Value::String(token.display().to_string());
    let summary = check_rendered(&settings, dir.path());
    for line in [
        "  node tokyo\n",
        "  https 0.0.0.0:443 (certificates from https://acme-staging-v02.api.letsencrypt.org/directory)\n",
        "  dns 0.0.0.0:53 (udp+tcp)\n",
        "  dot 0.0.0.0:853",
        "  wireguard maki0 udp 51880 (mesh rpc port 7070)\n",
        "  mesh addresses assigned when it joins\n",
        "  joins the cluster through 198.51.100.1:7070\n",
    ] {
        assert!(summary.contains(line), "missing {line:?} in\n{summary}");
    }
}

#[test]
fn a_first_node_needs_only_an_empty_cluster_table() {
    let first = evaluate("firstNode");
    assert_eq!(first["failed"], Value::Array(vec![]), "{first}");
    assert_eq!(first["warnings"], Value::Array(vec![]), "{first}");
    assert_eq!(first["nodeToml"]["cluster"], serde_json::json!({}));
    // The join listener on the public address, WireGuard, and the mesh RPC
    // on the WireGuard interface.
    assert_eq!(
        ports(&first["firewall"], "allowedTCPPorts"),
        [80, 2222, 7070]
    );
    assert_eq!(ports(&first["firewall"], "allowedUDPPorts"), [51880]);
    assert_eq!(
        ports(&first["firewall"]["interfaces"]["maki0"], "allowedTCPPorts"),
        [7070]
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (summary, warnings) = check_rendered_with_warnings(&first["nodeToml"], dir.path());
    assert!(
        summary.contains("  wireguard maki0 udp 51880 (mesh rpc port 7070)\n")
            && summary.contains(
                "  mesh addresses picked from 10.88.0.0/16 and fd6d:616b:6961::/64 (the first node of a cluster)\n"
            ),
        "{summary}"
    );
    assert_eq!(warnings, "");
}

#[test]
fn an_old_mesh_table_still_evaluates_and_starts_with_a_warning() {
    let old = evaluate("oldMesh");
    assert_eq!(old["failed"], Value::Array(vec![]), "{old}");
    let warned: Vec<&str> = old["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        warned.len() == 1 && warned[0].contains("move its fields into settings.cluster"),
        "{warned:?}"
    );
    assert_eq!(ports(&old["firewall"], "allowedUDPPorts"), [51881]);
    assert_eq!(
        ports(&old["firewall"]["interfaces"]["maki0"], "allowedTCPPorts"),
        [7070]
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (summary, warnings) = check_rendered_with_warnings(&old["nodeToml"], dir.path());
    assert!(
        summary.contains("  mesh addresses 10.88.0.1\n"),
        "{summary}"
    );
    assert!(
        warnings.contains("[mesh] and [cluster] are one table now")
            && warnings.contains("address_v4 = \"10.88.0.1\""),
        "{warnings}"
    );
}

#[test]
fn refused_configurations_fail_with_a_message_naming_the_fix() {
    for case in ["refusedInlineToken", "refusedResolvedStub"] {
        let refused = evaluate(case);
        let wanted = refused["refusedWith"]
            .as_str()
            .unwrap_or_else(|| panic!("{case} names its message"));
        let messages: Vec<String> = refused["failed"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|m| m.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            messages.iter().any(|m| m.contains(wanted)),
            "{case}: no assertion says {wanted:?}: {messages:?}"
        );
        assert!(
            messages.iter().all(|m| m.starts_with("services.makiatto.")),
            "{case}: every message names the option: {messages:?}"
        );
        assert!(refused.get("service").is_none(), "{case} is not built");
    }
}
