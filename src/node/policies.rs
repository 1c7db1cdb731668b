//! `set_policy`, `clear_policy` and `list_policies`: checked here (pattern, definition,
//! `--apply-to`), then proposed to the metadata group; listed from the local metadata.

use super::control::Control;
use crate::cluster::PolicyInfo;
use crate::metadata::{MetaCommand, Policy, PolicyTarget};

impl Control {
    pub(crate) async fn set_policy(&self, p: PolicyInfo) -> Result<(), String> {
        let view = self.running_view()?;
        let apply_to = PolicyTarget::parse(&p.apply_to).ok_or_else(|| {
            format!(
                "'{}' is not a valid apply-to value (all, queues, classic_queues, quorum_queues, streams, exchanges)",
                p.apply_to
            )
        })?;
        Policy::validate(&p.pattern, &p.definition)
            .map_err(|e| format!("Validation failed\n\n{e}"))?;
        let cmd = MetaCommand::SetPolicy {
            vhost: p.vhost,
            name: p.name,
            policy: Policy {
                pattern: p.pattern,
                apply_to,
                priority: p.priority,
                definition: p.definition,
            },
        };
        view.broker
            .propose(cmd)
            .await
            .map(|_| ())
            .map_err(|e| e.text)
    }

    pub(crate) async fn clear_policy(&self, vhost: &str, name: &str) -> Result<(), String> {
        let view = self.running_view()?;
        let cmd = MetaCommand::ClearPolicy {
            vhost: vhost.into(),
            name: name.into(),
        };
        view.broker
            .propose(cmd)
            .await
            .map(|_| ())
            .map_err(|e| e.text)
    }

    pub(crate) async fn list_policies(&self, vhost: &str) -> Result<Vec<PolicyInfo>, String> {
        let view = self.running_view()?;
        let meta = view.broker.read_meta();
        if !meta.vhost_exists(vhost) {
            return Err(format!("virtual host '{vhost}' does not exist"));
        }
        Ok(meta
            .policies(vhost)
            .map(|(name, p)| PolicyInfo {
                vhost: vhost.into(),
                name: name.into(),
                pattern: p.pattern.clone(),
                apply_to: p.apply_to.as_str().into(),
                definition: p.definition.clone(),
                priority: p.priority,
            })
            .collect())
    }
}
