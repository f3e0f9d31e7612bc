//! The 837P (005010X222A1) professional claim: the typed input ([`model`]), the conversion from
//! ClaimLedger's derived claim ([`convert`]) and the renderer ([`build`], with one claim's loops in `claim`).

pub(crate) mod build;
mod claim;
pub(crate) mod convert;
pub(crate) mod model;
