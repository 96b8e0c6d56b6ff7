//! Which nodes a visitor is sent to: the nearest healthy ones by
//! great-circle distance. Pure, so every rule here is unit-tested.
//!
//! Fallbacks, in order: no healthy node → every node (fail open: an answer
//! that may reach a struggling node beats no answer, and health may be
//! wrong); unknown client location → every candidate; candidates without
//! coordinates are used only when no candidate has any.

/// What selection needs to know about one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub healthy: bool,
    /// (latitude, longitude) in degrees, when known.
    pub location: Option<(f64, f64)>,
}

/// Mean Earth radius in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// Great-circle distance in kilometres between two (latitude, longitude)
/// points, by the haversine formula.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().clamp(0.0, 1.0).asin()
}

/// Indices into `candidates` to answer with: up to `count` nearest to
/// `client`, nearest first, or all of the pool when that cannot be decided.
pub fn choose(candidates: &[Candidate], client: Option<(f64, f64)>, count: usize) -> Vec<usize> {
    Choice::default().choose(candidates, client, count).to_vec()
}

/// [`choose`] with its working lists kept between calls, so answering a
/// query allocates nothing once the lists have grown to the node count.
#[derive(Debug, Default)]
pub struct Choice {
    pool: Vec<usize>,
    located: Vec<(f64, usize)>,
    chosen: Vec<usize>,
}

impl Choice {
    /// What [`choose`] returns, borrowed from `self`.
    pub fn choose(
        &mut self,
        candidates: &[Candidate],
        client: Option<(f64, f64)>,
        count: usize,
    ) -> &[usize] {
        let Choice {
            pool,
            located,
            chosen,
        } = self;
        pool.clear();
        pool.extend((0..candidates.len()).filter(|&i| candidates[i].healthy));
        if pool.is_empty() {
            pool.extend(0..candidates.len());
        }
        let Some(client) = client else {
            return pool;
        };
        located.clear();
        located.extend(
            pool.iter()
                .filter_map(|&i| {
                    candidates[i]
                        .location
                        .map(|at| (distance_km(client, at), i))
                })
                .filter(|(d, _)| d.is_finite()),
        );
        if located.is_empty() {
            return pool;
        }
        // Ties keep candidate order, so every node gives the same answer.
        located.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        chosen.clear();
        chosen.extend(located.iter().take(count.max(1)).map(|&(_, i)| i));
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONDON: (f64, f64) = (51.51, -0.13);
    const SEATTLE: (f64, f64) = (47.61, -122.33);
    const TOKYO: (f64, f64) = (35.68, 139.69);

    fn node(location: (f64, f64)) -> Candidate {
        Candidate {
            healthy: true,
            location: Some(location),
        }
    }

    fn three() -> Vec<Candidate> {
        vec![node(LONDON), node(SEATTLE), node(TOKYO)]
    }

    #[test]
    fn distance_matches_known_city_pairs() {
        // London–Tokyo is about 9,560 km, London–Seattle about 7,700 km.
        assert!((distance_km(LONDON, TOKYO) - 9560.0).abs() < 60.0);
        assert!((distance_km(LONDON, SEATTLE) - 7700.0).abs() < 60.0);
        assert_eq!(distance_km(TOKYO, TOKYO), 0.0);
        // Across the antimeridian is short, not around the world.
        assert!(distance_km((0.0, 179.5), (0.0, -179.5)) < 120.0);
    }

    #[test]
    fn the_nearest_node_is_chosen() {
        assert_eq!(choose(&three(), Some((51.5, -0.09)), 1), vec![0]);
        assert_eq!(choose(&three(), Some((47.25, -122.31)), 1), vec![1]);
        // Changchun, China: Tokyo is nearest.
        assert_eq!(choose(&three(), Some((43.88, 125.32)), 1), vec![2]);
    }

    #[test]
    fn two_answers_are_the_nearest_two_in_order() {
        // From New York: Seattle, then London.
        assert_eq!(choose(&three(), Some((40.7, -74.0)), 2), vec![1, 0]);
    }

    #[test]
    fn unhealthy_nodes_are_skipped_for_the_next_nearest() {
        let mut nodes = three();
        nodes[0].healthy = false;
        // From Paris with London down: Seattle (7,900 km) beats Tokyo (9,700).
        assert_eq!(choose(&nodes, Some((48.85, 2.35)), 1), vec![1]);
    }

    #[test]
    fn unknown_location_gets_every_healthy_node() {
        let mut nodes = three();
        nodes[2].healthy = false;
        assert_eq!(choose(&nodes, None, 1), vec![0, 1]);
    }

    #[test]
    fn no_healthy_node_fails_open_to_all() {
        let nodes: Vec<_> = three()
            .into_iter()
            .map(|c| Candidate {
                healthy: false,
                ..c
            })
            .collect();
        assert_eq!(choose(&nodes, None, 1), vec![0, 1, 2]);
        assert_eq!(choose(&nodes, Some(LONDON), 1), vec![0]);
    }

    #[test]
    fn nodes_without_coordinates_are_used_only_when_none_have_any() {
        let mut nodes = three();
        nodes[0].location = None;
        assert_eq!(choose(&nodes, Some(LONDON), 1), vec![1]);
        let unknown = vec![
            Candidate {
                healthy: true,
                location: None,
            };
            2
        ];
        assert_eq!(choose(&unknown, Some(LONDON), 1), vec![0, 1]);
        assert_eq!(choose(&[], Some(LONDON), 1), Vec::<usize>::new());
    }
}
