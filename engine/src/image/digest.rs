//! Content digests (`sha256:<64 hex>`), the names of everything in the blob store.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    /// Lowercase hex of the sha256, 64 characters. Only sha256 is supported, as Docker does in practice.
    hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {0:?}: expected sha256: followed by 64 lowercase hex digits")]
pub struct InvalidDigest(pub String);

impl Digest {
    /// The digest of some bytes.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest { hex: hex::encode(Sha256::digest(bytes)) }
    }

    /// From a finished hasher.
    pub fn from_hasher(h: Sha256) -> Digest {
        Digest { hex: hex::encode(h.finalize()) }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as Docker shows image ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").ok_or_else(|| InvalidDigest(s.to_string()))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(InvalidDigest(s.to_string()));
        }
        Ok(Digest { hex: hex.to_string() })
    }
}

impl TryFrom<String> for Digest {
    type Error = InvalidDigest;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let d = Digest::of(b"");
        assert_eq!(d.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d.clone()));
        assert_eq!(d.short(), "e3b0c44298fc");
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse::<Digest>().is_err());
        assert!("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855".parse::<Digest>().is_err());
        assert!("sha256:../../../../etc/passwd000000000000000000000000000000000000000000".parse::<Digest>().is_err());
    }
}
