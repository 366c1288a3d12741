//! Images: references, digests, the content-addressed store, layers unpacked once, registry pull and push,
//! docker-save / OCI-layout archives and rootfs import.

pub mod archive;
pub mod digest;
pub mod error;
pub mod import;
pub mod reference;
pub mod rootfs;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use reference::Reference;
