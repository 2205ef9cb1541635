//! What the SQLite and PostgreSQL stores do alike around their databases' work: every method of [`Store`]
//! validates what it is handed, holds tokio's paused clock for the work when asked to, and hands the work to
//! the store's `Db` (its SQL), saves through the store's writer (its claims and submits are its own) ([`Group`](super::group::Group)). Written once
//! here; each store's own `impl Store` adds its submits and whatever is its alone (wake hints, its clock).
//!
//! [`Store`]: super::Store

/// The methods of `impl Store` that the durable stores share: the store has fields `db` (with `held()`,
/// `name` and the operations) and `group` (its writer).
macro_rules! durable_methods {
    () => {
        fn describe(&self) -> String {
            self.db.name.clone()
        }

        fn renew<'a>(
            &'a self,
            leases: &'a [$crate::store::Lease],
            now: $crate::store::Timestamp,
            lease: ::std::time::Duration,
        ) -> $crate::store::StoreFuture<'a, $crate::store::Renewed> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.renew(leases, now, lease).await
            })
        }

        fn save<'a>(
            &'a self,
            lease: &'a $crate::store::Lease,
            save: $crate::store::Save<'a>,
            now: $crate::store::Timestamp,
        ) -> $crate::store::StoreFuture<'a, $crate::store::Saved> {
            Box::pin(async move {
                let _held = self.db.held();
                match self
                    .group
                    .write($crate::store::group::Write::Save { lease: lease.clone(), save: (&save).into(), now })
                    .await?
                {
                    $crate::store::group::Written::Saved(saved) => Ok(saved),
                    _ => unreachable!("a save is answered as one"),
                }
            })
        }

        fn report<'a>(
            &'a self,
            target: $crate::store::ReportTarget<'a>,
            result: &'a str,
            now: $crate::store::Timestamp,
        ) -> $crate::store::StoreFuture<'a, $crate::store::ReportAnswer> {
            Box::pin(async move {
                $crate::store::validate::report(target, result)?;
                let _held = self.db.held();
                self.db.report(target, result, now).await
            })
        }

        fn cancel<'a>(
            &'a self,
            asset_id: &'a str,
            now: $crate::store::Timestamp,
        ) -> $crate::store::StoreFuture<'a, $crate::store::CancelAnswer> {
            Box::pin(async move {
                $crate::store::validate::id("asset id", asset_id)?;
                let _held = self.db.held();
                self.db.cancel(asset_id, now).await
            })
        }

        fn retry_now<'a>(
            &'a self,
            asset_id: &'a str,
            now: $crate::store::Timestamp,
        ) -> $crate::store::StoreFuture<'a, bool> {
            Box::pin(async move {
                $crate::store::validate::id("asset id", asset_id)?;
                let _held = self.db.held();
                self.db.retry_now(asset_id, now).await
            })
        }

        fn job(&self, id: $crate::store::JobId) -> $crate::store::StoreFuture<'_, Option<$crate::store::JobRow>> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.job(id).await
            })
        }

        fn ended<'a>(
            &'a self,
            ids: &'a [$crate::store::JobId],
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::JobRow>> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.ended(ids).await
            })
        }

        fn job_of<'a>(&'a self, asset_id: &'a str) -> $crate::store::StoreFuture<'a, Option<$crate::store::JobRow>> {
            Box::pin(async move {
                $crate::store::validate::id("asset id", asset_id)?;
                let _held = self.db.held();
                self.db.job_of(asset_id).await
            })
        }

        fn list<'a>(
            &'a self,
            filter: &'a $crate::store::ListFilter,
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::JobRow>> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.list(filter).await
            })
        }

        fn calls(&self, id: $crate::store::JobId) -> $crate::store::StoreFuture<'_, Vec<$crate::store::CallRow>> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.calls(id).await
            })
        }

        fn stats(&self, now: $crate::store::Timestamp) -> $crate::store::StoreFuture<'_, $crate::store::Stats> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.stats(now).await
            })
        }

        fn next_wake(&self) -> $crate::store::StoreFuture<'_, Option<$crate::store::Timestamp>> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.next_wake().await
            })
        }

        fn prune(&self, before: $crate::store::Timestamp) -> $crate::store::StoreFuture<'_, u64> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.prune(before).await
            })
        }

        fn guard<'a>(&'a self, name: &'a str) -> $crate::store::StoreFuture<'a, Option<$crate::store::GuardRow>> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.guard(name).await
            })
        }

        fn set_guard<'a>(
            &'a self,
            name: &'a str,
            expected: Option<u64>,
            value: &'a str,
        ) -> $crate::store::StoreFuture<'a, bool> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.set_guard(name, expected, value).await
            })
        }

        fn put_asset<'a>(
            &'a self,
            asset_id: &'a str,
            alias: Option<&'a str>,
            parameters: &'a str,
            now: $crate::store::Timestamp,
        ) -> $crate::store::StoreFuture<'a, ()> {
            Box::pin(async move {
                $crate::store::validate::asset(asset_id, alias, parameters)?;
                let _held = self.db.held();
                self.db.put_asset(asset_id, alias, parameters, now).await
            })
        }

        fn asset<'a>(
            &'a self,
            id_or_alias: &'a str,
        ) -> $crate::store::StoreFuture<'a, Option<$crate::store::AssetRecord>> {
            Box::pin(async move {
                $crate::store::validate::id("asset id", id_or_alias)?;
                let _held = self.db.held();
                self.db.asset(id_or_alias).await
            })
        }

        fn add_lineage<'a>(
            &'a self,
            asset_id: &'a str,
            reference: &'a str,
            attempt_key: &'a str,
            now: $crate::store::Timestamp,
        ) -> $crate::store::StoreFuture<'a, ()> {
            Box::pin(async move {
                $crate::store::validate::id("asset id", asset_id)?;
                $crate::store::validate::id("reference", reference)?;
                $crate::store::validate::id("attempt key", attempt_key)?;
                let _held = self.db.held();
                self.db.add_lineage(asset_id, reference, attempt_key, now).await
            })
        }

        fn open_assets(
            &self,
            created_before: $crate::store::Timestamp,
            limit: usize,
        ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::AssetRecord>> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.open_assets(created_before, limit).await
            })
        }

        fn settle_asset<'a>(&'a self, asset_id: &'a str) -> $crate::store::StoreFuture<'a, ()> {
            Box::pin(async move {
                $crate::store::validate::id("asset id", asset_id)?;
                let _held = self.db.held();
                self.db.settle_asset(asset_id).await
            })
        }

        fn lineage<'a>(&'a self, asset_id: &'a str) -> $crate::store::StoreFuture<'a, Vec<$crate::store::LineageRow>> {
            Box::pin(async move {
                $crate::store::validate::id("asset id", asset_id)?;
                let _held = self.db.held();
                self.db.lineage(asset_id).await
            })
        }

        fn log_action<'a>(
            &'a self,
            action: $crate::store::NewAction<'a>,
            now: $crate::store::Timestamp,
        ) -> $crate::store::StoreFuture<'a, ()> {
            Box::pin(async move {
                $crate::store::validate::action(&action)?;
                let _held = self.db.held();
                self.db.log_action(action, now).await
            })
        }

        fn actions<'a>(
            &'a self,
            asset_id: Option<&'a str>,
            limit: usize,
        ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::ActionRow>> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.actions(asset_id, limit).await
            })
        }

        fn tally(
            &self,
            since: $crate::store::Timestamp,
            bucket: ::std::time::Duration,
        ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::TallyRow>> {
            Box::pin(async move {
                let _held = self.db.held();
                self.db.tally(since, bucket).await
            })
        }
    };
}
pub(crate) use durable_methods;
