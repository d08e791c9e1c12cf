//! `strait failback`: return consumers to the original region once it is back.
//!
//! With B active after a failover from A: replicate what was written on B during the outage to
//! A (the B->A flow, run here for the duration, enabled even when the configuration is
//! active-passive), wait for writes on B to stop and for that to catch up, move each group's
//! offsets back (B-local topics through the B->A flow's translation; the replicated `A.topic`
//! through the A->B offset index read backwards), record A as active, and list — or with
//! salvage copy to B — the records that reached A before the outage and never left it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::execute::{
    flow_for, held_on_target, target_index, whole_match, FailoverError, Options, Progress, Run,
};
use super::report::*;
use crate::config::{Config, Flow};
use crate::kafka::groups::{Groups, OffsetAndMetadata, TopicPartition};
use crate::kafka::ClientError;
use crate::monitor::collect::source_lag;
use crate::service::Service;
use crate::translate::group::GroupTranslator;

/// How the failback is to run: `from` is the region active now (B), `to` the one returning (A).
#[derive(Clone, Debug)]
pub struct FailbackOptions {
    /// The regions (`from` active now, `to` returning), groups, waits and timeouts.
    pub base: Options,
    /// Copy the records that never left `to` over to `from`, through the `to->from` flow.
    pub salvage: bool,
}

/// Run a failback (see the module doc).
pub async fn failback(
    config: &Config,
    opts: &FailbackOptions,
    progress: &Progress<'_>,
) -> Result<FailoverReport, FailoverError> {
    let (from, to) = (opts.base.from.as_str(), opts.base.to.as_str());
    // The flow that replicated before the failover must exist; the way back need not be on.
    let forward = flow_for(config, to, from).map_err(|_| {
        FailoverError::Usage(format!(
            "the configuration replicates nothing from {to} to {from} (no `{to}->{from}.enabled = true`), so there is nothing to fail back from"
        ))
    })?;
    let Some(reverse) = config.flow(from, to) else {
        return Err(FailoverError::Usage(format!(
            "--from and --to are both {from}; name two different clusters"
        )));
    };
    let mut back = reverse.clone();
    back.enabled = true;

    let mut run = Run::new(Procedure::Failback, &back, &opts.base, progress);
    run.probe().await?;
    if !run.planned {
        return Err(FailoverError::Aborted(format!(
            "{from} does not answer; a failback needs both regions (nothing was changed)"
        )));
    }

    // What never left `to`, before anything runs that could copy it.
    let t = Instant::now();
    let (ranges, pending) = unreplicated(forward, opts.base.timeout)
        .await
        .map_err(|e| {
            FailoverError::Aborted(format!("cannot read {to} ({e}); nothing was changed"))
        })?;
    let records: i64 = ranges.iter().map(|r| r.records).sum();
    run.steps.push(step_now(
        "list",
        t,
        Outcome::Ok,
        format!("{records} records on {to} never reached {from} before the failover"),
    ));

    // Replicate back (and forward, to salvage) in this process for the duration.
    let mut cfg = config.clone();
    for f in &mut cfg.flows {
        f.enabled = (f.source == from && f.target == to)
            || (opts.salvage && f.source == to && f.target == from);
    }
    progress(&format!(
        "replicating {from}->{to}{} in this process until the failback is done",
        if opts.salvage {
            format!(" and {to}->{from} (salvage)")
        } else {
            String::new()
        }
    ));
    let service = Service::start(&cfg, &[], None);
    let outcome = async {
        let quiet = run.quiesce().await?;
        run.catch_up(quiet).await?;
        let mut copied = 0;
        if opts.salvage && records > 0 {
            let t = Instant::now();
            salvage(forward, &pending, &opts.base, progress).await?;
            copied = records;
            run.steps.push(step_now(
                "salvage",
                t,
                Outcome::Ok,
                format!("{copied} records copied from {to} to {from}"),
            ));
        }
        move_groups_back(&mut run, forward).await?;
        run.final_rpo().await;
        run.switch(format!("failback to {to}")).await?;
        Ok::<_, FailoverError>((copied, opts.salvage))
    }
    .await;
    let _ = service.shutdown(crate::service::STOP_GRACE).await;
    let (copied_records, copied) = outcome?;
    let mut report = run.finish();
    report.salvage = Some(Salvage {
        ranges,
        records,
        copied,
        copied_records,
    });
    Ok(report)
}

fn step_now(name: &str, since: Instant, outcome: Outcome, detail: String) -> Step {
    let d = since.elapsed().as_millis() as i64;
    Step {
        name: name.into(),
        started_at_ms: crate::heartbeat::now_ms() - d,
        duration_ms: d,
        outcome,
        detail,
    }
}

/// Per partition of `forward` (A->B), the source offsets `[replicated end, end)` that have no
/// copy on B: listed as ranges, and returned as the end to wait for when salvaging.
async fn unreplicated(
    forward: &Flow,
    timeout: Duration,
) -> Result<(Vec<SalvageRange>, BTreeMap<TopicPartition, i64>), ClientError> {
    let lag = source_lag(forward, timeout, &Default::default).await?;
    let translator = target_index(forward, timeout).await?;
    let mut ranges = Vec::new();
    let mut pending = BTreeMap::new();
    for p in lag.partitions {
        if forward.policy.is_heartbeats_topic(&p.topic) {
            continue;
        }
        let done = held_on_target(translator.index(), &p);
        if p.source_end > done {
            pending.insert((p.topic.clone(), p.partition), p.source_end);
            ranges.push(SalvageRange {
                topic: p.topic,
                partition: p.partition,
                from: done,
                to: p.source_end,
                records: p.source_end - done,
            });
        }
    }
    Ok((ranges, pending))
}

/// Wait until the `to->from` flow running in this process has copied everything up to the ends
/// in `pending`.
async fn salvage(
    forward: &Flow,
    pending: &BTreeMap<TopicPartition, i64>,
    opts: &Options,
    progress: &Progress<'_>,
) -> Result<(), FailoverError> {
    let deadline = Instant::now() + opts.max_wait;
    loop {
        let lag = source_lag(forward, opts.timeout, &Default::default)
            .await
            .map_err(|e| FailoverError::Aborted(format!("cannot read {} ({e})", forward.source)))?;
        let left: i64 = lag
            .partitions
            .iter()
            .filter_map(|p| {
                let end = pending.get(&(p.topic.clone(), p.partition))?;
                Some((end - p.replicated).max(0))
            })
            .sum();
        if left == 0 {
            return Ok(());
        }
        progress(&format!(
            "salvage: {left} records still to copy {}->{}",
            forward.source, forward.target
        ));
        if Instant::now() >= deadline {
            return Err(FailoverError::Aborted(format!(
                "salvage did not finish within {} s ({left} records left); run the failback again",
                opts.max_wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Move each group that consumes on B back to A: B-local topics through the B->A flow's exact
/// translation, remote `A.topic` through the A->B index read backwards.
async fn move_groups_back(run: &mut Run<'_>, forward: &Flow) -> Result<(), FailoverError> {
    let t = Instant::now();
    let back = run.flow;
    let (from, to) = (run.opts.from.clone(), run.opts.to.clone());
    let timeout = run.opts.timeout;
    let on_b = Groups::new(&back.clients.source_consumer, timeout);
    let listed = on_b.list(None).await.map_err(|e| lost(&from, e))?;
    // The remote topics on B that came from A, and their partitions.
    let admin = crate::kafka::Admin::new(&back.clients.source_admin, timeout)
        .map_err(|e| lost(&from, e))?;
    let remote: Vec<TopicPartition> = admin
        .topics(None)
        .await
        .map_err(|e| lost(&from, e))?
        .into_iter()
        .filter(|t| {
            forward.policy.topic_source(&t.name) == Some(to.as_str())
                && !forward.policy.is_heartbeats_topic(&t.name)
        })
        .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p)))
        .collect();
    let index = target_index(forward, timeout)
        .await
        .map_err(|e| lost(&from, e))?;
    let on_a = Groups::new(&back.clients.target_consumer, timeout);
    let mut forwards = GroupTranslator::new(back, timeout, timeout);
    for g in listed {
        let name = g.name.clone();
        if !(back.should_replicate_group(&name) || forward.should_replicate_group(&name))
            || crate::replicate::is_strait_group(&name)
            || !run
                .opts
                .groups
                .as_ref()
                .is_none_or(|re| whole_match(re, &name))
        {
            continue;
        }
        let mut parts = Vec::new();
        let mut offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = BTreeMap::new();
        // Remote topics: backwards through A->B's index.
        let committed = on_b
            .committed(&name, &remote)
            .await
            .map_err(|e| lost(&from, e))?;
        for ((topic, p), c) in &committed {
            let upstream = forward
                .policy
                .upstream_topic(topic)
                .unwrap_or_else(|| topic.clone());
            let at = index.index().upstream_of(&upstream, *p, c.offset);
            parts.push(GroupPartitionMove {
                remote_topic: upstream.clone(),
                partition: *p,
                upstream_offset: Some(c.offset),
                offset: at,
                method: if at.is_some() {
                    "exact-reverse"
                } else {
                    "none"
                }
                .into(),
                reread: at.map(|_| 0),
            });
            if let Some(o) = at {
                offsets.insert((upstream, *p), OffsetAndMetadata::new(o, ""));
            }
        }
        // B-local topics: forwards through B->A.
        let tr = forwards.translate(&name).await.map_err(|e| lost(&to, e))?;
        for p in &tr.partitions {
            parts.push(GroupPartitionMove {
                remote_topic: p.remote_topic.clone(),
                partition: p.partition,
                upstream_offset: p.upstream_offset,
                offset: p.downstream_offset,
                method: p.method.clone(),
                reread: p.reread,
            });
        }
        offsets.extend(tr.offsets_to_apply());
        if parts.is_empty() {
            continue;
        }
        let reread = parts.iter().map(|p| p.reread).sum::<Option<i64>>();
        let (action, reason) = if tr.active_on_target() {
            (
                GroupAction::Refused,
                Some(format!(
                    "{} consumers are in the group on {to}; stop them so its offsets can be set",
                    tr.target_members
                )),
            )
        } else if g.is_active() {
            (
                GroupAction::Refused,
                Some(format!(
                    "the group still has consumers on {from}; stop them first"
                )),
            )
        } else {
            match on_a.commit(&name, &offsets).await {
                Ok(()) => (GroupAction::Committed, None),
                Err(e) => (GroupAction::Failed, Some(e.to_string())),
            }
        };
        run.groups.push(GroupMove {
            group: name,
            action,
            reason,
            reread,
            partitions: parts,
        });
    }
    let moved = run.groups.iter().filter(|g| g.moved()).count();
    let not = run.groups.len() - moved;
    run.steps.push(step_now(
        "translate",
        t,
        if not == 0 {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
        format!("{moved} groups committed on {to}, {not} not"),
    ));
    Ok(())
}

fn lost(alias: &str, e: ClientError) -> FailoverError {
    FailoverError::Aborted(format!(
        "{alias} stopped answering during the failback ({e}); run it again"
    ))
}
