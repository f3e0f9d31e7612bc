//! The 837P (005010X222A1) professional claim: the typed input ([`model`]), the conversion from
//! ClaimLedger's derived claim ([`convert`]) and the renderer ([`build`]).

pub(crate) mod build;
pub(crate) mod convert;
pub(crate) mod model;
