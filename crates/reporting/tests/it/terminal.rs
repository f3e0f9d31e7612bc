//! What `claimledger report` prints: the known chain's reimbursement as an aligned terminal table
//! (dollars, numbers right-aligned under their headers) and as CSV (cents).

use claimledger_reporting::filter::{Dimension, ReportFilter, Source};
use claimledger_reporting::reimbursement::ReportQuery;
use claimledger_reporting::reports::Reports;
use claimledger_reporting::table::Table;

use crate::helpers::spawn_app;
use crate::known::{day, known_chain};

#[tokio::test]
async fn the_reimbursement_table_prints_aligned_dollars_and_exports_cents() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let report = Reports::new(app.env.db.clone())
        .reimbursement(
            data.chain,
            &ReportQuery {
                filter: ReportFilter::new(day(1, 1), day(2, 28))?,
                group_by: vec![Dimension::Code, Dimension::Payer],
                source: Source::Auto,
            },
        )
        .await?;
    let text = Table::from(&report).to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + 4, "{text}");
    let header = lines[0];
    assert!(header.starts_with("code   payer_id"), "{header}");
    let row = lines
        .iter()
        .find(|line| line.starts_with("97140") && line.contains("Medicare-like"))
        .expect("97140 at Medicare-like");
    for figure in ["$270.00", "$180.00", "$30.00", "30.0"] {
        assert!(row.contains(figure), "{figure} in {row}");
    }
    // Right-aligned: the billed amount ends where its header ends.
    let header_end = header.find(" billed ").expect("a billed column") + " billed".len();
    let value_end = row.find("$270.00").expect("the billed amount") + "$270.00".len();
    assert_eq!(header_end, value_end, "\n{header}\n{row}");

    let csv = Table::from(&report).to_csv();
    assert!(csv.contains(",27000,18000,18000,0,3000,"), "{csv}");
    app.stop().await
}
