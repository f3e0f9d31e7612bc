//! Benchmark: derive and scrub the claim for a typical visit (three timed codes and one modality)
//! and compare with a raw baseline, the bare 8-minute arithmetic over the same minutes, measured
//! in the same run. Target: at most 2 µs per visit.
//!
//! Run: `cargo bench -p claimledger-billing --bench claim_derivation`
//! Scale: `CLAIM_BENCH_SAMPLES=200000 cargo bench -p claimledger-billing --bench claim_derivation`

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use chrono::NaiveDate;
use claimledger_billing::units::units_for_minutes;
use claimledger_billing::{
    Cents, CptCode, Npi, PayerPolicy, PlaceOfService, PriceList, ReferenceData, ServiceRecord,
    TaxId, Technique, UntimedService, Visit, derive_claim, scrub,
};

/// Visits per timed sample: batching keeps the timer's own cost out of the per-visit figure.
const VISITS_PER_SAMPLE: u32 = 8;
const DEFAULT_SAMPLES: usize = 40_000;

fn typical_visit() -> Visit {
    let service = |technique: Technique, minutes, region: &str| ServiceRecord {
        technique,
        code: technique.billing_code(),
        minutes,
        body_region: region.to_owned(),
        description: None,
    };
    Visit {
        date_of_service: NaiveDate::from_ymd_opt(2026, 3, 2).expect("valid date"),
        place_of_service: PlaceOfService::OFFICE,
        clinic_npi: Npi::parse("clinic_npi", "1558598797").expect("valid NPI"),
        tax_id: TaxId::parse("tax_id", "12-3456789").expect("valid tax id"),
        rendering_npi: Npi::parse("rendering_npi", "1234567893").expect("valid NPI"),
        services: vec![
            service(Technique::SwedishMassage, 30, "lower back"),
            service(Technique::MyofascialRelease, 15, "neck"),
            service(Technique::StrengthExercise, 10, "lower back"),
        ],
        modalities: vec![UntimedService {
            code: CptCode::HotColdPacks,
            minutes: 10,
            body_region: "lower back".to_owned(),
        }],
        diagnoses: vec!["M54.50".to_owned(), "M62.830".to_owned()],
        primary_code: None,
        referral: None,
    }
}

/// The raw baseline: the 8-minute arithmetic alone (total units, full blocks per code and the
/// leftover count) over the visit's timed minutes.
fn raw_units(minutes: &[u32; 3]) -> u32 {
    let total = units_for_minutes(minutes.iter().sum());
    let full_blocks: u32 = minutes.iter().map(|minutes| minutes / 15).sum();
    let leftovers = minutes
        .iter()
        .filter(|minutes| !minutes.is_multiple_of(15))
        .count() as u32;
    full_blocks + (total - full_blocks).min(leftovers)
}

/// Per-visit nanoseconds of each sample, sorted.
fn measure(samples: usize, mut run_once: impl FnMut()) -> Vec<f64> {
    let mut per_visit = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        for _ in 0..VISITS_PER_SAMPLE {
            run_once();
        }
        per_visit.push(started.elapsed().as_nanos() as f64 / f64::from(VISITS_PER_SAMPLE));
    }
    per_visit.sort_by(f64::total_cmp);
    per_visit
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn main() -> std::io::Result<()> {
    let samples = std::env::var("CLAIM_BENCH_SAMPLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_SAMPLES);
    let visit = typical_visit();
    let policy = PayerPolicy::example_medicare_like();
    let reference = ReferenceData::example();
    let charge_master = PriceList::from_pairs(CptCode::ALL.map(|code| (code, Cents(4000))));

    // Warm up caches and the allocator before measuring.
    let warm = measure(samples / 10 + 1, || {
        let derived = derive_claim(black_box(&visit), &policy, &reference, &charge_master)
            .expect("derivable");
        black_box(scrub(&derived.claim, &visit, &policy, &reference));
    });
    black_box(warm);

    let claim = measure(samples, || {
        let derived = derive_claim(black_box(&visit), &policy, &reference, &charge_master)
            .expect("derivable");
        black_box(scrub(&derived.claim, &visit, &policy, &reference));
    });
    let derived = derive_claim(&visit, &policy, &reference, &charge_master).expect("derivable");
    let derive_only = measure(samples, || {
        black_box(
            derive_claim(black_box(&visit), &policy, &reference, &charge_master)
                .expect("derivable"),
        );
    });
    let scrub_only = measure(samples, || {
        black_box(scrub(
            black_box(&derived.claim),
            &visit,
            &policy,
            &reference,
        ));
    });
    let minutes = [30_u32, 15, 10];
    let raw = measure(samples, || {
        black_box(raw_units(black_box(&minutes)));
    });

    let (claim_median, claim_p99) = (percentile(&claim, 0.5), percentile(&claim, 0.99));
    let (raw_median, raw_p99) = (percentile(&raw, 0.5), percentile(&raw, 0.99));
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "claim_derivation: {samples} samples x {VISITS_PER_SAMPLE} visits (3 timed codes + 1 modality)"
    )?;
    writeln!(
        out,
        "  derive + scrub : median {claim_median:8.1} ns/visit, p99 {claim_p99:8.1} ns/visit (target <= 2000 ns)"
    )?;
    let (derive_median, scrub_median) =
        (percentile(&derive_only, 0.5), percentile(&scrub_only, 0.5));
    writeln!(
        out,
        "    derive only  : median {derive_median:8.1} ns/visit"
    )?;
    writeln!(out, "    scrub only   : median {scrub_median:8.1} ns/visit")?;
    writeln!(
        out,
        "  raw 8-min math : median {raw_median:8.1} ns/visit, p99 {raw_p99:8.1} ns/visit"
    )?;
    writeln!(
        out,
        "  ratio (median) : {:.0}x the raw arithmetic",
        claim_median / raw_median.max(0.1)
    )?;
    writeln!(
        out,
        "  target met     : {}",
        if claim_median <= 2000.0 { "yes" } else { "NO" }
    )?;
    Ok(())
}
