//! YAML parsing into Node trees. (filled in)
