{
  description = "Makiatto: a self-hosted CDN for static sites (git push, GeoDNS, automatic HTTPS, a WireGuard mesh)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      # Nodes are Linux only.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        makiatto = pkgs.callPackage ./nix/package.nix { };
        default = makiatto;
      });

      overlays.default = final: _prev: {
        makiatto = final.callPackage ./nix/package.nix { };
      };

      # services.makiatto, with this flake's package unless one is given.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.makiatto.package =
            lib.mkDefault
              self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };
      nixosModules.makiatto = self.nixosModules.default;

      # The toolchain and every tool the tests drive (scripts/test's
      # TEST_PACKAGES), so `nix develop -c scripts/test` runs the suite.
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
            curl
            cacert
            dig
            knot-dns
            iproute2
            procps
            git
            openssh
            pebble
            openssl
            wireguard-tools
            wireguard-go
            iperf3
            iputils
            util-linux
            systemd
            nix
          ];
          # tests/it/nix.rs evaluates the module with this Nixpkgs lib.
          NIXPKGS_LIB = "${nixpkgs}/lib";
        };
      });

      checks = forAllSystems (
        pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
          cases = import ./nix/tests/cases.nix;
          results = lib.mapAttrs (
            case: _: import ./nix/tests/eval.nix { inherit lib case; }
          ) cases;
          wrong = lib.filterAttrs (
            _: result:
            if result.refusedWith == null then
              result.failed != [ ]
            else
              !(lib.any (lib.hasInfix result.refusedWith) result.failed)
          ) results;
        in
        {
          package = self.packages.${system}.default;
          # The module's evaluation tests (tests/it/nix.rs runs the same cases
          # further: unit equality, firewall, `makiatto check-config`).
          module-eval =
            if wrong != { } then
              throw "services.makiatto evaluation: ${builtins.toJSON wrong}"
            else
              pkgs.writeText "makiatto-module-eval.json" (builtins.toJSON results);
          cluster = pkgs.testers.runNixOSTest (import ./nix/tests/cluster.nix { inherit self; });
        }
      );

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
