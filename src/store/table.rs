//! The replicated tables: each one's name (as SQL and the wire spell it),
//! key and data columns, and whether DNS answers from it. Modules outside
//! the store name a table by [`Table`], never by its text.

/// A replicated table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Nodes,
    Keys,
    Repos,
    Refs,
    Revisions,
    Domains,
    Previews,
    AcmeChallenges,
    AcmeAccounts,
    Certificates,
    CertOrders,
    PreviewPasswords,
    TicketKeys,
}

impl Table {
    /// Every replicated table, in the order rows of a snapshot are listed.
    pub const ALL: [Table; 13] = [
        Table::Nodes,
        Table::Keys,
        Table::Repos,
        Table::Refs,
        Table::Revisions,
        Table::Domains,
        Table::Previews,
        Table::AcmeChallenges,
        Table::AcmeAccounts,
        Table::Certificates,
        Table::CertOrders,
        Table::PreviewPasswords,
        Table::TicketKeys,
    ];

    /// The table named `name` on the wire, if it is one.
    pub fn from_name(name: &str) -> Option<Table> {
        spec(name).map(|s| s.table)
    }

    /// The table's name, as SQL and the wire spell it.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The table's columns.
    pub(super) fn spec(self) -> &'static TableSpec {
        // `TABLES` lists the tables in `ALL` order (a test checks it).
        &TABLES[self as usize]
    }
}

/// A replicated table: its name, key columns and data columns (the `hlc`,
/// `origin` and `deleted` columns are implied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TableSpec {
    pub table: Table,
    pub name: &'static str,
    pub key: &'static [&'static str],
    pub data: &'static [&'static str],
    /// Whether a change to this table may change DNS answers.
    pub dns: bool,
}

/// Every replicated table. The node table's `healthy` column is not here:
/// health is each node's own view of its peers.
pub(super) const TABLES: [TableSpec; 13] = [
    TableSpec {
        table: Table::Nodes,
        name: "nodes",
        key: &["name"],
        data: &[
            "ipv4",
            "ipv6",
            "latitude",
            "longitude",
            "wg_public_key",
            "mesh_ipv4",
            "mesh_ipv6",
            "endpoint",
            "rpc_addr",
        ],
        dns: true,
    },
    TableSpec {
        table: Table::Keys,
        name: "keys",
        key: &["fingerprint"],
        data: &["public_key", "comment"],
        dns: false,
    },
    TableSpec {
        table: Table::Repos,
        name: "repos",
        key: &["name"],
        data: &["created_ms"],
        dns: false,
    },
    TableSpec {
        table: Table::Refs,
        name: "refs",
        key: &["repo", "name"],
        data: &["target"],
        dns: false,
    },
    TableSpec {
        table: Table::Revisions,
        name: "revisions",
        key: &["domain", "root"],
        data: &[
            "manifest",
            "config",
            "source",
            "branch",
            "created_ms",
            "extras",
            "warnings",
        ],
        dns: false,
    },
    TableSpec {
        table: Table::Domains,
        name: "domains",
        key: &["name"],
        data: &["repo", "active_revision"],
        dns: false,
    },
    TableSpec {
        table: Table::Previews,
        name: "previews",
        key: &["host"],
        data: &["domain", "repo", "branch", "root"],
        dns: false,
    },
    TableSpec {
        table: Table::AcmeChallenges,
        name: "acme_challenges",
        key: &["name", "value"],
        data: &[],
        dns: true,
    },
    // Certificates travel with their keys (inside WireGuard) so every node
    // serves HTTPS; order rows tell the others who is ordering what.
    TableSpec {
        table: Table::AcmeAccounts,
        name: "acme_accounts",
        key: &["directory"],
        data: &["credentials"],
        dns: false,
    },
    TableSpec {
        table: Table::Certificates,
        name: "certificates",
        key: &["domain"],
        data: &[
            "names",
            "chain_pem",
            "key_pem",
            "not_before_ms",
            "not_after_ms",
            "directory",
            "issued_by",
        ],
        dns: false,
    },
    TableSpec {
        table: Table::CertOrders,
        name: "cert_orders",
        key: &["domain"],
        data: &[
            "node",
            "since_ms",
            "attempts",
            "last_error",
            "order_url",
            "key_pem",
            "stage",
        ],
        dns: false,
    },
    // A password's hash and cookie key travel (inside WireGuard) so every
    // node guards the previews; the password itself is never stored.
    TableSpec {
        table: Table::PreviewPasswords,
        name: "preview_passwords",
        key: &["domain"],
        data: &["hash", "cookie_key", "set_ms"],
        dns: false,
    },
    // TLS session ticket keys, the same on every node so a visitor resumes
    // its session wherever DNS sends it next.
    TableSpec {
        table: Table::TicketKeys,
        name: "tls_ticket_keys",
        key: &["id"],
        data: &["secret", "created_ms"],
        dns: false,
    },
];

/// The spec of replicated table `name`.
pub(super) fn spec(name: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_listed_in_table_order() {
        for table in Table::ALL {
            assert_eq!(table.spec().table, table);
            assert_eq!(Table::from_name(table.name()), Some(table));
        }
        assert_eq!(Table::from_name("keys; DROP TABLE keys"), None);
    }
}
