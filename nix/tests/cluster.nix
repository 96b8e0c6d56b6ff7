# A NixOS VM test: three nodes deployed with services.makiatto form one
# cluster over the WireGuard mesh (the first picks its own mesh address, the
# other two join with a one-time token handed over as a file), a client
# pushes one site to the first node, and every node then serves it over
# HTTP and answers for its domain in DNS.
#
# Needs Nix with KVM: `nix build .#checks.x86_64-linux.cluster` (or
# `nix flake check`). It exercises what the offline evaluation tests cannot:
# the real package, the real TOML generator, the hardened unit under
# systemd (Type=notify readiness, capabilities, the credential), and the
# firewall the module opens.
{ self }:
{ lib, pkgs, ... }:
let
  sshKeys = import "${pkgs.path}/nixos/tests/ssh-keys.nix" pkgs;
  address = n: "192.168.1.${toString n}";
  # Coordinates only make answers deterministic; the client has no GeoIP.
  places = {
    "1" = {
      latitude = 51.51;
      longitude = -0.13;
    };
    "2" = {
      latitude = 35.68;
      longitude = 139.69;
    };
    "3" = {
      latitude = 38.03;
      longitude = -78.48;
    };
  };
  tokenFile = "/run/keys/makiatto-join-token";

  node =
    n:
    { ... }:
    {
      imports = [ self.nixosModules.default ];
      virtualisation.vlans = [ 1 ];
      networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
        {
          address = address n;
          prefixLength = 24;
        }
      ];
      services.makiatto = {
        enable = true;
        openFirewall = true;
        authorizedKeys = [ sshKeys.snakeOilPublicKey ];
        settings = {
          name = "node${toString n}";
          ipv4 = address n;
          dns = { };
          cluster = lib.optionalAttrs (n != 1) { join = "${address 1}:7070"; };
        }
        // places.${toString n};
        joinTokenFile = if n == 1 then null else tokenFile;
      };
      # The joining nodes start once the test has handed them a token.
      systemd.services.makiatto.wantedBy = lib.mkIf (n != 1) (lib.mkForce [ ]);
    };
in
{
  name = "makiatto-cluster";

  nodes = {
    node1 = node 1;
    node2 = node 2;
    node3 = node 3;
    client =
      { ... }:
      {
        virtualisation.vlans = [ 1 ];
        networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
          {
            address = address 9;
            prefixLength = 24;
          }
        ];
        environment.systemPackages = [
          pkgs.git
          pkgs.openssh
          pkgs.dig
          pkgs.curl
        ];
      };
  };

  testScript = ''
    import shlex

    nodes = [node1, node2, node3]
    addresses = ["${address 1}", "${address 2}", "${address 3}"]

    start_all()

    with subtest("the first node comes up under its hardened unit"):
        node1.wait_for_unit("makiatto.service")
        node1.wait_for_open_port(2222)
        node1.succeed("makiatto check-config /etc/makiatto/node.toml")
        show = node1.succeed("systemctl show makiatto -p Type -p NoNewPrivileges -p ProtectSystem -p AmbientCapabilities")
        assert "Type=notify" in show, show
        assert "NoNewPrivileges=yes" in show, show
        assert "ProtectSystem=strict" in show, show
        assert "cap_net_admin" in show.lower(), show

    with subtest("two nodes join with one-time tokens from files"):
        for machine in [node2, node3]:
            token = node1.succeed("makiatto join-token --data /var/lib/makiatto").splitlines()[0].strip()
            machine.succeed("install -d -m 0700 /run/keys")
            machine.succeed(f"install -m 0600 /dev/null ${tokenFile} && echo {shlex.quote(token)} > ${tokenFile}")
            machine.succeed("systemctl start makiatto.service")
            machine.wait_for_unit("makiatto.service")
        # The token never reaches the Nix store or node.toml.
        node2.fail("grep -r mkj_ /etc/makiatto/node.toml")
        node1.wait_until_succeeds("makiatto status --data /var/lib/makiatto | grep -q node3", timeout=120)

    with subtest("one push reaches every node"):
        client.succeed(
            "install -d -m 0700 /root/.ssh",
            "install -m 0600 ${sshKeys.snakeOilPrivateKey} /root/.ssh/id_ecdsa",
            "mkdir -p /tmp/site/public",
            "printf '[[domain]]\\nname = \"example.com\"\\npath = \"public\"\\n' > /tmp/site/makiatto.toml",
            "echo 'served by the cluster' > /tmp/site/public/index.html",
            "git -C /tmp/site init -b main",
            "git -C /tmp/site add .",
            "git -C /tmp/site -c user.name=t -c user.email=t@example.com commit -m site",
        )
        client.succeed(
            "GIT_SSH_COMMAND='ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null' "
            "git -C /tmp/site push ssh://git@${address 1}:2222/site.git main"
        )
        for addr in addresses:
            client.wait_until_succeeds(
                f"curl -sf -H 'Host: example.com' http://{addr}/ | grep -q 'served by the cluster'",
                timeout=120,
            )

    with subtest("every node answers for the domain in DNS"):
        for addr in addresses:
            answer = client.wait_until_succeeds(
                f"dig +short +norecurse @{addr} example.com A | grep .", timeout=60
            )
            for line in answer.split():
                assert line in addresses, f"{addr} answered {answer!r}"
            client.succeed(f"dig @{addr} example.com SOA | grep -q 'status: NOERROR'")
  '';
}
