//! `stats [--minutes N] [--json]`: requests, bytes and server errors per
//! domain and per node over the last minutes (the current one included),
//! gathered from every node of the cluster through the mesh. Each node
//! sums its own minutes by its own clock.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ParseError;
use crate::admin::table::{Column, Table};
use crate::admin::words::Words;
use crate::admin::{AdminError, Context, json};
use crate::metrics::recent::MINUTES;
use crate::metrics::traffic::{NodeTraffic, Totals};

/// Minutes summed when the line names none.
pub const DEFAULT_MINUTES: u64 = 5;
/// The most minutes a node keeps, the current one included.
const MAX_MINUTES: u64 = MINUTES as u64;

/// The `stats` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// `None`: [`DEFAULT_MINUTES`].
    pub minutes: Option<u64>,
    pub json: bool,
}

/// `stats --json`.
#[derive(Serialize)]
struct StatsView {
    minutes: u64,
    /// Per node, in the order they were asked (this node first).
    nodes: Vec<NodeStats>,
    /// Per domain, over every node that answered.
    domains: Vec<DomainStats>,
    total: TotalsJson,
    /// Nodes that did not answer, with why.
    unreachable: Vec<String>,
}

#[derive(Serialize)]
struct NodeStats {
    node: String,
    domains: Vec<DomainStats>,
    total: TotalsJson,
}

#[derive(Serialize)]
struct DomainStats {
    domain: String,
    #[serde(flatten)]
    totals: TotalsJson,
}

#[derive(Serialize)]
struct TotalsJson {
    requests: u64,
    bytes: u64,
    /// Responses with a 5xx status.
    errors: u64,
    /// `errors / requests`, 0 without requests.
    error_rate: f64,
}

impl From<Totals> for TotalsJson {
    fn from(t: Totals) -> TotalsJson {
        TotalsJson {
            requests: t.requests,
            bytes: t.bytes,
            errors: t.errors,
            error_rate: t.error_rate(),
        }
    }
}

/// The line that parses back into this command.
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stats")?;
        if let Some(minutes) = self.minutes {
            write!(f, " --minutes {minutes}")?;
        }
        if self.json {
            f.write_str(" --json")?;
        }
        Ok(())
    }
}

/// One node's sums: per domain (sorted), and its total.
struct Summed {
    node: String,
    domains: Vec<(String, Totals)>,
    total: Totals,
}

fn sum(traffic: &NodeTraffic, minutes: u64) -> Summed {
    let mut domains: Vec<(String, Totals)> = traffic
        .domains
        .iter()
        .map(|d| (d.domain.clone(), d.last(traffic.minute, minutes)))
        .filter(|(_, t)| t.requests > 0)
        .collect();
    domains.sort_by(|a, b| a.0.cmp(&b.0));
    let mut total = Totals::default();
    for (_, t) in &domains {
        total.add(*t);
    }
    Summed {
        node: traffic.node.clone(),
        domains,
        total,
    }
}

impl Stats {
    pub fn parse(words: &mut Words<'_>) -> Result<Stats, ParseError> {
        let mut minutes = None;
        while let Some(word) = words.next_word() {
            match word {
                "--minutes" if minutes.is_none() => {
                    let n = words.required()?;
                    match n.parse::<u64>() {
                        Ok(n) if (1..=MAX_MINUTES).contains(&n) => minutes = Some(n),
                        _ => return Err(ParseError::Minutes(n.to_string())),
                    }
                }
                _ => return Err(words.not_understood()),
            }
        }
        Ok(Stats {
            minutes,
            json: words.json(),
        })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let minutes = self.minutes.unwrap_or(DEFAULT_MINUTES);
        let mut nodes = Vec::new();
        let mut unreachable = Vec::new();
        for answer in ctx.cluster_traffic() {
            match answer {
                Ok(traffic) => nodes.push(sum(&traffic, minutes)),
                Err(e) => unreachable.push(e),
            }
        }
        let mut by_domain: BTreeMap<String, Totals> = BTreeMap::new();
        let mut total = Totals::default();
        for node in &nodes {
            for (domain, t) in &node.domains {
                by_domain.entry(domain.clone()).or_default().add(*t);
            }
            total.add(node.total);
        }
        if self.json {
            let domain_stats = |(domain, t): (String, Totals)| DomainStats {
                domain,
                totals: t.into(),
            };
            let view = StatsView {
                minutes,
                nodes: nodes
                    .into_iter()
                    .map(|n| NodeStats {
                        node: n.node,
                        domains: n.domains.into_iter().map(domain_stats).collect(),
                        total: n.total.into(),
                    })
                    .collect(),
                domains: by_domain.into_iter().map(domain_stats).collect(),
                total: total.into(),
                unreachable,
            };
            return Ok(json::line(&view)?);
        }
        Ok(text(minutes, &nodes, &by_domain, total, &unreachable))
    }
}

/// The table: a row per node and domain, each node's total, then each
/// domain's total over the cluster.
fn text(
    minutes: u64,
    nodes: &[Summed],
    by_domain: &BTreeMap<String, Totals>,
    total: Totals,
    unreachable: &[String],
) -> String {
    let width = |names: &mut dyn Iterator<Item = usize>| names.max().unwrap_or(0).max(6);
    let node_w = width(&mut nodes.iter().map(|n| n.node.len()));
    let domain_w = width(&mut by_domain.keys().map(String::len));
    let mut table = Table::new(
        "  ",
        &[
            Column::left(node_w),
            Column::left(domain_w),
            Column::right(8),
            Column::right(10),
            Column::right(6),
            Column::right(6),
        ],
    );
    let plural = if minutes == 1 { "" } else { "s" };
    table.line(&format!(
        "last {minutes} minute{plural}, the current one included"
    ));
    table.row(["NODE", "DOMAIN", "REQUESTS", "BYTES", "5XX", "ERR%"]);
    let row = |table: &mut Table, node: &str, domain: &str, t: &Totals| {
        table.row([
            node.to_string(),
            domain.to_string(),
            t.requests.to_string(),
            bytes(t.bytes),
            t.errors.to_string(),
            format!("{:.1}", t.error_rate() * 100.0),
        ]);
    };
    for node in nodes {
        for (domain, t) in &node.domains {
            row(&mut table, &node.node, domain, t);
        }
        row(&mut table, &node.node, "(all)", &node.total);
    }
    for (domain, t) in by_domain {
        row(&mut table, "(all)", domain, t);
    }
    row(&mut table, "(all)", "(all)", &total);
    for e in unreachable {
        table.line(&format!("unreachable: {e}"));
    }
    table.into_text()
}

/// `bytes` for people: B, KiB, MiB or GiB with one decimal.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::recent::Minute;
    use crate::metrics::traffic::DomainTraffic;

    fn traffic(node: &str, domains: &[(&str, u64, u64, u64)]) -> NodeTraffic {
        NodeTraffic {
            node: node.into(),
            minute: 1000,
            domains: domains
                .iter()
                .map(|&(domain, requests, bytes, errors)| DomainTraffic {
                    domain: domain.into(),
                    minutes: vec![Minute {
                        minute: 1000,
                        requests,
                        bytes,
                        errors,
                    }],
                })
                .collect(),
        }
    }

    #[test]
    fn the_table_has_a_row_per_node_and_domain_and_the_totals() {
        let nodes = vec![
            sum(&traffic("london", &[("a.test", 10, 2048, 1)]), 5),
            sum(
                &traffic("paris", &[("a.test", 4, 100, 0), ("b.test", 6, 10, 0)]),
                5,
            ),
        ];
        let mut by_domain = BTreeMap::new();
        let mut total = Totals::default();
        for n in &nodes {
            for (d, t) in &n.domains {
                by_domain
                    .entry(d.clone())
                    .or_insert_with(Totals::default)
                    .add(*t);
            }
            total.add(n.total);
        }
        let out = text(5, &nodes, &by_domain, total, &["tokyo: no answer".into()]);
        assert_eq!(
            out,
            "last 5 minutes, the current one included
NODE    DOMAIN  REQUESTS       BYTES     5XX    ERR%
london  a.test        10     2.0 KiB       1    10.0
london  (all)         10     2.0 KiB       1    10.0
paris   a.test         4       100 B       0     0.0
paris   b.test         6        10 B       0     0.0
paris   (all)         10       110 B       0     0.0
(all)   a.test        14     2.1 KiB       1     7.1
(all)   b.test         6        10 B       0     0.0
(all)   (all)         20     2.1 KiB       1     5.0
unreachable: tokyo: no answer
"
        );
    }

    #[test]
    fn minutes_are_bounded() {
        let parse = |line: &str| {
            let mut words = Words::new(line).unwrap_or_else(|| panic!("{line}"));
            Stats::parse(&mut words)
        };
        assert_eq!(
            parse("stats --minutes 3 --json"),
            Ok(Stats {
                minutes: Some(3),
                json: true
            })
        );
        assert_eq!(
            parse("stats --minutes 0"),
            Err(ParseError::Minutes("0".into()))
        );
        assert_eq!(
            parse("stats --minutes 17"),
            Err(ParseError::Minutes("17".into()))
        );
        assert_eq!(
            parse("stats now"),
            Err(ParseError::NotUnderstood("stats".into()))
        );
    }
}
