//! `GET /api/warren/groups` (WarrenMQ's own, for administrators and monitoring users):
//! the Raft groups the answering node runs, the metadata group and each queue group it
//! holds a member of, with what each serves (`serves`, `vhost`, `queue`, `type`), its
//! `members` and `learners`, `leader`, `term`, `last_log_index`, `commit_index` and
//! `last_applied` as this node knows them, and this node's `role` in it. Sorted by
//! `group` unless the query asks otherwise (the list parameters of every list apply).

use super::api::Api;
use super::auth::Need;
use super::reply::Answer;
use super::request::Request;

pub(super) async fn groups(api: &Api, req: &Request) -> Answer {
    req.need(api, Need::Monitor).await?;
    let rows = api.rows("raft_groups", "/", Vec::new()).await?;
    req.list(rows, &["group"])
}
