//! Which documented services each billed code stands for, after a payer's substitution of one
//! massage or manual-therapy code for the other.

use super::*;

/// What the documentation says about one billed code after any payer substitution. It borrows
/// the visit and finds its services on demand, so grouping a visit allocates almost nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeDocumentation<'v> {
    /// The billed code.
    pub code: CptCode,
    /// Total documented minutes.
    pub minutes: u32,
    /// True when this code absorbs all massage/manual services because of a payer substitution.
    merged_massage: bool,
    visit: &'v Visit,
}

impl<'v> CodeDocumentation<'v> {
    /// The visit's services billed under this code, with their indexes in `Visit::services`.
    pub fn services(&self) -> impl Iterator<Item = (usize, &'v ServiceRecord)> + '_ {
        let visit: &'v Visit = self.visit;
        visit
            .services
            .iter()
            .enumerate()
            .filter(move |(_, service)| {
                if self.merged_massage {
                    service.code.is_massage_or_manual()
                } else {
                    service.code == self.code
                }
            })
    }

    /// The visit's untimed services billed under this code.
    pub fn modalities(&self) -> impl Iterator<Item = &'v UntimedService> + '_ {
        let visit: &'v Visit = self.visit;
        visit
            .modalities
            .iter()
            .filter(move |modality| modality.code == self.code)
    }

    /// The documented techniques.
    pub fn techniques(&self) -> TechniqueSet {
        self.services()
            .map(|(_, service)| service.technique)
            .collect()
    }

    /// Every documented body region, trimmed (it may repeat).
    pub fn regions(&self) -> impl Iterator<Item = &'v str> + '_ {
        self.services()
            .map(|(_, service)| service.body_region.trim())
            .chain(
                self.modalities()
                    .map(|modality| modality.body_region.trim()),
            )
    }

    /// Distinct documented body regions, comma-separated, for explanations.
    pub fn distinct_regions(&self) -> String {
        let mut text = String::new();
        for (index, region) in self.regions().enumerate() {
            let seen_before = self
                .regions()
                .take(index)
                .any(|known| known.eq_ignore_ascii_case(region));
            if !seen_before {
                if !text.is_empty() {
                    text.push_str(", ");
                }
                text.push_str(region);
            }
        }
        text
    }

    /// True when no body region of `self` is also a region of `other`, ignoring ASCII case.
    pub fn regions_disjoint(&self, other: &CodeDocumentation<'_>) -> bool {
        !self.regions().any(|region| {
            other
                .regions()
                .any(|other| region.eq_ignore_ascii_case(other))
        })
    }
}

/// A payer substitution among massage/manual codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    /// The code billed for all massage/manual work.
    pub billed: CptCode,
    /// The codes the clinician recorded.
    pub documented: Vec<CptCode>,
    /// The massage/manual codes the techniques support.
    pub supported: Vec<CptCode>,
    /// Why.
    pub cause: SubstitutionCause,
    /// Whether the payer's stated preference chose the code.
    pub payer_preferred: bool,
}

/// The visit's documentation grouped by the code it will be billed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution<'v> {
    /// Per billed code, in code order.
    pub codes: Vec<CodeDocumentation<'v>>,
    /// The massage/manual substitution, if the payer's rules called for one.
    pub substitution: Option<Substitution>,
}

impl<'v> Attribution<'v> {
    /// The code a clinician's recorded code is billed under.
    pub fn billed_code_for(&self, documented: CptCode) -> CptCode {
        match &self.substitution {
            Some(substitution) if substitution.documented.contains(&documented) => {
                substitution.billed
            }
            _ => documented,
        }
    }

    /// The documentation billed under `code`, if any.
    pub fn get(&self, code: CptCode) -> Option<&CodeDocumentation<'v>> {
        self.codes
            .iter()
            .find(|documentation| documentation.code == code)
    }
}

/// Groups the visit's documentation by billed code, applying the payer's massage/manual rules
/// (decision 8): the payer's preference may only choose among codes the documented techniques
/// support. Where the payer states no preference, the code with the most documented minutes
/// wins, then the decision 3 order (primary, higher allowed, lower code); a careful biller picks
/// the dominant documented work rather than the better-paid code.
pub fn attribute<'v>(
    visit: &'v Visit,
    policy: &PayerPolicy,
) -> Result<Attribution<'v>, DeriveError> {
    let mut massage_minutes: [Option<u32>; 2] = [None, None];
    for service in &visit.services {
        let slot = match service.code {
            CptCode::Massage => &mut massage_minutes[0],
            CptCode::ManualTherapy => &mut massage_minutes[1],
            _ => continue,
        };
        *slot = Some(slot.unwrap_or(0).saturating_add(service.minutes));
    }
    let substitution = choose_substitution(visit, policy, massage_minutes);
    let mut codes: Vec<CodeDocumentation<'v>> =
        Vec::with_capacity(visit.services.len() + visit.modalities.len());
    let merged = substitution
        .as_ref()
        .map(|substitution| substitution.billed);
    let timed = visit.services.iter().map(|service| {
        let code = match merged {
            Some(billed) if service.code.is_massage_or_manual() => billed,
            _ => service.code,
        };
        (code, service.minutes)
    });
    let untimed = visit
        .modalities
        .iter()
        .map(|modality| (modality.code, modality.minutes));
    for (code, minutes) in timed.chain(untimed) {
        match codes
            .iter_mut()
            .find(|documentation| documentation.code == code)
        {
            Some(documentation) => {
                documentation.minutes = documentation
                    .minutes
                    .checked_add(minutes)
                    .ok_or(DeriveError::MinutesOverflow { code })?;
            }
            None => codes.push(CodeDocumentation {
                code,
                minutes,
                merged_massage: merged == Some(code),
                visit,
            }),
        }
    }
    codes.sort_by_key(|documentation| documentation.code);
    Ok(Attribution {
        codes,
        substitution,
    })
}

pub(super) fn choose_substitution(
    visit: &Visit,
    policy: &PayerPolicy,
    massage_minutes: [Option<u32>; 2],
) -> Option<Substitution> {
    let pairs = [
        (CptCode::Massage, massage_minutes[0]),
        (CptCode::ManualTherapy, massage_minutes[1]),
    ];
    let documented = || {
        pairs
            .iter()
            .filter_map(|(code, minutes)| minutes.map(|_| *code))
    };
    let cause = if policy.one_massage_or_manual_code_per_visit && documented().count() > 1 {
        SubstitutionCause::OneCodePerVisit
    } else if documented().any(|code| !policy.accepts(code)) {
        SubstitutionCause::DocumentedCodeNotAccepted
    } else {
        return None;
    };
    let is_supported = |code: CptCode| {
        visit
            .services
            .iter()
            .any(|service| code.covers(service.technique))
    };
    let minutes_of = |code: CptCode| {
        pairs
            .iter()
            .find(|(listed, _)| *listed == code)
            .and_then(|(_, minutes)| *minutes)
            .unwrap_or(0)
    };
    let candidates = pairs
        .iter()
        .map(|(code, _)| *code)
        .filter(|code| is_supported(*code) && policy.accepts(*code));
    let preferred = policy
        .preferred_massage_code
        .filter(|code| candidates.clone().any(|candidate| candidate == *code));
    let billed = preferred.or_else(|| {
        candidates.max_by(|left, right| {
            let is_primary = |code: CptCode| visit.primary_code == Some(code);
            let allowed = |code: CptCode| policy.fee_schedule.per_unit(code);
            minutes_of(*left)
                .cmp(&minutes_of(*right))
                .then_with(|| is_primary(*left).cmp(&is_primary(*right)))
                .then_with(|| allowed(*left).cmp(&allowed(*right)))
                .then_with(|| right.cmp(left))
        })
    })?;
    if documented().eq([billed]) {
        return None;
    }
    Some(Substitution {
        billed,
        documented: documented().collect(),
        supported: pairs
            .iter()
            .map(|(code, _)| *code)
            .filter(|code| is_supported(*code))
            .collect(),
        cause,
        payer_preferred: preferred.is_some(),
    })
}
