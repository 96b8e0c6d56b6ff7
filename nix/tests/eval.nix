# Evaluates nix/module.nix with the real Nixpkgs module system
# (lib.evalModules) for one configuration of nix/tests/cases.nix, without
# the rest of NixOS or a Nix store: the NixOS options the module sets are
# declared here as permissive stand-ins, and `pkgs` holds fake packages.
#
# Not exercised here: building anything, and `pkgs.formats.toml`'s real
# generator (a derivation). Its stand-in below returns the settings as JSON
# where the store path would be, so the caller (tests/it/nix.rs) turns exactly
# what the module hands to the generator into node.toml and has the real
# `makiatto check-config` accept it. The NixOS VM test (nix/tests/cluster.nix)
# covers the real generator, unit and firewall.
{
  lib ? import <nixpkgs/lib>,
  case,
}:
let
  inherit (lib) mkOption types;

  fakePackage = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    meta.mainProgram = name;
  };
  pkgs = {
    makiatto = fakePackage "makiatto";
    zola = fakePackage "zola";
    formats.toml = _: {
      # The real type accepts TOML values: tables, arrays and scalars.
      type = types.attrsOf types.anything;
      generate = _name: value: builtins.toJSON value;
    };
  };

  option =
    type: default:
    mkOption {
      inherit type default;
    };
  ports = option (types.listOf types.port) [ ];
  nixosStandIns = {
    options = {
      assertions = option (types.listOf types.unspecified) [ ];
      warnings = option (types.listOf types.str) [ ];
      users.users = option (types.attrsOf types.anything) { };
      users.groups = option (types.attrsOf types.anything) { };
      systemd.services = option (types.attrsOf types.anything) { };
      environment.etc = option (types.attrsOf types.anything) { };
      environment.systemPackages = option (types.listOf types.anything) [ ];
      networking.firewall = {
        allowedTCPPorts = ports;
        allowedUDPPorts = ports;
        interfaces = option (types.attrsOf (
          types.submodule {
            options = {
              allowedTCPPorts = ports;
              allowedUDPPorts = ports;
            };
          }
        )) { };
      };
      services.resolved = {
        enable = option types.bool false;
        settings = option types.anything { };
      };
    };
  };

  chosen = (import ./cases.nix).${case};
  evaluated = lib.evalModules {
    modules = [
      nixosStandIns
      ../module.nix
      chosen.configuration
    ];
    specialArgs = { inherit pkgs; };
  };
  config = evaluated.config;
  failed = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
in
{
  inherit failed;
  inherit (chosen) refusedWith;
}
// lib.optionalAttrs (failed == [ ]) {
  service = config.systemd.services.makiatto;
  firewall = config.networking.firewall;
  users = {
    inherit (config.users) users groups;
  };
  # The settings as the module handed them to the TOML generator.
  nodeToml = builtins.fromJSON config.environment.etc."makiatto/node.toml".source;
  resolved = config.services.resolved;
  resolvConf = config.environment.etc."resolv.conf" or null;
  warnings = config.warnings;
}
