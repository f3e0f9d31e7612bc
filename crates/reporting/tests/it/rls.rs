//! Row-level security keyed on the chain: reads in a chain-scoped transaction see that chain's rows
//! of every read-model table, even with no chain filter at all; without the setting they see
//! nothing; and the reader role cannot write.

use claimledger_reporting::scope::{READER_ROLE, begin_chain_read};
use sqlx::postgres::PgPoolOptions;

use crate::fixture::{ChainData, Line};
use crate::helpers::spawn_app;

fn two_chains() -> (ChainData, ChainData) {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let mut first = ChainData::new(2, &["WA"], &["Payer A"]);
    let mut second = ChainData::new(3, &["OR"], &["Payer B"]);
    for data in [&mut first, &mut second] {
        let (clinics, payer) = (data.clinics.clone(), data.payers[0].clone());
        for clinic in &clinics {
            data.lines
                .push(Line::billed(clinic, &payer, day, "97140", 2, 9_000).paid(6_000, 20));
            data.lines
                .push(Line::billed(clinic, &payer, day, "97124", 1, 4_500).denied("CO", "50", 25));
        }
    }
    (first, second)
}

/// Every table of `read_models` that has a chain_id column.
async fn chain_tables(pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns \
         WHERE table_schema = 'read_models' AND column_name = 'chain_id' ORDER BY 1",
    )
    .fetch_all(pool)
    .await?)
}

#[tokio::test]
async fn a_query_without_a_chain_filter_sees_only_the_chain_of_its_transaction()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (first, second) = two_chains();
    first.write(&app.env.db).await?;
    second.write(&app.env.db).await?;
    let tables = chain_tables(&app.env.db).await?;
    for expected in [
        "claim_line_outcomes",
        "claims",
        "clinics",
        "payers",
        "reimbursement_monthly",
    ] {
        assert!(
            tables.iter().any(|table| table == expected),
            "{expected} in {tables:?}"
        );
    }

    for data in [&first, &second] {
        let mut transaction = begin_chain_read(&app.env.db, data.chain).await?;
        for table in &tables {
            // No WHERE clause: only the policy limits what is seen.
            let (rows, chains, chain): (i64, i64, Option<uuid::Uuid>) = sqlx::query_as(&format!(
                "SELECT count(*), count(DISTINCT chain_id), min(chain_id::text)::uuid FROM read_models.{table}"
            ))
            .fetch_one(&mut *transaction)
            .await?;
            assert!(chains <= 1, "{table}: {chains} chains visible");
            if rows > 0 {
                assert_eq!(chain, Some(data.chain), "{table}");
            }
        }
        let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM read_models.claim_line_outcomes")
            .fetch_one(&mut *transaction)
            .await?;
        assert_eq!(lines, data.lines.len() as i64);
        let clinics: i64 = sqlx::query_scalar("SELECT count(*) FROM read_models.clinics")
            .fetch_one(&mut *transaction)
            .await?;
        assert_eq!(clinics, data.clinics.len() as i64);
        transaction.commit().await?;
    }

    // As the owner (the projector's view) both chains are there: the policy is what filtered.
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM read_models.claim_line_outcomes")
        .fetch_one(&app.env.db)
        .await?;
    assert_eq!(all, (first.lines.len() + second.lines.len()) as i64);
    app.stop().await
}

#[tokio::test]
async fn without_the_chain_setting_the_reader_sees_nothing_even_on_a_reused_connection()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (first, second) = two_chains();
    first.write(&app.env.db).await?;
    second.write(&app.env.db).await?;
    // One connection, so the second transaction runs where the first one set the chain.
    let options = (*app.env.db.connect_options()).clone();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;

    let mut scoped = begin_chain_read(&pool, first.chain).await?;
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM read_models.claims")
        .fetch_one(&mut *scoped)
        .await?;
    assert_eq!(seen, first.lines.len() as i64);
    scoped.commit().await?;

    let mut unscoped = pool.begin().await?;
    sqlx::query(&format!("SET LOCAL ROLE {READER_ROLE}"))
        .execute(&mut *unscoped)
        .await?;
    for table in chain_tables(&app.env.db).await? {
        let seen: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM read_models.{table}"))
            .fetch_one(&mut *unscoped)
            .await?;
        assert_eq!(seen, 0, "{table} without claimledger.chain_id");
    }
    unscoped.rollback().await?;
    pool.close().await;
    app.stop().await
}

#[tokio::test]
async fn the_reader_role_cannot_write_the_read_models() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (first, _) = two_chains();
    first.write(&app.env.db).await?;
    let mut transaction = app.env.db.begin().await?;
    sqlx::query(&format!("SET LOCAL ROLE {READER_ROLE}"))
        .execute(&mut *transaction)
        .await?;
    sqlx::query("SELECT set_config('claimledger.chain_id', $1, true)")
        .bind(first.chain.to_string())
        .execute(&mut *transaction)
        .await?;
    let error = sqlx::query("DELETE FROM read_models.claims")
        .execute(&mut *transaction)
        .await
        .expect_err("the reader may not delete");
    assert!(error.to_string().contains("permission denied"), "{error}");
    transaction.rollback().await?;
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM read_models.claims")
        .fetch_one(&app.env.db)
        .await?;
    assert_eq!(kept, first.lines.len() as i64);
    app.stop().await
}
