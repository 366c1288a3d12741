//! Schema generation, coercion and validation. (filled in)
