//! Containers: what berthd hands the OCI runtime. `spec` builds a container's runtime spec from its create
//! options with Docker's semantics and secure defaults; `seccomp` holds Docker's default profile and its
//! rules; `user` resolves the container's user against the image's own passwd and group files.

pub mod seccomp;
pub mod spec;
pub mod user;
