# The repository's systemd unit (packaging/makiatto.service), read into
# { Unit = { Key = "value"; ... }; Service = { ... }; Install = { ... }; }
# so the NixOS module installs exactly its settings: the unit file is the one
# place they are written. A key given on several lines becomes a list.
{
  lib,
  file ? ../packaging/makiatto.service,
}:
let
  lines = lib.splitString "\n" (builtins.readFile file);

  addKey =
    state: line:
    let
      match = builtins.match "([A-Za-z0-9]+)=(.*)" line;
      key = builtins.elemAt match 0;
      value = builtins.elemAt match 1;
      section = state.sections.${state.section} or { };
    in
    if match == null then
      throw "${toString file}: cannot read the line `${line}` (expected Key=value)"
    else if state.section == null then
      throw "${toString file}: `${line}` comes before any [Section]"
    else
      state
      // {
        sections = state.sections // {
          ${state.section} = section // {
            ${key} = (section.${key} or [ ]) ++ [ value ];
          };
        };
      };

  step =
    state: raw:
    let
      line = lib.trim raw;
      header = builtins.match "\\[([A-Za-z]+)]" line;
    in
    if line == "" || lib.hasPrefix "#" line || lib.hasPrefix ";" line then
      state
    else if header != null then
      state // { section = builtins.head header; }
    else
      addKey state line;

  parsed = lib.foldl' step {
    section = null;
    sections = { };
  } lines;
in
lib.mapAttrs (
  _: lib.mapAttrs (_: values: if builtins.length values == 1 then builtins.head values else values)
) parsed.sections
