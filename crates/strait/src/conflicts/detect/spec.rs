//! What one region's detector job reads and writes, from the configuration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use strait_conflicts::authority::Authority;
use strait_conflicts::Rank;

use crate::config::conflicts::{Conflicts, Strategy};
use crate::config::{Config, Flow};
use crate::conflicts::clock::{ClockBoard, Clocks};
use crate::conflicts::tally::ConflictTally;
use crate::kafka::Endpoint;

/// Another region whose receipts the detector reads (the copies of R's writes into it).
#[derive(Clone, Debug)]
pub(crate) struct Remote {
    pub alias: String,
    pub rank: Rank,
    /// Consumer properties for its cluster (those of the flow R->Q's target).
    pub consumer: Endpoint,
}

/// The detector job of one region R.
#[derive(Clone, Debug)]
pub(crate) struct DetectSpec {
    /// R.
    pub region: String,
    pub rank: Rank,
    pub conflicts: Arc<Conflicts>,
    pub clocks: Clocks,
    /// The measured skew between regions, for last-writer-wins verdicts.
    pub clock: ClockBoard,
    /// R's cluster: consumer, producer and admin properties (those of the first flow into R).
    pub consumer: Endpoint,
    pub producer: Endpoint,
    pub admin: Endpoint,
    /// Every other conflict region with a flow R->Q.
    pub remotes: Vec<Remote>,
    /// Each authority rule's ownership, by rule name.
    pub authorities: Arc<HashMap<String, Authority>>,
    /// For topics strait creates (lowered to the broker count).
    pub replication_factor: i32,
    pub admin_timeout: Duration,
    /// The process's count of conflicts recorded.
    pub tally: ConflictTally,
}

impl DetectSpec {
    /// One job per region of `strait.conflicts.regions` that is the target of an enabled flow
    /// `selected` accepts from another conflict region, when rules exist.
    pub(crate) fn from_config(
        config: &Config,
        selected: &dyn Fn(&Flow) -> bool,
        tally: &ConflictTally,
        clock: &ClockBoard,
    ) -> Vec<Self> {
        let c = &config.conflicts;
        if c.rules.is_empty() {
            return Vec::new();
        }
        let conflicts = Arc::new(c.clone());
        let mut authorities = HashMap::new();
        for rule in &c.rules {
            if let Strategy::Authority { owners, .. } = &rule.strategy {
                let ranked: Vec<(Rank, String)> = owners
                    .iter()
                    .filter_map(|(r, p)| Some((c.rank(r)?, p.clone())))
                    .collect();
                // Checked when the file was read.
                if let Ok(a) = Authority::new(&ranked) {
                    authorities.insert(rule.name.clone(), a);
                }
            }
        }
        let authorities = Arc::new(authorities);
        let mut out = Vec::new();
        for (rank, region) in c.regions.iter().enumerate() {
            let into: Vec<&Flow> = c
                .regions
                .iter()
                .filter(|q| *q != region)
                .filter_map(|q| config.flow(q, region))
                .filter(|f| f.enabled)
                .collect();
            let Some(first) = into.first() else { continue };
            if !into.iter().any(|f| selected(f)) {
                continue;
            }
            let remotes = c
                .regions
                .iter()
                .enumerate()
                .filter(|(_, q)| *q != region)
                .filter_map(|(qr, q)| {
                    let f = config.flow(region, q).filter(|f| f.enabled)?;
                    Some(Remote {
                        alias: q.clone(),
                        rank: qr as Rank,
                        consumer: f.clients.target_consumer.clone(),
                    })
                })
                .collect();
            out.push(Self {
                region: region.clone(),
                rank: rank as Rank,
                conflicts: conflicts.clone(),
                clocks: Clocks::new(
                    c.clock_tolerance.as_millis() as i64,
                    c.write_delay_max.as_millis() as i64,
                ),
                clock: clock.clone(),
                consumer: first.clients.target_consumer.clone(),
                producer: first.clients.target_producer.clone(),
                admin: first.clients.target_admin.clone(),
                remotes,
                authorities: authorities.clone(),
                replication_factor: i32::from(first.replication_factor),
                admin_timeout: first.admin_timeout,
                tally: tally.clone(),
            });
        }
        out
    }

    /// The consumer group reading R's receipts: a `strait.` group, never checkpointed.
    pub(crate) fn group(&self) -> String {
        format!("strait.detect.{}", self.region)
    }

    /// A region's alias by rank.
    pub(crate) fn alias(&self, rank: Rank) -> &str {
        self.conflicts
            .regions
            .get(usize::from(rank))
            .map_or("?", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_detector_per_conflict_region_reading_the_others() {
        let c = Config::parse(
            "clusters = east, west, south\n\
             east.bootstrap.servers = e:9092\nwest.bootstrap.servers = w:9092\nsouth.bootstrap.servers = s:9092\n\
             east->west.enabled = true\nwest->east.enabled = true\neast->south.enabled = true\n\
             strait.conflicts.regions = west, east\n\
             strait.conflicts.rules = orders, owned\n\
             strait.conflicts.orders.topics = orders\n\
             strait.conflicts.orders.strategy = last-writer-wins\n\
             strait.conflicts.owned.topics = accounts\n\
             strait.conflicts.owned.strategy = authority\n\
             strait.conflicts.owned.authority.east = E-.*\n",
            "mm2.properties",
        )
        .unwrap();
        let tally = ConflictTally::default();
        let all = DetectSpec::from_config(&c, &|_| true, &tally, &ClockBoard::default());
        let names: Vec<&str> = all.iter().map(|s| s.region.as_str()).collect();
        assert_eq!(names, ["west", "east"]);
        let east = &all[1];
        assert_eq!(east.rank, 1);
        assert_eq!(east.group(), "strait.detect.east");
        assert!(crate::replicate::is_strait_group(&east.group()));
        assert_eq!(east.consumer.alias, "east");
        let remotes: Vec<&str> = east.remotes.iter().map(|r| r.alias.as_str()).collect();
        assert_eq!(remotes, ["west"], "south is not a conflict region");
        assert_eq!(east.remotes[0].consumer.alias, "west");
        assert!(east.authorities.contains_key("owned"));
        assert_eq!(east.alias(0), "west");
        let west_only =
            DetectSpec::from_config(&c, &|f| f.target == "west", &tally, &ClockBoard::default());
        assert_eq!(west_only.len(), 1);
        assert_eq!(west_only[0].region, "west");
    }
}
