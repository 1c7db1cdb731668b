//! Calls without the cluster secret, or with a wrong one, are refused.

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::super::pb::cluster::liveness_client::LivenessClient;
use super::super::pb::cluster::PingRequest;
use super::super::pb::raft::raft_client::RaftClient;
use super::super::pb::raft::RaftBatch;
use super::*;

async fn channel(node: &TestNode) -> Channel {
    let addr = node.peers.addresses().into_values().next().unwrap();
    // Any peer's address will do; they all serve the same secret. Use a peer of node 1.
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_or_with_a_wrong_secret_are_refused() {
    let mut nodes = start_cluster(2).await;
    let target = channel(&nodes[0]).await;
    let before = nodes[1].counts();

    let refused = RaftClient::new(target.clone())
        .call(RaftBatch {
            requests: vec![],
            id: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    let wrong = ClusterSecret::new("not-the-secret").unwrap();
    let mut client = RaftClient::new(InterceptedService::new(target.clone(), wrong.attach()));
    let refused = client
        .call(RaftBatch {
            requests: vec![],
            id: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let refused = LivenessClient::new(InterceptedService::new(target.clone(), wrong.attach()))
        .ping(PingRequest { from_node: 9 })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let after = nodes[1].counts();
    assert_eq!(
        after.raft_calls, before.raft_calls,
        "a refused call reached the service"
    );

    let right = ClusterSecret::new(SECRET).unwrap();
    let reply = LivenessClient::new(InterceptedService::new(target, right.attach()))
        .ping(PingRequest { from_node: 9 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.node_id, 2);
    for node in &mut nodes {
        node.kill().await;
    }
}
