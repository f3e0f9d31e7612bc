//! The crate's one integration-test binary: golden 837P/835/999 files, refusals of bad input,
//! and the independent validators (pyx12, x12sdk) over every 837P and 835 the tests produce.

mod fixtures;
mod golden;
mod refusals;
mod validators;
