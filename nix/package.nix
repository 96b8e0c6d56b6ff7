# The makiatto package: both binaries, `makiatto` (the node) and `maki`
# (the operator's CLI), built from this repository with Cargo.lock's
# versions (every dependency comes from crates.io, so no output hashes).
#
# Checks: only the library's unit tests run here (`cargo test --lib`), less
# the WireGuard device tests (`mesh::wireguard::tests`), which need root,
# network namespaces and /dev/net/tun. The integration tests in tests/
# start the real binaries and drive them with git, ssh, dig, kdig, pebble,
# wireguard-go and network namespaces as root; CI runs them with
# `scripts/test`, and `nix develop` gives every tool they use.
{
  lib,
  rustPlatform,
}:
let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "makiatto";
  inherit (cargoToml.package) version;

  # What the build reads: sources, and the files compiled into the binaries
  # (hooks, the starter site, WIT worlds, the example configs).
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      ../maki
      ../hooks
      ../site-template
      ../wit
      ../makiatto.toml.example
      ../node.toml.example
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  cargoTestFlags = [ "--lib" ];
  checkFlags = [ "--skip=mesh::wireguard::tests" ];

  postInstall = ''
    install -Dm644 ${../packaging/makiatto.service} $out/lib/systemd/system/makiatto.service
    substituteInPlace $out/lib/systemd/system/makiatto.service \
      --replace-fail /usr/bin/makiatto $out/bin/makiatto
    install -Dm644 ${../node.toml.example} $out/share/doc/makiatto/node.toml.example
  '';

  meta = {
    description = cargoToml.package.description;
    longDescription = ''
      Makiatto turns a few Linux servers into a self-hosted CDN for static
      sites: `git push` to any node, every node serves the same revision,
      and its authoritative GeoDNS sends visitors to the nearest healthy
      node. HTTPS certificates come by ACME DNS-01 through the cluster's own
      DNS; nodes replicate over a WireGuard mesh.
    '';
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "makiatto";
    platforms = lib.platforms.linux;
  };
}
