//! Service dependency graph. (filled in)
