//! [`Reports`]: the query layer's entry point. Each call opens its own chain-scoped, read-only
//! transaction ([`crate::scope::begin_chain_read`]), so callers (the HTTP handlers, the command
//! line) cannot forget the row-level security set-up.

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ReportError;
use crate::filter::{ReportFilter, Source};
use crate::insights::{self, BestCodeReport, OutliersReport, Thresholds};
use crate::reimbursement::{self, DenialReasonsReport, ReimbursementReport, ReportQuery};
use crate::scope::begin_chain_read;

/// Reports over one database's read models.
#[derive(Debug, Clone)]
pub struct Reports {
    pool: PgPool,
}

impl Reports {
    /// Reports over `pool`'s database.
    pub fn new(pool: PgPool) -> Reports {
        Reports { pool }
    }

    /// Billed, allowed, paid, units, yield, denial rate and days to payment per group.
    pub async fn reimbursement(
        &self,
        chain: Uuid,
        query: &ReportQuery,
    ) -> Result<ReimbursementReport, ReportError> {
        query.filter.validate()?;
        let mut transaction = begin_chain_read(&self.pool, chain).await?;
        let report = reimbursement::reimbursement(&mut transaction, chain, query).await?;
        transaction.commit().await?;
        Ok(report)
    }

    /// The `limit` most frequent denial reasons per group.
    pub async fn denial_reasons(
        &self,
        chain: Uuid,
        query: &ReportQuery,
        limit: i64,
    ) -> Result<DenialReasonsReport, ReportError> {
        query.filter.validate()?;
        let mut transaction = begin_chain_read(&self.pool, chain).await?;
        let report = reimbursement::denial_reasons(&mut transaction, chain, query, limit).await?;
        transaction.commit().await?;
        Ok(report)
    }

    /// The best code per payer from observed payments.
    pub async fn best_code(
        &self,
        chain: Uuid,
        filter: &ReportFilter,
        source: Source,
        thresholds: Thresholds,
    ) -> Result<BestCodeReport, ReportError> {
        filter.validate()?;
        thresholds.validate()?;
        let mut transaction = begin_chain_read(&self.pool, chain).await?;
        let report =
            insights::best_code(&mut transaction, chain, filter, source, thresholds).await?;
        transaction.commit().await?;
        Ok(report)
    }

    /// The clinics whose code yield or denial rate stands out from the chain.
    pub async fn outliers(
        &self,
        chain: Uuid,
        filter: &ReportFilter,
        source: Source,
        thresholds: Thresholds,
    ) -> Result<OutliersReport, ReportError> {
        filter.validate()?;
        thresholds.validate()?;
        let mut transaction = begin_chain_read(&self.pool, chain).await?;
        let report =
            insights::outliers(&mut transaction, chain, filter, source, thresholds).await?;
        transaction.commit().await?;
        Ok(report)
    }
}
