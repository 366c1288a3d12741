//! Where berth keeps its state and its sockets: one type for berthd and berth-netd, kept in the netd crate
//! (whose client half berthd already depends on) so the two daemons cannot disagree.

pub use berth_netd::paths::{DEFAULT_ROOT, DEFAULT_RUN_DIR, ENGINE_SOCKET, Paths, SOCKET as NETD_SOCKET};
