//! The two worlds a site's components implement (`wit/`), their generated
//! bindings, and the check that a component really is one of them.

use wasmtime::component::{Component, Linker};

use super::WasmError;
use super::sandbox::Guest;

/// `makiatto:http`: `handle-request(ctx, req) -> response`.
pub mod http {
    wasmtime::component::bindgen!({
        path: "wit/http",
        world: "http",
        exports: { default: async },
    });
}

/// `makiatto:transform`: `transform(ctx, info, content) -> option<transform-result>`.
pub mod transform {
    wasmtime::component::bindgen!({
        path: "wit/transform",
        world: "transform",
        exports: { default: async },
    });
}

/// Which world a configured component must implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Function,
    Transform,
}

impl Kind {
    /// The world's name as WIT spells it.
    pub fn world(self) -> &'static str {
        match self {
            Kind::Function => "makiatto:http/http (export handle-request)",
            Kind::Transform => "makiatto:transform/transform (export transform)",
        }
    }
}

/// Rejects bytes that are not a WebAssembly component before compiling,
/// with a message that says what they are instead.
pub fn check_header(bytes: &[u8]) -> Result<(), String> {
    match bytes.get(0..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(
            "is a core WebAssembly module, not a component; wrap it with `wasm-tools component new` (see docs/wasm.md)"
                .into(),
        ),
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => Ok(()),
        _ => Err("is not a WebAssembly component (no \\0asm header)".into()),
    }
}

/// Links `component` as `kind`: every import must be one the node offers
/// and the world's export must be there with the right type.
pub fn link(
    linker: &Linker<Guest>,
    component: &Component,
    kind: Kind,
) -> Result<Linked, WasmError> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| WasmError::Link(e.into()))?;
    match kind {
        Kind::Function => {
            http::HttpPre::new(pre)
                .map(Linked::Function)
                .map_err(|e| WasmError::World {
                    world: kind.world(),
                    source: e.into(),
                })
        }
        Kind::Transform => transform::TransformPre::new(pre)
            .map(Linked::Transform)
            .map_err(|e| WasmError::World {
                world: kind.world(),
                source: e.into(),
            }),
    }
}

/// A component pre-instantiated against its world.
pub enum Linked {
    Function(http::HttpPre<Guest>),
    Transform(transform::TransformPre<Guest>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_components_from_modules_and_other_files() {
        assert!(check_header(b"\0asm\x0d\0\x01\0rest").is_ok());
        let core = check_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(core.contains("core WebAssembly module"), "{core}");
        let other = check_header(b"#!/bin/sh\n").unwrap_err();
        assert!(other.contains("not a WebAssembly component"), "{other}");
        assert!(check_header(b"\0as").is_err());
    }
}
