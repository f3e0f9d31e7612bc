//! The session aggregate: its state, the fold that rebuilds it from events, and the decisions that
//! turn a command into new events or a refusal.
//!
//! Lifecycle: `Scheduled → CheckedIn → Completed`, with `Completed → Amending → Completed` for
//! corrections, and `Cancelled` (from Scheduled or CheckedIn) or `NoShow` (from Scheduled) as ends.
//! Services, modalities and diagnoses are recorded only while the patient is checked in or while a
//! completed record is being amended; corrections are new events and nothing is rewritten.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use claimledger_billing::codes::CptCode;
use claimledger_billing::validation::Icd10Code;
use claimledger_events::{ClinicId, EventId, PatientId, TherapistId};

use crate::command::{
    DecisionContext, MAX_BOOKING_DAYS_AHEAD, MAX_BOOKING_DAYS_BEHIND, MAX_DIAGNOSES,
    MAX_PLANNED_MINUTES, MAX_TEXT_LENGTH, Payment, RecordModality, RecordService, ReferralId,
    ScheduleSession, SessionCommand,
};
use crate::error::SessionError;
use crate::event::{ModalityRecorded, Scheduled, ServiceRecorded, SessionEvent};

/// The shortest visit that can be booked: below 8 minutes no timed code bills a unit.
pub const MIN_PLANNED_MINUTES: u16 = 8;

/// The supervised modalities of the catalogue (domain.md section 3): recorded with
/// [`SessionCommand::RecordModality`], never as services.
pub const MODALITY_CODES: [CptCode; 2] = [CptCode::HotColdPacks, CptCode::MechanicalTraction];

/// Where a session is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionStatus {
    /// No event yet.
    #[default]
    NotScheduled,
    /// Booked; the patient has not arrived.
    Scheduled,
    /// The patient is here; services may be recorded.
    CheckedIn,
    /// The record is complete and closed.
    Completed,
    /// A completed record was reopened for correction.
    Amending,
    /// The booking was cancelled.
    Cancelled,
    /// The patient did not attend.
    NoShow,
}

impl SessionStatus {
    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::NotScheduled => "not_scheduled",
            SessionStatus::Scheduled => "scheduled",
            SessionStatus::CheckedIn => "checked_in",
            SessionStatus::Completed => "completed",
            SessionStatus::Amending => "amending",
            SessionStatus::Cancelled => "cancelled",
            SessionStatus::NoShow => "no_show",
        }
    }

    /// Whether services, modalities and diagnoses may be recorded.
    fn accepts_records(self) -> bool {
        matches!(self, SessionStatus::CheckedIn | SessionStatus::Amending)
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The booking facts of a scheduled session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    /// The clinic.
    pub clinic: ClinicId,
    /// The treating therapist.
    pub therapist: TherapistId,
    /// The patient.
    pub patient: PatientId,
    /// Who pays.
    pub payment: Payment,
    /// The referral the visit is given under, if any.
    pub referral: Option<ReferralId>,
    /// The booked start.
    pub scheduled_start: DateTime<Utc>,
    /// The booked length in minutes.
    pub planned_minutes: u16,
}

/// The state of one session, rebuilt by folding its events in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    status: SessionStatus,
    booking: Option<Booking>,
    checked_in_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    services: Vec<ServiceRecorded>,
    modalities: Vec<ModalityRecorded>,
    diagnoses: Vec<Icd10Code>,
    cancellation_reason: Option<String>,
    amendment_reasons: Vec<String>,
    voided: Vec<Voided>,
}

/// A service or modality that was voided, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voided {
    /// The voided service's or modality's id.
    pub service: EventId,
    /// Why it was voided.
    pub reason: String,
}

impl Session {
    /// Rebuilds a session from its events, oldest first.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a SessionEvent>) -> Session {
        let mut session = Session::default();
        for event in events {
            session.apply(event);
        }
        session
    }

    /// The lifecycle status.
    pub fn status(&self) -> SessionStatus {
        self.status
    }

    /// The booking, once scheduled.
    pub fn booking(&self) -> Option<&Booking> {
        self.booking.as_ref()
    }

    /// When the patient was checked in.
    pub fn checked_in_at(&self) -> Option<DateTime<Utc>> {
        self.checked_in_at
    }

    /// When the record was (last) completed.
    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.completed_at
    }

    /// The recorded services that count (voided ones excluded), in order.
    pub fn services(&self) -> &[ServiceRecorded] {
        &self.services
    }

    /// The recorded modalities that count (voided ones excluded), in order.
    pub fn modalities(&self) -> &[ModalityRecorded] {
        &self.modalities
    }

    /// The attached diagnoses, primary first.
    pub fn diagnoses(&self) -> &[Icd10Code] {
        &self.diagnoses
    }

    /// Why the session was cancelled, if it was.
    pub fn cancellation_reason(&self) -> Option<&str> {
        self.cancellation_reason.as_deref()
    }

    /// Why the record was amended, oldest first.
    pub fn amendment_reasons(&self) -> &[String] {
        &self.amendment_reasons
    }

    /// The voided services and modalities, oldest first.
    pub fn voided(&self) -> &[Voided] {
        &self.voided
    }

    /// The minutes of services recorded so far (voided ones excluded), which the visit's length
    /// caps.
    pub fn recorded_service_minutes(&self) -> u32 {
        self.services
            .iter()
            .map(|service| u32::from(service.minutes))
            .sum()
    }

    /// The date of service in the clinic's time zone, once scheduled.
    pub fn date_of_service(&self, clinic_time_zone: chrono_tz::Tz) -> Option<NaiveDate> {
        self.booking.as_ref().map(|booking| {
            booking
                .scheduled_start
                .with_timezone(&clinic_time_zone)
                .date_naive()
        })
    }

    /// Folds one event into the state. Events are facts: applying never fails, and an event that
    /// does not fit the status (which decisions never produce) still records its content.
    pub fn apply(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Scheduled(scheduled) => {
                self.status = SessionStatus::Scheduled;
                self.booking = Some(Booking {
                    clinic: scheduled.clinic,
                    therapist: scheduled.therapist,
                    patient: scheduled.patient,
                    payment: scheduled.payment,
                    referral: scheduled.referral,
                    scheduled_start: scheduled.scheduled_start,
                    planned_minutes: scheduled.planned_minutes,
                });
            }
            SessionEvent::CheckedIn { at } => {
                self.status = SessionStatus::CheckedIn;
                self.checked_in_at = Some(*at);
            }
            SessionEvent::ServiceRecorded(service) => self.services.push(service.clone()),
            SessionEvent::ModalityRecorded(modality) => self.modalities.push(*modality),
            SessionEvent::DiagnosesAttached { codes } => {
                self.diagnoses.extend(codes.iter().cloned())
            }
            SessionEvent::Completed { at } => {
                self.status = SessionStatus::Completed;
                self.completed_at = Some(*at);
            }
            SessionEvent::Cancelled { reason } => {
                self.status = SessionStatus::Cancelled;
                self.cancellation_reason = Some(reason.clone());
            }
            SessionEvent::NoShow => self.status = SessionStatus::NoShow,
            SessionEvent::Amended { reason } => {
                self.status = SessionStatus::Amending;
                self.amendment_reasons.push(reason.clone());
            }
            SessionEvent::ServiceVoided { service, reason } => {
                self.services.retain(|recorded| recorded.id != *service);
                self.modalities.retain(|recorded| recorded.id != *service);
                self.voided.push(Voided {
                    service: *service,
                    reason: reason.clone(),
                });
            }
        }
    }

    /// Decides a command against this state: the events to record, or why it is refused.
    pub fn decide(
        &self,
        command: &SessionCommand,
        context: &DecisionContext,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        if let SessionCommand::Schedule(schedule) = command {
            return self.decide_schedule(schedule, context);
        }
        let booking = self.booking.as_ref().ok_or(SessionError::NotScheduled)?;
        match command {
            SessionCommand::Schedule(_) => Err(SessionError::AlreadyScheduled),
            SessionCommand::CheckIn => {
                self.require_status(command, &[SessionStatus::Scheduled])?;
                Ok(vec![SessionEvent::CheckedIn { at: context.now }])
            }
            SessionCommand::RecordService(service) => {
                self.require_open_record(command)?;
                self.decide_service(service, booking)
            }
            SessionCommand::RecordModality(modality) => {
                self.require_open_record(command)?;
                decide_modality(*modality, booking)
            }
            SessionCommand::AttachDiagnoses(codes) => {
                self.require_open_record(command)?;
                self.decide_diagnoses(codes)
            }
            SessionCommand::Complete => {
                self.require_open_record(command)?;
                if self.services.is_empty() && self.modalities.is_empty() {
                    return Err(SessionError::invalid(
                        "services",
                        "a visit needs at least one recorded service or modality to be completed",
                    ));
                }
                if self.diagnoses.is_empty() {
                    return Err(SessionError::invalid(
                        "diagnoses",
                        "a visit needs at least one diagnosis (medical necessity) to be completed",
                    ));
                }
                Ok(vec![SessionEvent::Completed { at: context.now }])
            }
            SessionCommand::Cancel { reason } => {
                self.require_status(
                    command,
                    &[SessionStatus::Scheduled, SessionStatus::CheckedIn],
                )?;
                let reason = required_text("reason", reason)?;
                Ok(vec![SessionEvent::Cancelled { reason }])
            }
            SessionCommand::NoShow => {
                self.require_status(command, &[SessionStatus::Scheduled])?;
                if context.now < booking.scheduled_start {
                    return Err(SessionError::invalid(
                        "status",
                        format!(
                            "the session starts at {}; a no-show is recorded only after its start",
                            booking.scheduled_start.to_rfc3339()
                        ),
                    ));
                }
                Ok(vec![SessionEvent::NoShow])
            }
            SessionCommand::Amend { reason } => {
                self.require_status(command, &[SessionStatus::Completed])?;
                let reason = required_text("reason", reason)?;
                Ok(vec![SessionEvent::Amended { reason }])
            }
            SessionCommand::VoidService { service, reason } => {
                self.require_open_record(command)?;
                self.decide_void(*service, reason)
            }
        }
    }

    /// Voiding is a correction: allowed while the record is open (checked in, or reopened by an
    /// amendment), for a service or modality of this session that is not voided yet.
    fn decide_void(
        &self,
        service: EventId,
        reason: &str,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        if self.voided.iter().any(|voided| voided.service == service) {
            return Err(SessionError::invalid(
                "event_id",
                "this service was already voided",
            ));
        }
        let recorded = self.services.iter().any(|recorded| recorded.id == service)
            || self
                .modalities
                .iter()
                .any(|recorded| recorded.id == service);
        if !recorded {
            return Err(SessionError::invalid(
                "event_id",
                "no service or modality with this event id was recorded in the session",
            ));
        }
        let reason = required_text("reason", reason)?;
        Ok(vec![SessionEvent::ServiceVoided { service, reason }])
    }

    fn decide_schedule(
        &self,
        schedule: &ScheduleSession,
        context: &DecisionContext,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        if self.status != SessionStatus::NotScheduled {
            return Err(SessionError::AlreadyScheduled);
        }
        if !(MIN_PLANNED_MINUTES..=MAX_PLANNED_MINUTES).contains(&schedule.planned_minutes) {
            return Err(SessionError::invalid(
                "planned_minutes",
                format!(
                    "must be between {MIN_PLANNED_MINUTES} and {MAX_PLANNED_MINUTES} minutes, got {}",
                    schedule.planned_minutes
                ),
            ));
        }
        let earliest = context.now - chrono::Duration::days(MAX_BOOKING_DAYS_BEHIND);
        let latest = context.now + chrono::Duration::days(MAX_BOOKING_DAYS_AHEAD);
        if !(earliest..=latest).contains(&schedule.scheduled_start) {
            return Err(SessionError::invalid(
                "scheduled_start",
                format!(
                    "must be at most {MAX_BOOKING_DAYS_BEHIND} days before and \
                     {MAX_BOOKING_DAYS_AHEAD} days after now, got {}",
                    schedule.scheduled_start.to_rfc3339()
                ),
            ));
        }
        let date_of_service = schedule
            .scheduled_start
            .with_timezone(&context.clinic_time_zone)
            .date_naive();
        if let Payment::Payer { payer, .. } = schedule.payment {
            let terms = context.coverage.ok_or_else(|| {
                SessionError::invalid("coverage_id", "the coverage was not found")
            })?;
            if terms.patient != schedule.patient {
                return Err(SessionError::invalid(
                    "coverage_id",
                    "the coverage belongs to another patient",
                ));
            }
            if terms.payer != payer {
                return Err(SessionError::invalid(
                    "coverage_id",
                    "the coverage is held with another payer",
                ));
            }
            let ended = terms
                .valid_to
                .is_some_and(|last_day| date_of_service > last_day);
            if date_of_service < terms.valid_from || ended {
                return Err(SessionError::invalid(
                    "coverage_id",
                    format!(
                        "the coverage is not in force on the date of service {date_of_service}"
                    ),
                ));
            }
        }
        if schedule.referral.is_some() {
            let terms = context.referral.ok_or_else(|| {
                SessionError::invalid("referral_id", "the referral was not found")
            })?;
            if terms.patient != schedule.patient {
                return Err(SessionError::invalid(
                    "referral_id",
                    "the referral is for another patient",
                ));
            }
            if date_of_service < terms.issued_on || date_of_service > terms.expires_on {
                return Err(SessionError::invalid(
                    "referral_id",
                    format!(
                        "the referral is in force from {} to {}, not on the date of service {date_of_service}",
                        terms.issued_on, terms.expires_on
                    ),
                ));
            }
            if terms.visits_booked >= terms.authorised_visits {
                return Err(SessionError::invalid(
                    "referral_id",
                    format!(
                        "the referral authorises {} visits and all of them are booked",
                        terms.authorised_visits
                    ),
                ));
            }
        }
        Ok(vec![SessionEvent::Scheduled(Scheduled {
            clinic: schedule.clinic,
            therapist: schedule.therapist,
            patient: schedule.patient,
            payment: schedule.payment,
            referral: schedule.referral,
            scheduled_start: schedule.scheduled_start,
            planned_minutes: schedule.planned_minutes,
        })])
    }

    fn decide_service(
        &self,
        service: &RecordService,
        booking: &Booking,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        if MODALITY_CODES.contains(&service.code) {
            return Err(SessionError::invalid(
                "code",
                format!("{} is a modality; record it as a modality", service.code),
            ));
        }
        if !service.code.covers(service.technique) {
            return Err(SessionError::invalid(
                "code",
                format!(
                    "{} does not cover {} (documented {} is billed as {})",
                    service.code,
                    service.technique,
                    service.technique,
                    service.technique.billing_code()
                ),
            ));
        }
        let description = optional_text("description", service.description.as_deref())?;
        if service.code.requires_description() && description.is_none() {
            return Err(SessionError::invalid(
                "description",
                format!(
                    "{} is unlisted and needs a written description",
                    service.code
                ),
            ));
        }
        check_minutes(service.minutes, booking.planned_minutes)?;
        let total = self.recorded_service_minutes() + u32::from(service.minutes);
        if total > u32::from(booking.planned_minutes) {
            return Err(SessionError::ExceedsVisitLength {
                requested: service.minutes,
                total,
                planned: booking.planned_minutes,
            });
        }
        Ok(vec![SessionEvent::ServiceRecorded(ServiceRecorded {
            id: service.id,
            technique: service.technique,
            code: service.code,
            minutes: service.minutes,
            body_region: service.body_region.clone(),
            body_side: service.body_side,
            description,
        })])
    }

    fn decide_diagnoses(&self, codes: &[Icd10Code]) -> Result<Vec<SessionEvent>, SessionError> {
        if codes.is_empty() {
            return Err(SessionError::invalid(
                "codes",
                "at least one diagnosis is needed",
            ));
        }
        let mut seen: HashSet<&Icd10Code> = self.diagnoses.iter().collect();
        for (index, code) in codes.iter().enumerate() {
            if !seen.insert(code) {
                return Err(SessionError::invalid(
                    &format!("codes[{index}]"),
                    format!("{code} is already attached"),
                ));
            }
        }
        if seen.len() > MAX_DIAGNOSES {
            return Err(SessionError::invalid(
                "codes",
                format!(
                    "a session carries at most {MAX_DIAGNOSES} diagnoses (CMS-1500 item 21); this would make {}",
                    seen.len()
                ),
            ));
        }
        Ok(vec![SessionEvent::DiagnosesAttached {
            codes: codes.to_vec(),
        }])
    }

    fn require_status(
        &self,
        command: &SessionCommand,
        allowed: &[SessionStatus],
    ) -> Result<(), SessionError> {
        if allowed.contains(&self.status) {
            return Ok(());
        }
        if self.status == SessionStatus::Completed && allowed.contains(&SessionStatus::Amending) {
            return Err(SessionError::CompletedRecordIsClosed {
                command: command.name(),
            });
        }
        Err(SessionError::WrongStatus {
            command: command.name(),
            status: self.status,
        })
    }

    fn require_open_record(&self, command: &SessionCommand) -> Result<(), SessionError> {
        if self.status.accepts_records() {
            return Ok(());
        }
        self.require_status(
            command,
            &[SessionStatus::CheckedIn, SessionStatus::Amending],
        )
    }
}

fn decide_modality(
    modality: RecordModality,
    booking: &Booking,
) -> Result<Vec<SessionEvent>, SessionError> {
    if !MODALITY_CODES.contains(&modality.code) {
        return Err(SessionError::invalid(
            "code",
            format!(
                "{} is not a supervised modality (modalities: 97010, 97012); record it as a service",
                modality.code
            ),
        ));
    }
    // A modality such as hot packs may run while the therapist works elsewhere, so its minutes are
    // capped by the visit's length on their own rather than added to the services' total.
    check_minutes(modality.minutes, booking.planned_minutes)?;
    Ok(vec![SessionEvent::ModalityRecorded(ModalityRecorded {
        id: modality.id,
        code: modality.code,
        minutes: modality.minutes,
    })])
}

fn check_minutes(minutes: u16, planned: u16) -> Result<(), SessionError> {
    if minutes == 0 || minutes > planned {
        return Err(SessionError::invalid(
            "minutes",
            format!("must be between 1 and the visit's {planned} minutes, got {minutes}"),
        ));
    }
    Ok(())
}

fn required_text(field: &str, text: &str) -> Result<String, SessionError> {
    optional_text(field, Some(text))?
        .ok_or_else(|| SessionError::invalid(field, "must not be empty"))
}

fn optional_text(field: &str, text: Option<&str>) -> Result<Option<String>, SessionError> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_TEXT_LENGTH {
        return Err(SessionError::invalid(
            field,
            format!("must be at most {MAX_TEXT_LENGTH} characters"),
        ));
    }
    Ok(Some(text.to_owned()))
}
