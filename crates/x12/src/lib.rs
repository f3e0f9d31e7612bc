//! HIPAA X12 5010 for ClaimLedger, pure: no I/O, no async, no clock. Money is integer cents.
//!
//! Layout:
//! - [`money`]: cents rendered with at most two decimals and read back exactly.
//! - `writer`: the segment writer (delimiters, value checks, ISA padding, trailer counts).
//! - `p837`: the 837P (005010X222A1) input model, the conversion from the derived claim
//!   ([`Claim837::from_derived`]) and [`render_837p`].
//! - `tokenizer`: ISA-declared delimiters, checked segments, the envelope's counts and
//!   control numbers.
//! - `r835`: [`parse_835`] into a balanced [`Remittance835`].
//! - `a999`: [`parse_999`] into [`Acknowledgment999`]s.
//! - `error`: [`BuildError`] and [`ParseError`], each naming segment and element.

mod a999;
mod error;
pub mod money;
mod p837;
mod r835;
mod tokenizer;
mod writer;

pub use a999::{
    Acknowledgment999, ElementError, GroupResponse, GroupStatus, SegmentError, SetResponse,
    SetStatus, parse_999,
};
pub use error::{BuildError, BuildProblem, Location, ParseError, ParseProblem};
pub use p837::build::render_837p;
pub use p837::convert::{BillingProviderDetails, ExportContext, LineContext, TaxIdKind};
pub use p837::model::{
    Address, Assignment, BenefitsAssignment, BillingProvider, Claim837, ClaimIndicators, Frequency,
    Interchange837, Line837, Patient, Payer, PayerResponsibility, Person, PersonName, Provider,
    Relationship, ReleaseOfInformation, Sex, Submitter, Subscriber, TaxIdentifier, TradingPartner,
    Transaction837, Usage,
};
pub use r835::read::parse_835;
pub use r835::{
    Adjustment, AdjustmentGroup, ClaimPayment, ClaimStatus, Handling, Party, PatientName,
    Payment835, PaymentMethod, Procedure, ProviderAdjustment, Remittance835, ServicePayment,
};
pub use writer::{Delimiters, Layout};
