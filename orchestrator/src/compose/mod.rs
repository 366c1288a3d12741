//! The compose model and its loader.
//!
//! Loading runs in phases, as compose-go's does (see `docs/architecture.md`):
//! parse ([`yaml`]) → interpolate ([`interpolate`], with [`dotenv`]) → canonical long form ([`loader::canonical`])
//! → `extends` and `include` → merge of the `-f` files → validation against the schema ([`schema`]) → typed
//! [`model::Project`] → profiles, paths and logical checks.

pub mod dotenv;
pub mod error;
pub mod hash;
pub mod interpolate;
pub mod loader;
pub mod model;
pub mod node;
pub mod schema;
pub mod yaml;

pub use error::{Diagnostic, LoadError, Span};
pub use node::{Node, Tag, Value};
