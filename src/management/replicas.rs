//! A replicated queue's Raft members, with the endpoints RabbitMQ 4 added for quorum
//! queues: `GET /api/queues/quorum/VHOST/NAME/status` (each member's Raft state, term and
//! log indexes, as `rabbitmq-queues quorum_status`; here for every Raft-replicated queue,
//! mirrored classic ones too), `POST .../replicas/add` and `DELETE .../replicas/delete`
//! with `{"node": NODE}` (`add_member` / `delete_member`, administrators only).

use axum::http::Method;
use serde_json::{json, Value};

use super::api::Api;
use super::auth::Need;
use super::queues::vhost_in_path;
use super::reply::{Answer, Reply};
use super::request::{string, Request};
use crate::cluster::MemberStatus;

/// One member's row, with RabbitMQ 4's keys.
fn member_row(m: &MemberStatus) -> Value {
    json!({
        "Node Name": m.node,
        "Raft State": m.raft_state,
        "Membership": if m.raft_state == "learner" { "non_voter" } else { "voter" },
        "Last Log Index": m.log_index,
        "Last Applied": m.applied_index,
        "Commit Index": m.commit_index,
        "Term": m.term,
    })
}

async fn exists(api: &Api, vhost: &str, name: &str) -> Result<bool, Reply> {
    Ok(super::queues::find(api, vhost, name).await?.is_some())
}

/// `GET .../status`: every member of the queue's group, as it reports itself.
pub(super) async fn status(api: &Api, req: &Request, vhost: &str, name: &str) -> Answer {
    vhost_in_path(api, req, vhost).await?;
    if req.method != Method::GET {
        return Err(Reply::method_not_allowed());
    }
    if !exists(api, vhost, name).await? {
        return Err(Reply::not_found());
    }
    let members = api
        .admin
        .quorum_status(vhost.into(), name.into(), false)
        .await
        .map_err(|e| Reply::bad_request(e.as_str()))?;
    Ok(Reply::json(members.iter().map(member_row).collect()))
}

/// `POST .../replicas/add` (`add`) or `DELETE .../replicas/delete` of `{"node": NODE}`.
pub(super) async fn change(api: &Api, req: &Request, vhost: &str, name: &str, add: bool) -> Answer {
    req.need(api, Need::Admin).await?;
    let wanted = if add { Method::POST } else { Method::DELETE };
    if req.method != wanted {
        return Err(Reply::method_not_allowed());
    }
    if !api.vhost_exists(vhost).await? || !exists(api, vhost, name).await? {
        return Err(Reply::not_found());
    }
    let body = req.object()?;
    let Some(node) = string(&body, "node") else {
        return Err(Reply::bad_request("[{key_missing,node}]"));
    };
    api.admin
        .change_member(vhost.into(), name.into(), node.into(), add)
        .await
        .map_err(Reply::unavailable)?;
    Ok(Reply::status(204))
}
