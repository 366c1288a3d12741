//! nftables rules (work in progress).
