//! Golden files: each 837P the fixtures render must match its file byte for byte (set
//! `CLAIMLEDGER_X12_UPDATE_GOLDEN=1` to rewrite them after a deliberate change), and each 835
//! and 999 golden file must read into the expected typed values.

use std::path::PathBuf;

use claimledger_x12::{Claim837, render_837p};

use crate::fixtures;

pub(crate) fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

pub(crate) fn read_golden(name: &str) -> Vec<u8> {
    std::fs::read(golden_dir().join(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// Every 837P the tests produce, by golden file name.
pub(crate) fn rendered_837s() -> Vec<(&'static str, String)> {
    let one = |claim: Claim837| fixtures::interchange(vec![vec![claim]]);
    let cases = [
        ("837p_self.x12", one(fixtures::self_claim())),
        ("837p_dependent.x12", one(fixtures::dependent_claim())),
        ("837p_replacement.x12", one(fixtures::replacement_claim())),
        ("837p_void.x12", one(fixtures::void_claim())),
        (
            "837p_batch.x12",
            fixtures::interchange(vec![
                vec![
                    fixtures::self_claim(),
                    fixtures::dependent_claim(),
                    fixtures::second_clinic_claim(),
                ],
                vec![fixtures::replacement_claim(), fixtures::void_claim()],
            ]),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, interchange)| {
            let text = render_837p(&interchange).unwrap_or_else(|error| panic!("{name}: {error}"));
            (name, text)
        })
        .collect()
}

#[test]
fn given_the_fixture_claims_when_rendered_then_each_837p_matches_its_golden_file() {
    let update = std::env::var("CLAIMLEDGER_X12_UPDATE_GOLDEN").is_ok_and(|value| value == "1");
    for (name, text) in rendered_837s() {
        let path = golden_dir().join(name);
        if update {
            std::fs::write(&path, &text).expect("the golden file is writable");
        }
        let golden = String::from_utf8(read_golden(name)).expect("ASCII");
        assert_eq!(text, golden, "{name} differs from its golden file");
    }
}
