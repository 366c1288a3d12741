//! The orchestrator library of berth: the compose model and loader ([`compose`]), the service dependency graph
//! ([`graph`]) and, later, the reconciling controller. The `berth` binary is a thin shell over this crate.

pub mod compose;
pub mod controller;
pub mod graph;
