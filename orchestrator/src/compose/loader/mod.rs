//! The loader pipeline. (filled in)
