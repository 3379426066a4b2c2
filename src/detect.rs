//! JS face of forge-detect (being built).
