//! The policy part of the admin service (`set_policy`, `clear_policy`, `list_policies`):
//! the domain type with its pb conversions and the client calls. The server side
//! dispatches to [`AdminHandler`](super::AdminHandler).

use super::admin::{refused, AdminClient, AdminError};
use super::pb::admin;

/// One policy as warrenctl sets and lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyInfo {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    pub apply_to: String,
    /// A JSON object.
    pub definition: String,
    pub priority: i64,
}

/// The outcome of `list_policies`.
pub type PoliciesFuture<'a> = futures::future::BoxFuture<'a, Result<Vec<PolicyInfo>, String>>;

pub(super) fn policy_to_pb(p: PolicyInfo) -> admin::PolicyInfo {
    admin::PolicyInfo {
        vhost: p.vhost,
        name: p.name,
        pattern: p.pattern,
        apply_to: p.apply_to,
        definition: p.definition,
        priority: p.priority,
    }
}

pub(super) fn policy_from_pb(p: admin::PolicyInfo) -> PolicyInfo {
    PolicyInfo {
        vhost: p.vhost,
        name: p.name,
        pattern: p.pattern,
        apply_to: p.apply_to,
        definition: p.definition,
        priority: p.priority,
    }
}

impl AdminClient {
    pub async fn set_policy(&mut self, policy: PolicyInfo) -> Result<(), AdminError> {
        self.inner
            .set_policy(policy_to_pb(policy))
            .await
            .map_err(refused)?;
        Ok(())
    }

    pub async fn clear_policy(&mut self, vhost: &str, name: &str) -> Result<(), AdminError> {
        let request = admin::ClearPolicyRequest {
            vhost: vhost.into(),
            name: name.into(),
        };
        self.inner.clear_policy(request).await.map_err(refused)?;
        Ok(())
    }

    pub async fn list_policies(&mut self, vhost: &str) -> Result<Vec<PolicyInfo>, AdminError> {
        let request = admin::ListPoliciesRequest {
            vhost: vhost.into(),
        };
        let reply = self.inner.list_policies(request).await.map_err(refused)?;
        Ok(reply
            .into_inner()
            .policies
            .into_iter()
            .map(policy_from_pb)
            .collect())
    }
}
