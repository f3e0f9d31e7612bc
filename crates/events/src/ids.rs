//! Identifier newtypes shared by every event: 16-byte UUIDs archived by rkyv as plain byte arrays.
//!
//! Identifiers are stored as `[u8; 16]` rather than through rkyv's optional `uuid` support so that
//! the archived layout depends on nothing but rkyv itself. Generating new identifiers is left to the
//! caller (this crate performs no I/O, and reading a clock or a random source is I/O).

// rkyv's derive generates a public `…Resolver` type for each identifier. Expanded inside this
// `macro_rules!`, that type takes the macro's span and trips `missing_debug_implementations`, which
// the same derive outside a macro does not. The identifier types themselves all derive `Debug`.
#![allow(missing_debug_implementations)]

use std::fmt;

use rkyv::{Archive, Deserialize, Serialize};
use uuid::Uuid;

/// Declares one identifier newtype with its conversions to and from [`Uuid`].
macro_rules! uuid_identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[rkyv(derive(Debug, PartialEq, Eq))]
        pub struct $name([u8; 16]);

        impl $name {
            /// Wraps the 16 bytes of a UUID.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// The 16 bytes of the UUID, in network (big-endian) order.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// The identifier as a [`Uuid`].
            pub const fn as_uuid(&self) -> Uuid {
                Uuid::from_bytes(self.0)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(*uuid.as_bytes())
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.as_uuid()
            }
        }

        impl fmt::Display for $name {
            /// Formats as a lowercase hyphenated UUID, which is also a valid NATS subject token.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.as_uuid().hyphenated(), f)
            }
        }
    };
}

uuid_identifier!(
    /// A clinic chain: the tenant. Every commit belongs to exactly one chain.
    ChainId
);
uuid_identifier!(
    /// One clinic (site) of a chain.
    ClinicId
);
uuid_identifier!(
    /// One treatment session; also the aggregate id of the session aggregate.
    SessionId
);
uuid_identifier!(
    /// A patient of the chain.
    PatientId
);
uuid_identifier!(
    /// A therapist employed by the chain.
    TherapistId
);
uuid_identifier!(
    /// A payer (insurer or other third party); also the aggregate id of that payer's rules.
    PayerId
);
uuid_identifier!(
    /// One event inside a commit; unique across the whole log.
    EventId
);
uuid_identifier!(
    /// The idempotency key of a command: a retried command carries the same id and is stored once.
    CommandId
);
uuid_identifier!(
    /// Ties together every commit caused, directly or not, by one external request.
    CorrelationId
);
uuid_identifier!(
    /// The id of the command or event that directly caused a commit.
    CausationId
);
uuid_identifier!(
    /// The id of an aggregate, whatever its kind; the last token of the aggregate's log subject.
    AggregateId
);

impl From<SessionId> for AggregateId {
    fn from(session: SessionId) -> Self {
        Self(session.0)
    }
}

/// The namespace of payer ids derived from rules keys (a fixed, random UUID; never change it).
const PAYER_RULES_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x5c1e_2b7a_94d3_4f0e_8a61_3d2f_c07b_9e48);

impl PayerId {
    /// The payer's id on the log, derived from its identifier in the rules files (for example
    /// `medicare-like`). The rules publisher, the sessions API and every reader derive the same id
    /// from the same key, so no registry is needed to link a session's payer to its rules.
    pub fn from_rules_key(rules_key: &str) -> PayerId {
        PayerId::from(Uuid::new_v5(
            &PAYER_RULES_KEY_NAMESPACE,
            rules_key.as_bytes(),
        ))
    }
}

impl From<PayerId> for AggregateId {
    fn from(payer: PayerId) -> Self {
        Self(payer.0)
    }
}
uuid_identifier!(
    /// A patient's coverage by one payer (the member id itself is PHI and stays off the log).
    CoverageId
);
uuid_identifier!(
    /// A referral or prescription that authorises a number of visits.
    ReferralId
);
uuid_identifier!(
    /// One claim: a session billed to one payer; also the aggregate id of that claim's lifecycle.
    ClaimId
);

impl ClaimId {
    /// The claim of `session` billed to `payer`: a UUIDv5 of both, so every writer and the projector
    /// name the same claim without a lookup.
    pub fn for_session_and_payer(session: SessionId, payer: PayerId) -> Self {
        let mut name = [0_u8; 32];
        name[..16].copy_from_slice(&session.0);
        name[16..].copy_from_slice(&payer.0);
        Self::from(Uuid::new_v5(&CLAIM_NAMESPACE, &name))
    }
}

/// Namespace of [`ClaimId::for_session_and_payer`]; changing it would rename every claim.
const CLAIM_NAMESPACE: Uuid = Uuid::from_u128(0x6c1a_1b7e_90c4_4d2e_9a57_3c6f_0e2d_41b8);

/// Every aggregate's id is the id of the thing it is about.
macro_rules! aggregate_id_from {
    ($($name:ident),*) => {
        $(impl From<$name> for AggregateId {
            fn from(id: $name) -> Self {
                Self(id.0)
            }
        })*
    };
}

aggregate_id_from!(
    ClinicId,
    TherapistId,
    PatientId,
    CoverageId,
    ReferralId,
    ClaimId
);
