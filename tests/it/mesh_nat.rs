//! Cloud hosts behind 1:1 NAT: a node whose public address is on no
//! interface of its own (the provider forwards it to a private address)
//! starts, joins through the seed's public address, and replicates, with
//! the other node reaching it only at its public address through a router
//! namespace doing DNAT and SNAT (nftables).

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use crate::support::cluster::Cluster;
use crate::support::{run_command, temp_dir, write_file};

const LIMIT: Duration = Duration::from_secs(60);
const HOST: &str = "nat.example";
const SEED_PUBLIC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const NAT_PUBLIC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const NAT_PRIVATE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 130);

#[test]
fn a_node_behind_one_to_one_nat_starts_joins_and_serves_replicated_deploys() {
    let mut cluster = Cluster::new(2);
    cluster.add_address(0, &format!("{SEED_PUBLIC}/25"));
    cluster.behind_nat(1, NAT_PUBLIC, NAT_PRIVATE);
    let cluster = cluster.join_all(|c, i| {
        let public = [SEED_PUBLIC, NAT_PUBLIC][i];
        format!(
            "name = \"n{i}\"\ndata_dir = \"{}\"\nipv4 = \"{public}\"\n\n[http]\nlisten = \"0.0.0.0:80\"\n{}",
            c.data_dir(i).display(),
            c.cluster_table(i)
        )
    });
    // Its public address is not its interface's: the NAT is real.
    let addrs = cluster.exec_ok(1, &["ip", "-4", "-o", "addr"]).stdout;
    assert!(
        addrs.contains(&NAT_PRIVATE.to_string()) && !addrs.contains(&NAT_PUBLIC.to_string()),
        "{addrs}"
    );
    cluster.wait_for_handshakes(LIMIT);

    let site = temp_dir();
    write_file(
        site.path(),
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n"),
    );
    write_file(site.path(), "index.html", "through the NAT");
    let mut deploy = Command::new(crate::support::makiatto_bin());
    deploy
        .arg("deploy")
        .arg(site.path())
        .arg("--data")
        .arg(cluster.data_dir(0));
    let out = run_command(deploy, LIMIT);
    assert!(out.success(), "deploy: {}", out.describe());

    // The seed reaches the NATed node at its public address only.
    let url = format!("http://{NAT_PUBLIC}/");
    cluster.wait_for(
        "the node behind NAT serves the seed's deploy",
        LIMIT,
        || {
            let out = cluster.exec(
                0,
                &[
                    "curl",
                    "-s",
                    "-m",
                    "2",
                    "-H",
                    &format!("host: {HOST}"),
                    &url,
                ],
            );
            (out.stdout == "through the NAT").then_some(())
        },
    );
}
