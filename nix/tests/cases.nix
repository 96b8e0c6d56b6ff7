# The configurations the module's evaluation tests run (nix/tests/eval.nix,
# driven by tests/it/nix.rs and the flake's `module-eval` check). `refusedWith`
# is a piece of the assertion message the configuration must fail with.
{
  # The least a node needs: a name. HTTP on 80 and SSH on 2222 by default.
  minimal = {
    configuration = {
      services.makiatto = {
        enable = true;
        settings.name = "solo";
        openFirewall = true;
      };
    };
    refusedWith = null;
  };

  # A node joining a cluster: DNS with DoT, HTTPS with a staging CA, the
  # WireGuard mesh, its token from a file, site build tools, and
  # systemd-resolved's stub listener turned off for port 53.
  full = {
    configuration =
      { pkgs, ... }:
      {
        services.resolved.enable = true;
        services.makiatto = {
          enable = true;
          openFirewall = true;
          disableResolvedStubListener = true;
          authorizedKeys = [
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5Zm9ybWFraWF0dG9uaXhtb2R1bGU= ops@laptop"
          ];
          joinTokenFile = "/run/keys/makiatto-join-token";
          buildPackages = [ pkgs.zola ];
          settings = {
            name = "tokyo";
            ipv4 = "203.0.113.7";
            ipv6 = "2001:db8::7";
            latitude = 35.68;
            longitude = 139.69;
            keep_revisions = 5;
            dns = {
              geoip_db = "/var/lib/makiatto/GeoLite2-City.mmdb";
              ttl = 30;
            };
            https = { };
            acme = {
              directory = "https://acme-staging-v02.api.letsencrypt.org/directory";
              contact = "ops@example.com";
            };
            cluster.join = "198.51.100.1:7070";
          };
        };
      };
    refusedWith = null;
  };

  # The first node of a cluster: `cluster = { }` is all it takes.
  firstNode = {
    configuration = {
      services.makiatto = {
        enable = true;
        openFirewall = true;
        settings = {
          name = "london";
          ipv4 = "198.51.100.1";
          cluster = { };
        };
      };
    };
    refusedWith = null;
  };

  # The old form: WireGuard fields in `mesh`, beside `cluster`. It still
  # evaluates and starts, with a warning naming the move.
  oldMesh = {
    configuration = {
      services.makiatto = {
        enable = true;
        openFirewall = true;
        settings = {
          name = "london";
          ipv4 = "198.51.100.1";
          mesh = {
            address_v4 = "10.88.0.1";
            listen_port = 51881;
          };
          cluster = { };
        };
      };
    };
    refusedWith = null;
  };

  # A token written into settings would land in the world-readable store.
  refusedInlineToken = {
    configuration = {
      services.makiatto = {
        enable = true;
        settings = {
          name = "leaky";
          cluster = {
            join = "198.51.100.1:7070";
            join_token = "mkj_secret";
          };
        };
      };
    };
    refusedWith = "set services.makiatto.joinTokenFile instead";
  };

  # DNS on 0.0.0.0:53 beside systemd-resolved's stub listener cannot bind.
  refusedResolvedStub = {
    configuration = {
      services.resolved.enable = true;
      services.makiatto = {
        enable = true;
        settings = {
          name = "dns";
          dns = { };
        };
      };
    };
    refusedWith = "set services.makiatto.disableResolvedStubListener = true";
  };
}
