//! Framework detection (being built).
