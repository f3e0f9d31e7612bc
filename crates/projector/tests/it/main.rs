//! Projector integration tests (being written).
