//! Random ids for networks and endpoints: 64 hex characters like Docker's. Read straight from /dev/urandom,
//! which is all an id needs (no rand crate for 32 bytes).

use std::io::Read as _;

/// `bytes` random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A 64-hex-character id.
pub fn new_id() -> std::io::Result<String> {
    random_hex(32)
}

/// The bridge of a network: `br-<12 hex>` (15 bytes, the kernel's limit).
pub fn bridge_name(network_id: &str) -> String {
    format!("br-{}", network_id.get(..12).unwrap_or(network_id))
}

/// The host side of an endpoint's veth pair: `veth<10 hex>` (14 bytes).
pub fn veth_name(endpoint_id: &str) -> String {
    format!("veth{}", endpoint_id.get(..10).unwrap_or(endpoint_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_names_fit_the_kernel_limit() {
        let id = new_id().expect("id");
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_id().expect("id"));
        assert_eq!(bridge_name(&id).len(), 15);
        assert!(veth_name(&id).len() <= 15);
        assert_eq!(bridge_name("0123456789abcdef"), "br-0123456789ab");
        assert_eq!(veth_name("0123456789abcdef"), "veth0123456789");
    }
}
