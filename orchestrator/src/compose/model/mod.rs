//! Typed compose model. (filled in)
