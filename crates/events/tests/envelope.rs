//! Envelope tests: round trips of arbitrary commits, hostile bytes, and schema evolution against the
//! committed golden fixtures of version 1 and version 2 bytes.

use std::path::PathBuf;

use claimledger_events::rules::RulesChanged;
use claimledger_events::session::{
    BodyRegion, BodySide, Coverage, DiagnosesAttached, ModalityRecorded, ServiceRecorded,
    SessionAmended, SessionCancelled, SessionScheduled, Technique,
};
use claimledger_events::v1::{CommitV1, EventRecordV1, EventV1, ServiceRecordedV1};
use claimledger_events::v2::{
    CommitV2, CoverageV2, EventRecordV2, EventV2, SessionScheduledV2, upcast_coverage_v2_to_v3,
};
use claimledger_events::{
    Actor, ActorKind, AggregateKind, Commit, CptCode, EpochDay, Event, EventRecord, Icd10Code,
    UtcMicros, VersionedCommit, decode, decode_versioned, encode, encode_versioned,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn id<T: From<uuid::Uuid> + std::fmt::Debug>() -> impl Strategy<Value = T> {
    any::<[u8; 16]>().prop_map(|bytes| T::from(uuid::Uuid::from_bytes(bytes)))
}

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including empty strings and strings longer than rkyv's inline string limit.
    ".{0,40}"
}

fn cpt_code() -> impl Strategy<Value = CptCode> {
    "[0-9A-Z]{5}".prop_map(|code| CptCode::new(&code).expect("the pattern yields valid codes"))
}

fn icd10_code() -> impl Strategy<Value = Icd10Code> {
    "[A-Z][0-9][0-9A-Z](\\.[0-9A-Z]{1,4})?"
        .prop_map(|code| Icd10Code::new(&code).expect("the pattern yields valid codes"))
}

fn technique() -> impl Strategy<Value = Technique> {
    prop_oneof![
        Just(Technique::Effleurage),
        Just(Technique::Petrissage),
        Just(Technique::Tapotement),
        Just(Technique::Swedish),
        Just(Technique::DeepTissue),
        Just(Technique::MyofascialRelease),
        Just(Technique::SoftTissueMobilisation),
        Just(Technique::JointMobilisation),
        Just(Technique::ManualTraction),
        Just(Technique::ManualLymphaticDrainage),
        Just(Technique::Pnf),
        Just(Technique::BalanceProprioception),
        Just(Technique::TherapeuticExercise),
        Just(Technique::FunctionalActivities),
        Just(Technique::Cupping),
        text().prop_map(Technique::Other),
        Just(Technique::StrengthExercise),
        Just(Technique::EnduranceExercise),
        Just(Technique::RangeOfMotionExercise),
        Just(Technique::FlexibilityExercise),
    ]
}

fn body_region() -> impl Strategy<Value = BodyRegion> {
    prop_oneof![
        Just(BodyRegion::Head),
        Just(BodyRegion::Neck),
        Just(BodyRegion::Shoulder),
        Just(BodyRegion::UpperBack),
        Just(BodyRegion::LowerBack),
        Just(BodyRegion::Chest),
        Just(BodyRegion::Abdomen),
        Just(BodyRegion::Hip),
        Just(BodyRegion::Arm),
        Just(BodyRegion::Hand),
        Just(BodyRegion::Leg),
        Just(BodyRegion::Foot),
        text().prop_map(BodyRegion::Other),
    ]
}

fn body_side() -> impl Strategy<Value = BodySide> {
    prop_oneof![
        Just(BodySide::Left),
        Just(BodySide::Right),
        Just(BodySide::Bilateral),
        Just(BodySide::Midline),
    ]
}

fn coverage() -> impl Strategy<Value = Coverage> {
    prop_oneof![
        Just(Coverage::SelfPay),
        (id(), id()).prop_map(|(payer, coverage)| Coverage::Payer { payer, coverage }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            id(),
            id(),
            coverage(),
            option::of(id()),
            any::<i64>(),
            any::<u16>()
        )
            .prop_map(
                |(therapist, patient, coverage, referral, start, planned_minutes)| {
                    Event::SessionScheduled(SessionScheduled {
                        therapist,
                        patient,
                        coverage,
                        referral,
                        scheduled_start: UtcMicros(start),
                        planned_minutes,
                    })
                }
            ),
        Just(Event::CheckedIn),
        (
            technique(),
            cpt_code(),
            any::<u16>(),
            body_region(),
            option::of(body_side()),
            option::of(text())
        )
            .prop_map(
                |(technique, cpt_code, minutes, body_region, body_side, description)| {
                    Event::ServiceRecorded(ServiceRecorded {
                        technique,
                        cpt_code,
                        minutes,
                        body_region,
                        body_side,
                        description,
                    })
                }
            ),
        (cpt_code(), any::<u16>()).prop_map(|(code, minutes)| Event::ModalityRecorded(
            ModalityRecorded { code, minutes }
        )),
        vec(icd10_code(), 0..6)
            .prop_map(|icd10_codes| Event::DiagnosesAttached(DiagnosesAttached { icd10_codes })),
        Just(Event::SessionCompleted),
        text().prop_map(|reason| Event::SessionCancelled(SessionCancelled { reason })),
        Just(Event::SessionNoShow),
        text().prop_map(|reason| Event::SessionAmended(SessionAmended { reason })),
        (id(), any::<u32>(), any::<i32>(), text(), any::<[u8; 32]>()).prop_map(
            |(payer, version, day, rules_toml, content_sha256)| {
                Event::RulesChanged(RulesChanged {
                    payer,
                    version,
                    effective_from: EpochDay(day),
                    rules_toml,
                    content_sha256,
                })
            }
        ),
    ]
}

fn commit() -> impl Strategy<Value = Commit> {
    let events = vec(
        (id(), any::<i64>(), event()).prop_map(|(event_id, occurred_at, event)| EventRecord {
            event_id,
            occurred_at: UtcMicros(occurred_at),
            event,
        }),
        0..8,
    );
    let actor = (
        prop_oneof![Just(ActorKind::Staff), Just(ActorKind::Service)],
        text(),
    )
        .prop_map(|(kind, id)| Actor { kind, id });
    (
        (id(), id(), option::of(id())),
        prop_oneof![
            Just(AggregateKind::Session),
            Just(AggregateKind::PayerRules)
        ],
        (id(), any::<i64>(), actor, id(), option::of(id())),
        events,
    )
        .prop_map(
            |(
                (command_id, chain, clinic),
                aggregate_kind,
                (aggregate_id, recorded_at, actor, correlation_id, causation_id),
                events,
            )| Commit {
                command_id,
                chain,
                clinic,
                aggregate_kind,
                aggregate_id,
                recorded_at: UtcMicros(recorded_at),
                actor,
                correlation_id,
                causation_id,
                events,
            },
        )
}

proptest! {
    #[test]
    fn any_commit_round_trips_through_the_envelope(commit in commit()) {
        let bytes = encode(&commit).expect("encoding succeeds");
        let decoded = decode(&bytes).expect("our own bytes decode");
        prop_assert_eq!(decoded, commit);
    }

    #[test]
    fn encode_writes_exactly_the_bytes_of_the_owned_version_3_envelope(commit in commit()) {
        // `encode` serializes a borrowed twin of `VersionedCommit`; the layouts must be identical.
        let borrowed = encode(&commit).expect("encoding succeeds");
        let owned = encode_versioned(&VersionedCommit::V3(commit)).expect("encoding succeeds");
        prop_assert_eq!(borrowed, owned);
    }

    #[test]
    fn decoding_an_unaligned_copy_gives_the_same_commit(commit in commit(), offset in 1usize..16) {
        // NATS hands payloads out at arbitrary offsets; decode must not rely on alignment.
        let bytes = encode(&commit).expect("encoding succeeds");
        let mut shifted = vec![0u8; offset];
        shifted.extend_from_slice(&bytes);
        prop_assert_eq!(decode(&shifted[offset..]).expect("decodes"), commit);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        // Either outcome is acceptable; reaching the end of the test without a panic is the property.
        let outcome = decode(&bytes);
        if let Err(error) = outcome {
            prop_assert_eq!(error.payload_len, bytes.len());
        }
    }

    #[test]
    fn bit_flipped_commits_decode_or_fail_without_panicking(
        commit in commit(),
        flips in vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let mut bytes = encode(&commit).expect("encoding succeeds");
        for (index, bit) in flips {
            let position = index.index(bytes.len());
            bytes[position] ^= 1 << bit;
        }
        // A flip inside a string or an integer yields another valid commit; a flip in a tag, length
        // or pointer must be caught by validation. Both are fine; a panic is not. Whatever is
        // accepted must be a well-formed commit that survives its own round trip.
        if let Ok(decoded) = decode(&bytes) {
            let reencoded = encode(&decoded).expect("re-encodes");
            prop_assert_eq!(decode(&reencoded).expect("decodes again"), decoded);
        }
    }

    #[test]
    fn truncated_commits_are_rejected(commit in commit(), cut in 1usize..64) {
        let bytes = encode(&commit).expect("encoding succeeds");
        let keep = bytes.len().saturating_sub(cut);
        prop_assert!(decode(&bytes[..keep]).is_err());
    }
}

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/commit_v1.bin")
}

fn v2_fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/commit_v2.bin")
}

fn uuid(text: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(text).expect("fixture uuids are valid")
}

/// The commit stored in the golden fixture, built with the frozen version 1 types.
fn golden_v1_commit() -> CommitV1 {
    CommitV1 {
        command_id: uuid("0190f1a2-0000-7000-8000-000000000001").into(),
        chain: uuid("0190f1a2-0000-7000-8000-0000000000c1").into(),
        clinic: Some(uuid("0190f1a2-0000-7000-8000-0000000000c2").into()),
        aggregate_kind: AggregateKind::Session,
        aggregate_id: uuid("0190f1a2-0000-7000-8000-0000000000a1").into(),
        recorded_at: UtcMicros(1_790_000_000_000_000),
        actor: Actor {
            kind: ActorKind::Staff,
            id: "front-desk-7".to_owned(),
        },
        correlation_id: uuid("0190f1a2-0000-7000-8000-0000000000d1").into(),
        causation_id: None,
        events: vec![
            EventRecordV1 {
                event_id: uuid("0190f1a2-0000-7000-8000-0000000000e1").into(),
                occurred_at: UtcMicros(1_789_999_000_000_000),
                event: EventV1::CheckedIn,
            },
            EventRecordV1 {
                event_id: uuid("0190f1a2-0000-7000-8000-0000000000e2").into(),
                occurred_at: UtcMicros(1_789_999_900_000_000),
                event: EventV1::ServiceRecorded(ServiceRecordedV1 {
                    technique: Technique::MyofascialRelease,
                    cpt_code: CptCode::new("97140").expect("valid"),
                    minutes: 23,
                    body_region: BodyRegion::LowerBack,
                    description: Some("paraspinals, trigger points L3-L5".to_owned()),
                }),
            },
            EventRecordV1 {
                event_id: uuid("0190f1a2-0000-7000-8000-0000000000e3").into(),
                occurred_at: UtcMicros(1_789_999_950_000_000),
                event: EventV1::DiagnosesAttached(DiagnosesAttached {
                    icd10_codes: vec![Icd10Code::new("M54.50").expect("valid")],
                }),
            },
        ],
    }
}

#[test]
fn frozen_v1_types_still_encode_to_the_committed_fixture() {
    let bytes = encode_versioned(&VersionedCommit::V1(golden_v1_commit())).expect("encodes");
    if std::env::var_os("CLAIMLEDGER_WRITE_FIXTURES").is_some() {
        std::fs::write(fixture_path(), &bytes).expect("fixture written");
    }
    let committed = std::fs::read(fixture_path()).expect("the fixture is committed");
    assert_eq!(
        bytes, committed,
        "the version 1 shapes changed; released shapes are frozen (see claimledger_events::Event)"
    );
}

#[test]
fn committed_v1_bytes_decode_and_upcast_to_the_current_shape() {
    let committed = std::fs::read(fixture_path()).expect("the fixture is committed");

    let versioned = decode_versioned(&committed).expect("v1 bytes decode");
    assert_eq!(versioned.schema_version(), 1);

    let current = decode(&committed).expect("v1 bytes decode into the current type");
    assert_eq!(current.events.len(), 3);
    assert_eq!(current.actor.id, "front-desk-7");
    assert_eq!(
        current.events[1].event,
        Event::ServiceRecorded(ServiceRecorded {
            technique: Technique::MyofascialRelease,
            cpt_code: CptCode::new("97140").expect("valid"),
            minutes: 23,
            body_region: BodyRegion::LowerBack,
            body_side: None,
            description: Some("paraspinals, trigger points L3-L5".to_owned()),
        })
    );
    assert_eq!(current.events[0].event, Event::CheckedIn);
}

#[test]
fn current_commits_are_written_as_version_3() {
    let current = decode(&std::fs::read(fixture_path()).expect("the fixture is committed"))
        .expect("v1 bytes decode");
    let bytes = encode(&current).expect("encodes");
    let versioned = decode_versioned(&bytes).expect("decodes");
    assert_eq!(versioned.schema_version(), 3);
    assert_eq!(
        versioned.schema_version(),
        claimledger_events::CURRENT_SCHEMA_VERSION
    );
    // The same content written as version 1 and version 2 differs on the wire.
    let v1_bytes = std::fs::read(fixture_path()).expect("the fixture is committed");
    assert_ne!(bytes, v1_bytes);
}

#[test]
fn validate_names_the_offending_field() {
    let mut commit = decode(&std::fs::read(fixture_path()).expect("the fixture is committed"))
        .expect("v1 bytes decode");
    assert_eq!(commit.validate(), Ok(()));

    commit.clinic = None;
    assert_eq!(commit.validate().unwrap_err().field, "clinic");

    commit.clinic = Some(uuid("0190f1a2-0000-7000-8000-0000000000c2").into());
    commit.events.clear();
    assert_eq!(commit.validate().unwrap_err().field, "events");
}

/// The commit stored in the version 2 golden fixture, built with the frozen version 2 types: a
/// booking paid by a payer (its coverage id written as text in `member_id`, as the sessions API
/// did), a service with a side, and a reference event appended to version 2.
fn golden_v2_commit() -> CommitV2 {
    CommitV2 {
        command_id: uuid("0190f1a2-0000-7000-8000-000000000002").into(),
        chain: uuid("0190f1a2-0000-7000-8000-0000000000c1").into(),
        clinic: Some(uuid("0190f1a2-0000-7000-8000-0000000000c2").into()),
        aggregate_kind: AggregateKind::Session,
        aggregate_id: uuid("0190f1a2-0000-7000-8000-0000000000a2").into(),
        recorded_at: UtcMicros(1_790_000_000_000_000),
        actor: Actor {
            kind: ActorKind::Staff,
            id: "front-desk-7".to_owned(),
        },
        correlation_id: uuid("0190f1a2-0000-7000-8000-0000000000d2").into(),
        causation_id: None,
        events: vec![
            EventRecordV2 {
                event_id: uuid("0190f1a2-0000-7000-8000-0000000000f1").into(),
                occurred_at: UtcMicros(1_789_990_000_000_000),
                event: EventV2::SessionScheduled(SessionScheduledV2 {
                    therapist: uuid("0190f1a2-0000-7000-8000-0000000000b1").into(),
                    patient: uuid("0190f1a2-0000-7000-8000-0000000000b2").into(),
                    coverage: CoverageV2::Payer {
                        payer: uuid("0190f1a2-0000-7000-8000-0000000000b3").into(),
                        member_id: "0190f1a2-0000-7000-8000-0000000000b4".to_owned(),
                    },
                    scheduled_start: UtcMicros(1_789_999_000_000_000),
                    planned_minutes: 60,
                }),
            },
            EventRecordV2 {
                event_id: uuid("0190f1a2-0000-7000-8000-0000000000f2").into(),
                occurred_at: UtcMicros(1_789_999_900_000_000),
                event: EventV2::ServiceRecorded(ServiceRecorded {
                    technique: Technique::DeepTissue,
                    cpt_code: CptCode::new("97124").expect("valid"),
                    minutes: 30,
                    body_region: BodyRegion::Shoulder,
                    body_side: Some(BodySide::Left),
                    description: None,
                }),
            },
            EventRecordV2 {
                event_id: uuid("0190f1a2-0000-7000-8000-0000000000f3").into(),
                occurred_at: UtcMicros(1_789_999_950_000_000),
                event: EventV2::SessionCompleted,
            },
        ],
    }
}

#[test]
fn frozen_v2_types_still_encode_to_the_committed_fixture() {
    let bytes = encode_versioned(&VersionedCommit::V2(golden_v2_commit())).expect("encodes");
    if std::env::var_os("CLAIMLEDGER_WRITE_FIXTURES").is_some() {
        std::fs::write(v2_fixture_path(), &bytes).expect("fixture written");
    }
    let committed = std::fs::read(v2_fixture_path()).expect("the fixture is committed");
    assert_eq!(
        bytes, committed,
        "the version 2 shapes changed; released shapes are frozen (see claimledger_events::Event)"
    );
}

#[test]
fn committed_v2_bytes_decode_and_upcast_to_the_current_shape() {
    let committed = std::fs::read(v2_fixture_path()).expect("the fixture is committed");
    assert_eq!(
        decode_versioned(&committed)
            .expect("v2 bytes decode")
            .schema_version(),
        2
    );
    let current = decode(&committed).expect("v2 bytes decode into the current type");
    assert_eq!(current.events.len(), 3);
    assert_eq!(
        current.events[0].event,
        Event::SessionScheduled(SessionScheduled {
            therapist: uuid("0190f1a2-0000-7000-8000-0000000000b1").into(),
            patient: uuid("0190f1a2-0000-7000-8000-0000000000b2").into(),
            coverage: Coverage::Payer {
                payer: uuid("0190f1a2-0000-7000-8000-0000000000b3").into(),
                coverage: uuid("0190f1a2-0000-7000-8000-0000000000b4").into(),
            },
            referral: None,
            scheduled_start: UtcMicros(1_789_999_000_000_000),
            planned_minutes: 60,
        })
    );
    assert_eq!(current.events[2].event, Event::SessionCompleted);
}

#[test]
fn a_v2_member_id_that_is_not_a_uuid_upcasts_to_the_same_derived_id_every_time() {
    let payer = uuid("0190f1a2-0000-7000-8000-0000000000b3").into();
    let text = |member_id: &str| CoverageV2::Payer {
        payer,
        member_id: member_id.to_owned(),
    };
    let first = upcast_coverage_v2_to_v3(text("W123456789"));
    let again = upcast_coverage_v2_to_v3(text("W123456789"));
    let other = upcast_coverage_v2_to_v3(text("W123456780"));
    let empty = upcast_coverage_v2_to_v3(text(""));
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_ne!(first, empty);
    let Coverage::Payer {
        payer: kept,
        coverage,
    } = first
    else {
        panic!("a payer coverage stays a payer coverage");
    };
    assert_eq!(kept, payer);
    assert_eq!(coverage.as_uuid().get_version_num(), 5);
    assert_eq!(
        upcast_coverage_v2_to_v3(CoverageV2::SelfPay),
        Coverage::SelfPay
    );
}

#[test]
fn v1_commits_upcast_through_version_2_to_the_current_shape() {
    let through_v2 = claimledger_events::v2::upcast_commit_v2_to_v3(
        claimledger_events::v1::upcast_commit_v1_to_v2(golden_v1_commit()),
    );
    let committed = std::fs::read(fixture_path()).expect("the fixture is committed");
    assert_eq!(decode(&committed).expect("v1 bytes decode"), through_v2);
}
