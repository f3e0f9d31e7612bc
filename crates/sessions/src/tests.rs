//! Given/when/then scenarios for every session decision: lifecycle paths and every refusal.

use chrono::{Duration, NaiveDate};
use claimledger_billing::codes::{CptCode, Technique};
use claimledger_billing::validation::Icd10Code;
use claimledger_events::{ClinicId, EventId, PatientId, PayerId, TherapistId};
use uuid::Uuid;

use crate::body::{BodyRegion, BodySide};
use crate::command::{
    CoverageId, CoverageTerms, DecisionContext, MAX_BOOKING_DAYS_AHEAD, MAX_BOOKING_DAYS_BEHIND,
    Payment, RecordModality, RecordService, ReferralId, ReferralTerms, ScheduleSession,
    SessionCommand,
};
use crate::error::SessionError;
use crate::event::{ModalityRecorded, Scheduled, ServiceRecorded, SessionEvent};
use crate::schema;
use crate::session::{Session, SessionStatus};
use crate::testing::{CLINIC_TIME_ZONE, fixed_now, given};

const PATIENT: PatientId = PatientId::from_bytes([1; 16]);
const OTHER_PATIENT: PatientId = PatientId::from_bytes([2; 16]);
const PAYER: PayerId = PayerId::from_bytes([3; 16]);
const CLINIC: ClinicId = ClinicId::from_bytes([4; 16]);
const THERAPIST: TherapistId = TherapistId::from_bytes([5; 16]);
const COVERAGE: CoverageId = CoverageId(Uuid::from_bytes([6; 16]));
const REFERRAL: ReferralId = ReferralId(Uuid::from_bytes([7; 16]));
const SERVICE: EventId = EventId::from_bytes([8; 16]);
const MODALITY: EventId = EventId::from_bytes([9; 16]);
/// The id of a log event that is neither a service nor a modality.
const OTHER_EVENT: EventId = EventId::from_bytes([10; 16]);

fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

fn schedule_command() -> ScheduleSession {
    ScheduleSession {
        clinic: CLINIC,
        therapist: THERAPIST,
        patient: PATIENT,
        payment: Payment::Payer {
            payer: PAYER,
            coverage: COVERAGE,
        },
        referral: None,
        scheduled_start: fixed_now() + Duration::hours(1),
        planned_minutes: 60,
    }
}

fn scheduled() -> SessionEvent {
    let command = schedule_command();
    SessionEvent::Scheduled(Scheduled {
        clinic: command.clinic,
        therapist: command.therapist,
        patient: command.patient,
        payment: command.payment,
        referral: command.referral,
        scheduled_start: command.scheduled_start,
        planned_minutes: command.planned_minutes,
    })
}

fn checked_in() -> SessionEvent {
    SessionEvent::CheckedIn { at: fixed_now() }
}

fn coverage_terms() -> CoverageTerms {
    CoverageTerms {
        patient: PATIENT,
        payer: PAYER,
        valid_from: day(2026, 1, 1),
        valid_to: Some(day(2026, 12, 31)),
    }
}

fn referral_terms() -> ReferralTerms {
    ReferralTerms {
        patient: PATIENT,
        issued_on: day(2026, 2, 1),
        expires_on: day(2026, 4, 30),
        authorised_visits: 6,
        visits_booked: 2,
    }
}

fn schedule_context() -> DecisionContext {
    DecisionContext {
        coverage: Some(coverage_terms()),
        ..DecisionContext::at(fixed_now(), CLINIC_TIME_ZONE)
    }
}

fn massage(minutes: u16) -> RecordService {
    RecordService {
        id: SERVICE,
        technique: Technique::SwedishMassage,
        code: CptCode::Massage,
        minutes,
        body_region: BodyRegion::LowerBack,
        body_side: Some(BodySide::Bilateral),
        description: None,
    }
}

fn recorded(service: &RecordService) -> SessionEvent {
    SessionEvent::ServiceRecorded(ServiceRecorded {
        id: service.id,
        technique: service.technique,
        code: service.code,
        minutes: service.minutes,
        body_region: service.body_region.clone(),
        body_side: service.body_side,
        description: service.description.clone(),
    })
}

fn diagnosis(code: &str) -> Icd10Code {
    Icd10Code::parse("codes", code).expect("a valid ICD-10 code")
}

fn diagnosed() -> SessionEvent {
    SessionEvent::DiagnosesAttached {
        codes: vec![diagnosis("M54.50")],
    }
}

fn completed() -> SessionEvent {
    SessionEvent::Completed { at: fixed_now() }
}

fn completed_history() -> Vec<SessionEvent> {
    vec![
        scheduled(),
        checked_in(),
        recorded(&massage(30)),
        diagnosed(),
        completed(),
    ]
}

#[test]
fn given_no_history_when_scheduled_with_covered_payer_then_the_session_is_booked() {
    let session = given([])
        .with_context(schedule_context())
        .when(SessionCommand::Schedule(schedule_command()))
        .then([scheduled()]);
    assert_eq!(session.status(), SessionStatus::Scheduled);
    assert_eq!(
        session.booking().map(|booking| booking.planned_minutes),
        Some(60)
    );
}

#[test]
fn given_a_scheduled_session_when_scheduled_again_then_it_is_refused_as_already_scheduled() {
    let error = given([scheduled()])
        .with_context(schedule_context())
        .when(SessionCommand::Schedule(schedule_command()))
        .then_refused();
    assert_eq!(error, SessionError::AlreadyScheduled);
    assert!(error.is_state_conflict());
}

#[test]
fn given_a_too_long_visit_when_scheduled_then_planned_minutes_is_refused() {
    let command = ScheduleSession {
        planned_minutes: 241,
        ..schedule_command()
    };
    let error = given([])
        .with_context(schedule_context())
        .when(SessionCommand::Schedule(command))
        .then_refused();
    assert_eq!(error.field(), "planned_minutes");
}

#[test]
fn given_a_visit_under_eight_minutes_when_scheduled_then_planned_minutes_is_refused() {
    let command = ScheduleSession {
        planned_minutes: 7,
        ..schedule_command()
    };
    let error = given([])
        .with_context(schedule_context())
        .when(SessionCommand::Schedule(command))
        .then_refused();
    assert_eq!(error.field(), "planned_minutes");
}

#[test]
fn given_a_start_years_away_when_scheduled_then_scheduled_start_is_refused() {
    let context = schedule_context();
    for start in [
        context.now + Duration::days(MAX_BOOKING_DAYS_AHEAD + 1),
        context.now - Duration::days(MAX_BOOKING_DAYS_BEHIND + 1),
        chrono::DateTime::<chrono::Utc>::MAX_UTC,
        chrono::DateTime::<chrono::Utc>::MIN_UTC,
    ] {
        let command = ScheduleSession {
            scheduled_start: start,
            ..schedule_command()
        };
        let error = given([])
            .with_context(schedule_context())
            .when(SessionCommand::Schedule(command))
            .then_refused();
        assert_eq!(error.field(), "scheduled_start", "{start}");
    }
}

#[test]
fn given_a_payer_session_without_coverage_terms_when_scheduled_then_coverage_is_refused() {
    let context = DecisionContext::at(fixed_now(), CLINIC_TIME_ZONE);
    let error = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(schedule_command()))
        .then_refused();
    assert_eq!(error.field(), "coverage_id");
}

#[test]
fn given_another_patients_coverage_when_scheduled_then_coverage_is_refused() {
    let context = DecisionContext {
        coverage: Some(CoverageTerms {
            patient: OTHER_PATIENT,
            ..coverage_terms()
        }),
        ..schedule_context()
    };
    let error = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(schedule_command()))
        .then_refused();
    assert_eq!(error.field(), "coverage_id");
    assert!(error.reason().contains("another patient"), "{error}");
}

#[test]
fn given_a_coverage_with_another_payer_when_scheduled_then_coverage_is_refused() {
    let other_payer = PayerId::from_bytes([9; 16]);
    let context = DecisionContext {
        coverage: Some(CoverageTerms {
            payer: other_payer,
            ..coverage_terms()
        }),
        ..schedule_context()
    };
    let error = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(schedule_command()))
        .then_refused();
    assert!(error.reason().contains("another payer"), "{error}");
}

#[test]
fn given_an_ended_coverage_when_scheduled_then_coverage_is_refused_for_the_date_of_service() {
    let context = DecisionContext {
        coverage: Some(CoverageTerms {
            valid_to: Some(day(2026, 2, 28)),
            ..coverage_terms()
        }),
        ..schedule_context()
    };
    let error = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(schedule_command()))
        .then_refused();
    assert_eq!(error.field(), "coverage_id");
    assert!(error.reason().contains("2026-03-02"), "{error}");
}

#[test]
fn given_a_late_evening_utc_start_when_scheduled_then_the_date_of_service_is_the_clinics_local_date()
 {
    // 2026-03-02 03:00 UTC is 2026-03-01 22:00 in New York: a coverage starting on 2 March does not
    // cover it, although the UTC date would suggest otherwise.
    let command = ScheduleSession {
        scheduled_start: fixed_now() - Duration::hours(12),
        ..schedule_command()
    };
    let context = DecisionContext {
        coverage: Some(CoverageTerms {
            valid_from: day(2026, 3, 2),
            ..coverage_terms()
        }),
        ..schedule_context()
    };
    let error = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(command))
        .then_refused();
    assert!(error.reason().contains("2026-03-01"), "{error}");
}

#[test]
fn given_a_self_pay_session_when_scheduled_then_no_coverage_is_needed() {
    let command = ScheduleSession {
        payment: Payment::SelfPay,
        ..schedule_command()
    };
    let context = DecisionContext::at(fixed_now(), CLINIC_TIME_ZONE);
    let events = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(command.clone()))
        .then([SessionEvent::Scheduled(Scheduled {
            clinic: CLINIC,
            therapist: THERAPIST,
            patient: PATIENT,
            payment: Payment::SelfPay,
            referral: None,
            scheduled_start: command.scheduled_start,
            planned_minutes: 60,
        })]);
    assert_eq!(events.status(), SessionStatus::Scheduled);
}

#[test]
fn given_a_referral_in_force_when_scheduled_then_the_session_is_booked() {
    let command = ScheduleSession {
        referral: Some(REFERRAL),
        ..schedule_command()
    };
    let context = DecisionContext {
        referral: Some(referral_terms()),
        ..schedule_context()
    };
    // The booking records the referral it is given under (on the log since schema version 3).
    let session = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(command))
        .then([SessionEvent::Scheduled(Scheduled {
            referral: Some(REFERRAL),
            ..match scheduled() {
                SessionEvent::Scheduled(inner) => inner,
                _ => unreachable!("scheduled() builds a Scheduled event"),
            }
        })]);
    assert_eq!(
        session.booking().and_then(|booking| booking.referral),
        Some(REFERRAL)
    );
}

#[test]
fn given_an_expired_referral_when_scheduled_then_the_referral_is_refused() {
    let command = ScheduleSession {
        referral: Some(REFERRAL),
        ..schedule_command()
    };
    let context = DecisionContext {
        referral: Some(ReferralTerms {
            expires_on: day(2026, 3, 1),
            ..referral_terms()
        }),
        ..schedule_context()
    };
    let error = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(command))
        .then_refused();
    assert_eq!(error.field(), "referral_id");
    assert!(
        error.reason().contains("not on the date of service"),
        "{error}"
    );
}

#[test]
fn given_a_fully_booked_referral_when_scheduled_then_the_referral_is_refused() {
    let command = ScheduleSession {
        referral: Some(REFERRAL),
        ..schedule_command()
    };
    let context = DecisionContext {
        referral: Some(ReferralTerms {
            visits_booked: 6,
            ..referral_terms()
        }),
        ..schedule_context()
    };
    let error = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(command))
        .then_refused();
    assert!(error.reason().contains("authorises 6 visits"), "{error}");
}

#[test]
fn given_another_patients_referral_when_scheduled_then_the_referral_is_refused() {
    let command = ScheduleSession {
        referral: Some(REFERRAL),
        ..schedule_command()
    };
    let context = DecisionContext {
        referral: Some(ReferralTerms {
            patient: OTHER_PATIENT,
            ..referral_terms()
        }),
        ..schedule_context()
    };
    let error = given([])
        .with_context(context)
        .when(SessionCommand::Schedule(command))
        .then_refused();
    assert_eq!(error.field(), "referral_id");
}

#[test]
fn given_a_missing_referral_when_scheduled_then_the_referral_is_refused() {
    let command = ScheduleSession {
        referral: Some(REFERRAL),
        ..schedule_command()
    };
    let error = given([])
        .with_context(schedule_context())
        .when(SessionCommand::Schedule(command))
        .then_refused();
    assert_eq!(error.field(), "referral_id");
}

#[test]
fn given_no_history_when_checked_in_then_it_is_refused_as_never_scheduled() {
    assert_eq!(
        given([]).when(SessionCommand::CheckIn).then_refused(),
        SessionError::NotScheduled
    );
}

#[test]
fn given_a_scheduled_session_when_checked_in_then_the_arrival_is_recorded() {
    let session = given([scheduled()])
        .when(SessionCommand::CheckIn)
        .then([checked_in()]);
    assert_eq!(session.status(), SessionStatus::CheckedIn);
    assert_eq!(session.checked_in_at(), Some(fixed_now()));
}

#[test]
fn given_a_checked_in_session_when_checked_in_again_then_the_status_is_refused() {
    let error = given([scheduled(), checked_in()])
        .when(SessionCommand::CheckIn)
        .then_refused();
    assert_eq!(
        error,
        SessionError::WrongStatus {
            command: "check_in",
            status: SessionStatus::CheckedIn
        }
    );
    assert_eq!(error.field(), "status");
}

#[test]
fn given_a_checked_in_session_when_a_covered_service_is_recorded_then_it_is_kept() {
    let service = massage(30);
    let session = given([scheduled(), checked_in()])
        .when(SessionCommand::RecordService(service.clone()))
        .then([recorded(&service)]);
    assert_eq!(session.recorded_service_minutes(), 30);
}

#[test]
fn given_a_scheduled_session_when_a_service_is_recorded_before_check_in_then_the_status_is_refused()
{
    let error = given([scheduled()])
        .when(SessionCommand::RecordService(massage(30)))
        .then_refused();
    assert_eq!(
        error,
        SessionError::WrongStatus {
            command: "record_service",
            status: SessionStatus::Scheduled
        }
    );
}

#[test]
fn given_a_technique_the_code_does_not_cover_when_recorded_then_the_code_is_refused_as_overcoding()
{
    let service = RecordService {
        technique: Technique::SwedishMassage,
        code: CptCode::ManualTherapy,
        ..massage(30)
    };
    let error = given([scheduled(), checked_in()])
        .when(SessionCommand::RecordService(service))
        .then_refused();
    assert_eq!(error.field(), "code");
    assert!(error.reason().contains("billed as 97124"), "{error}");
}

#[test]
fn given_an_unlisted_service_without_description_when_recorded_then_the_description_is_required() {
    let service = RecordService {
        technique: Technique::Cupping,
        code: CptCode::UnlistedTherapeuticProcedure,
        description: Some("  ".to_owned()),
        ..massage(15)
    };
    let error = given([scheduled(), checked_in()])
        .when(SessionCommand::RecordService(service))
        .then_refused();
    assert_eq!(error.field(), "description");
}

#[test]
fn given_an_unlisted_service_with_description_when_recorded_then_the_trimmed_description_is_kept() {
    let service = RecordService {
        technique: Technique::Cupping,
        code: CptCode::UnlistedTherapeuticProcedure,
        description: Some(" dry cupping, upper trapezius ".to_owned()),
        ..massage(15)
    };
    let expected = RecordService {
        description: Some("dry cupping, upper trapezius".to_owned()),
        ..service.clone()
    };
    given([scheduled(), checked_in()])
        .when(SessionCommand::RecordService(service))
        .then([recorded(&expected)]);
}

#[test]
fn given_a_modality_code_when_recorded_as_a_service_then_the_code_is_refused() {
    let service = RecordService {
        code: CptCode::HotColdPacks,
        ..massage(10)
    };
    let error = given([scheduled(), checked_in()])
        .when(SessionCommand::RecordService(service))
        .then_refused();
    assert!(
        error.reason().contains("record it as a modality"),
        "{error}"
    );
}

#[test]
fn given_zero_minutes_when_a_service_is_recorded_then_minutes_are_refused() {
    let error = given([scheduled(), checked_in()])
        .when(SessionCommand::RecordService(massage(0)))
        .then_refused();
    assert_eq!(error.field(), "minutes");
}

#[test]
fn given_services_filling_the_visit_when_one_more_minute_is_recorded_then_the_visit_length_is_refused()
 {
    let history = [scheduled(), checked_in(), recorded(&massage(45))];
    let error = given(history)
        .when(SessionCommand::RecordService(massage(16)))
        .then_refused();
    assert_eq!(
        error,
        SessionError::ExceedsVisitLength {
            requested: 16,
            total: 61,
            planned: 60
        }
    );
    assert_eq!(error.field(), "minutes");
}

#[test]
fn given_services_when_the_visit_is_filled_exactly_then_it_is_accepted() {
    let history = [scheduled(), checked_in(), recorded(&massage(45))];
    let session = given(history)
        .when(SessionCommand::RecordService(massage(15)))
        .then([recorded(&massage(15))]);
    assert_eq!(session.recorded_service_minutes(), 60);
}

#[test]
fn given_a_checked_in_session_when_hot_packs_are_recorded_then_the_modality_is_kept() {
    let command = RecordModality {
        id: MODALITY,
        code: CptCode::HotColdPacks,
        minutes: 10,
    };
    let session = given([scheduled(), checked_in()])
        .when(SessionCommand::RecordModality(command))
        .then([SessionEvent::ModalityRecorded(ModalityRecorded {
            id: MODALITY,
            code: CptCode::HotColdPacks,
            minutes: 10,
        })]);
    assert_eq!(session.modalities().len(), 1);
}

#[test]
fn given_a_timed_code_when_recorded_as_a_modality_then_the_code_is_refused() {
    let command = RecordModality {
        id: MODALITY,
        code: CptCode::ManualTherapy,
        minutes: 10,
    };
    let error = given([scheduled(), checked_in()])
        .when(SessionCommand::RecordModality(command))
        .then_refused();
    assert_eq!(error.field(), "code");
}

#[test]
fn given_a_modality_longer_than_the_visit_when_recorded_then_minutes_are_refused() {
    let command = RecordModality {
        id: MODALITY,
        code: CptCode::HotColdPacks,
        minutes: 61,
    };
    let error = given([scheduled(), checked_in()])
        .when(SessionCommand::RecordModality(command))
        .then_refused();
    assert_eq!(error.field(), "minutes");
}

#[test]
fn given_a_checked_in_session_when_diagnoses_are_attached_then_they_are_kept_in_order() {
    let codes = vec![diagnosis("M54.50"), diagnosis("M62.830")];
    let session = given([scheduled(), checked_in()])
        .when(SessionCommand::AttachDiagnoses(codes.clone()))
        .then([SessionEvent::DiagnosesAttached {
            codes: codes.clone(),
        }]);
    assert_eq!(session.diagnoses(), codes.as_slice());
}

#[test]
fn given_an_attached_diagnosis_when_attached_again_then_the_duplicate_is_refused_by_index() {
    let codes = vec![diagnosis("M62.830"), diagnosis("M54.50")];
    let error = given([scheduled(), checked_in(), diagnosed()])
        .when(SessionCommand::AttachDiagnoses(codes))
        .then_refused();
    assert_eq!(error.field(), "codes[1]");
}

#[test]
fn given_no_codes_when_diagnoses_are_attached_then_the_list_is_refused() {
    let error = given([scheduled(), checked_in()])
        .when(SessionCommand::AttachDiagnoses(Vec::new()))
        .then_refused();
    assert_eq!(error.field(), "codes");
}

#[test]
fn given_twelve_diagnoses_when_a_thirteenth_is_attached_then_the_list_is_refused() {
    let twelve: Vec<Icd10Code> = (0..12)
        .map(|index| diagnosis(&format!("M79.{index}")))
        .collect();
    let history = [
        scheduled(),
        checked_in(),
        SessionEvent::DiagnosesAttached { codes: twelve },
    ];
    let error = given(history)
        .when(SessionCommand::AttachDiagnoses(vec![diagnosis("M54.2")]))
        .then_refused();
    assert!(error.reason().contains("at most 12"), "{error}");
}

#[test]
fn given_a_recorded_and_diagnosed_visit_when_completed_then_the_record_closes() {
    let history = [
        scheduled(),
        checked_in(),
        recorded(&massage(30)),
        diagnosed(),
    ];
    let session = given(history)
        .when(SessionCommand::Complete)
        .then([completed()]);
    assert_eq!(session.status(), SessionStatus::Completed);
    assert_eq!(session.completed_at(), Some(fixed_now()));
}

#[test]
fn given_nothing_recorded_when_completed_then_services_are_required() {
    let error = given([scheduled(), checked_in(), diagnosed()])
        .when(SessionCommand::Complete)
        .then_refused();
    assert_eq!(error.field(), "services");
}

#[test]
fn given_no_diagnosis_when_completed_then_a_diagnosis_is_required() {
    let error = given([scheduled(), checked_in(), recorded(&massage(30))])
        .when(SessionCommand::Complete)
        .then_refused();
    assert_eq!(error.field(), "diagnoses");
}

#[test]
fn given_a_completed_session_when_a_service_is_recorded_then_the_record_is_closed_until_amended() {
    let error = given(completed_history())
        .when(SessionCommand::RecordService(massage(10)))
        .then_refused();
    assert_eq!(
        error,
        SessionError::CompletedRecordIsClosed {
            command: "record_service"
        }
    );
    assert!(error.reason().contains("amend it"), "{error}");
}

#[test]
fn given_a_completed_session_when_diagnoses_or_modalities_are_added_then_the_record_is_closed() {
    let modality = RecordModality {
        id: MODALITY,
        code: CptCode::HotColdPacks,
        minutes: 10,
    };
    assert!(
        given(completed_history())
            .when(SessionCommand::RecordModality(modality))
            .then_refused()
            .is_state_conflict()
    );
    let codes = vec![diagnosis("M62.830")];
    assert!(
        given(completed_history())
            .when(SessionCommand::AttachDiagnoses(codes))
            .then_refused()
            .is_state_conflict()
    );
}

#[test]
fn given_a_completed_session_when_amended_then_recording_reopens_and_it_completes_again() {
    let reason = "missed the second region".to_owned();
    let mut history = completed_history();
    history.push(SessionEvent::Amended {
        reason: reason.clone(),
    });
    let after_amend = given(completed_history())
        .when(SessionCommand::Amend {
            reason: reason.clone(),
        })
        .then([SessionEvent::Amended { reason }]);
    assert_eq!(after_amend.status(), SessionStatus::Amending);
    given(history.clone())
        .when(SessionCommand::RecordService(massage(15)))
        .then([recorded(&massage(15))]);
    history.push(recorded(&massage(15)));
    let session = given(history)
        .when(SessionCommand::Complete)
        .then([completed()]);
    assert_eq!(session.recorded_service_minutes(), 45);
    assert_eq!(session.amendment_reasons().len(), 1);
}

#[test]
fn given_an_amendment_when_it_would_exceed_the_visit_length_then_minutes_are_still_capped() {
    let mut history = completed_history();
    history.push(SessionEvent::Amended {
        reason: "late entry".to_owned(),
    });
    let error = given(history)
        .when(SessionCommand::RecordService(massage(31)))
        .then_refused();
    assert_eq!(error.field(), "minutes");
}

#[test]
fn given_an_amendment_without_reason_when_amending_then_the_reason_is_required() {
    let error = given(completed_history())
        .when(SessionCommand::Amend {
            reason: " ".to_owned(),
        })
        .then_refused();
    assert_eq!(error.field(), "reason");
}

#[test]
fn given_a_checked_in_session_when_amended_then_the_status_is_refused() {
    let error = given([scheduled(), checked_in()])
        .when(SessionCommand::Amend {
            reason: "why".to_owned(),
        })
        .then_refused();
    assert_eq!(
        error,
        SessionError::WrongStatus {
            command: "amend",
            status: SessionStatus::CheckedIn
        }
    );
}

#[test]
fn given_a_scheduled_session_when_cancelled_then_it_ends_with_the_reason() {
    let session = given([scheduled()])
        .when(SessionCommand::Cancel {
            reason: "patient called in sick".to_owned(),
        })
        .then([SessionEvent::Cancelled {
            reason: "patient called in sick".to_owned(),
        }]);
    assert_eq!(session.status(), SessionStatus::Cancelled);
    assert_eq!(
        session.cancellation_reason(),
        Some("patient called in sick")
    );
}

#[test]
fn given_a_checked_in_session_when_cancelled_then_it_ends() {
    given([scheduled(), checked_in()])
        .when(SessionCommand::Cancel {
            reason: "fire alarm".to_owned(),
        })
        .then([SessionEvent::Cancelled {
            reason: "fire alarm".to_owned(),
        }]);
}

#[test]
fn given_a_completed_session_when_cancelled_then_the_record_is_closed() {
    let error = given(completed_history())
        .when(SessionCommand::Cancel {
            reason: "oops".to_owned(),
        })
        .then_refused();
    assert_eq!(
        error,
        SessionError::WrongStatus {
            command: "cancel",
            status: SessionStatus::Completed
        }
    );
}

#[test]
fn given_a_cancelled_session_when_checked_in_then_the_status_is_refused() {
    let history = [
        scheduled(),
        SessionEvent::Cancelled {
            reason: "x".to_owned(),
        },
    ];
    let error = given(history).when(SessionCommand::CheckIn).then_refused();
    assert_eq!(
        error,
        SessionError::WrongStatus {
            command: "check_in",
            status: SessionStatus::Cancelled
        }
    );
}

#[test]
fn given_a_too_long_cancellation_reason_when_cancelled_then_the_reason_is_refused() {
    let error = given([scheduled()])
        .when(SessionCommand::Cancel {
            reason: "x".repeat(501),
        })
        .then_refused();
    assert_eq!(error.field(), "reason");
}

#[test]
fn given_a_session_that_started_when_marked_no_show_then_it_ends() {
    let context = DecisionContext::at(fixed_now() + Duration::hours(2), CLINIC_TIME_ZONE);
    let session = given([scheduled()])
        .with_context(context)
        .when(SessionCommand::NoShow)
        .then([SessionEvent::NoShow]);
    assert_eq!(session.status(), SessionStatus::NoShow);
}

#[test]
fn given_a_session_not_yet_started_when_marked_no_show_then_it_is_refused() {
    let error = given([scheduled()])
        .when(SessionCommand::NoShow)
        .then_refused();
    assert_eq!(error.field(), "status");
    assert!(error.reason().contains("only after its start"), "{error}");
}

#[test]
fn given_a_checked_in_session_when_marked_no_show_then_the_status_is_refused() {
    let context = DecisionContext::at(fixed_now() + Duration::hours(2), CLINIC_TIME_ZONE);
    let error = given([scheduled(), checked_in()])
        .with_context(context)
        .when(SessionCommand::NoShow)
        .then_refused();
    assert_eq!(
        error,
        SessionError::WrongStatus {
            command: "no_show",
            status: SessionStatus::CheckedIn
        }
    );
}

#[test]
fn given_every_domain_event_when_converted_to_the_log_and_back_then_it_is_unchanged() {
    let cupping = RecordService {
        id: EventId::from_bytes([11; 16]),
        technique: Technique::OtherUnlisted,
        code: CptCode::UnlistedTherapeuticProcedure,
        body_region: BodyRegion::Other("jaw".to_owned()),
        body_side: None,
        description: Some("instrument-assisted work".to_owned()),
        minutes: 10,
    };
    let events = vec![
        scheduled(),
        SessionEvent::Scheduled(Scheduled {
            payment: Payment::SelfPay,
            ..match scheduled() {
                SessionEvent::Scheduled(inner) => inner,
                _ => unreachable!("scheduled() builds a Scheduled event"),
            }
        }),
        checked_in(),
        recorded(&massage(30)),
        recorded(&cupping),
        SessionEvent::ModalityRecorded(ModalityRecorded {
            id: MODALITY,
            code: CptCode::HotColdPacks,
            minutes: 10,
        }),
        diagnosed(),
        completed(),
        SessionEvent::Amended {
            reason: "late entry".to_owned(),
        },
        SessionEvent::Cancelled {
            reason: "moved".to_owned(),
        },
        SessionEvent::NoShow,
        SessionEvent::ServiceVoided {
            service: SERVICE,
            reason: "recorded on the wrong session".to_owned(),
        },
        SessionEvent::Scheduled(Scheduled {
            referral: Some(REFERRAL),
            ..match scheduled() {
                SessionEvent::Scheduled(inner) => inner,
                _ => unreachable!("scheduled() builds a Scheduled event"),
            }
        }),
    ];
    for event in events {
        let log_event = schema::to_log_event(&event);
        let at = schema::occurred_at(&event, fixed_now());
        let event_id = schema::recorded_id(&event).unwrap_or(OTHER_EVENT);
        let back = schema::from_log_event(CLINIC, event_id, at, &log_event)
            .expect("decodes")
            .expect("is a session event");
        assert_eq!(back, event);
    }
}

#[test]
fn given_each_exercise_kind_when_converted_to_the_log_and_back_then_the_kind_is_kept() {
    for technique in [
        Technique::StrengthExercise,
        Technique::EnduranceExercise,
        Technique::RangeOfMotionExercise,
        Technique::FlexibilityExercise,
    ] {
        let service = RecordService {
            technique,
            code: CptCode::TherapeuticExercise,
            ..massage(20)
        };
        let event = recorded(&service);
        let back =
            schema::from_log_event(CLINIC, SERVICE, fixed_now(), &schema::to_log_event(&event))
                .expect("decodes")
                .expect("is a session event");
        assert_eq!(back, event);
    }
}

#[test]
fn given_a_generic_therapeutic_exercise_on_the_log_when_read_then_it_still_bills_97110() {
    let log_event =
        claimledger_events::Event::ServiceRecorded(claimledger_events::session::ServiceRecorded {
            technique: claimledger_events::session::Technique::TherapeuticExercise,
            cpt_code: claimledger_events::CptCode::new("97110").expect("a code"),
            minutes: 20,
            body_region: claimledger_events::session::BodyRegion::Leg,
            body_side: None,
            description: None,
        });
    let back = schema::from_log_event(CLINIC, SERVICE, fixed_now(), &log_event)
        .expect("decodes")
        .expect("is a session event");
    let SessionEvent::ServiceRecorded(back) = back else {
        panic!("expected a service, got {back:?}")
    };
    assert_eq!(back.technique.billing_code(), CptCode::TherapeuticExercise);
    assert!(back.code.covers(back.technique));
}

#[test]
fn given_a_schema_v3_booking_on_the_log_when_read_back_then_coverage_and_referral_are_kept() {
    let log_event = claimledger_events::Event::SessionScheduled(
        claimledger_events::session::SessionScheduled {
            therapist: THERAPIST,
            patient: PATIENT,
            coverage: claimledger_events::session::Coverage::Payer {
                payer: PAYER,
                coverage: COVERAGE.0.into(),
            },
            referral: Some(REFERRAL.0.into()),
            scheduled_start: schema::to_micros(fixed_now()),
            planned_minutes: 60,
        },
    );
    let back = schema::from_log_event(CLINIC, OTHER_EVENT, fixed_now(), &log_event)
        .expect("decodes")
        .expect("is a session event");
    let SessionEvent::Scheduled(back) = back else {
        panic!("expected a booking, got {back:?}")
    };
    assert_eq!(
        back.payment,
        Payment::Payer {
            payer: PAYER,
            coverage: COVERAGE
        }
    );
    assert_eq!(back.referral, Some(REFERRAL));
}

#[test]
fn given_the_full_lifecycle_when_folded_then_the_state_matches_the_history() {
    let session = Session::from_events(&completed_history());
    assert_eq!(session.status(), SessionStatus::Completed);
    assert_eq!(session.services().len(), 1);
    assert_eq!(session.diagnoses(), [diagnosis("M54.50")]);
    assert_eq!(
        session.date_of_service(CLINIC_TIME_ZONE),
        Some(day(2026, 3, 2))
    );
}

fn visit_facts() -> crate::visit::VisitFacts {
    use claimledger_billing::claim::PlaceOfService;
    use claimledger_billing::validation::{Npi, TaxId};
    crate::visit::VisitFacts {
        clinic_time_zone: CLINIC_TIME_ZONE,
        place_of_service: PlaceOfService::OFFICE,
        clinic_npi: Npi::parse("npi", "1234567893").expect("a valid NPI"),
        tax_id: TaxId::parse("tax_id", "12-3456789").expect("a valid tax id"),
        rendering_npi: Npi::parse("npi", "1558598797").expect("a valid NPI"),
        referral: None,
        primary_code: None,
    }
}

#[test]
fn given_a_completed_session_when_converted_then_the_visit_carries_its_services_and_local_date() {
    let mut history = vec![scheduled(), checked_in(), recorded(&massage(30))];
    history.push(SessionEvent::ModalityRecorded(ModalityRecorded {
        id: MODALITY,
        code: CptCode::HotColdPacks,
        minutes: 10,
    }));
    history.extend([diagnosed(), completed()]);
    let visit = crate::visit::completed_visit(&Session::from_events(&history), &visit_facts())
        .expect("a completed visit");
    assert_eq!(visit.date_of_service, day(2026, 3, 2));
    assert_eq!(visit.services.len(), 1);
    assert_eq!(visit.services[0].code, CptCode::Massage);
    assert_eq!(visit.services[0].minutes, 30);
    assert_eq!(visit.services[0].body_region, "lower_back:bilateral");
    assert_eq!(visit.modalities[0].code, CptCode::HotColdPacks);
    assert_eq!(visit.diagnoses, ["M54.50"]);
}

#[test]
fn given_a_session_being_amended_when_converted_then_it_is_not_billed_yet() {
    let mut history = completed_history();
    history.push(SessionEvent::Amended {
        reason: "late entry".to_owned(),
    });
    let error =
        crate::visit::completed_visit(&Session::from_events(&history), &visit_facts()).unwrap_err();
    assert_eq!(
        error,
        crate::visit::VisitError::NotCompleted {
            status: SessionStatus::Amending
        }
    );
}

#[test]
fn given_a_completed_visit_when_the_billing_core_derives_its_claim_then_the_lines_follow_the_session()
 {
    use claimledger_billing::claim::derive_claim;
    use claimledger_billing::{Cents, PayerPolicy, PriceList, ReferenceData};
    let visit =
        crate::visit::completed_visit(&Session::from_events(&completed_history()), &visit_facts())
            .expect("a visit");
    let prices = PriceList::from_pairs([(CptCode::Massage, Cents(4_000))]);
    let derived = derive_claim(
        &visit,
        &PayerPolicy::example_medicare_like(),
        &ReferenceData::example(),
        &prices,
    )
    .expect("a claim");
    // 30 minutes of massage on 2 March 2026 in New York: one 97124 line with two units.
    assert_eq!(derived.claim.date_of_service, day(2026, 3, 2));
    assert_eq!(derived.claim.lines.len(), 1);
    assert_eq!(derived.claim.lines[0].code, CptCode::Massage);
    assert_eq!(derived.claim.lines[0].units, 2);
    assert_eq!(
        derived.claim.lines[0].rendering_npi,
        visit_facts().rendering_npi
    );
}

#[test]
fn given_the_crate_manifest_when_read_then_no_io_crate_is_a_normal_dependency() {
    let manifest = include_str!("../Cargo.toml");
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table");
    for forbidden in [
        "tokio",
        "sqlx",
        "async-nats",
        "axum",
        "tracing-subscriber",
        "anyhow",
        "reqwest",
    ] {
        let listed = dependencies
            .lines()
            .any(|line| line.trim_start().starts_with(forbidden));
        assert!(
            !listed,
            "the pure session domain must not depend on {forbidden}"
        );
    }
}

fn void(service: EventId) -> SessionCommand {
    SessionCommand::VoidService {
        service,
        reason: "recorded on the wrong patient".to_owned(),
    }
}

fn voided(service: EventId) -> SessionEvent {
    SessionEvent::ServiceVoided {
        service,
        reason: "recorded on the wrong patient".to_owned(),
    }
}

#[test]
fn given_a_recorded_service_when_voided_then_it_no_longer_counts_for_minutes() {
    let session = given([scheduled(), checked_in(), recorded(&massage(45))])
        .when(void(SERVICE))
        .then([voided(SERVICE)]);
    assert!(session.services().is_empty());
    assert_eq!(session.recorded_service_minutes(), 0);
    assert_eq!(session.voided().len(), 1);
    // The 45 voided minutes are free again within the 60-minute visit.
    let again = RecordService {
        id: EventId::from_bytes([12; 16]),
        ..massage(45)
    };
    given([
        scheduled(),
        checked_in(),
        recorded(&massage(45)),
        voided(SERVICE),
    ])
    .when(SessionCommand::RecordService(again.clone()))
    .then([recorded(&again)]);
}

#[test]
fn given_a_recorded_modality_when_voided_then_it_is_gone() {
    let hot_packs = SessionEvent::ModalityRecorded(ModalityRecorded {
        id: MODALITY,
        code: CptCode::HotColdPacks,
        minutes: 10,
    });
    let session = given([scheduled(), checked_in(), hot_packs])
        .when(void(MODALITY))
        .then([voided(MODALITY)]);
    assert!(session.modalities().is_empty());
}

#[test]
fn given_a_completed_session_when_a_service_is_voided_then_the_record_is_closed_until_amended() {
    let error = given(completed_history())
        .when(void(SERVICE))
        .then_refused();
    assert_eq!(
        error,
        SessionError::CompletedRecordIsClosed {
            command: "void_service"
        }
    );
    let mut amending = completed_history();
    amending.push(SessionEvent::Amended {
        reason: "wrong service".to_owned(),
    });
    let session = given(amending).when(void(SERVICE)).then([voided(SERVICE)]);
    assert!(session.services().is_empty());
}

#[test]
fn given_an_unknown_or_already_voided_service_when_voided_then_the_event_id_is_refused() {
    let unknown = given([scheduled(), checked_in(), recorded(&massage(30))])
        .when(void(OTHER_EVENT))
        .then_refused();
    assert_eq!(unknown.field(), "event_id");
    let twice = given([
        scheduled(),
        checked_in(),
        recorded(&massage(30)),
        voided(SERVICE),
    ])
    .when(void(SERVICE))
    .then_refused();
    assert_eq!(twice.field(), "event_id");
    assert!(twice.reason().contains("already voided"), "{twice}");
}

#[test]
fn given_a_void_without_reason_or_before_check_in_when_decided_then_it_is_refused() {
    let no_reason = given([scheduled(), checked_in(), recorded(&massage(30))])
        .when(SessionCommand::VoidService {
            service: SERVICE,
            reason: "  ".to_owned(),
        })
        .then_refused();
    assert_eq!(no_reason.field(), "reason");
    let scheduled_only = given([scheduled()]).when(void(SERVICE)).then_refused();
    assert_eq!(scheduled_only.field(), "status");
}

#[test]
fn given_a_voided_service_when_the_visit_is_billed_then_it_is_not_on_the_visit() {
    let kept = RecordService {
        id: EventId::from_bytes([13; 16]),
        code: CptCode::ManualTherapy,
        technique: Technique::MyofascialRelease,
        ..massage(20)
    };
    let history = vec![
        scheduled(),
        checked_in(),
        recorded(&massage(30)),
        recorded(&kept),
        voided(SERVICE),
        diagnosed(),
        completed(),
    ];
    let visit = crate::visit::completed_visit(&Session::from_events(&history), &visit_facts())
        .expect("a completed visit");
    assert_eq!(visit.services.len(), 1);
    assert_eq!(visit.services[0].code, CptCode::ManualTherapy);
}
