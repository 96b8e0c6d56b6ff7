# services.makiatto: a Makiatto CDN node on NixOS.
#
# The node reads /etc/makiatto/node.toml, rendered from `settings` (see
# node.toml.example in the repository for every field), and runs under the
# repository's own systemd unit, packaging/makiatto.service: its [Service]
# settings are read from that file (nix/unit.nix), so the hardening here is
# the same as on any other distribution, and tests/it/nix.rs checks it.
# Secrets never enter the Nix store: the join token is handed to the unit as
# a systemd credential (LoadCredential) and node.toml names only its path.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    optional
    optionalAttrs
    types
    ;

  cfg = config.services.makiatto;
  settingsFormat = pkgs.formats.toml { };
  unit = import ./unit.nix { inherit lib; };

  # The unit's own config path: the module installs node.toml there, so
  # ExecStart differs from the unit file's only in the binary's store path.
  configPath = "/etc/makiatto/node.toml";
  stateDir = "/var/lib/${unit.Service.StateDirectory}";
  # Where systemd puts LoadCredential files for this unit.
  credentialDir = "/run/credentials/makiatto.service";

  # A listener's address, "HOST:PORT" or "[V6]:PORT", as node.toml takes it.
  listenOption =
    default: description:
    mkOption {
      type = types.strMatching ".+:[0-9]+";
      inherit default description;
    };
  optionalStr =
    description:
    mkOption {
      type = types.nullOr types.str;
      default = null;
      inherit description;
    };
  # A table that exists only when set: `settings.dns = { };` turns DNS on
  # with its defaults, leaving it unset keeps the table out of node.toml.
  optionalTable =
    description: tableOptions:
    mkOption {
      type = types.nullOr (
        types.submodule {
          freeformType = settingsFormat.type;
          options = tableOptions;
        }
      );
      default = null;
      inherit description;
    };

  # Port of "HOST:PORT" / "[V6]:PORT".
  portOf = address: lib.toInt (lib.last (lib.splitString ":" address));
  # Loopback listeners need no firewall opening.
  isLoopback =
    address: lib.hasPrefix "127." address || lib.hasPrefix "[::1]" address || lib.hasPrefix "localhost" address;
  publicPort = address: optional (!isLoopback address) (portOf address);

  s = cfg.settings;
  dnsOn = s.dns != null;
  # DNS over TLS: tls_listen when given, else port 853 on the DNS address,
  # opened by the node once a certificate covers it, unless tls = false.
  dotPorts =
    if !dnsOn then
      [ ]
    else if s.dns.tls_listen != null then
      publicPort s.dns.tls_listen
    else if s.dns.tls == false then
      [ ]
    else
      publicPort "${lib.head (lib.splitString ":" s.dns.listen)}:853";
  # The WireGuard mesh runs with [cluster] unless it names rpc_listen. An
  # old `settings.mesh` table (the WireGuard fields before they moved into
  # [cluster]) still works: rendered as written, the node starts with a
  # warning, and so does this module.
  oldMesh = s.mesh or null;
  meshOn = oldMesh != null || (s.cluster != null && s.cluster.rpc_listen == null);
  wireguardTable = if oldMesh != null then oldMesh else s.cluster;
  wireguardField =
    field: default:
    if wireguardTable != null && (wireguardTable.${field} or null) != null then
      wireguardTable.${field}
    else
      default;
  meshInterface = wireguardField "interface" "maki0";
  meshListenPort = wireguardField "listen_port" 51880;
  meshRpcPort = wireguardField "rpc_port" 7070;

  tcpPorts =
    publicPort s.http.listen
    ++ lib.optionals (s.https != null) (publicPort s.https.listen)
    ++ lib.optionals dnsOn (publicPort s.dns.listen)
    ++ dotPorts
    ++ lib.optionals (s.ssh != null) (publicPort s.ssh.listen)
    ++ lib.optionals (s.cluster != null && s.cluster.rpc_listen != null) (
      publicPort s.cluster.rpc_listen
    )
    # A WireGuard node answers joins (token-checked, nothing else) on its
    # public address at the mesh RPC port.
    ++ lib.optional (meshOn && (s.ipv4 != null || s.ipv6 != null)) meshRpcPort;
  udpPorts = lib.optionals dnsOn (publicPort s.dns.listen) ++ lib.optional meshOn meshListenPort;

  # What goes to node.toml: the settings less unset (null) options, with the
  # join token's credential path and the module's authorised keys.
  rendered = lib.filterAttrsRecursive (_: value: value != null) (
    lib.recursiveUpdate s (
      optionalAttrs (cfg.joinTokenFile != null) {
        cluster.join_token_file = "${credentialDir}/join_token";
      }
      // optionalAttrs (s.ssh != null) {
        ssh.authorized_keys = s.ssh.authorized_keys ++ cfg.authorizedKeys;
      }
    )
  );
  configFile = settingsFormat.generate "node.toml" rendered;

  # systemd-resolved's stub listener holds 127.0.0.53:53 and 127.0.0.54:53,
  # which a DNS listener on a wildcard address at port 53 collides with.
  dnsOnWildcard53 =
    dnsOn
    && portOf s.dns.listen == 53
    && builtins.elem (lib.head (lib.splitString ":" s.dns.listen)) [
      "0.0.0.0"
      "["
      ""
    ];
  resolvedEnabled = config.services.resolved.enable or false;
  resolvedStubOn = resolvedEnabled && !cfg.disableResolvedStubListener;
in
{
  options.services.makiatto = {
    enable = mkEnableOption "the Makiatto CDN node (git push, HTTP/HTTPS, GeoDNS, WireGuard mesh)";

    package = mkPackageOption pkgs "makiatto" { };

    settings = mkOption {
      description = ''
        The node's node.toml, rendered as TOML. Every field the node accepts
        may be set (see node.toml.example in the repository); the common
        ones are typed and documented here. The node refuses unknown
        fields, and `makiatto check-config /etc/makiatto/node.toml` checks
        the rendered file.
      '';
      default = { };
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          name = mkOption {
            type = types.nullOr (types.strMatching "[a-z0-9-]{1,63}");
            default = null;
            example = "london";
            description = "This node's name, unique in the cluster; it becomes `<name>.ns.<domain>`. Required.";
          };
          data_dir = mkOption {
            type = types.str;
            default = stateDir;
            description = "Where state, objects, repositories and revisions live: the unit's StateDirectory.";
          };
          ipv4 = optionalStr "This node's public IPv4 address, given out in DNS answers.";
          ipv6 = optionalStr "This node's public IPv6 address, given out in DNS answers.";
          latitude = mkOption {
            type = types.nullOr types.float;
            default = null;
            description = "Latitude in decimal degrees, for sending visitors to the nearest node.";
          };
          longitude = mkOption {
            type = types.nullOr types.float;
            default = null;
            description = "Longitude in decimal degrees.";
          };
          http = mkOption {
            default = { };
            description = "`[http]`: the HTTP listener (always on).";
            type = types.submodule {
              freeformType = settingsFormat.type;
              options.listen = listenOption "0.0.0.0:80" "Address and port of the HTTP server.";
            };
          };
          https = optionalTable "`[https]`: HTTPS with certificates by ACME DNS-01; unset serves HTTP only." {
            listen = listenOption "0.0.0.0:443" "Address and port of the HTTPS server.";
          };
          acme = optionalTable "`[acme]`: the certificate authority; unset with HTTPS on means Let's Encrypt." {
            directory = optionalStr "The CA's ACME directory URL (https).";
            contact = optionalStr "Where the CA sends expiry and policy notices.";
          };
          dns = optionalTable "`[dns]`: the authoritative GeoDNS server; unset runs none." {
            listen = listenOption "0.0.0.0:53" "Address and port of the DNS server (UDP and TCP).";
            geoip_db = optionalStr "An MMDB city database (GeoLite2-City, DB-IP City Lite) locating clients.";
            tls_listen = optionalStr "Where DNS over TLS listens; default port 853 on the DNS address once a certificate covers the node.";
            tls = mkOption {
              type = types.nullOr types.bool;
              default = null;
              description = "false turns DNS over TLS off.";
            };
          };
          ssh = mkOption {
            default = { };
            description = "`[ssh]`: the git and admin endpoint (`git push`, `ssh -p 2222 git@node status`); null runs none.";
            type = types.nullOr (
              types.submodule {
                freeformType = settingsFormat.type;
                options = {
                  listen = listenOption "0.0.0.0:2222" "Address and port of the SSH endpoint.";
                  authorized_keys = mkOption {
                    type = types.listOf types.str;
                    default = [ ];
                    description = "Keys authorised at start; see also services.makiatto.authorizedKeys.";
                  };
                };
              }
            );
          };
          cluster = optionalTable "`[cluster]`: the cluster and its WireGuard mesh; unset keeps the node alone. `cluster = { };` is a first node: it makes its WireGuard key and picks its own mesh addresses. The prefixes (prefix_v4, prefix_v6), endpoint and hand-placed addresses (address_v4, address_v6) are free-form fields, as node.toml.example documents them." {
            join = optionalStr "A new node only: the address `join-token` printed on a node of the cluster, its public address at the mesh RPC port (with joinTokenFile).";
            join_token = optionalStr "Do not use: it would be world-readable in the Nix store; use services.makiatto.joinTokenFile.";
            interface = optionalStr "The WireGuard interface; default maki0.";
            listen_port = mkOption {
              type = types.nullOr types.port;
              default = null;
              description = "WireGuard's UDP port; default 51880.";
            };
            rpc_port = mkOption {
              type = types.nullOr types.port;
              default = null;
              description = "The mesh RPC port (on the WireGuard interface; joins on the public address); default 7070.";
            };
            rpc_listen = optionalStr "Instead of WireGuard: the mesh RPC address, for several nodes on one machine.";
          };
        };
      };
      example = lib.literalExpression ''
        {
          name = "london";
          ipv4 = "192.0.2.1";
          latitude = 51.51;
          longitude = -0.13;
          dns = { };
          https = { };
          acme.contact = "ops@example.com";
          cluster.join = "192.0.2.1:7070";
        }
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open exactly the ports the settings use: HTTP, HTTPS, DNS (UDP and
        TCP), DNS over TLS, SSH, WireGuard (UDP), the mesh RPC on the
        WireGuard interface, and the join listener (the mesh RPC port on
        the public address, answering joins only) of a mesh node.
      '';
    };

    authorizedKeys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "ssh-ed25519 AAAAC3Nza... you@laptop" ];
      description = "SSH public keys allowed to push and run admin commands, added to settings.ssh.authorized_keys.";
    };

    joinTokenFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/keys/makiatto-join-token";
      description = ''
        A file (outside the Nix store) holding the one-time token
        `ssh -p 2222 git@NODE join-token` printed on a node of the cluster.
        The unit receives it as a systemd credential; node.toml names only
        the credential's path. Keep the file while it is set: the unit
        cannot start without it.
      '';
    };

    buildPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      example = lib.literalExpression "[ pkgs.zola pkgs.hugo ]";
      description = "Packages on the service's PATH, for site builds (`[build] command` in makiatto.toml): the generators sites use, and pkgs.bubblewrap, whose `bwrap` runs every build in its sandbox (without it, pushes with `[build]` are refused).";
    };

    disableResolvedStubListener = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Turn systemd-resolved's stub listener (127.0.0.53:53) off, so a DNS
        listener on 0.0.0.0:53 can bind, and point /etc/resolv.conf at
        resolved's list of upstream servers instead of the stub.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = s.name != null;
        message = "services.makiatto.settings.name must be set: this node's name, unique in the cluster (e.g. \"london\").";
      }
      {
        assertion = s.data_dir == stateDir || lib.hasPrefix "${stateDir}/" s.data_dir;
        message = "services.makiatto.settings.data_dir is ${s.data_dir}, but the unit (ProtectSystem=strict) can only write ${stateDir}; leave data_dir unset.";
      }
      {
        assertion = !(s.cluster != null && s.cluster.join_token != null);
        message = "services.makiatto.settings.cluster.join_token would put the token in the world-readable Nix store; put it in a file and set services.makiatto.joinTokenFile instead.";
      }
      {
        assertion = cfg.joinTokenFile == null || (s.cluster != null && s.cluster.join != null);
        message = "services.makiatto.joinTokenFile is set but settings.cluster.join is not: set the address `join-token` printed on the node to join through (its public address at the mesh RPC port, e.g. \"192.0.2.1:7070\").";
      }
      {
        assertion = !(s.cluster != null && s.cluster.join != null && s.cluster.join_token == null && cfg.joinTokenFile == null);
        message = "services.makiatto.settings.cluster.join needs a token: set services.makiatto.joinTokenFile to a file holding what `join-token` printed.";
      }
      {
        assertion = cfg.joinTokenFile == null || !lib.hasPrefix builtins.storeDir cfg.joinTokenFile;
        message = "services.makiatto.joinTokenFile is in the Nix store, readable by every user; give a path outside it, as a string (\"/run/keys/...\").";
      }
      {
        assertion = cfg.authorizedKeys == [ ] || s.ssh != null;
        message = "services.makiatto.authorizedKeys needs the SSH endpoint, but settings.ssh is null; remove the keys or set settings.ssh = { }.";
      }
      {
        assertion = !(dnsOnWildcard53 && resolvedStubOn);
        message = "services.makiatto.settings.dns.listen (${if dnsOn then s.dns.listen else ""}) collides with systemd-resolved's stub listener on port 53: set services.makiatto.disableResolvedStubListener = true, or services.resolved.enable = false, or listen on this node's public address (e.g. \"192.0.2.1:53\").";
      }
    ];

    warnings = lib.optional (oldMesh != null) "services.makiatto.settings.mesh is the old form of settings.cluster: move its fields into settings.cluster and remove settings.mesh (the node starts either way, with the same warning).";

    users.users.makiatto = {
      isSystemUser = true;
      group = "makiatto";
      home = stateDir;
      description = "Makiatto CDN node";
    };
    users.groups.makiatto = { };

    environment.etc."makiatto/node.toml".source = configFile;
    environment.systemPackages = [ cfg.package ];

    systemd.services.makiatto = {
      description = unit.Unit.Description;
      wants = lib.splitString " " unit.Unit.Wants;
      after = lib.splitString " " unit.Unit.After;
      wantedBy = lib.splitString " " unit.Install.WantedBy;
      restartTriggers = [ configFile ];
      path = cfg.buildPackages;
      serviceConfig =
        unit.Service
        // {
          ExecStart =
            builtins.replaceStrings [ "/usr/bin/" ] [ "${cfg.package}/bin/" ]
              unit.Service.ExecStart;
        }
        // optionalAttrs (cfg.joinTokenFile != null) {
          LoadCredential = "join_token:${cfg.joinTokenFile}";
        };
    };

    networking.firewall = mkIf cfg.openFirewall {
      allowedTCPPorts = lib.unique tcpPorts;
      allowedUDPPorts = lib.unique udpPorts;
      interfaces = optionalAttrs meshOn {
        ${meshInterface}.allowedTCPPorts = [ meshRpcPort ];
      };
    };

    # Current NixOS writes resolved.conf from services.resolved.settings;
    # older releases take extraConfig lines.
    services.resolved = mkIf (cfg.disableResolvedStubListener && resolvedEnabled) (
      if options.services.resolved ? settings then
        { settings.Resolve.DNSStubListener = false; }
      else
        { extraConfig = "DNSStubListener=no"; }
    );
    environment.etc."resolv.conf" =
      mkIf (cfg.disableResolvedStubListener && resolvedEnabled)
        {
          source = lib.mkForce "/run/systemd/resolve/resolv.conf";
        };
  };
}
