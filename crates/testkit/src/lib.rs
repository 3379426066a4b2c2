//! Test helpers (being built).
