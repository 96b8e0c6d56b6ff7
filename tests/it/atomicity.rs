//! Activation is atomic: while deploys alternate between two sites, every
//! response is whole and belongs to the revision its header names.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::support::stop::Stop;
use crate::support::{Node, temp_dir, write_file};

/// A site whose index.html and style.css both embed `marker`, padded so a
/// torn read would be visible.
fn marked_site(marker: &str) -> tempfile::TempDir {
    let site = temp_dir();
    let filler = format!("<p>{marker} filler line</p>\n").repeat(200);
    write_file(
        site.path(),
        "index.html",
        format!("<!doctype html><h1>{marker}</h1>\n{filler}<footer>{marker}</footer>\n"),
    );
    write_file(
        site.path(),
        "style.css",
        format!(
            "/* {marker} */\nbody::after {{ content: \"{marker}\" }}\n{}",
            filler.replace('<', "/")
        ),
    );
    site
}

const MARKERS: [&str; 2] = ["MARKER-ALPHA-1111", "MARKER-BRAVO-2222"];
/// How long the readers may run: the 40 deploys end well before it unless
/// the node hangs.
const READ_LIMIT: Duration = Duration::from_secs(600);

#[test]
fn readers_never_see_a_mix_of_revisions_while_deploys_alternate() {
    let a = marked_site(MARKERS[0]);
    let b = marked_site(MARKERS[1]);
    let node = Node::start(a.path());
    let rev_b = node.deploy(b.path());
    let rev_a = node.deploy(a.path());
    assert_eq!(
        rev_a, node.revision,
        "the same tree deployed twice got two revisions"
    );
    assert_ne!(rev_a, rev_b, "two different trees got the same revision");
    let marker_of: BTreeMap<String, &str> =
        BTreeMap::from([(rev_a.clone(), MARKERS[0]), (rev_b.clone(), MARKERS[1])]);

    let stop = Stop::new(READ_LIMIT);
    let problems = Mutex::new(Vec::<String>::new());
    let seen = Mutex::new(BTreeSet::<String>::new());
    let mut requests = 0usize;

    thread::scope(|scope| {
        // Stops the readers when the deploys are done, or when a panic
        // unwinds out of this closure first.
        let stopping = stop.guard();
        let readers: Vec<_> = (0..8)
            .map(|i| {
                let (node, stop, problems, seen, marker_of) = (&node, &stop, &problems, &seen, &marker_of);
                scope.spawn(move || {
                    let path = if i % 2 == 0 { "/" } else { "/style.css" };
                    let mut count = 0usize;
                    while stop.running() {
                        count += 1;
                        let problem = match node.try_get_with(path, &[]) {
                            Err(e) => Some(format!("GET {path}: {e}")),
                            Ok(reply) => {
                                let revision = reply.header("x-makiatto-revision").unwrap_or_default();
                                let text = reply.text();
                                match marker_of.get(revision) {
                                    _ if reply.status != 200 => Some(format!("GET {path}: {}", reply.describe())),
                                    None => Some(format!("GET {path}: unknown revision: {}", reply.describe())),
                                    Some(marker) => {
                                        seen.lock().expect("seen").insert(revision.to_string());
                                        let foreign = MARKERS.iter().any(|m| m != marker && text.contains(m));
                                        (!text.contains(marker) || foreign).then(|| {
                                            format!(
                                                "GET {path}: revision {revision} should carry {marker} only: {}",
                                                reply.describe()
                                            )
                                        })
                                    }
                                }
                            }
                        };
                        if let Some(problem) = problem {
                            problems.lock().expect("problems").push(problem);
                        }
                    }
                    count
                })
            })
            .collect();

        for round in 0..40 {
            let (dir, expected) = if round % 2 == 0 {
                (&b, &rev_b)
            } else {
                (&a, &rev_a)
            };
            let got = node.deploy(dir.path());
            if got != *expected {
                problems.lock().expect("problems").push(format!(
                    "deploy round {round} reported revision {got}, expected {expected}"
                ));
            }
        }
        drop(stopping);
        requests = readers
            .into_iter()
            .map(|r| r.join().expect("reader thread"))
            .sum();
    });

    assert!(
        stop.stopped_in_time(),
        "the 40 deploys took longer than {READ_LIMIT:?}"
    );
    let problems = problems.into_inner().expect("problems");
    assert!(
        problems.is_empty(),
        "{} of {requests} requests during 40 deploys went wrong, first ones:\n{}",
        problems.len(),
        problems[..problems.len().min(10)].join("\n")
    );
    let seen = seen.into_inner().expect("seen");
    assert_eq!(
        seen,
        BTreeSet::from([rev_a, rev_b]),
        "both revisions should be observed during {requests} requests"
    );
}
