//! Variable interpolation. (filled in)
