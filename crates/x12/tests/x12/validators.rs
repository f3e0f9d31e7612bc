//! The independent validators.
