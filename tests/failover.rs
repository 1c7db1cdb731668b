//! Faults under load on a three-node cluster of real `warrenmq-server` processes: a
//! quorum queue led by node 1, a publisher (confirms, 100 in flight) on node 2 and a
//! consumer (prefetch 50, manual acks) on node 3, while the leader is SIGKILLed, paused
//! with SIGSTOP, or the queue loses its majority. The clients never see an error; every
//! confirmed message is consumed, nothing unpublished appears, no publish is refused, and
//! first deliveries keep the publish order (repeats after a failover are redeliveries).

mod common;

use std::time::{Duration, Instant};

use common::cluster::{leader_seen_by, Cluster};
use common::traffic::Traffic;

#[test]
fn publisher_and_consumer_on_other_nodes_ride_out_the_leader_s_death() {
    let mut c = Cluster::joined();
    let traffic = Traffic::start(&c, "failover", 1, 2);
    traffic.wait_for("traffic before the kill", Duration::from_secs(30), &|s| {
        s.confirmed.len() >= 2000 && s.delivered.len() >= 1000
    });
    let killed_at = Instant::now();
    c.kill(0);
    traffic.wait_more_confirms(2000, Duration::from_secs(60));
    traffic.finish(killed_at);
}

#[test]
fn a_paused_leader_is_replaced_and_steps_down_when_it_resumes() {
    let c = Cluster::joined();
    let traffic = Traffic::start(&c, "paused", 1, 2);
    traffic.wait_for("traffic before the pause", Duration::from_secs(30), &|s| {
        s.confirmed.len() >= 2000 && s.delivered.len() >= 1000
    });
    let paused_at = Instant::now();
    c.signal(0, "STOP");
    // The others elect a leader and the clients carry on while node 1 is frozen.
    traffic.wait_more_confirms(2000, Duration::from_secs(60));
    c.signal(0, "CONT");
    traffic.wait_more_confirms(1000, Duration::from_secs(60));
    // Node 1 learns of the new term and serves the queue through the new leader.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leader = leader_seen_by(&c, 0, "paused");
        if !leader.is_empty() && leader != "warren@c1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 still sees itself leading after it resumed: {leader:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    traffic.finish(paused_at);
}

#[test]
fn a_queue_without_a_majority_holds_its_publishes_and_loses_nothing() {
    let mut c = Cluster::joined();
    let traffic = Traffic::start(&c, "minority", 2, 2);
    traffic.wait_for("traffic before the kills", Duration::from_secs(30), &|s| {
        s.confirmed.len() >= 1000 && s.delivered.len() >= 500
    });
    let lost_at = Instant::now();
    c.kill(0);
    c.kill(1);
    // With one member of three left, nothing is confirmed (nor refused)...
    std::thread::sleep(Duration::from_millis(1500));
    let before = traffic.confirmed();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(traffic.confirmed(), before, "no confirm without a majority");
    assert!(traffic.seen.lock().unwrap().nacked.is_empty());
    // ...until the majority is back.
    c.boot(0);
    c.boot(1);
    traffic.wait_more_confirms(1000, Duration::from_secs(60));
    traffic.finish(lost_at);
}

#[test]
fn a_resumed_leader_hands_its_own_publisher_over_to_the_new_leader() {
    let c = Cluster::joined();
    // The publisher is on node 1 itself: its publishes stall while node 1 is frozen.
    let traffic = Traffic::start(&c, "handover", 0, 2);
    traffic.wait_for("traffic before the pause", Duration::from_secs(30), &|s| {
        s.confirmed.len() >= 2000 && s.delivered.len() >= 1000
    });
    let paused_at = Instant::now();
    c.signal(0, "STOP");
    // Long enough for the others to elect a new leader.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leader = leader_seen_by(&c, 1, "handover");
        if !leader.is_empty() && leader != "warren@c1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader while node 1 is paused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.signal(0, "CONT");
    // Node 1 steps down; what its clients publish goes to the new leader, in order.
    traffic.wait_more_confirms(3000, Duration::from_secs(60));
    traffic.finish(paused_at);
}
