//! Daytona client (being built).
