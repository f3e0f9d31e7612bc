//! Which nats-server releases a replicated log may run on, and the start-up warning when it runs on
//! an older one.

use async_nats::jetstream::stream::Info;

/// The first release whose clustered streams keep every acknowledged append exactly once under
/// concurrent writers and leader elections: 2.9.10 lets concurrent writers to one subject overwrite
/// each other's expected-sequence check, 2.10.26 acknowledges a retried command as a duplicate
/// although it was never stored, and 2.11.x leaves retries answering "duplicate message id is in
/// process" (10158) until the append gives up.
pub const FIRST_RELEASE_FOR_CLUSTERS: (u64, u64) = (2, 12);

/// Logs a warning when `stream` is replicated and the server is not known to be
/// [`FIRST_RELEASE_FOR_CLUSTERS`] or later. The log still opens: the operator decides.
pub(crate) fn warn_if_replicated_on_an_older_release(server_version: &str, stream: &Info) {
    let replicas = replicas(stream);
    if replicas > 1 && !release_at_least(server_version, FIRST_RELEASE_FOR_CLUSTERS) {
        let (major, minor) = FIRST_RELEASE_FOR_CLUSTERS;
        tracing::warn!(
            stream = %stream.config.name,
            replicas,
            server_version,
            required = %format_args!("{major}.{minor}"),
            "the log's stream is replicated on a nats-server release older than the first one \
             that keeps concurrent and retried appends on a cluster exactly once; upgrade the cluster"
        );
    }
}

/// The replicas of a stream: its configured count, or the peers the server reports if those are
/// more (a stream whose replicas were raised outside ClaimLedger).
fn replicas(stream: &Info) -> usize {
    let peers = stream
        .cluster
        .as_ref()
        .filter(|cluster| !cluster.replicas.is_empty())
        .map_or(1, |cluster| cluster.replicas.len() + 1);
    stream.config.num_replicas.max(peers)
}

/// Whether a server version ("2.12.8", "v2.12.0-RC.1") is `major.minor` or later; a version that
/// does not read as one is not.
fn release_at_least(version: &str, (major, minor): (u64, u64)) -> bool {
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let mut number = || -> Option<u64> {
        let part = parts.next()?;
        let digits = &part[..part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len())];
        digits.parse().ok()
    };
    match (number(), number()) {
        (Some(found_major), Some(found_minor)) => (found_major, found_minor) >= (major, minor),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use async_nats::jetstream::stream::Config;

    use super::*;

    #[test]
    fn releases_from_2_12_on_are_recent_enough_for_a_cluster() {
        for version in [
            "2.12.0",
            "2.12.8",
            "v2.12.1",
            "2.12.0-RC.1",
            "2.13.0",
            "3.0.0",
            "2.14",
        ] {
            assert!(release_at_least(version, (2, 12)), "{version}");
        }
        for version in ["2.9.10", "2.10.26", "2.11.9", "v2.11.0", "1.99.0", "2.1.12"] {
            assert!(!release_at_least(version, (2, 12)), "{version}");
        }
    }

    #[test]
    fn an_unreadable_version_is_not_taken_for_a_recent_one() {
        for version in ["", "v", "two.twelve", "2", "2.x", ".12.0"] {
            assert!(!release_at_least(version, (2, 12)), "{version:?}");
        }
    }

    fn stream_info(num_replicas: usize, peers: &[&str]) -> Info {
        let replicas: Vec<_> = peers
            .iter()
            .map(|name| serde_json::json!({ "name": name, "current": true, "active": 1000 }))
            .collect();
        serde_json::from_value(serde_json::json!({
            "config": serde_json::to_value(Config {
                name: "EVENTS".to_owned(),
                num_replicas,
                ..Config::default()
            })
            .expect("a stream configuration"),
            "created": "2026-01-01T00:00:00Z",
            "state": {
                "messages": 0, "bytes": 0, "first_seq": 0, "first_ts": "0001-01-01T00:00:00Z",
                "last_seq": 0, "last_ts": "0001-01-01T00:00:00Z", "consumer_count": 0
            },
            "cluster": { "name": "claimledger", "leader": "n1", "replicas": replicas }
        }))
        .expect("a stream info answer")
    }

    #[test]
    fn a_stream_counts_as_replicated_by_its_configuration_or_its_peers() {
        assert_eq!(replicas(&stream_info(1, &[])), 1);
        assert_eq!(replicas(&stream_info(3, &[])), 3);
        assert_eq!(replicas(&stream_info(3, &["n2", "n3"])), 3);
        assert_eq!(replicas(&stream_info(1, &["n2", "n3"])), 3);
        // The check only logs; on every combination it returns without panicking.
        for version in ["2.9.10", "2.12.8", "garbage"] {
            warn_if_replicated_on_an_older_release(version, &stream_info(3, &["n2", "n3"]));
            warn_if_replicated_on_an_older_release(version, &stream_info(1, &[]));
        }
    }
}
